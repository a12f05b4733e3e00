//! REST request extractors whose rejections come back in our error envelope, which lives in
//! `adapters::http_error` (shared with SSE and WebSocket handshakes).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

pub use crate::adapters::http_error::{
    ApiError, ApiResult, ErrorBody, ErrorObject, FieldIssueBody, too_large, unsupported_media_type,
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
        JsonRejection::JsonDataError(e) => shape_error(&e.body_text()),
        JsonRejection::JsonSyntaxError(_) => {
            DomainError::invalid("the body is not valid JSON").with_detail(WHOLE_BODY, "malformed_json")
        }
        JsonRejection::MissingJsonContentType(_) => unsupported_media_type("application/json"),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        other => DomainError::invalid(other.body_text()),
    }
}

/// The field name of a problem with the body as a whole (JSONPath's root), so it can never be
/// mistaken for a field such as a post's `body`.
const WHOLE_BODY: &str = "$";

/// A body that parsed as JSON but not as the request: the client's field name and what is wrong
/// with it (`unknown_field` or `invalid_type`), never the deserializer's own words.
fn shape_error(text: &str) -> DomainError {
    let detail = text.split_once("target type: ").map_or(text, |(_, d)| d);
    if let Some(rest) = detail.strip_prefix("unknown field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        return DomainError::invalid(format!("unknown field `{field}`")).with_detail(field, "unknown_field");
    }
    if let Some(rest) = detail.strip_prefix("missing field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        return DomainError::invalid(format!("missing field `{field}`")).with_detail(field, "required");
    }
    match detail.split_once(": ") {
        Some((path, why)) if why.starts_with("unknown field") => {
            DomainError::invalid(format!("unknown field `{path}`")).with_detail(path, "unknown_field")
        }
        Some((path, _)) if !path.contains(' ') && !path.starts_with('[') => {
            DomainError::invalid(format!("`{path}` has the wrong type")).with_detail(path, "invalid_type")
        }
        _ => DomainError::invalid("the JSON body is not the object this operation takes")
            .with_detail(WHOLE_BODY, "invalid_type"),
    }
}

/// Query-string extractor with our envelope on rejection.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let text = e.body_text();
                let detail = text.split_once("query string: ").map_or(text.as_str(), |(_, d)| d);
                let e = match detail.split_once(": ") {
                    Some((param, _)) if !param.contains(' ') => {
                        DomainError::invalid(format!("invalid query parameter `{param}`")).with_detail(param, "invalid")
                    }
                    _ => DomainError::invalid("invalid query string").with_detail("query", "invalid"),
                };
                Err(ApiError(e))
            }
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
