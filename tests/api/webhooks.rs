//! Signed webhooks and the durable job queue behind them, on both stores: a receiver on
//! loopback verifies each signature with the secret from the create answer; retries back off;
//! dead jobs; the SSRF guard at registration and at delivery; delivery-time authorization;
//! metrics; two instances sharing one queue; jobs surviving kill -9.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use hmac::{Hmac, Mac};
use polyport::Settings;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{Store, TestApp, assert_error, spawn_app_with};

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON envelope")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
    }
}

/// A webhook receiver on 127.0.0.1:0 that answers 500 to its first `fail_first` requests (and
/// to all while `failing` is set), 200 otherwise, recording every request.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub hits: Arc<Mutex<Vec<Hit>>>,
    pub failing: Arc<std::sync::atomic::AtomicBool>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Receiver {
        let (app, hits, failing) = Self::router(fail_first);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, hits, failing }
    }

    /// The same receiver over TLS with `cert` and `key` (PEM files), at `https://<host>:<port>/hook`.
    pub async fn start_tls(host: &str, cert: &std::path::Path, key: &std::path::Path) -> Receiver {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let (app, hits, failing) = Self::router(0);
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(cert).unwrap().map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{host}:{}/hook", listener.local_addr().unwrap().port());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Receiver { url, hits, failing }
    }

    #[allow(clippy::type_complexity)]
    fn router(fail_first: usize) -> (axum::Router, Arc<Mutex<Vec<Hit>>>, Arc<std::sync::atomic::AtomicBool>) {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (h, f) = (hits.clone(), failing.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (hits, failing) = (h.clone(), f.clone());
                async move {
                    let mut hits = hits.lock().unwrap();
                    hits.push(Hit { headers, body: body.to_vec(), at: Instant::now() });
                    if hits.len() <= fail_first || failing.load(std::sync::atomic::Ordering::SeqCst) {
                        AxumStatus::INTERNAL_SERVER_ERROR
                    } else {
                        AxumStatus::OK
                    }
                }
            }),
        );
        (app, hits, failing)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the hits so far.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let hits = self.hits();
            if done(&hits) {
                return hits;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; got {} hits", hits.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Settings for webhook tests: loopback targets allowed, test-sized retries, fast polling.
pub fn quick_jobs(s: &mut Settings) {
    s.webhook_allow_private = true;
    s.job_backoff_base_ms = 300;
    s.job_backoff_max_secs = 2;
    s.job_poll_ms = 50;
}

/// `v1` of a `Polyport-Signature`, recomputed from the secret, the header's `t` and the body.
pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    expected == v1
}

/// Registers a webhook through REST; the create answer.
pub async fn register(app: &TestApp, token: &str, url: &str, topics: &[&str]) -> Value {
    let r = app.post("/webhooks", Some(token), json!({"url": url, "topics": topics})).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    r.json().await.unwrap()
}

async fn deliveries(app: &TestApp, token: &str, hook: &str) -> Vec<Value> {
    let r = app.get(&format!("/webhooks/{hook}/deliveries?limit=100"), Some(token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["data"].as_array().unwrap().clone()
}

/// Waits until the webhook lists `n` delivery attempts; newest first.
async fn wait_for_deliveries(app: &TestApp, token: &str, hook: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = deliveries(app, token, hook).await;
        if list.len() >= n {
            return list;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {n} deliveries: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a case on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set, with `tweak`.
macro_rules! on_both_stores_with {
    ($tweak:expr, $($case:ident),* $(,)?) => {$(
        mod $case {
            #[allow(unused_imports)]
            use polyport::Settings;
            #[allow(unused_imports)]
            use $crate::webhooks::quick_jobs;

            #[tokio::test]
            async fn on_sqlite() {
                let app = $crate::helpers::spawn_app_with($crate::helpers::Store::Sqlite, $tweak).await.unwrap();
                super::$case(app).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                let Some(app) = $crate::helpers::spawn_app_with($crate::helpers::Store::Postgres, $tweak).await else {
                    eprintln!("TEST_DATABASE_URL not set: PostgreSQL case skipped");
                    return;
                };
                super::$case(app).await;
            }
        }
    )*};
}

async fn a_webhook_gets_each_event_signed_with_the_secret_shown_once(app: TestApp) {
    let receiver = Receiver::start(0).await;
    let ada = app.member("ada").await;
    let created = register(&app, &ada.token, &receiver.url, &["posts"]).await;
    let (hook, secret) = (created["id"].as_str().unwrap(), created["secret"].as_str().unwrap());
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    assert_eq!(created["topics"], json!(["posts"]));

    let post = app.create_post(&ada, "hello hooks", &[]).await;
    let hits = receiver.wait_until("the post.created delivery", |h| !h.is_empty()).await;
    let hit = &hits[0];
    assert!(verify(secret, hit.header("polyport-signature"), &hit.body), "the signature verifies");
    assert!(!verify("whsec_wrong", hit.header("polyport-signature"), &hit.body));
    let envelope = hit.json();
    assert_eq!(envelope["type"], "post.created");
    assert_eq!(envelope["topic"], format!("posts/{}", post["id"].as_str().unwrap()));
    assert_eq!(envelope["data"]["title"], "hello hooks");
    assert_eq!(hit.header("polyport-event-id"), envelope["id"].to_string());
    assert_eq!(hit.header("content-type"), "application/json");
    let traceparent = hit.header("traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(
        (parts.len(), parts[0], parts[1].len(), parts[2].len(), parts[3]),
        (4, "00", 32, 16, "01"),
        "{traceparent}"
    );
    // The same envelope SSE and /ws deliver: {id, type, topic, occurred_at, data}.
    let mut keys: Vec<&String> = envelope.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["data", "id", "occurred_at", "topic", "type"]);

    let attempts = wait_for_deliveries(&app, &ada.token, hook, 1).await;
    assert_eq!(attempts[0]["succeeded"], true);
    assert_eq!(attempts[0]["status_code"], 200);
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["delivery_id"], hit.header("polyport-delivery-id"));
    assert_eq!(attempts[0]["event_id"], envelope["id"]);

    // The secret is never shown again, but it is stored to sign with.
    let listed: Value = app.get("/webhooks", Some(&ada.token)).await.json().await.unwrap();
    assert_eq!(listed["data"][0]["id"], hook);
    assert!(listed["data"][0].get("secret").is_none() && !listed.to_string().contains(secret));
    assert_eq!(app.core.deps.webhooks.secret(hook).await.unwrap().as_deref(), Some(secret));

    // Deleted: nothing more is delivered and its deliveries are gone with it.
    assert_eq!(app.delete(&format!("/webhooks/{hook}"), Some(&ada.token)).await.status(), StatusCode::NO_CONTENT);
    app.create_post(&ada, "after delete", &[]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.hits().len(), hits.len());
    let gone = app.get(&format!("/webhooks/{hook}/deliveries"), Some(&ada.token)).await;
    assert_error(gone, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}

async fn a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt_after_backing_off(app: TestApp) {
    let receiver = Receiver::start(2).await;
    let ada = app.member("ada").await;
    let created = register(&app, &ada.token, &receiver.url, &[&format!("users/{}/posts", ada.id)]).await;
    let hook = created["id"].as_str().unwrap();
    app.create_post(&ada, "retried", &[]).await;

    let hits = receiver.wait_until("three attempts", |h| h.len() >= 3).await;
    let attempts = wait_for_deliveries(&app, &ada.token, hook, 3).await;
    let outcomes: Vec<(i64, bool, i64)> = attempts
        .iter()
        .map(|a| {
            (a["attempt"].as_i64().unwrap(), a["succeeded"].as_bool().unwrap(), a["status_code"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(outcomes, vec![(3, true, 200), (2, false, 500), (1, false, 500)], "newest first");
    assert!(attempts[1]["error"].as_str().unwrap().contains("500"));
    // One delivery, one id, whatever the attempt.
    let ids: Vec<&str> = hits.iter().map(|h| h.header("polyport-delivery-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(attempts[0]["delivery_id"], ids[0]);
    // Backoff: base 300 ms then 600 ms, each at least half its nominal delay (jitter).
    let first_gap = hits[1].at - hits[0].at;
    let second_gap = hits[2].at - hits[1].at;
    assert!(first_gap >= Duration::from_millis(150), "{first_gap:?}");
    assert!(second_gap >= Duration::from_millis(300), "{second_gap:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.hits().len(), 3, "a delivered event is not sent again");
}

async fn events_the_owner_may_not_read_are_not_delivered(app: TestApp) {
    let receiver = Receiver::start(0).await;
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    register(&app, &ada.token, &receiver.url, &["posts"]).await;

    let draft = app.create_post(&bob, "bob's draft", &[]).await;
    let draft_id = draft["id"].as_str().unwrap();
    app.create_post(&ada, "ada's own draft", &[]).await;
    // Ada's own draft arrives; Bob's only once he publishes it.
    let r = app.post(&format!("/posts/{draft_id}/publish"), Some(&bob.token), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let hits = receiver.wait_until("the publication", |h| h.iter().any(|h| h.json()["type"] == "post.published")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen: Vec<(String, String)> = receiver
        .hits()
        .iter()
        .map(|h| {
            (h.json()["type"].as_str().unwrap().to_string(), h.json()["data"]["title"].as_str().unwrap().to_string())
        })
        .collect();
    assert!(seen.contains(&("post.created".into(), "ada's own draft".into())), "{seen:?}");
    assert!(seen.contains(&("post.published".into(), "bob's draft".into())), "{seen:?}");
    assert!(!seen.contains(&("post.created".into(), "bob's draft".into())), "another user's draft leaked: {seen:?}");
    assert_eq!(hits.iter().filter(|h| h.json()["type"] == "post.published").count(), 1);
}

async fn a_job_that_keeps_failing_is_dead_after_the_configured_attempts_and_metrics_say_so(app: TestApp) {
    let receiver = Receiver::start(usize::MAX).await;
    let ada = app.member("ada").await;
    let hook = register(&app, &ada.token, &receiver.url, &["posts"]).await["id"].as_str().unwrap().to_string();
    app.create_post(&ada, "never accepted", &[]).await;
    receiver.wait_until("two attempts", |h| h.len() >= 2).await;
    let attempts = wait_for_deliveries(&app, &ada.token, &hook, 2).await;
    assert!(attempts.iter().all(|a| a["succeeded"] == false));
    // Dead after POLYPORT_JOB_MAX_ATTEMPTS = 2: no third attempt.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let dead = metrics.lines().any(|l| l == "polyport_jobs_dead 1");
        if dead {
            assert!(
                metrics.contains(r#"polyport_job_runs_total{kind="webhook.deliver",outcome="dead"} 1"#),
                "{metrics}"
            );
            assert!(metrics.contains(r#"polyport_job_runs_total{kind="webhook.deliver",outcome="failed"} 1"#));
            assert!(metrics.contains(r#"polyport_job_runs_total{kind="webhook.fanout",outcome="succeeded"} 1"#));
            for gauge in
                ["polyport_jobs_queued 0", "polyport_jobs_running 0", "polyport_jobs_oldest_queued_age_seconds 0"]
            {
                assert!(metrics.lines().any(|l| l == gauge || l == format!("{gauge}.0")), "{gauge} in {metrics}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "the job never died: {metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.hits().len(), 2);
    assert_eq!(deliveries(&app, &ada.token, &hook).await.len(), 2);
}

async fn webhooks_are_capped_per_user_and_listed_to_their_owner_only(app: TestApp) {
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    for i in 0..10 {
        register(&app, &ada.token, &format!("http://127.0.0.1:9/hook{i}"), &["posts"]).await;
    }
    let r = app.post("/webhooks", Some(&ada.token), json!({"url": "http://127.0.0.1:9/x", "topics": ["posts"]})).await;
    let body = assert_error(r, StatusCode::CONFLICT, "CONFLICT").await;
    assert_eq!(body["error"]["details"][0], json!({"field": "webhooks", "issue": "limit_reached"}));
    let mine: Value = app.get("/webhooks", Some(&ada.token)).await.json().await.unwrap();
    assert_eq!(mine["data"].as_array().unwrap().len(), 10);
    let theirs: Value = app.get("/webhooks", Some(&bob.token)).await.json().await.unwrap();
    assert_eq!(theirs["data"], json!([]));
    let hook = mine["data"][0]["id"].as_str().unwrap();
    let r = app.delete(&format!("/webhooks/{hook}"), Some(&bob.token)).await;
    assert_error(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert!(app.core.deps.webhooks.get(hook).await.unwrap().is_some(), "still stored");
}

async fn deliveries_follow_the_owners_current_role(app: TestApp) {
    let receiver = Receiver::start(0).await;
    let root = app.with_role("root", polyport::domain::user::Role::Admin).await;
    let bob = app.member("bob").await;
    register(&app, &root.token, &receiver.url, &["posts"]).await;
    app.create_post(&bob, "draft seen by an admin", &[]).await;
    receiver
        .wait_until("the draft, while admin", |h| {
            h.iter().any(|h| h.json()["data"]["title"] == "draft seen by an admin")
        })
        .await;

    let admin =
        polyport::domain::policy::webhook_owner(&app.core.deps.users.get_current(&root.id).await.unwrap().unwrap());
    let demote = polyport::domain::user::UserPatch { role: Some("member".into()), ..Default::default() };
    app.core.users.update(&admin, &root.id, demote, None, &Default::default()).await.unwrap();
    let later = app.create_post(&bob, "draft after the demotion", &[]).await;
    let id = later["id"].as_str().unwrap();
    let r = app.post(&format!("/posts/{id}/publish"), Some(&bob.token), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    receiver.wait_until("the publication", |h| h.iter().any(|h| h.json()["type"] == "post.published")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let titles: Vec<(String, String)> = receiver
        .hits()
        .iter()
        .map(|h| {
            (h.json()["type"].as_str().unwrap().to_string(), h.json()["data"]["title"].as_str().unwrap().to_string())
        })
        .collect();
    assert!(
        !titles.contains(&("post.created".into(), "draft after the demotion".into())),
        "a demoted admin's webhook got a draft: {titles:?}"
    );
    assert!(titles.contains(&("post.published".into(), "draft after the demotion".into())), "{titles:?}");
}

on_both_stores_with!(
    quick_jobs,
    a_webhook_gets_each_event_signed_with_the_secret_shown_once,
    deliveries_follow_the_owners_current_role,
    a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt_after_backing_off,
    events_the_owner_may_not_read_are_not_delivered,
    webhooks_are_capped_per_user_and_listed_to_their_owner_only,
    a_delivery_continues_the_trace_of_the_request_that_caused_its_event,
    registering_and_deleting_a_webhook_is_audited_in_the_same_transaction,
);

on_both_stores_with!(
    |s: &mut Settings| {
        quick_jobs(s);
        s.job_max_attempts = 2;
    },
    a_job_that_keeps_failing_is_dead_after_the_configured_attempts_and_metrics_say_so,
);

/// The event's trace id (from the request's `traceparent`) is stored with the fan-out job and
/// sent on every delivery attempt, each with a span id of its own.
async fn a_delivery_continues_the_trace_of_the_request_that_caused_its_event(app: TestApp) {
    let receiver = Receiver::start(1).await;
    let ada = app.member("ada").await;
    register(&app, &ada.token, &receiver.url, &["posts"]).await;
    let (traceparent, trace_id) = crate::audit::traceparent(0x5a);
    let r = app
        .req(reqwest::Method::POST, "/posts", Some(&ada.token))
        .header("traceparent", &traceparent)
        .json(&json!({"title": "traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let post_id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(crate::audit::event_trace(&app, "post.created", &post_id).await.as_deref(), Some(trace_id.as_str()));
    // The first attempt fails, so the retry shows the trace survives the queue too.
    let hits = receiver.wait_until("the first attempt and its retry", |h| h.len() >= 2).await;
    let mut spans = Vec::new();
    for hit in &hits[..2] {
        let parts: Vec<String> = hit.header("traceparent").split('-').map(str::to_string).collect();
        assert_eq!(parts.len(), 4, "{parts:?}");
        assert_eq!(parts[1], trace_id, "the event's trace id");
        assert_ne!(parts[2], "00f067aa0ba902b7", "a span of its own, not the client's");
        spans.push(parts[2].clone());
    }
    assert_ne!(spans[0], spans[1], "each attempt is a new span");
}

/// Registering and deleting are state changes: each is audited (who, protocol, trace) in the
/// write's own transaction, and a webhook whose entry cannot be written is not registered.
async fn registering_and_deleting_a_webhook_is_audited_in_the_same_transaction(app: TestApp) {
    use crate::audit::{entries, raw_count, raw_exec};
    let admin = app.with_role("admin", polyport::domain::user::Role::Admin).await;
    let ada = app.member("ada").await;
    let (traceparent, trace_id) = crate::audit::traceparent(0x5b);
    let r = app
        .req(reqwest::Method::POST, "/webhooks", Some(&ada.token))
        .header("traceparent", &traceparent)
        .json(&json!({"url": "http://127.0.0.1:9/hook", "topics": ["posts"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body = r.json::<Value>().await.unwrap();
    let (hook, secret) = (body["id"].as_str().unwrap(), body["secret"].as_str().unwrap());
    let created = entries(&app, &admin, &format!("action=webhook.created&target=webhook:{hook}")).await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["actor_id"], ada.id.as_str());
    assert_eq!(created[0]["protocol"], "rest");
    assert_eq!(created[0]["outcome"], "success");
    assert_eq!(created[0]["trace_id"], trace_id.as_str());
    assert!(!created[0].to_string().contains(secret), "no secret in the entry");

    // An admin deletes it: the admin is the actor; a second delete (NOT_FOUND) adds nothing.
    assert_eq!(app.delete(&format!("/webhooks/{hook}"), Some(&admin.token)).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/webhooks/{hook}"), Some(&admin.token)).await.status(), StatusCode::NOT_FOUND);
    let deleted = entries(&app, &admin, &format!("action=webhook.deleted&target=webhook:{hook}")).await;
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0]["actor_id"], admin.id.as_str());

    let sabotage = if app.database_url.starts_with("sqlite") {
        "CREATE TRIGGER sabotage BEFORE INSERT ON audit_log WHEN NEW.action = 'webhook.created' \
         BEGIN SELECT RAISE(ABORT, 'sabotage'); END;"
    } else {
        "CREATE FUNCTION sabotage() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.action = 'webhook.created' THEN RAISE EXCEPTION 'sabotage'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER sabotage BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION sabotage();"
    };
    raw_exec(&app, sabotage).await.expect("sabotage installed");
    let r =
        app.post("/webhooks", Some(&ada.token), json!({"url": "http://127.0.0.1:9/other", "topics": ["posts"]})).await;
    assert_error(r, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL").await;
    assert_eq!(raw_count(&app, "SELECT COUNT(*) FROM webhooks").await, 0, "no webhook");
    assert_eq!(raw_count(&app, "SELECT COUNT(*) FROM webhook_topics").await, 0, "no topics");
}

#[tokio::test]
async fn loopback_private_metadata_and_odd_urls_are_refused_at_registration() {
    let app = spawn_app_with(Store::Sqlite, |_| {}).await.unwrap();
    let ada = app.member("ada").await;
    for (url, issue) in [
        ("http://127.0.0.1:8080/hook", "address_not_allowed"),
        ("http://localhost/hook", "address_not_allowed"),
        ("http://10.0.0.7/", "address_not_allowed"),
        ("http://192.168.1.1/", "address_not_allowed"),
        ("http://169.254.169.254/latest/meta-data/", "address_not_allowed"),
        ("http://[::1]/", "address_not_allowed"),
        ("http://[fd00::1]/", "address_not_allowed"),
        ("http://[::ffff:127.0.0.1]/", "address_not_allowed"),
        ("http://0x7f.1/", "address_not_allowed"),
        ("http://2130706433/", "address_not_allowed"),
        ("http://0.0.0.0/", "address_not_allowed"),
        ("ftp://93.184.216.34/", "scheme_not_allowed"),
        ("file:///etc/passwd", "scheme_not_allowed"),
        ("http://user:pw@93.184.216.34/", "userinfo_not_allowed"),
        ("not a url", "invalid_url"),
    ] {
        let r = app.post("/webhooks", Some(&ada.token), json!({"url": url, "topics": ["posts"]})).await;
        let body = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert_eq!(body["error"]["details"][0], json!({"field": "url", "issue": issue}), "{url}");
    }
    assert_eq!(app.core.deps.webhooks.list(&ada.id).await.unwrap(), vec![], "nothing stored");
    // A public address is accepted (it is not called: nothing is published on its topic).
    register(&app, &ada.token, "http://93.184.216.34/hook", &["posts/none"]).await;
}

#[tokio::test]
async fn a_target_that_turns_private_after_registration_is_refused_at_delivery() {
    let app = spawn_app_with(Store::Sqlite, |s| {
        quick_jobs(s);
        s.webhook_allow_private = false;
        s.job_max_attempts = 1;
    })
    .await
    .unwrap();
    let receiver = Receiver::start(0).await;
    let ada = app.member("ada").await;
    // As if its name resolved to a public address at registration and to loopback now (DNS
    // rebinding): stored directly, past the registration check.
    let hook = polyport::domain::webhook::Webhook {
        id: uuid::Uuid::now_v7().to_string(),
        owner_id: ada.id.clone(),
        url: receiver.url.clone(),
        topics: vec!["posts".into()],
        created_at: chrono::Utc::now(),
    };
    let record = polyport::domain::audit::AuditRecord::new(
        &Default::default(),
        &polyport::domain::policy::Actor::Anonymous,
        polyport::domain::audit::action::WEBHOOK_CREATED,
        polyport::domain::audit::target("webhook", &hook.id),
        chrono::Utc::now(),
    );
    app.core.deps.webhooks.insert(&hook, "whsec_x", 10, &record).await.unwrap();
    app.create_post(&ada, "not to loopback", &[]).await;
    let attempts = wait_for_deliveries(&app, &ada.token, &hook.id, 1).await;
    assert_eq!(attempts[0]["succeeded"], false);
    assert!(attempts[0]["status_code"].is_null());
    assert!(attempts[0]["error"].as_str().unwrap().contains("address_not_allowed"), "{attempts:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.hits().is_empty(), "nothing reached the loopback receiver");
}

#[tokio::test]
async fn redirects_are_not_followed_and_count_as_failures() {
    let app = spawn_app_with(Store::Sqlite, |s| {
        quick_jobs(s);
        s.job_max_attempts = 1;
    })
    .await
    .unwrap();
    let target = Receiver::start(0).await;
    let redirect_to = target.url.clone();
    let app_router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let to = redirect_to.clone();
            async move { (AxumStatus::TEMPORARY_REDIRECT, [("location", to)]) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app_router).await });
    let ada = app.member("ada").await;
    let hook = register(&app, &ada.token, &url, &["posts"]).await["id"].as_str().unwrap().to_string();
    app.create_post(&ada, "redirected", &[]).await;
    let attempts = wait_for_deliveries(&app, &ada.token, &hook, 1).await;
    assert_eq!((attempts[0]["succeeded"].clone(), attempts[0]["status_code"].clone()), (json!(false), json!(307)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(target.hits().is_empty(), "the redirect was not followed");
}

#[tokio::test]
async fn webhooks_are_managed_on_graphql_grpc_soap_and_ws_with_the_secret_shown_once() {
    use polyport::adapters::grpc::pb;
    use polyport::adapters::grpc::pb::webhook_service_client::WebhookServiceClient;
    let app = spawn_app_with(Store::Sqlite, quick_jobs).await.unwrap();
    let receiver = Receiver::start(0).await;
    let ada = app.member("ada").await;

    let q = json!({"query": "mutation($u: String!) { createWebhook(input: {url: $u, topics: [\"posts\"]}) { secret webhook { id url topics } } }", "variables": {"u": receiver.url}});
    let (_, body) = app.gql_with(Some(&ada.token), q, &[]).await;
    let gql_id = body["data"]["createWebhook"]["webhook"]["id"].as_str().unwrap().to_string();
    let gql_secret = body["data"]["createWebhook"]["secret"].as_str().unwrap().to_string();

    let mut client = WebhookServiceClient::new(crate::grpc::channel(&app).await);
    let mut req =
        tonic::Request::new(pb::CreateWebhookRequest { url: receiver.url.clone(), topics: vec!["posts".into()] });
    req.metadata_mut().insert("authorization", format!("Bearer {}", ada.token).parse().unwrap());
    let created = client.create_webhook(req).await.unwrap().into_inner();
    assert!(created.secret.starts_with("whsec_") && created.secret != gql_secret);
    let mut req = tonic::Request::new(pb::ListWebhooksRequest {});
    req.metadata_mut().insert("authorization", format!("Bearer {}", ada.token).parse().unwrap());
    let listed = client.list_webhooks(req).await.unwrap().into_inner();
    assert_eq!(listed.data.len(), 2);

    let post = app.create_post(&ada, "to both", &[]).await;
    let hits = receiver.wait_until("two deliveries", |h| h.len() >= 2).await;
    let secrets = [gql_secret.as_str(), created.secret.as_str()];
    for hit in &hits {
        assert!(secrets.iter().any(|s| verify(s, hit.header("polyport-signature"), &hit.body)));
        assert_eq!(hit.json()["data"]["id"], post["id"]);
    }

    let xml = crate::soap::op("ListWebhookDeliveries", &[("id", &gql_id)]);
    let auth = format!("Bearer {}", ada.token);
    let answer = crate::soap::send(
        &app,
        polyport::adapters::soap::envelope::Version::Soap12,
        "ListWebhookDeliveries",
        crate::soap::envelope(polyport::adapters::soap::envelope::Version::Soap12, "", &xml),
        &[("authorization", auth.as_str())],
    )
    .await;
    assert!(answer.status.is_success(), "{}", answer.body);
    assert_eq!(answer.text("succeeded").as_deref(), Some("true"));

    let xml = crate::soap::op("DeleteWebhook", &[("id", &gql_id)]);
    let answer = crate::soap::send(
        &app,
        polyport::adapters::soap::envelope::Version::Soap12,
        "DeleteWebhook",
        crate::soap::envelope(polyport::adapters::soap::envelope::Version::Soap12, "", &xml),
        &[("authorization", auth.as_str())],
    )
    .await;
    assert!(answer.status.is_success(), "{}", answer.body);
    assert!(app.core.deps.webhooks.get(&gql_id).await.unwrap().is_none(), "deleted over SOAP");
}

/// A test CA and a `localhost` certificate it signed, made with the openssl command line.
fn test_pki(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Polyport Test CA"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost"]].concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

#[tokio::test]
async fn https_webhooks_are_delivered_over_verified_tls_and_a_wrong_name_is_refused() {
    let dir = std::env::temp_dir().join(format!("polyport-pki-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    test_pki(&dir);
    let receiver = Receiver::start_tls("localhost", &dir.join("leaf.pem"), &dir.join("leaf.key")).await;
    let ca = dir.join("ca.pem");
    let app = spawn_app_with(Store::Sqlite, move |s| {
        quick_jobs(s);
        s.job_max_attempts = 1;
        s.webhook_ca_file = Some(ca);
    })
    .await
    .unwrap();
    let ada = app.member("ada").await;
    let created = register(&app, &ada.token, &receiver.url, &["posts"]).await;
    // The same server under a name its certificate does not carry.
    let wrong_name = receiver.url.replace("https://localhost:", "https://127.0.0.1:");
    let mismatched = register(&app, &ada.token, &wrong_name, &["posts"]).await;
    app.create_post(&ada, "over tls", &[]).await;

    let hits = receiver.wait_until("the https delivery", |h| !h.is_empty()).await;
    assert!(verify(created["secret"].as_str().unwrap(), hits[0].header("polyport-signature"), &hits[0].body));
    assert_eq!(hits[0].json()["data"]["title"], "over tls");
    let refused = wait_for_deliveries(&app, &ada.token, mismatched["id"].as_str().unwrap(), 1).await;
    assert_eq!(refused[0]["succeeded"], false);
    assert!(refused[0]["error"].as_str().unwrap().starts_with("TLS"), "{refused:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.hits().len(), 1, "nothing was sent over the unverified connection");
    let _ = std::fs::remove_dir_all(dir);
}
