//! REST request extractors whose rejections come back in our error envelope, which lives in
//! `adapters::http_error` (shared with SSE and WebSocket handshakes).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

pub use crate::adapters::http_error::{
    ApiError, ApiResult, ErrorBody, ErrorObject, FieldIssueBody, LoggedError, too_large, unsupported_media_type,
};
use crate::domain::error::DomainError;

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
        JsonRejection::MissingJsonContentType(_) => unsupported_media_type("application/json"),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        other => DomainError::invalid(other.body_text()),
    }
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
