//! The console at `GET /` (a page that drives every protocol from the browser) with its scripts
//! and styles under `/console/`, and the protos under `/proto/`: all embedded in the binary, so
//! the page works offline, and served with a Content-Security-Policy that allows this origin
//! only.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::adapters::http_error::ApiError;
use crate::domain::error::DomainError;

/// Scripts, styles and connections from this origin only; nothing inline, no frames.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("../../assets/console/index.html");

/// (name, content type, body).
const ASSETS: &[(&str, &str, &str)] = &[
    ("console.js", "text/javascript; charset=utf-8", include_str!("../../assets/console/console.js")),
    ("protobuf.js", "text/javascript; charset=utf-8", include_str!("../../assets/console/protobuf.js")),
    ("console.css", "text/css; charset=utf-8", include_str!("../../assets/console/console.css")),
];

/// The protos the gRPC services are built from, as committed under `proto/polyport/v1/`.
const PROTOS: &[(&str, &str)] = &[
    ("auth.proto", include_str!("../../proto/polyport/v1/auth.proto")),
    ("users.proto", include_str!("../../proto/polyport/v1/users.proto")),
    ("posts.proto", include_str!("../../proto/polyport/v1/posts.proto")),
    ("events.proto", include_str!("../../proto/polyport/v1/events.proto")),
];

pub fn routes() -> Router {
    Router::new()
        .route("/", get(page))
        .route("/console/{name}", get(asset))
        .route("/proto/polyport/v1/{name}", get(proto))
}

fn with_headers(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn page() -> Response {
    let mut response = with_headers(PAGE, "text/html; charset=utf-8");
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    // Stream tokens travel in URLs: never hand them to another site as a Referer.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => with_headers(body, content_type),
        None => ApiError(DomainError::not_found("asset")).into_response(),
    }
}

async fn proto(Path(name): Path<String>) -> Response {
    match PROTOS.iter().find(|(n, _)| *n == name) {
        Some((_, body)) => with_headers(body, "text/plain; charset=utf-8"),
        None => ApiError(DomainError::not_found("proto")).into_response(),
    }
}
