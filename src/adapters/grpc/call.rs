//! What every RPC does first: read credentials from metadata, authenticate, charge the shared
//! rate limit, note the deadline and request id; and the idempotency wrapper for mutations.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use serde_json::json;
use tokio::time::Instant;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status};

use super::error::status;
use crate::adapters::Shared;
use crate::domain::error::{DomainError, DomainResult, ErrorCode, FieldIssue};
use crate::domain::policy::Actor;
use crate::domain::ports::SavedResponse;
use crate::domain::service::ClientInfo;
use crate::platform::admission::{Admitted, Presented};
use crate::platform::authn::Authenticated;
use crate::platform::idempotency::{Begin, fingerprint};
use crate::platform::ratelimit::Decision;
use crate::platform::request_id;

/// Content type of a saved successful answer (the encoded message) and of a saved refusal.
const SAVED_OK: &str = "application/grpc+proto";
const SAVED_ERROR: &str = "application/x-polyport-error+json";

/// One admitted call.
#[derive(Clone)]
pub struct Call {
    pub shared: Shared,
    pub admitted: Admitted,
    pub request_id: String,
    /// From `grpc-timeout`: when the client stops waiting.
    pub deadline: Option<Instant>,
    decision: Decision,
}

fn text<'a>(metadata: &'a MetadataMap, name: &str) -> Option<&'a str> {
    metadata.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// `grpc-timeout`: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_timeout(raw: &str) -> Option<Duration> {
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

impl Call {
    /// Authenticates the caller and charges one unit of its budget. Bad credentials are charged
    /// to the address before UNAUTHENTICATED, as on REST.
    pub async fn open<T>(shared: &Shared, req: &Request<T>) -> Result<Call, Status> {
        let request_id = request_id::current();
        let ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_string(), |ConnectInfo(a)| a.ip().to_string());
        let metadata = req.metadata();
        let deadline = text(metadata, "grpc-timeout").and_then(parse_timeout).map(|d| Instant::now() + d);
        let presented = Presented {
            authorization: text(metadata, "authorization"),
            api_key: text(metadata, "x-api-key"),
            stream_token: None,
        };
        let verdict = shared.admission.admit(presented, &ip, 1).await;
        let admitted = verdict.admitted.map_err(|e| status(&e, &request_id))?;
        Ok(Call { shared: shared.clone(), admitted, request_id, deadline, decision: verdict.decision })
    }

    pub fn actor(&self) -> &Actor {
        &self.admitted.auth.actor
    }

    pub fn auth(&self) -> &Authenticated {
        &self.admitted.auth
    }

    pub fn client(&self) -> ClientInfo {
        ClientInfo { ip: Some(self.admitted.peer.clone()) }
    }

    /// A stream slot for this caller.
    pub fn stream_slot(&self) -> Result<crate::platform::caps::Slot, Status> {
        self.shared.admission.stream_slot(&self.admitted).map_err(|e| self.fail(&e))
    }

    /// The status of a domain error, tagged with this call's request id.
    pub fn fail(&self, e: &DomainError) -> Status {
        status(e, &self.request_id)
    }

    /// Charges one more unit (client-streamed rows, Live commands); RATE_LIMITED once spent.
    pub fn charge(&self) -> DomainResult<()> {
        self.shared.admission.charge(&self.admitted, 1).map(|_| ())
    }

    /// Wraps a message with the `ratelimit-*` metadata REST sends as headers.
    pub fn reply<M>(&self, message: M) -> Response<M> {
        let mut response = Response::new(message);
        let md = response.metadata_mut();
        let d = &self.decision;
        for (name, value) in
            [("ratelimit-limit", d.limit), ("ratelimit-remaining", d.remaining), ("ratelimit-reset", d.reset_secs)]
        {
            md.insert(name, MetadataValue::from(value));
        }
        response
    }

    /// The scope idempotency keys live in, the same as every protocol's.
    pub fn idempotency_scope(&self) -> String {
        self.admitted.idempotency_scope()
    }

    /// Runs `op` once per `idempotency-key` (when the metadata is present): a retry with the same
    /// key and request replays the first answer (`idempotent-replayed: true`), another request
    /// with it is FAILED_PRECONDITION, and a concurrent duplicate ABORTED.
    pub async fn once<M, F, Fut>(
        &self,
        method: &str,
        key: Option<String>,
        request: &[u8],
        op: F,
    ) -> Result<Response<M>, Status>
    where
        M: prost::Message + Default,
        F: FnOnce() -> Fut,
        Fut: Future<Output = DomainResult<M>>,
    {
        let Some(key) = key else {
            return op().await.map(|m| self.reply(m)).map_err(|e| self.fail(&e));
        };
        match self.run_once(method, &key, request, op).await {
            Ok((message, replayed)) => {
                let mut response = self.reply(message);
                if replayed {
                    response.metadata_mut().insert("idempotent-replayed", MetadataValue::from_static("true"));
                }
                Ok(response)
            }
            Err(e) => Err(self.fail(&e)),
        }
    }

    /// The idempotent core of `once`: (answer, replayed).
    pub async fn run_once<M, F, Fut>(&self, method: &str, key: &str, request: &[u8], op: F) -> DomainResult<(M, bool)>
    where
        M: prost::Message + Default,
        F: FnOnce() -> Fut,
        Fut: Future<Output = DomainResult<M>>,
    {
        let print = fingerprint(&format!("grpc:{method}"), request);
        let idem = &self.shared.idempotency;
        let ticket = match idem.begin(&self.idempotency_scope(), key, &print).await? {
            Begin::Proceed(ticket) => ticket,
            Begin::Replay(saved) => return replay(&saved).map(|m| (m, true)),
        };
        let result = op().await;
        let (saved, retryable) = match &result {
            Ok(message) => (
                SavedResponse {
                    status: 200,
                    content_type: SAVED_OK.into(),
                    location: None,
                    body: message.encode_to_vec(),
                },
                false,
            ),
            Err(e) => {
                let body = json!({"code": e.code.as_str(), "message": e.message, "details": e.details, "version_mismatch": e.version_mismatch});
                let saved = SavedResponse {
                    status: 400,
                    content_type: SAVED_ERROR.into(),
                    location: None,
                    body: body.to_string().into_bytes(),
                };
                (saved, e.code.is_retryable())
            }
        };
        idem.finish(ticket, saved, retryable).await;
        result.map(|m| (m, false))
    }
}

/// The idempotency key in metadata, if any.
pub fn idempotency_key<T>(req: &Request<T>) -> Option<String> {
    req.metadata().get("idempotency-key").map(|v| v.to_str().unwrap_or("\u{fffd}").to_string())
}

fn replay<M: prost::Message + Default>(saved: &SavedResponse) -> DomainResult<M> {
    if saved.content_type == SAVED_OK {
        return M::decode(saved.body.as_slice()).map_err(DomainError::internal);
    }
    let v: serde_json::Value = serde_json::from_slice(&saved.body).map_err(DomainError::internal)?;
    let code = v["code"].as_str().and_then(ErrorCode::parse).unwrap_or(ErrorCode::Internal);
    let mut e = DomainError::new(code, v["message"].as_str().unwrap_or_default());
    e.version_mismatch = v["version_mismatch"].as_bool().unwrap_or(false);
    e.details = v["details"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| FieldIssue::new(d["field"].as_str().unwrap_or_default(), d["issue"].as_str().unwrap_or_default()))
        .collect();
    Err(e)
}
