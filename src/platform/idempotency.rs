//! Idempotency keys for every protocol: claim, replay, mismatch and in-flight detection.

use std::sync::Arc;

use chrono::Duration;
use sha2::{Digest, Sha256};

use crate::domain::error::{DomainError, DomainResult, ErrorCode};
use crate::domain::ports::{Clock, IdempotencyClaim, IdempotencyStore, SavedResponse};

/// What the caller should do with its request.
#[derive(Debug)]
pub enum Begin {
    /// Run the request, then call `finish` (or `abandon` on a retryable failure).
    Proceed(Ticket),
    /// Answer with the saved response of the first request.
    Replay(SavedResponse),
}

/// Proof of a claim, needed to finish it.
#[derive(Debug)]
pub struct Ticket {
    scope: String,
    key: String,
}

#[derive(Clone)]
pub struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    clock: Arc<dyn Clock>,
    /// A claim without a response older than this is considered dead and may be taken over.
    stale_after: Duration,
    /// How long keys are kept (at least 24 hours).
    pub retention: Duration,
}

/// A key is 1..=255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic())
}

/// A fingerprint of the request: operation name and exact body bytes.
pub fn fingerprint(operation: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(operation.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
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

    /// `scope` isolates callers (a user id, or an anonymous client address).
    pub async fn begin(&self, scope: &str, key: &str, fingerprint: &str) -> DomainResult<Begin> {
        if !valid_key(key) {
            return Err(DomainError::invalid("Idempotency-Key must be 1 to 255 visible ASCII characters")
                .with_detail("idempotency_key", "invalid_format"));
        }
        let now = self.clock.now();
        match self.store.claim(scope, key, fingerprint, now, now - self.stale_after).await? {
            IdempotencyClaim::Claimed => Ok(Begin::Proceed(Ticket { scope: scope.into(), key: key.into() })),
            IdempotencyClaim::Replay(saved) => Ok(Begin::Replay(saved)),
            IdempotencyClaim::Mismatch => Err(DomainError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used with a different request",
            )),
            IdempotencyClaim::InProgress => {
                let mut e = DomainError::new(
                    ErrorCode::IdempotencyInProgress,
                    "a request with this Idempotency-Key is still in progress",
                );
                e.retry_after = Some(1);
                Err(e)
            }
        }
    }

    /// Saves the response for replay. A `retryable` failure (internal, unavailable, rate
    /// limited) releases the key instead, so the client's retry runs again.
    pub async fn finish(&self, ticket: Ticket, response: SavedResponse, retryable: bool) {
        let result = if retryable {
            self.store.release(&ticket.scope, &ticket.key).await
        } else {
            self.store.complete(&ticket.scope, &ticket.key, &response, self.clock.now()).await
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "could not record the idempotent response");
        }
    }

    /// Gives the key back, e.g. when the request could not be processed at all.
    pub async fn abandon(&self, ticket: Ticket) {
        if let Err(e) = self.store.release(&ticket.scope, &ticket.key).await {
            tracing::error!(error = %e, "could not release an idempotency key");
        }
    }
}
