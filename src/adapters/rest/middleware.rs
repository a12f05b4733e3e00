//! The REST gate: admission (authentication and the shared budget) and the body and media-type
//! checks. Idempotency keys are the canonical operations' (see `extract::Caller::run`).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, too_large};
use crate::adapters::Shared;
use crate::adapters::http_error::not_acceptable;
use crate::adapters::request::{accepts, declares_more_than, peer_ip};

/// Admission (the caller as it is now, the shared budget charged before any refusal), then
/// the body and media-type checks.
pub async fn gate(State(shared): State<Shared>, mut req: Request, next: Next) -> Response {
    let ip = peer_ip(req.extensions()).unwrap_or_else(|| "unknown".into());
    let headers = req.headers();
    let presented = crate::adapters::request::credentials(headers);
    let verdict = shared.admission.admit(presented, &ip, 1).await;
    let decision = verdict.decision;
    let mut response = if declares_more_than(req.headers(), shared.limits.body_bytes) {
        ApiError(too_large()).into_response()
    } else if !accepts(req.headers(), &["application/json"]) {
        ApiError(not_acceptable("application/json")).into_response()
    } else {
        match verdict.admitted {
            Ok(admitted) => {
                req.extensions_mut().insert(admitted);
                next.run(req).await
            }
            Err(e) => ApiError(e).into_response(),
        }
    };
    crate::adapters::request::rate_limit_headers(response.headers_mut(), &decision);
    response
}
