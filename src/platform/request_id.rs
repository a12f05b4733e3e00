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
        _ => uuid::Uuid::now_v7().simple().to_string(),
    }
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The current request id, or an empty string outside a request.
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}
