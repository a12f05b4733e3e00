//! Idempotency keys for every protocol, in one place: a key runs its operation once; a repeat
//! with the same operation and input (from any protocol) gets the first outcome back, kept in
//! a protocol-neutral form (the core's result or its error); another input is refused, and a
//! repeat while the first is still running is told so.

use std::future::Future;
use std::sync::Arc;

use chrono::Duration;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::domain::error::{DomainError, DomainResult, ErrorCode, FieldIssue};
use crate::domain::ports::{Clock, IdempotencyClaim, IdempotencyStore, SavedOutcome};

#[derive(Clone)]
pub struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    clock: Arc<dyn Clock>,
    /// A claim without an outcome older than this is considered dead and may be taken over.
    stale_after: Duration,
    /// How long keys are kept (at least 24 hours).
    pub retention: Duration,
}

/// A key is 1..=255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic())
}

/// A fingerprint of the operation and its canonical input.
fn fingerprint(operation: &str, input: &impl Serialize) -> String {
    let mut h = Sha256::new();
    h.update(operation.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(input).unwrap_or_default());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A kept outcome: `{"ok": value}` or `{"error": {code, message, details, version_mismatch}}`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kept<T> {
    Ok(T),
    Error { code: String, message: String, details: Vec<(String, String)>, version_mismatch: bool },
}

impl Idempotency {
    pub fn new(
        store: Arc<dyn IdempotencyStore>,
        clock: Arc<dyn Clock>,
        stale_after: Duration,
        retention: Duration,
    ) -> Self {
        Self { store, clock, stale_after, retention }
    }

    /// Runs `op` once for `(scope, key)`; answers its outcome and whether it was replayed.
    /// A failure worth retrying (internal, unavailable, rate limited) is not kept: the client's
    /// retry runs again.
    pub async fn once<T, F, Fut>(
        &self,
        scope: &str,
        key: &str,
        operation: &str,
        input: &impl Serialize,
        op: F,
    ) -> DomainResult<(T, bool)>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = DomainResult<T>>,
    {
        if !valid_key(key) {
            return Err(DomainError::invalid("Idempotency-Key must be 1 to 255 visible ASCII characters")
                .with_detail("idempotency_key", "invalid_format"));
        }
        let now = self.clock.now();
        match self.store.claim(scope, key, &fingerprint(operation, input), now, now - self.stale_after).await? {
            IdempotencyClaim::Claimed => {}
            IdempotencyClaim::Replay(saved) => return replay(&saved).map(|v| (v, true)),
            IdempotencyClaim::Mismatch => {
                return Err(DomainError::new(
                    ErrorCode::IdempotencyKeyReused,
                    "this Idempotency-Key was used with a different request",
                ));
            }
            IdempotencyClaim::InProgress => {
                let mut e = DomainError::new(
                    ErrorCode::IdempotencyInProgress,
                    "a request with this Idempotency-Key is still in progress",
                );
                e.retry_after = Some(1);
                return Err(e);
            }
        }
        let result = op().await;
        let kept = match &result {
            Ok(value) => Some(Kept::Ok(value)),
            Err(e) if e.code.is_retryable() => None,
            Err(e) => Some(Kept::Error {
                code: e.code.as_str().to_string(),
                message: e.message.clone(),
                details: e.details.iter().map(|d| (d.field.clone(), d.issue.clone())).collect(),
                version_mismatch: e.version_mismatch,
            }),
        };
        let recorded = match kept.map(|k| serde_json::to_vec(&k)) {
            Some(Ok(body)) => self.store.complete(scope, key, &SavedOutcome { body }, self.clock.now()).await,
            Some(Err(e)) => Err(DomainError::internal(e)),
            None => self.store.release(scope, key).await,
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, "could not record the idempotent outcome");
        }
        result.map(|v| (v, false))
    }
}

fn replay<T: DeserializeOwned>(saved: &SavedOutcome) -> DomainResult<T> {
    match serde_json::from_slice::<Kept<T>>(&saved.body).map_err(DomainError::internal)? {
        Kept::Ok(value) => Ok(value),
        Kept::Error { code, message, details, version_mismatch } => {
            let mut e = DomainError::new(ErrorCode::parse(&code).unwrap_or(ErrorCode::Internal), message);
            e.details = details.into_iter().map(|(f, i)| FieldIssue::new(f, i)).collect();
            e.version_mismatch = version_mismatch;
            e.replayed = true;
            Err(e)
        }
    }
}
