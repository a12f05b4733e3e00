//! The SOAP adapter on `/soap`: `GET /soap?wsdl` serves the WSDL, `POST /soap` takes SOAP 1.1
//! and 1.2 envelopes (see `pipeline` for the order of checks).

pub mod envelope;
pub mod error;
mod headers;
pub mod input;
pub mod ops;
mod pipeline;
pub mod schema;
pub mod security;
pub mod writer;
pub mod wsdl;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::adapters::Shared;
use crate::domain::error::DomainError;
use crate::platform::nonces::NonceCache;

/// The adapter's state: the shared core and platform, plus the digest nonce replay cache.
#[derive(Clone)]
pub struct SoapState {
    pub shared: Shared,
    pub nonces: Arc<NonceCache>,
}

/// Live nonces remembered at most (a full cache refuses digests rather than forget nonces).
const NONCE_CAPACITY: usize = 100_000;

pub fn routes(shared: Shared) -> Router {
    let window = Duration::from_secs(2 * security::WINDOW_SECS as u64 + 60);
    let nonces = Arc::new(NonceCache::new(window, NONCE_CAPACITY, shared.redis.clone()));
    let state = SoapState { shared, nonces };
    Router::new().route("/soap", get(wsdl_document).post(pipeline::call)).with_state(state)
}

/// `GET /soap?wsdl`: the WSDL with this request's host in the service address.
async fn wsdl_document(State(_): State<SoapState>, uri: Uri, headers: HeaderMap) -> Response {
    if !uri.query().is_some_and(|q| q.eq_ignore_ascii_case("wsdl")) {
        let e =
            DomainError::invalid("GET /soap?wsdl for the WSDL; POST envelopes to /soap").with_detail("query", "wsdl");
        return error::Fault::domain(envelope::Version::Soap12, e).into_response();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .filter(|h| h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .unwrap_or("localhost");
    let doc = wsdl::document(&format!("http://{host}/soap"));
    let mut response = doc.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
    response
}
