//! Response shapes shared by handlers: resources with ETags, conditional GETs, pages with Links.

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::extract::{Preconditions, etag};
use crate::platform::operations::Listed;

/// A single resource with its ETag (and `Location` when created).
pub fn resource<T: Serialize>(
    status: StatusCode,
    version: i64,
    variant: &str,
    body: T,
    location: Option<String>,
) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
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
    let tag = etag(version, variant);
    if pre.none_match(&tag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&tag) {
            response.headers_mut().insert(header::ETAG, v);
        }
        return response;
    }
    resource(StatusCode::OK, version, variant, body, None)
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
    let mut response = axum::Json(wrap(page.items, next_cursor, has_more)).into_response();
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
