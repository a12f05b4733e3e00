//! The JSON error envelope of every HTTP-facing adapter (REST, SSE and WebSocket handshakes):
//! the only place that knows HTTP statuses for domain codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::error::{DomainError, ErrorCode, FieldIssue};
use crate::platform::request_id;

/// A domain error on its way to the wire.
#[derive(Debug)]
pub struct ApiError(pub DomainError);

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self(e)
    }
}

/// The REST status of each code (CONFLICT from an `If-Match` version check is 412; an
/// INVALID_REQUEST about the media type, the `Accept` header or the method is 415, 406, 405).
pub fn status_of(err: &DomainError) -> StatusCode {
    match err.code {
        ErrorCode::InvalidRequest => match err.details.first().map(|d| (d.field.as_str(), d.issue.as_str())) {
            Some(("content-type", "unsupported")) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some(("accept", "not_acceptable")) => StatusCode::NOT_ACCEPTABLE,
            Some(("method", "not_allowed")) => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::BAD_REQUEST,
        },
        ErrorCode::ValidationFailed | ErrorCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict if err.version_mismatch => StatusCode::PRECONDITION_FAILED,
        ErrorCode::Conflict | ErrorCode::IdempotencyInProgress => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error envelope: `{"error": {code, message, details, request_id}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorObject {
    /// One of the contract's error codes.
    #[schema(example = "VALIDATION_FAILED")]
    pub code: String,
    pub message: String,
    pub details: Vec<FieldIssueBody>,
    pub request_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldIssueBody {
    pub field: String,
    pub issue: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        let status = status_of(&err);
        let body = ErrorBody {
            error: ErrorObject {
                code: err.code.as_str().to_string(),
                message: err.message.clone(),
                details: err
                    .details
                    .iter()
                    .map(|FieldIssue { field, issue }| FieldIssueBody { field: field.clone(), issue: issue.clone() })
                    .collect(),
                request_id: request_id::current(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = err.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if err.code == ErrorCode::Unauthenticated {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"polyport\""));
        }
        if err.replayed {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        request_id::record(&err);
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A WebSocket endpoint asked without an upgrade.
pub fn upgrade_required() -> DomainError {
    DomainError::invalid("this endpoint speaks WebSocket: send an upgrade request").with_detail("upgrade", "required")
}

/// The client's `Accept` rules out every media type the operation can produce.
pub fn not_acceptable(produces: &str) -> DomainError {
    DomainError::invalid(format!("this operation answers {produces}; send an Accept header that allows it"))
        .with_detail("accept", "not_acceptable")
}

/// The body's media type is not one the operation reads.
pub fn unsupported_media_type(expects: &str) -> DomainError {
    DomainError::invalid(format!("expected `Content-Type: {expects}`")).with_detail("content-type", "unsupported")
}

pub fn too_large() -> DomainError {
    DomainError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
}
