//! Caps on things a caller holds open (connections, event streams): per key (a principal or an
//! address) and in total. A slot is held for as long as the thing is open and freed on drop.
//! The total is this instance's; with Redis, a stream's per-key cap is also held by a lease
//! shared with every instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::redis::{Redis, StreamLease};
use crate::domain::error::DomainError;

pub struct Caps {
    max_total: usize,
    max_per_key: usize,
    state: Mutex<(usize, HashMap<String, usize>)>,
    shared: Option<Arc<Redis>>,
}

/// One open thing's place under the caps.
pub struct Slot {
    caps: Arc<Caps>,
    key: String,
    _lease: Option<StreamLease>,
}

/// Which cap a refused slot hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Total,
    PerKey,
}

impl Caps {
    pub fn new(max_total: usize, max_per_key: usize) -> Arc<Self> {
        Self::shared(max_total, max_per_key, None)
    }

    /// Caps whose per-key limit `acquire_stream` also holds in `shared` (all instances).
    pub fn shared(max_total: usize, max_per_key: usize, shared: Option<Arc<Redis>>) -> Arc<Self> {
        Arc::new(Self { max_total, max_per_key, state: Mutex::new((0, HashMap::new())), shared })
    }

    /// A slot for `key`, unless it is at its own cap or everything is at the total cap.
    pub fn try_acquire(self: &Arc<Self>, key: &str) -> Result<Slot, Full> {
        self.take(key, true)
    }

    /// A slot for `key` within its own cap even past the total cap: for a newcomer admitted
    /// in place of a slot that is being freed right now.
    pub fn acquire_over_total(self: &Arc<Self>, key: &str) -> Result<Slot, Full> {
        self.take(key, false)
    }

    fn take(self: &Arc<Self>, key: &str, total_applies: bool) -> Result<Slot, Full> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if total_applies && state.0 >= self.max_total {
            return Err(Full::Total);
        }
        let mine = state.1.entry(key.to_string()).or_default();
        if *mine >= self.max_per_key {
            return Err(Full::PerKey);
        }
        *mine += 1;
        state.0 += 1;
        Ok(Slot { caps: self.clone(), key: key.to_string(), _lease: None })
    }

    /// A stream slot for `key` (`user:…` or `ip:…`): RATE_LIMITED over the caller's cap (on
    /// every instance together when Redis answers), UNAVAILABLE over this instance's total.
    pub async fn acquire_stream(self: &Arc<Self>, key: &str) -> Result<Slot, DomainError> {
        let per_key = || {
            let mut e = DomainError::rate_limited(5);
            e.message = format!("at most {} open streams per caller", self.max_per_key);
            e
        };
        let mut slot = self.try_acquire(key).map_err(|full| match full {
            Full::Total => DomainError::unavailable("the server has too many open streams; retry later"),
            Full::PerKey => per_key(),
        })?;
        if let Some(redis) = &self.shared {
            match redis.lease_stream(key, self.max_per_key).await {
                Some(Ok(lease)) => slot._lease = Some(lease),
                Some(Err(())) => return Err(per_key()),
                None => {} // Redis does not answer: this instance's cap alone
            }
        }
        Ok(slot)
    }

    pub fn open(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.caps.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.saturating_sub(1);
        if let Some(n) = state.1.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                state.1.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_key_and_in_total_and_freed_on_drop() {
        let caps = Caps::new(3, 2);
        let a1 = caps.try_acquire("a").unwrap();
        let _a2 = caps.try_acquire("a").unwrap();
        assert_eq!(caps.try_acquire("a").err(), Some(Full::PerKey));
        let _b = caps.try_acquire("b").unwrap();
        assert_eq!(caps.try_acquire("c").err(), Some(Full::Total));
        let _c = caps.acquire_over_total("c").unwrap();
        assert_eq!(caps.open(), 4);
        drop(a1);
        assert!(caps.try_acquire("a").is_err(), "still over the total");
        assert_eq!(caps.try_acquire("d").err(), Some(Full::Total));
    }
}
