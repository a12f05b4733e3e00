//! Response shapes shared by handlers: resources with ETags, conditional GETs, pages with Links.

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;
use super::extract::{Preconditions, etag};
use crate::domain::error::DomainError;
use crate::platform::operations::Listed;

/// A single resource with its ETag (and `Location` when created).
pub fn resource<T: Serialize>(
    status: StatusCode,
    version: i64,
    variant: &str,
    body: T,
    location: Option<String>,
) -> Response {
    tagged(json(status, &body), version, variant, location)
}

/// A resource's answer with its ETag (and `Location` when created).
fn tagged(mut response: Response, version: i64, variant: &str, location: Option<String>) -> Response {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag(version, variant)) {
        headers.insert(header::ETAG, v);
    }
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, v);
    }
    response
}

/// 304 when `If-None-Match` already has this version, else the resource.
pub fn conditional<T: Serialize>(pre: &Preconditions, version: i64, variant: &str, body: T) -> Response {
    conditional_with(pre, version, variant, || json(StatusCode::OK, &body))
}

/// `conditional` with the 200 answer made by `answer`, only when it is sent.
pub fn conditional_with(
    pre: &Preconditions,
    version: i64,
    variant: &str,
    answer: impl FnOnce() -> Response,
) -> Response {
    let tag = etag(version, variant);
    if pre.none_match(&tag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&tag) {
            response.headers_mut().insert(header::ETAG, v);
        }
        return response;
    }
    tagged(answer(), version, variant, None)
}

/// `body` as JSON, written into one buffer sized for a typical resource (axum's `Json` writes
/// through a small growing buffer, a call per token).
fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match to_json(body) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(e) => e.into_response(),
    }
}

/// `body` as JSON text.
pub(super) fn to_json<T: Serialize>(body: &T) -> Result<Bytes, ApiError> {
    let mut buf = Vec::with_capacity(1024);
    serde_json::to_writer(&mut buf, body)
        .map_err(|e| ApiError(DomainError::internal(anyhow::Error::new(e).context("writing a JSON answer"))))?;
    Ok(buf.into())
}

/// JSON text already written, as an answer.
pub(super) fn json_bytes(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// A page as `{data, next_cursor, has_more}` plus an RFC 8288 `Link: <…>; rel="next"`.
pub fn page<T, W: Serialize>(
    uri: &Uri,
    page: Listed<T>,
    wrap: impl FnOnce(Vec<T>, Option<String>, bool) -> W,
) -> Response {
    let next_cursor = page.next_cursor;
    let link = next_cursor.as_ref().map(|c| next_link(uri, c));
    let has_more = next_cursor.is_some();
    let mut response = json(StatusCode::OK, &wrap(page.items, next_cursor, has_more));
    if let Some(v) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, v);
    }
    response
}

fn next_link(uri: &Uri, cursor: &str) -> String {
    let mut pairs: Vec<String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("cursor="))
        .map(str::to_string)
        .collect();
    pairs.push(format!("cursor={cursor}"));
    format!("<{}?{}>; rel=\"next\"", uri.path(), pairs.join("&"))
}
