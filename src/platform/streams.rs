//! Caps on long-lived streams (SSE, WebSocket, later GraphQL and gRPC): per principal or
//! address, and in total. A slot is held for the life of a stream and freed on drop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::error::DomainError;

pub struct StreamLimits {
    max_total: usize,
    max_per_key: usize,
    state: Mutex<(usize, HashMap<String, usize>)>,
}

/// An open stream's place under the caps.
pub struct StreamSlot {
    limits: Arc<StreamLimits>,
    key: String,
}

impl StreamLimits {
    pub fn new(max_total: usize, max_per_key: usize) -> Arc<Self> {
        Arc::new(Self { max_total, max_per_key, state: Mutex::new((0, HashMap::new())) })
    }

    /// A slot for `key` (`user:…`, `key:…` or `ip:…`), or RATE_LIMITED / UNAVAILABLE over the caps.
    pub fn acquire(self: &Arc<Self>, key: &str) -> Result<StreamSlot, DomainError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 >= self.max_total {
            return Err(DomainError::unavailable("the server has too many open streams; retry later"));
        }
        let mine = state.1.entry(key.to_string()).or_default();
        if *mine >= self.max_per_key {
            let mut e = DomainError::rate_limited(5);
            e.message = format!("at most {} open streams per caller", self.max_per_key);
            return Err(e);
        }
        *mine += 1;
        state.0 += 1;
        Ok(StreamSlot { limits: self.clone(), key: key.to_string() })
    }

    pub fn open(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut state = self.limits.state.lock().unwrap_or_else(|e| e.into_inner());
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
        let limits = StreamLimits::new(3, 2);
        let a1 = limits.acquire("a").unwrap();
        let _a2 = limits.acquire("a").unwrap();
        assert!(limits.acquire("a").is_err());
        let _b = limits.acquire("b").unwrap();
        assert!(limits.acquire("c").is_err(), "total cap");
        drop(a1);
        assert!(limits.acquire("a").is_ok());
    }
}
