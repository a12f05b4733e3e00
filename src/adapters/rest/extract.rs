//! Request facts handlers need: the caller (with its idempotency key) and `If-Match` /
//! `If-None-Match`; and running a canonical operation.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};

use super::error::ApiError;
use crate::adapters::Shared;
use crate::domain::error::DomainError;
use crate::platform::admission::Admitted;
use crate::platform::operations::{Operation, Outcome};

/// The admitted caller (put in place by the gate) and the request's `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub admitted: Admitted,
    pub idempotency_key: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let admitted =
            parts.extensions.get::<Admitted>().cloned().ok_or_else(|| {
                ApiError(DomainError::internal(anyhow::anyhow!("route mounted without the auth gate")))
            })?;
        let idempotency_key =
            crate::adapters::request::header_str(&parts.headers, crate::adapters::request::IDEMPOTENCY_KEY)
                .map(str::to_string);
        Ok(Caller { admitted, idempotency_key })
    }
}

impl Caller {
    /// Runs a canonical operation for this caller (idempotent with the key).
    pub async fn run(&self, s: &Shared, op: Operation) -> Result<(Outcome, bool), ApiError> {
        s.ops.run(&self.admitted, op, self.idempotency_key.as_deref()).await.map_err(ApiError)
    }
}

/// The outcome an operation of this kind always has; anything else is a bug.
pub fn unexpected() -> ApiError {
    ApiError(DomainError::internal(anyhow::anyhow!("the operation answered an unexpected outcome")))
}

/// Marks a replayed answer `idempotent-replayed: true`.
pub fn replayed(mut response: axum::response::Response, replayed: bool) -> axum::response::Response {
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// The strong ETag of a version (`"v3"`), with a suffix for alternative representations.
pub fn etag(version: i64, variant: &str) -> String {
    format!("\"v{version}{variant}\"")
}

/// `If-Match` and `If-None-Match`, taken without copying the rest of the headers.
#[derive(Debug, Default)]
pub struct Preconditions {
    if_match: Option<HeaderValue>,
    if_none_match: Option<HeaderValue>,
}

impl<S: Send + Sync> FromRequestParts<S> for Preconditions {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            if_match: parts.headers.get(header::IF_MATCH).cloned(),
            if_none_match: parts.headers.get(header::IF_NONE_MATCH).cloned(),
        })
    }
}

impl Preconditions {
    /// `If-Match: "vN"` as an expected version. `*` or absence means no check; anything else
    /// can never match, which is a 412 like any mismatch.
    pub fn expected_version(&self) -> Result<Option<i64>, ApiError> {
        let Some(value) = &self.if_match else {
            return Ok(None);
        };
        let text = value.to_str().unwrap_or_default().trim();
        if text == "*" {
            return Ok(None);
        }
        let version = text
            .trim_start_matches("W/")
            .trim_matches('"')
            .strip_prefix('v')
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| ApiError(DomainError::version_mismatch()))?;
        Ok(Some(version))
    }

    /// True when `If-None-Match` lists `tag` (or `*`).
    pub fn none_match(&self, tag: &str) -> bool {
        self.if_none_match
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == tag || t == "*"))
    }
}
