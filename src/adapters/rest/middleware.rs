//! REST request pipeline: authentication + rate limiting (the gate), and idempotency keys.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, too_large};
use crate::adapters::Shared;
use crate::adapters::http_error::not_acceptable;
use crate::adapters::request::{accepts, declares_more_than, header_str, peer_ip};
use crate::domain::error::DomainError;
use crate::domain::ports::SavedResponse;
use crate::platform::admission::{Admitted, Presented};
use crate::platform::idempotency::{Begin, fingerprint};
use crate::platform::ratelimit::Decision;

/// Admission (the caller as it is now, the shared budget charged before any refusal), then
/// the body and media-type checks.
pub async fn gate(State(shared): State<Shared>, mut req: Request, next: Next) -> Response {
    let ip = peer_ip(req.extensions()).unwrap_or_else(|| "unknown".into());
    let headers = req.headers();
    let presented = Presented {
        authorization: header_str(headers, "authorization"),
        api_key: header_str(headers, "x-api-key"),
        stream_token: None,
    };
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
                if req.method() == Method::POST && req.headers().contains_key("idempotency-key") {
                    idempotent(&shared, req, next).await
                } else {
                    next.run(req).await
                }
            }
            Err(e) => ApiError(e).into_response(),
        }
    };
    rate_limit_headers(response.headers_mut(), &decision);
    response
}

const LIMIT: [HeaderName; 2] =
    [HeaderName::from_static("ratelimit-limit"), HeaderName::from_static("x-ratelimit-limit")];
const REMAINING: [HeaderName; 2] =
    [HeaderName::from_static("ratelimit-remaining"), HeaderName::from_static("x-ratelimit-remaining")];
const RESET: [HeaderName; 2] =
    [HeaderName::from_static("ratelimit-reset"), HeaderName::from_static("x-ratelimit-reset")];

fn rate_limit_headers(headers: &mut HeaderMap, d: &Decision) {
    for (names, value) in [(LIMIT, d.limit), (REMAINING, d.remaining), (RESET, d.reset_secs)] {
        let value = HeaderValue::from(value);
        for name in names {
            headers.insert(name, value.clone());
        }
    }
}

/// `Idempotency-Key` on POST: replays the first response, refuses reuse with another body
/// (422) and concurrent duplicates (409). Keys are scoped to the caller.
async fn idempotent(shared: &Shared, req: Request, next: Next) -> Response {
    let key = req.headers().get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let scope = match req.extensions().get::<Admitted>() {
        Some(admitted) => admitted.idempotency_scope(),
        None => format!("anon:{}", peer_ip(req.extensions()).unwrap_or_default()),
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, shared.limits.body_bytes).await else {
        return ApiError(too_large()).into_response();
    };
    let operation = format!("{} {}", parts.method, parts.uri.path_and_query().map_or("", |p| p.as_str()));
    let ticket = match shared.idempotency.begin(&scope, &key, &fingerprint(&operation, &bytes)).await {
        Ok(Begin::Proceed(ticket)) => ticket,
        Ok(Begin::Replay(saved)) => return replay(saved),
        Err(e) => return ApiError(e).into_response(),
    };
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        shared.idempotency.abandon(ticket).await;
        return ApiError(DomainError::internal(anyhow::anyhow!("response body unreadable"))).into_response();
    };
    let saved = SavedResponse {
        status: parts.status.as_u16(),
        content_type: header_str(&parts.headers, "content-type").unwrap_or("application/json").to_string(),
        location: header_str(&parts.headers, "location").map(str::to_string),
        body: body.to_vec(),
    };
    let retryable = saved.status >= 500 || saved.status == 429;
    shared.idempotency.finish(ticket, saved, retryable).await;
    Response::from_parts(parts, Body::from(body))
}

fn replay(saved: SavedResponse) -> Response {
    let status = axum::http::StatusCode::from_u16(saved.status).unwrap_or(axum::http::StatusCode::OK);
    let mut response = (status, Bytes::from(saved.body)).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&saved.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Some(v) = saved.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, v);
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
