//! The stricter login limiter: failed logins per email and per client address in a window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::ports::LoginThrottle;

/// At most `max_failures` failures per key within `window`; then refusals until the oldest ages out.
pub struct FailedLoginThrottle {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailedLoginThrottle {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    fn keys(email: &str, client: Option<&str>) -> Vec<String> {
        let mut keys = vec![format!("email:{email}")];
        if let Some(ip) = client {
            keys.push(format!("ip:{ip}"));
        }
        keys
    }
}

impl LoginThrottle for FailedLoginThrottle {
    fn check(&self, email_key: &str, client: Option<&str>) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = 0u64;
        for key in Self::keys(email_key, client) {
            if let Some(times) = map.get_mut(&key) {
                while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                    times.pop_front();
                }
                if times.len() >= self.max_failures {
                    let oldest = times[times.len() - self.max_failures];
                    let left = self.window.saturating_sub(now.duration_since(oldest));
                    wait = wait.max(left.as_secs_f64().ceil() as u64);
                }
            }
        }
        if wait > 0 { Err(wait) } else { Ok(()) }
    }

    fn record_failure(&self, email_key: &str, client: Option<&str>) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            let window = self.window;
            map.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        for key in Self::keys(email_key, client) {
            let times = map.entry(key).or_default();
            times.push_back(now);
            if times.len() > self.max_failures * 2 {
                times.pop_front();
            }
        }
    }

    fn record_success(&self, email_key: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&format!("email:{email_key}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_failure_within_the_window_is_refused() {
        let t = FailedLoginThrottle::new(10, Duration::from_secs(900));
        for _ in 0..10 {
            assert!(t.check("a@b.co", Some("1.2.3.4")).is_ok());
            t.record_failure("a@b.co", Some("1.2.3.4"));
        }
        let wait = t.check("a@b.co", Some("9.9.9.9")).unwrap_err();
        assert!(wait > 800 && wait <= 900);
        assert!(t.check("other@b.co", Some("1.2.3.4")).is_err(), "the address is over budget too");
        assert!(t.check("other@b.co", Some("5.6.7.8")).is_ok());
    }
}
