//! The one mapping of the domain error model onto gRPC: status codes plus rich details
//! (`google.rpc.ErrorInfo` with our code and request id, `BadRequest`, `RetryInfo`, `RequestInfo`).

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::error::{DomainError, ErrorCode};

/// The gRPC code of a domain error.
pub fn code_of(e: &DomainError) -> Code {
    match e.code {
        ErrorCode::InvalidRequest | ErrorCode::ValidationFailed => Code::InvalidArgument,
        ErrorCode::Unauthenticated => Code::Unauthenticated,
        ErrorCode::Forbidden => Code::PermissionDenied,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::Conflict if e.version_mismatch => Code::Aborted,
        ErrorCode::Conflict => Code::AlreadyExists,
        ErrorCode::IdempotencyKeyReused => Code::FailedPrecondition,
        ErrorCode::IdempotencyInProgress => Code::Aborted,
        ErrorCode::PayloadTooLarge | ErrorCode::RateLimited => Code::ResourceExhausted,
        ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::Internal => Code::Internal,
    }
}

/// The status a client sees for `e`, tagged with `request_id`. The error is recorded for the
/// request's one log line; internal causes are never sent.
pub fn status(e: &DomainError, request_id: &str) -> Status {
    crate::platform::request_id::record(e);
    let mut details = ErrorDetails::new();
    let metadata = HashMap::from([("request_id".to_string(), request_id.to_string())]);
    details.set_error_info(e.code.as_str(), "polyport", metadata);
    details.set_request_info(request_id, "");
    for issue in &e.details {
        details.add_bad_request_violation(issue.field.clone(), issue.issue.clone());
    }
    if let Some(secs) = e.retry_after.filter(|_| e.code.is_retryable()) {
        details.set_retry_info(Some(Duration::from_secs(secs)));
    }
    let mut status = Status::with_error_details(code_of(e), e.message.clone(), details);
    if e.replayed {
        status.metadata_mut().insert("idempotent-replayed", tonic::metadata::MetadataValue::from_static("true"));
    }
    if let Some(secs) = e.retry_after
        && let Ok(v) = secs.to_string().parse()
    {
        status.metadata_mut().insert("retry-after", v);
    }
    status
}

/// Shorthand: the status of `e` for the current request.
pub fn to_status(e: DomainError) -> Status {
    status(&e, &crate::platform::request_id::current())
}

/// The codec's own size refusals (tonic says OUT_OF_RANGE for a message over the limit, and
/// RESOURCE_EXHAUSTED without details for a decompressed one) in our model: RESOURCE_EXHAUSTED
/// with PAYLOAD_TOO_LARGE. Other statuses pass unchanged.
pub fn from_codec(status: Status) -> Status {
    let message = status.message();
    let too_large = (status.code() == Code::OutOfRange && message.contains("message length too large"))
        || (status.code() == Code::ResourceExhausted && message.starts_with("Error decompressing"));
    if too_large {
        let e = DomainError::new(ErrorCode::PayloadTooLarge, "the message is larger than the server accepts")
            .with_detail("message", "too_large");
        to_status(e)
    } else {
        status
    }
}

/// A trailers-only response whose status is a codec size refusal, answered in our model instead.
pub fn size_refusal(response: axum::http::Response<tonic::body::Body>) -> axum::http::Response<tonic::body::Body> {
    match Status::from_header_map(response.headers()) {
        Some(status) if status.code() != Code::Ok => {
            let mapped = from_codec(status.clone());
            if mapped.code() == status.code() && mapped.message() == status.message() {
                response
            } else {
                mapped.into_http()
            }
        }
        _ => response,
    }
}
