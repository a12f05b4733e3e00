//! Argon2id password hashing, run on the blocking pool so it never stalls request threads, a
//! bounded number at a time: each hash holds 19 MiB, so the bound is the memory bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ports::PasswordHasher;

/// Memory one Argon2id computation holds, in KiB (OWASP's second profile).
pub const HASH_MEMORY_KIB: u32 = 19 * 1024;

/// Argon2id with OWASP's second recommended profile (19 MiB, 2 passes, 1 lane). At most
/// `concurrency` hashes run at once (memory: `concurrency` x 19 MiB) and at most `queue` wait;
/// further calls answer RATE_LIMITED with a retry hint at once.
#[derive(Clone)]
pub struct Argon2Hasher {
    params: Params,
    running: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    queue: usize,
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        Self::new(default_concurrency(), 64)
    }
}

/// Two hashes per core.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// Leaves the waiting count when a caller stops waiting, however it stops.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Argon2Hasher {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        Self {
            params: Params::new(HASH_MEMORY_KIB, 2, 1, None).expect("static argon2 parameters are valid"),
            running: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue,
        }
    }

    /// Runs `work` on the blocking pool once a slot is free; the slot is held until the work
    /// ends, even when the caller gave up waiting for it.
    async fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce(Argon2<'static>) -> T + Send + 'static,
    ) -> DomainResult<T> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue + self.running.available_permits() {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            let mut e = DomainError::rate_limited(1);
            e.message = "the server is busy checking passwords; retry shortly".into();
            return Err(e);
        }
        let waiting = Waiting(self.waiting.clone());
        let permit = self.running.clone().acquire_owned().await.map_err(DomainError::internal)?;
        drop(waiting);
        let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(hasher)
        })
        .await
        .map_err(DomainError::internal)
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &str) -> DomainResult<String> {
        let password = password.to_owned();
        self.bounded(move |hasher| {
            let salt = SaltString::generate(&mut OsRng);
            hasher.hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
        })
        .await?
        .map_err(|e| DomainError::internal(anyhow::anyhow!("argon2: {e}")))
    }

    async fn verify(&self, password: &str, hash: &str) -> DomainResult<bool> {
        let (password, hash) = (password.to_owned(), hash.to_owned());
        self.bounded(move |hasher| {
            PasswordHash::new(&hash).is_ok_and(|parsed| hasher.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = Argon2Hasher::default();
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify("correct horse battery", &hash).await.unwrap());
        assert!(!hasher.verify("wrong horse battery", &hash).await.unwrap());
        assert!(!hasher.verify("anything", "not a phc string").await.unwrap());
    }

    #[tokio::test]
    async fn calls_beyond_the_running_and_waiting_bound_are_refused_at_once() {
        let hasher = Argon2Hasher::new(1, 1);
        let hash = hasher.hash("correct horse battery").await.unwrap();
        let calls: Vec<_> = (0..6).map(|_| hasher.verify("wrong horse battery", &hash)).collect();
        let results = futures::future::join_all(calls).await;
        let refused = results.iter().filter(|r| r.as_ref().is_err_and(|e| e.retry_after == Some(1))).count();
        assert_eq!(refused, 4, "one runs, one waits, four are refused");
        assert!(results.iter().filter_map(|r| r.as_ref().ok()).all(|ok| !ok));
    }
}
