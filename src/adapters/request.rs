//! Reading an HTTP request the same way in every adapter: header text, the peer's address, the
//! browser Origin check that guards WebSocket upgrades, and the close code a bad WebSocket
//! message earns; and the rate-limit headers every HTTP answer carries.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, header};

use crate::platform::admission::Presented;
use crate::platform::ratelimit::Decision;

pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
pub const TRACERESPONSE: HeaderName = HeaderName::from_static("traceresponse");

/// A header's text; a value that is not visible ASCII reads as U+FFFD (never matches). A
/// `HeaderName` constant is looked up without parsing the name first, as a `&str` must be.
pub fn header_str<K: header::AsHeaderName>(headers: &HeaderMap, name: K) -> Option<&str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// The credentials an HTTP request presents in its headers (`Authorization`, `x-api-key`).
pub fn credentials(headers: &HeaderMap) -> Presented<'_> {
    Presented {
        authorization: header_str(headers, header::AUTHORIZATION),
        api_key: header_str(headers, X_API_KEY),
        stream_token: None,
    }
}

/// True when the `Accept` header (absent: anything) allows one of `produces` (exact media
/// types such as `application/json`); ranges like `*/*` and `application/*` count, `q=0` not.
pub fn accepts(headers: &HeaderMap, produces: &[&str]) -> bool {
    let Some(accept) = header_str(headers, header::ACCEPT) else {
        return true;
    };
    if accept.trim().is_empty() || produces.contains(&accept) {
        return true;
    }
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.trim()
                .split_once('=')
                .is_some_and(|(k, v)| k.trim() == "q" && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        !refused
            && produces.iter().any(|p| {
                media == "*/*"
                    || media == *p
                    || media.strip_suffix("/*").is_some_and(|ty| p.split('/').next() == Some(ty))
            })
    })
}

/// True when the request declares a body longer than `limit` (refused before reading it).
pub fn declares_more_than(headers: &HeaderMap, limit: usize) -> bool {
    header_str(headers, header::CONTENT_LENGTH.as_str())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
}

/// The peer address of a connection as text, written once per connection (the server puts it
/// on each of its requests) rather than formatted again for every request.
#[derive(Debug, Clone)]
pub struct PeerIp(pub std::sync::Arc<str>);

/// The peer address of the connection, as text.
pub fn peer_ip(extensions: &Extensions) -> Option<String> {
    match extensions.get::<PeerIp>() {
        Some(PeerIp(ip)) => Some(ip.to_string()),
        None => extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string()),
    }
}

/// Cross-site WebSocket hijacking guard: a browser's Origin must be in the CORS allow-list or
/// be this host; clients that send no Origin (not browsers) pass.
pub fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    let Some(origin) = header_str(headers, "origin") else {
        return true;
    };
    if allowed.iter().any(|o| o.trim() == origin) {
        return true;
    }
    let host = header_str(headers, header::HOST.as_str()).unwrap_or_default();
    origin.split_once("://").is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

/// The close code and reason for a WebSocket read that failed: 1009 for a message over the
/// size limit, 1007 for a text message that is not UTF-8 (RFC 6455 7.4.1), 1002 for any other
/// protocol violation; None when the connection itself is gone.
pub fn ws_read_error_close(e: &axum::Error) -> Option<(u16, &'static str)> {
    let text = e.to_string().to_lowercase();
    if text.contains("utf-8") || text.contains("utf8") {
        Some((1007, "text frames must be UTF-8"))
    } else if text.contains("too long")
        || text.contains("too big")
        || text.contains("capacity")
        || text.contains("size")
    {
        Some((1009, "message too big"))
    } else if text.contains("protocol") {
        Some((1002, "protocol error"))
    } else {
        None
    }
}

const LIMIT: [HeaderName; 2] =
    [HeaderName::from_static("ratelimit-limit"), HeaderName::from_static("x-ratelimit-limit")];
const REMAINING: [HeaderName; 2] =
    [HeaderName::from_static("ratelimit-remaining"), HeaderName::from_static("x-ratelimit-remaining")];
const RESET: [HeaderName; 2] =
    [HeaderName::from_static("ratelimit-reset"), HeaderName::from_static("x-ratelimit-reset")];

/// The budget a request left, as `ratelimit-*` headers and their `x-ratelimit-*` aliases (REST,
/// GraphQL and SOAP answers alike). The count and the reset change from request to request:
/// sent never-indexed, so over HTTP/2 they do not churn the connection's header table.
pub fn rate_limit_headers(headers: &mut HeaderMap, d: &Decision) {
    budget_headers(headers, d, 2);
}

/// The same budget as gRPC metadata: `ratelimit-*` only (no aliases).
pub fn rate_limit_metadata(metadata: &mut HeaderMap, d: &Decision) {
    budget_headers(metadata, d, 1);
}

/// Writes the first `names` names of each header (the standard one, then its alias).
fn budget_headers(headers: &mut HeaderMap, d: &Decision, names: usize) {
    for (all, value, changes) in [(LIMIT, d.limit, false), (REMAINING, d.remaining, true), (RESET, d.reset_secs, true)]
    {
        let mut value = HeaderValue::from(value);
        value.set_sensitive(changes);
        for name in all.into_iter().take(names) {
            headers.insert(name, value.clone());
        }
    }
}
