//! Request ids: kept from the client when well-formed, else generated; readable anywhere in the
//! request's task so every error body and log line can carry it.

tokio::task_local! {
    static REQUEST_ID: String;
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
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The current request id, or an empty string outside a request.
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}
