//! The replay cache for nonces (WS-Security PasswordDigest): a nonce is accepted once within
//! its window. In Redis when one is configured (shared by every instance; refused with
//! UNAVAILABLE while Redis does not answer, since accepting could let a replay through), else
//! bounded in memory (when full of live nonces it refuses rather than forgets).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::redis::Redis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Seen within the window.
    Replayed,
    /// The cache holds `capacity` live nonces; try again later.
    Full,
    /// The shared cache (Redis) does not answer; try again later.
    Unavailable,
}

struct Inner {
    seen: HashSet<String>,
    order: VecDeque<(Instant, String)>,
}

pub struct NonceCache {
    window: Duration,
    capacity: usize,
    inner: Mutex<Inner>,
    shared: Option<Arc<Redis>>,
}

impl NonceCache {
    /// Remembers each nonce for `window` (use at least the accepted timestamp skew, both ways).
    pub fn new(window: Duration, capacity: usize, shared: Option<Arc<Redis>>) -> Self {
        Self { window, capacity, inner: Mutex::new(Inner { seen: HashSet::new(), order: VecDeque::new() }), shared }
    }

    /// Records `nonce`, or says why it cannot be accepted.
    pub async fn check_and_insert(&self, nonce: &str) -> Result<(), NonceError> {
        match &self.shared {
            Some(redis) => match redis.fresh_nonce(nonce, self.window).await {
                Some(true) => Ok(()),
                Some(false) => Err(NonceError::Replayed),
                None => Err(NonceError::Unavailable),
            },
            None => self.check_and_insert_at(nonce, Instant::now()),
        }
    }

    fn check_and_insert_at(&self, nonce: &str, now: Instant) -> Result<(), NonceError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((at, _)) = inner.order.front() {
            if now.saturating_duration_since(*at) < self.window {
                break;
            }
            if let Some((_, old)) = inner.order.pop_front() {
                inner.seen.remove(&old);
            }
        }
        if inner.seen.contains(nonce) {
            return Err(NonceError::Replayed);
        }
        if inner.seen.len() >= self.capacity {
            return Err(NonceError::Full);
        }
        inner.seen.insert(nonce.to_string());
        inner.order.push_back((now, nonce.to_string()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_once_per_window_and_the_cache_stays_bounded() {
        let cache = NonceCache::new(Duration::from_secs(600), 2, None);
        let t0 = Instant::now();
        assert_eq!(cache.check_and_insert_at("a", t0), Ok(()));
        assert_eq!(cache.check_and_insert_at("a", t0), Err(NonceError::Replayed));
        assert_eq!(cache.check_and_insert_at("b", t0), Ok(()));
        assert_eq!(cache.check_and_insert_at("c", t0), Err(NonceError::Full));
        let later = t0 + Duration::from_secs(601);
        assert_eq!(cache.check_and_insert_at("c", later), Ok(()));
        assert_eq!(cache.check_and_insert_at("a", later), Ok(()), "expired nonces are forgotten");
    }
}
