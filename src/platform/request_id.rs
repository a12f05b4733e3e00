//! The request context: its id (kept from the client when well-formed, else generated), the
//! protocol that serves it, its trace context and the error it ended with, readable anywhere in
//! the request's task. Every error body carries the id; each adapter records the error it
//! answers with, and one layer logs it once.

use std::sync::Mutex;

use super::trace::TraceContext;
use crate::domain::error::{DomainError, ErrorCode};

struct Context {
    id: String,
    protocol: Mutex<&'static str>,
    trace: TraceContext,
    error: Mutex<Option<Recorded>>,
}

tokio::task_local! {
    static CONTEXT: Context;
}

/// The error a request (or a WebSocket frame) was answered with.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub code: ErrorCode,
    pub message: String,
    /// The internal cause (never sent to clients).
    pub cause: Option<String>,
}

/// A client-supplied id is kept if it is 1..=128 characters of `[A-Za-z0-9._:-]`.
pub fn accept_or_generate(client: Option<&str>) -> String {
    match client {
        Some(id)
            if !id.is_empty()
                && id.len() <= 128
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b)) =>
        {
            id.to_string()
        }
        _ => generate(),
    }
}

/// A process-unique id: a random per-process prefix and a counter (no syscall per request).
fn generate() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff));
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut id = String::with_capacity(prefix.len() + 17);
    id.push_str(prefix);
    id.push('-');
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1) as usize;
    for shift in (0..digits).rev() {
        id.push(char::from_digit(((n >> (shift * 4)) & 0xf) as u32, 16).unwrap_or('0'));
    }
    id
}

/// Runs `fut` with `id` as the current request id, in a new trace.
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    scope_with(id, "http", TraceContext::root(), fut).await
}

/// Runs `fut` as a request of `protocol` with `id` and `trace` (our span in it).
pub async fn scope_with<F: Future>(id: String, protocol: &'static str, trace: TraceContext, fut: F) -> F::Output {
    CONTEXT.scope(Context { id, protocol: Mutex::new(protocol), trace, error: Mutex::new(None) }, fut).await
}

/// The current request id, or an empty string outside a request.
pub fn current() -> String {
    CONTEXT.try_with(|c| c.id.clone()).unwrap_or_default()
}

/// The protocol serving the current request ("internal" outside a request).
pub fn protocol() -> &'static str {
    CONTEXT.try_with(|c| *c.protocol.lock().unwrap_or_else(|p| p.into_inner())).unwrap_or("internal")
}

/// Names the protocol serving the current request (the router does, by the route it matched).
pub fn set_protocol(protocol: &'static str) {
    let _ = CONTEXT.try_with(|c| *c.protocol.lock().unwrap_or_else(|p| p.into_inner()) = protocol);
}

/// The current request's origin for the core (protocol, request id, trace id) from `ip`.
pub fn client_info(ip: Option<String>) -> crate::domain::audit::ClientInfo {
    crate::domain::audit::ClientInfo {
        ip,
        protocol: protocol().to_string(),
        request_id: current(),
        trace_id: trace().map(|t| t.trace_id),
    }
}

/// The current request's trace context (our span), None outside a request.
pub fn trace() -> Option<TraceContext> {
    CONTEXT.try_with(|c| c.trace.clone()).ok()
}

/// Notes the error the current request is answered with (the first one counts, unless a
/// later one is a server failure). Outside a request it is logged at once, so none is lost.
pub fn record(e: &DomainError) {
    let recorded =
        Recorded { code: e.code, message: e.message.clone(), cause: e.source.as_ref().map(|s| format!("{s:#}")) };
    let kept = CONTEXT.try_with(|c| {
        let mut slot = c.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_none_or(|old| !is_failure(old.code) && is_failure(recorded.code)) {
            *slot = Some(recorded.clone());
        }
    });
    if kept.is_err() {
        log(&recorded, "operation");
    }
}

/// The error recorded for the current request, taken (so it is logged once).
pub fn take() -> Option<Recorded> {
    CONTEXT.try_with(|c| c.error.lock().unwrap_or_else(|p| p.into_inner()).take()).ok().flatten()
}

/// INTERNAL and UNAVAILABLE are failures of the server, logged at error level with their cause.
pub fn is_failure(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::Internal | ErrorCode::Unavailable)
}

/// The one log line of an error: `<what> failed` with the cause, or `<what> refused`.
pub fn log(e: &Recorded, what: &str) {
    if is_failure(e.code) {
        tracing::error!(code = %e.code, error = %e.message, cause = e.cause.as_deref().unwrap_or(""), "{what} failed");
    } else {
        tracing::info!(code = %e.code, error = %e.message, "{what} refused");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_the_process_prefix_and_a_rising_hex_counter() {
        let ids: Vec<String> = (0..40).map(|_| accept_or_generate(None)).collect();
        let mut last = None;
        for id in &ids {
            let (prefix, counter) = id.split_once('-').unwrap();
            assert_eq!(prefix.len(), 12, "{id}");
            assert!(prefix.bytes().chain(counter.bytes()).all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            let n = u64::from_str_radix(counter, 16).unwrap();
            assert_eq!(counter, format!("{n:x}"), "no leading zeros");
            assert!(last.is_none_or(|l| n > l));
            last = Some(n);
        }
        assert_eq!(accept_or_generate(Some("client-id.1:a")), "client-id.1:a");
    }
}
