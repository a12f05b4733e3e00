//! Webhook delivery, the queue's first job kinds: `webhook.fanout` turns one event into one
//! delivery job per webhook whose owner may read it (deduplicated per webhook and event, so
//! several instances never duplicate), and `webhook.deliver` POSTs the event envelope, signed,
//! to the checked address (the owner's CURRENT role decides, at every attempt; `targets` says
//! which addresses a webhook may reach).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::queue::{Handler, JobError};
use crate::domain::delivery::{Delivery, Topic, deliver};
use crate::domain::events::StoredEvent;
use crate::domain::policy::webhook_owner;
use crate::domain::ports::{
    ClaimedJob, Clock, EventLog, JobStore, NewJob, Refusal, TargetGuard, UserRepo, WebhookRepo,
};
use crate::domain::service::new_id;
use crate::domain::webhook::{Target, Webhook, WebhookDelivery, parse_target};

pub use crate::domain::webhook::{DELIVER_JOB as DELIVER, FANOUT_JOB as FANOUT};
/// A 2xx within this is a delivery; anything slower is a failed attempt.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes of a receiver's answer read (the rest is dropped with the connection).
pub const BODY_CAP: usize = 4 * 1024;

// ---- signing and headers --------------------------------------------------------------------

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    loop {
        rand::rngs::OsRng.fill_bytes(&mut buf);
        // All-zero ids are invalid in W3C trace context.
        if buf.iter().any(|b| *b != 0) {
            return buf.iter().map(|b| format!("{b:02x}")).collect();
        }
    }
}

/// The `traceparent` of a delivery: the job's trace id (a new one when it has none or a
/// malformed one) with a new span id, sampled.
pub fn traceparent(trace_id: Option<&str>) -> String {
    let valid = |t: &&str| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()) && t.bytes().any(|b| b != b'0');
    let trace = trace_id.filter(valid).map_or_else(|| random_hex(16), str::to_ascii_lowercase);
    format!("00-{trace}-{}-01", random_hex(8))
}

// ---- the HTTP POST --------------------------------------------------------------------------

/// What one attempt got.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
}

/// The TLS client of https deliveries: rustls (ring) with the Mozilla roots of `webpki-roots`,
/// plus any PEM certificates in `extra_roots` (a private CA), HTTP/1.1 by ALPN.
pub fn tls_config(extra_roots: Option<&[u8]>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(pem) = extra_roots {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots.add(cert.map_err(|e| anyhow::anyhow!("reading a CA certificate: {e:?}"))?)?;
            added += 1;
        }
        anyhow::ensure!(added > 0, "the webhook CA file holds no certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// POSTs `body` to `target` at one of `addrs` (already checked: the connection goes to a
/// checked address, so a second DNS answer cannot swap it; TLS still verifies the URL's host).
/// No redirect is followed, at most `BODY_CAP` bytes of the answer are read, and the whole
/// exchange is bounded by `TIMEOUT`.
pub async fn post(
    tls: &Arc<rustls::ClientConfig>,
    target: &Target,
    addrs: &[SocketAddr],
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<Answer, String> {
    match tokio::time::timeout(TIMEOUT, exchange(tls, target, addrs, headers, body)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} s", TIMEOUT.as_secs())),
    }
}

async fn exchange(
    tls: &Arc<rustls::ClientConfig>,
    target: &Target,
    addrs: &[SocketAddr],
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<Answer, String> {
    let mut last = String::from("no address");
    let mut stream = None;
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("connect {addr}: {e}"),
        }
    }
    let stream = stream.ok_or(last)?;
    let _ = stream.set_nodelay(true);
    let request = request(target, headers, body)?;
    if !target.https {
        return send(hyper_util::rt::TokioIo::new(stream), request).await;
    }
    let name = rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(|e| format!("TLS name: {e}"))?;
    let stream =
        tokio_rustls::TlsConnector::from(tls.clone()).connect(name, stream).await.map_err(|e| format!("TLS: {e}"))?;
    send(hyper_util::rt::TokioIo::new(stream), request).await
}

fn request(target: &Target, headers: &[(&str, String)], body: Bytes) -> Result<hyper::Request<Full<Bytes>>, String> {
    let host = match target.url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        _ => target.host.clone(),
    };
    let host = match target.url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    let path = match target.url.query() {
        Some(q) => format!("{}?{q}", target.url.path()),
        None => target.url.path().to_string(),
    };
    let mut request = hyper::Request::post(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, concat!("Polyport-Webhooks/", env!("CARGO_PKG_VERSION")));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.body(Full::new(body)).map_err(|e| format!("request: {e}"))
}

/// One HTTP/1.1 exchange on `io`: the status, after reading at most `BODY_CAP` bytes.
async fn send<IO>(io: IO, request: hyper::Request<Full<Bytes>>) -> Result<Answer, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io).await.map_err(|e| format!("handshake: {e}"))?;
    let exchange = async move {
        let response = sender.send_request(request).await.map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut read = 0;
        while read < BODY_CAP {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
                Some(Err(e)) => return Err(format!("reading the answer: {e}")),
                None => break,
            }
        }
        Ok(Answer { status })
    };
    tokio::pin!(conn);
    tokio::select! {
        answer = exchange => answer,
        closed = &mut conn => Err(match closed {
            Ok(()) => "the connection closed before an answer".to_string(),
            Err(e) => format!("connection: {e}"),
        }),
    }
}

// ---- the job handlers -----------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct FanoutPayload {
    event_id: i64,
}

#[derive(Serialize, Deserialize)]
struct DeliverPayload {
    webhook_id: String,
    event_id: i64,
}

/// What both handlers read.
pub struct Webhooks {
    pub webhooks: Arc<dyn WebhookRepo>,
    pub events: Arc<dyn EventLog>,
    pub users: Arc<dyn UserRepo>,
    pub jobs: Arc<dyn JobStore>,
    pub targets: Arc<dyn TargetGuard>,
    pub clock: Arc<dyn Clock>,
    /// The TLS client of https deliveries.
    pub tls: Arc<rustls::ClientConfig>,
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

impl Webhooks {
    async fn event(&self, id: i64) -> Result<Option<StoredEvent>, JobError> {
        let found = self.events.read_after(id - 1, 1).await.map_err(retry)?;
        Ok(found.into_iter().next().filter(|e| e.id == id))
    }

    /// What the webhook's owner may see of `event` now (their current role), if anything.
    async fn view(&self, hook: &Webhook, event: &StoredEvent) -> Result<Option<Delivery>, JobError> {
        let Some(owner) = self.users.get_current(&hook.owner_id).await.map_err(retry)? else { return Ok(None) };
        let topics: Vec<Topic> = hook.topics.iter().filter_map(|t| Topic::parse(t).ok()).collect();
        Ok(deliver(&webhook_owner(&owner), &topics, event))
    }
}

/// `webhook.fanout`: one delivery job per webhook that listens to the event and whose owner may
/// read it. Deduplicated per (webhook, event), so running it twice changes nothing.
pub struct Fanout(pub Arc<Webhooks>);

#[async_trait]
impl Handler for Fanout {
    async fn run(&self, job: &ClaimedJob) -> Result<(), JobError> {
        let p: FanoutPayload = serde_json::from_str(&job.payload).map_err(|e| JobError::Fatal(e.to_string()))?;
        let w = &self.0;
        let Some(event) = w.event(p.event_id).await? else { return Ok(()) };
        let now = w.clock.now();
        let mut jobs = Vec::new();
        for hook in w.webhooks.listening(&event.subject.topics()).await.map_err(retry)? {
            if w.view(&hook, &event).await?.is_none() {
                continue;
            }
            let payload = serde_json::to_string(&DeliverPayload { webhook_id: hook.id.clone(), event_id: event.id })
                .map_err(|e| JobError::Fatal(e.to_string()))?;
            jobs.push(NewJob {
                kind: DELIVER.into(),
                payload,
                dedupe_key: Some(format!("deliver:{}:{}", hook.id, event.id)),
                trace_id: job.trace_id.clone(),
                run_at: now,
            });
        }
        if !jobs.is_empty() {
            w.jobs.enqueue(&jobs).await.map_err(retry)?;
        }
        Ok(())
    }
}

/// `webhook.deliver`: one signed POST of the event envelope, recorded as a delivery attempt.
pub struct Deliver(pub Arc<Webhooks>);

#[async_trait]
impl Handler for Deliver {
    async fn run(&self, job: &ClaimedJob) -> Result<(), JobError> {
        let p: DeliverPayload = serde_json::from_str(&job.payload).map_err(|e| JobError::Fatal(e.to_string()))?;
        let w = &self.0;
        // Gone webhook, purged event, deleted owner, or an object the owner may no longer
        // read: nothing to deliver, and nothing worth retrying.
        let Some(hook) = w.webhooks.get(&p.webhook_id).await.map_err(retry)? else { return Ok(()) };
        let Some(event) = w.event(p.event_id).await? else { return Ok(()) };
        let Some(view) = w.view(&hook, &event).await? else { return Ok(()) };
        let Some(secret) = w.webhooks.secret(&hook.id).await.map_err(retry)? else { return Ok(()) };
        let target = parse_target(&hook.url).map_err(|issue| JobError::Fatal(format!("stored url: {issue}")))?;
        let body = Bytes::from(serde_json::to_vec(&view).map_err(|e| JobError::Fatal(e.to_string()))?);
        let started = Instant::now();
        let attempted_at = w.clock.now();
        let outcome = match w.targets.check(&target).await {
            Err(Refusal::Issue(issue)) => Err(format!("refused target: {issue}")),
            Err(Refusal::Busy) => Err("too many host lookups running; tried again later".to_string()),
            Ok(addrs) => {
                let headers = [
                    ("polyport-signature", signature(&secret, attempted_at.timestamp(), &body)),
                    ("polyport-event-id", event.id.to_string()),
                    ("polyport-delivery-id", job.id.clone()),
                    ("traceparent", traceparent(job.trace_id.as_deref())),
                ];
                post(&w.tls, &target, &addrs, &headers, body).await
            }
        };
        let (status_code, error) = match &outcome {
            Ok(a) if (200..300).contains(&a.status) => (Some(i64::from(a.status)), None),
            Ok(a) => (Some(i64::from(a.status)), Some(format!("answered HTTP {}", a.status))),
            Err(e) => (None, Some(e.clone())),
        };
        let record = WebhookDelivery {
            id: new_id(),
            webhook_id: hook.id.clone(),
            delivery_id: job.id.clone(),
            event_id: event.id,
            attempt: job.attempts,
            status_code,
            succeeded: error.is_none(),
            error: error.clone(),
            duration_ms: started.elapsed().as_millis() as i64,
            attempted_at,
        };
        w.webhooks.record_delivery(&record).await.map_err(retry)?;
        match error {
            None => Ok(()),
            Some(e) => Err(JobError::Retry(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // Computed independently: printf '1700000000.{"id":1}' | openssl dgst -sha256 -hmac whsec_test
        let sig = signature("whsec_test", 1700000000, b"{\"id\":1}");
        assert_eq!(sig, "t=1700000000,v1=2f441ba4b3b2d50d28a9ab9d9fd8880376ecd1eb5d0435401553f5d8d0a5dcf8");
    }

    #[test]
    fn traceparent_keeps_a_valid_trace_id_and_makes_a_new_span() {
        let t = traceparent(Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(t.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && t.ends_with("-01") && t.len() == 55, "{t}");
        let fresh = traceparent(None);
        assert_eq!(fresh.len(), 55);
        assert_ne!(
            traceparent(Some("00000000000000000000000000000000")).get(3..35),
            Some("00000000000000000000000000000000")
        );
    }
}
