//! What every RPC does first: read credentials from metadata, authenticate, charge the shared
//! rate limit (admission), note the deadline, request id and idempotency key; and running a
//! canonical operation for the call.

use std::time::Duration;

use axum::http::HeaderMap;
use tokio::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use super::error::status;
use crate::adapters::{Shared, request};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::policy::Actor;
use crate::platform::admission::Admitted;
use crate::platform::authn::Authenticated;
use crate::platform::operations::{Operation, Outcome};
use crate::platform::ratelimit::Decision;
use crate::platform::request_id;

/// One admitted call.
#[derive(Clone)]
pub struct Call {
    pub shared: Shared,
    pub admitted: Admitted,
    pub request_id: String,
    /// From `grpc-timeout`: when the client stops waiting.
    pub deadline: Option<Instant>,
    /// The `idempotency-key` metadata.
    pub idempotency_key: Option<String>,
    decision: Decision,
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
        let ip = request::peer_ip(req.extensions()).unwrap_or_else(|| "unknown".to_string());
        // Metadata is the request's header map: read with the same helpers and header names
        // as every HTTP adapter (a name given as text would be parsed on every lookup).
        let headers: &HeaderMap = req.metadata().as_ref();
        let deadline =
            request::header_str(headers, super::GRPC_TIMEOUT).and_then(parse_timeout).map(|d| Instant::now() + d);
        let verdict = shared.admission.admit(request::credentials(headers), &ip, 1).await;
        let admitted = verdict.admitted.map_err(|e| status(&e, &request_id))?;
        let idempotency_key = request::header_str(headers, request::IDEMPOTENCY_KEY).map(str::to_string);
        Ok(Call { shared: shared.clone(), admitted, request_id, deadline, idempotency_key, decision: verdict.decision })
    }

    pub fn actor(&self) -> &Actor {
        &self.admitted.auth.actor
    }

    pub fn auth(&self) -> &Authenticated {
        &self.admitted.auth
    }

    /// A stream slot for this caller.
    pub async fn stream_slot(&self) -> Result<crate::platform::caps::Slot, Status> {
        self.shared.admission.stream_slot(&self.admitted).await.map_err(|e| self.fail(&e))
    }

    /// The status of a domain error, tagged with this call's request id.
    pub fn fail(&self, e: &DomainError) -> Status {
        status(e, &self.request_id)
    }

    /// Charges one more unit (client-streamed rows, Live commands); RATE_LIMITED once spent.
    pub async fn charge(&self) -> DomainResult<()> {
        self.shared.admission.charge(&self.admitted, 1).await.map(|_| ())
    }

    /// Wraps a message with the `ratelimit-*` metadata REST sends as headers.
    pub fn reply<M>(&self, message: M) -> Response<M> {
        let mut response = Response::new(message);
        request::rate_limit_metadata(response.metadata_mut().as_mut(), &self.decision);
        response
    }

    /// Runs a canonical operation for this call, idempotent with the `idempotency-key`
    /// metadata; the outcome and whether it was replayed, or the call's status.
    pub async fn run(&self, op: Operation) -> Result<(Outcome, bool), Status> {
        self.shared.ops.run(&self.admitted, op, self.idempotency_key.as_deref()).await.map_err(|e| self.fail(&e))
    }

    /// `reply`, marked `idempotent-replayed: true` when the outcome was replayed.
    pub fn respond<M>(&self, message: M, replayed: bool) -> Response<M> {
        let mut response = self.reply(message);
        if replayed {
            response.metadata_mut().insert("idempotent-replayed", MetadataValue::from_static("true"));
        }
        response
    }
}

/// The outcome an operation of this kind always has; anything else is a bug, not the caller's.
pub fn unexpected(call: &Call) -> Status {
    call.fail(&DomainError::internal(anyhow::anyhow!("the operation answered an unexpected outcome")))
}
