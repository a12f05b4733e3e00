//! The stricter login limiter: failed logins per email and per client address in a window,
//! shared by every instance through Redis when one is configured, else (and during a Redis
//! outage) in this instance's memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::redis::Redis;
use crate::domain::ports::LoginThrottle;

/// At most `max_failures` failures per key within `window`; then refusals until the oldest ages out.
pub struct FailedLoginThrottle {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    shared: Option<Arc<Redis>>,
}

impl FailedLoginThrottle {
    pub fn new(max_failures: usize, window: Duration, shared: Option<Arc<Redis>>) -> Self {
        Self { max_failures, window, failures: Mutex::new(HashMap::new()), shared }
    }

    fn keys(email: &str, client: Option<&str>) -> Vec<String> {
        let mut keys = vec![format!("email:{email}")];
        if let Some(ip) = client {
            keys.push(format!("ip:{ip}"));
        }
        keys
    }
}

impl FailedLoginThrottle {
    /// Seconds until `times` has room again (0: it has room now), after forgetting old entries.
    fn wait(&self, times: &mut VecDeque<Instant>, now: Instant) -> u64 {
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
        if times.len() < self.max_failures {
            return 0;
        }
        let oldest = times[times.len() - self.max_failures];
        let left = self.window.saturating_sub(now.duration_since(oldest));
        (left.as_secs_f64().ceil() as u64).max(1)
    }

    /// Gives back the newest reservation of `key`.
    fn give_back(map: &mut HashMap<String, VecDeque<Instant>>, key: &str) {
        if let Some(times) = map.get_mut(key) {
            times.pop_back();
            if times.is_empty() {
                map.remove(key);
            }
        }
    }
}

impl FailedLoginThrottle {
    fn reserve_here(&self, email_key: &str, client: Option<&str>) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            let window = self.window;
            map.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let keys = Self::keys(email_key, client);
        let mut wait = 0;
        for key in &keys {
            if let Some(times) = map.get_mut(key) {
                wait = wait.max(self.wait(times, now));
            }
        }
        if wait > 0 {
            return Err(wait);
        }
        for key in keys {
            map.entry(key).or_default().push_back(now);
        }
        Ok(())
    }

    fn succeeded_here(&self, email_key: &str, client: Option<&str>) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&format!("email:{email_key}"));
        if let Some(ip) = client {
            Self::give_back(&mut map, &format!("ip:{ip}"));
        }
    }

    fn release_here(&self, email_key: &str, client: Option<&str>) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for key in Self::keys(email_key, client) {
            Self::give_back(&mut map, &key);
        }
    }
}

#[async_trait::async_trait]
impl LoginThrottle for FailedLoginThrottle {
    async fn reserve(&self, email_key: &str, client: Option<&str>) -> Result<(), u64> {
        if let Some(redis) = &self.shared
            && let Some(verdict) =
                redis.reserve_login(&Self::keys(email_key, client), self.max_failures, self.window).await
        {
            return verdict;
        }
        self.reserve_here(email_key, client)
    }

    async fn succeeded(&self, email_key: &str, client: Option<&str>) {
        if let Some(redis) = &self.shared {
            let email = format!("email:{email_key}");
            redis
                .forget_logins(Some(&email), &client.map(|ip| format!("ip:{ip}")).into_iter().collect::<Vec<_>>())
                .await;
        }
        self.succeeded_here(email_key, client);
    }

    async fn release(&self, email_key: &str, client: Option<&str>) {
        if let Some(redis) = &self.shared {
            redis.forget_logins(None, &Self::keys(email_key, client)).await;
        }
        self.release_here(email_key, client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_attempt_within_the_window_is_refused_before_any_is_checked() {
        let t = FailedLoginThrottle::new(10, Duration::from_secs(900), None);
        for _ in 0..10 {
            assert!(t.reserve_here("a@b.co", Some("1.2.3.4")).is_ok());
        }
        let wait = t.reserve_here("a@b.co", Some("9.9.9.9")).unwrap_err();
        assert!(wait > 800 && wait <= 900);
        assert!(t.reserve_here("other@b.co", Some("1.2.3.4")).is_err(), "the address is over budget too");
        assert!(t.reserve_here("other@b.co", Some("5.6.7.8")).is_ok());
    }

    #[test]
    fn a_success_clears_the_email_and_returns_the_address_its_attempt() {
        let t = FailedLoginThrottle::new(2, Duration::from_secs(900), None);
        t.reserve_here("a@b.co", Some("1.2.3.4")).unwrap();
        t.reserve_here("a@b.co", Some("1.2.3.4")).unwrap();
        t.succeeded_here("a@b.co", Some("1.2.3.4"));
        assert!(t.reserve_here("a@b.co", Some("5.6.7.8")).is_ok(), "the email starts afresh");
        t.release_here("a@b.co", Some("5.6.7.8"));
        assert!(t.reserve_here("c@b.co", Some("1.2.3.4")).is_ok(), "one attempt of the address was given back");
        assert!(t.reserve_here("d@b.co", Some("1.2.3.4")).is_err());
    }
}
