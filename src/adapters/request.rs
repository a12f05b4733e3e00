//! Reading an HTTP request the same way in every adapter: header text, the peer's address, and
//! the browser Origin check that guards WebSocket upgrades.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap, header};

/// A header's text; a value that is not visible ASCII reads as U+FFFD (never matches).
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// The peer address of the connection, as text.
pub fn peer_ip(extensions: &Extensions) -> Option<String> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string())
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
