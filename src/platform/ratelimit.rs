//! Request budgets per principal or client address: fixed windows, shared by every instance
//! through Redis when one is configured, else (and during a Redis outage) sharded in memory.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use foldhash::HashMap;

use super::redis::Redis;

/// The outcome of charging a request, with what the `RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the window resets.
    pub reset_secs: u64,
}

struct Window {
    started: Instant,
    used: u64,
}

const SHARDS: usize = 32;

/// A fixed-window limiter: `limit` units per `period` per key.
pub struct RateLimiter {
    period: Duration,
    shards: Vec<Mutex<HashMap<String, Window>>>,
    /// Picks a key's shard (seeded per process, like the shards' own maps).
    spread: foldhash::fast::RandomState,
    shared: Option<Arc<Redis>>,
}

impl RateLimiter {
    pub fn new(period: Duration, shared: Option<Arc<Redis>>) -> Self {
        Self {
            period,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::default())).collect(),
            spread: Default::default(),
            shared,
        }
    }

    /// Charges `cost` units against `key`'s budget of `limit` per period: in Redis when it is
    /// configured and answers, else in this instance's memory.
    pub async fn charge(&self, key: &str, limit: u64, cost: u64) -> Decision {
        if let Some(redis) = &self.shared
            && let Some(decision) = redis.charge(key, limit, cost, self.period).await
        {
            return decision;
        }
        self.check(key, limit, cost)
    }

    /// Charges `cost` units against `key`'s budget of `limit` per period, in memory.
    pub fn check(&self, key: &str, limit: u64, cost: u64) -> Decision {
        let now = Instant::now();
        let shard = self.spread.hash_one(key) as usize % SHARDS;
        let mut shard = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        if shard.len() > 10_000 {
            let period = self.period;
            shard.retain(|_, w| now.duration_since(w.started) < period);
        }
        if !shard.contains_key(key) {
            shard.insert(key.to_string(), Window { started: now, used: 0 });
        }
        let window = shard.get_mut(key).expect("inserted above");
        if now.duration_since(window.started) >= self.period {
            *window = Window { started: now, used: 0 };
        }
        let reset_secs = (self.period - now.duration_since(window.started)).as_secs_f64().ceil() as u64;
        let allowed = window.used + cost <= limit;
        if allowed {
            window.used += cost;
        }
        Decision { allowed, limit, remaining: limit.saturating_sub(window.used), reset_secs: reset_secs.max(1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_budget_and_then_is_refused() {
        let limiter = RateLimiter::new(Duration::from_secs(60), None);
        assert_eq!(limiter.check("a", 2, 1).remaining, 1);
        assert!(limiter.check("a", 2, 1).allowed);
        let refused = limiter.check("a", 2, 1);
        assert!(!refused.allowed);
        assert!(refused.reset_secs >= 1 && refused.reset_secs <= 60);
        assert!(limiter.check("b", 2, 1).allowed);
    }
}
