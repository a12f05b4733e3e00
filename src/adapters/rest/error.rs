//! REST error mapping (the only place that knows HTTP statuses for domain codes) and the
//! extractors whose rejections come back in our envelope.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
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

/// The REST status of each code (CONFLICT from an `If-Match` version check is 412).
pub fn status_of(err: &DomainError) -> StatusCode {
    match err.code {
        ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
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

/// What the logging middleware reads to log an error once, inside the request span.
#[derive(Debug, Clone)]
pub struct LoggedError {
    pub code: ErrorCode,
    pub message: String,
    pub cause: Option<String>,
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
        response.extensions_mut().insert(Arc::new(LoggedError {
            code: err.code,
            message: err.message,
            cause: err.source.map(|s| format!("{s:#}")),
        }));
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// JSON body extractor: malformed JSON, wrong types and unknown fields are INVALID_REQUEST,
/// oversize bodies PAYLOAD_TOO_LARGE, all in our envelope.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(ApiError(json_rejection(rejection))),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> DomainError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            let text = e.body_text();
            let detail = text.rsplit_once(": ").map_or(text.as_str(), |(_, d)| d).to_string();
            DomainError::invalid(format!("the JSON body does not match the expected shape: {detail}"))
                .with_detail("body", "invalid_type")
        }
        JsonRejection::JsonSyntaxError(_) => {
            DomainError::invalid("the body is not valid JSON").with_detail("body", "malformed_json")
        }
        JsonRejection::MissingJsonContentType(_) => {
            DomainError::invalid("expected `Content-Type: application/json`").with_detail("content-type", "unsupported")
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        other => DomainError::invalid(other.body_text()),
    }
}

pub fn too_large() -> DomainError {
    DomainError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
}

/// Query-string extractor with our envelope on rejection.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError(
                DomainError::invalid(format!("invalid query string: {}", e.body_text()))
                    .with_detail("query", "invalid"),
            )),
            Err(e) => Err(ApiError(DomainError::invalid(e.body_text()))),
        }
    }
}

/// Path extractor with our envelope on rejection.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(ApiError(DomainError::invalid(e.body_text()))),
            Err(e) => Err(ApiError(DomainError::internal(anyhow::anyhow!(e.body_text())))),
        }
    }
}
