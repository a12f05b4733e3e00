//! Limits shared by every instance through Redis (`POLYPORT_REDIS_URL`): request budgets, the
//! failed-login throttle, the WS-Security nonce replay cache and per-caller stream caps (leases
//! each instance renews while its streams are open, so a crashed instance's expire), each one
//! atomic script.
//!
//! When Redis does not answer within `TIMEOUT`, each call reports `None` and its caller falls
//! back (budgets, the login throttle and stream caps to this instance's own memory, nonces
//! refuse); the
//! first failure logs a warning, each fallback counts in `polyport_redis_fallbacks_total`, and
//! for a second after a failure calls go straight to the fallback, so an outage adds no latency.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::metrics::{LimitLabels, Metrics};
use super::ratelimit::Decision;

/// How long one call may take before its limit falls back.
const TIMEOUT: Duration = Duration::from_millis(250);
/// How long calls skip Redis after a failure.
const PAUSE_MS: u64 = 1_000;

/// Fixed window: KEYS[1] budget; ARGV cost, limit, period ms -> {allowed, used, ms left}.
static CHARGE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local cost, limit, period = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local left = redis.call('PTTL', KEYS[1])
if left < 0 then used = 0; left = period end
local allowed = 0
if used + cost <= limit then
  allowed = 1
  used = used + cost
  redis.call('SET', KEYS[1], used, 'PX', left)
end
return {allowed, used, left}",
    )
});

/// Sliding window of failures per key (a sorted set of attempt times). KEYS: the email's and
/// the address's; ARGV now ms, window ms, max, member -> 0 (reserved in every key) or ms to wait.
static RESERVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local now, window, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n >= max then
    local oldest = redis.call('ZRANGE', key, n - max, n - max, 'WITHSCORES')
    local left = tonumber(oldest[2]) + window - now
    if left > wait then wait = left end
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, window)
end
return 0",
    )
});

/// Open streams per caller: KEYS[1] the caller's leases; ARGV now ms, lease ms, max, member
/// -> 1 (leased) or 0 (the caller is at its cap on all instances together).
static LEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1",
    )
});

/// How long a stream lease lives without renewal (an instance that dies frees its callers'
/// places after this), and how often live leases are renewed.
const LEASE_MS: u64 = 30_000;
pub const RENEW_EVERY: Duration = Duration::from_secs(10);

/// One open stream's place under its caller's shared cap; given back on drop.
pub struct StreamLease {
    redis: Arc<Redis>,
    member: String,
}

impl Drop for StreamLease {
    fn drop(&mut self) {
        let key = self.redis.leases.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.member);
        if let (Some(key), Ok(runtime)) = (key, tokio::runtime::Handle::try_current()) {
            let (redis, member) = (self.redis.clone(), std::mem::take(&mut self.member));
            runtime.spawn(async move {
                let mut conn = redis.conn.clone();
                let mut cmd = redis::cmd("ZREM");
                cmd.arg(key).arg(member);
                let _: Option<i64> = redis.call("stream_caps", cmd.query_async(&mut conn)).await;
            });
        }
    }
}

pub struct Redis {
    conn: ConnectionManager,
    prefix: String,
    paused_until_ms: AtomicU64,
    healthy: AtomicBool,
    fallbacks: Family<LimitLabels, Counter>,
    up: Gauge,
    /// This instance's live stream leases: member -> the caller's key.
    leases: Mutex<HashMap<String, String>>,
}

impl Redis {
    /// A lazy connection to `url` (the first call connects; a server that is down at start is
    /// an outage like any other).
    pub fn connect(url: &str, prefix: &str, metrics: &Metrics) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("POLYPORT_REDIS_URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        metrics.redis_up.set(1);
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            paused_until_ms: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            fallbacks: metrics.redis_fallbacks.clone(),
            up: metrics.redis_up.clone(),
            leases: Mutex::default(),
        })
    }

    /// A place for one more stream of `key` under its cap of `max` on all instances together:
    /// Some(Err(())) when the caller is at it.
    pub async fn lease_stream(self: &Arc<Self>, key: &str, max: usize) -> Option<Result<StreamLease, ()>> {
        let mut conn = self.conn.clone();
        let (redis_key, member) = (format!("{}streams:{key}", self.prefix), uuid::Uuid::now_v7().to_string());
        let mut invocation = LEASE.key(&redis_key);
        invocation.arg(now_ms()).arg(LEASE_MS).arg(max).arg(&member);
        let leased: u64 = self.call("stream_caps", invocation.invoke_async(&mut conn)).await?;
        if leased == 0 {
            return Some(Err(()));
        }
        self.leases.lock().unwrap_or_else(|e| e.into_inner()).insert(member.clone(), redis_key);
        Some(Ok(StreamLease { redis: self.clone(), member }))
    }

    /// Extends every live lease of this instance by `LEASE_MS` (run every `RENEW_EVERY`).
    pub async fn renew_leases(&self) {
        let live: Vec<(String, String)> =
            self.leases.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(m, k)| (m.clone(), k.clone())).collect();
        if live.is_empty() {
            return;
        }
        let until = now_ms() + LEASE_MS;
        let mut pipe = redis::pipe();
        for (member, key) in &live {
            pipe.cmd("ZADD").arg(key).arg("XX").arg(until).arg(member).ignore();
            pipe.cmd("PEXPIRE").arg(key).arg(LEASE_MS).ignore();
        }
        let mut conn = self.conn.clone();
        let _: Option<()> = self.call("stream_caps", pipe.query_async(&mut conn)).await;
    }

    /// Charges `cost` to `key`'s budget of `limit` per `period`, for every instance at once.
    pub async fn charge(&self, key: &str, limit: u64, cost: u64, period: Duration) -> Option<Decision> {
        let mut conn = self.conn.clone();
        let mut invocation = CHARGE.key(format!("{}budget:{key}", self.prefix));
        invocation.arg(cost).arg(limit).arg(period.as_millis() as u64);
        let (allowed, used, left_ms): (u64, u64, u64) =
            self.call("rate_budget", invocation.invoke_async(&mut conn)).await?;
        Some(Decision {
            allowed: allowed == 1,
            limit,
            remaining: limit.saturating_sub(used),
            reset_secs: left_ms.div_ceil(1000).max(1),
        })
    }

    /// Reserves a login attempt in each key's failure window: Err(seconds to wait) when one is
    /// full.
    pub async fn reserve_login(&self, keys: &[String], max: usize, window: Duration) -> Option<Result<(), u64>> {
        let mut conn = self.conn.clone();
        let mut invocation = RESERVE.prepare_invoke();
        for key in keys {
            invocation.key(format!("{}login:{key}", self.prefix));
        }
        invocation.arg(now_ms()).arg(window.as_millis() as u64).arg(max).arg(uuid::Uuid::now_v7().to_string());
        let wait_ms: u64 = self.call("login_throttle", invocation.invoke_async(&mut conn)).await?;
        Some(if wait_ms == 0 { Ok(()) } else { Err(wait_ms.div_ceil(1000).max(1)) })
    }

    /// Forgets `clear` entirely and gives back the newest reservation of each of `give_back`.
    pub async fn forget_logins(&self, clear: Option<&str>, give_back: &[String]) {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        if let Some(key) = clear {
            pipe.del(format!("{}login:{key}", self.prefix)).ignore();
        }
        for key in give_back {
            pipe.zpopmax(format!("{}login:{key}", self.prefix), 1).ignore();
        }
        let _: Option<()> = self.call("login_throttle", pipe.query_async(&mut conn)).await;
    }

    /// Records `nonce` for `window`: Some(false) when another instance (or this one) saw it.
    pub async fn fresh_nonce(&self, nonce: &str, window: Duration) -> Option<bool> {
        use sha2::Digest;
        let digest = format!("{:x}", sha2::Sha256::digest(nonce.as_bytes()));
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}nonce:{digest}", self.prefix)).arg(1).arg("NX").arg("PX").arg(window.as_millis() as u64);
        let set: Option<String> = self.call("nonce_cache", cmd.query_async(&mut conn)).await?;
        Some(set.is_some())
    }

    /// Runs one call unless paused after a recent failure; counts and logs a fallback.
    async fn call<T>(
        &self,
        limit: &'static str,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        if now_ms() < self.paused_until_ms.load(Ordering::Relaxed) {
            self.fallbacks.get_or_create(&LimitLabels { limit }).inc();
            return None;
        }
        let error = match tokio::time::timeout(TIMEOUT, fut).await {
            Ok(Ok(value)) => {
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    self.up.set(1);
                    tracing::info!("Redis answers again: limits are shared by every instance");
                }
                return Some(value);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", TIMEOUT.as_millis()),
        };
        self.paused_until_ms.store(now_ms() + PAUSE_MS, Ordering::Relaxed);
        self.fallbacks.get_or_create(&LimitLabels { limit }).inc();
        if self.healthy.swap(false, Ordering::Relaxed) {
            self.up.set(0);
            tracing::warn!(
                error = %error,
                "Redis unreachable: request budgets, the login throttle and stream caps count per instance \
                 and WS-Security digests are refused until it answers"
            );
        }
        None
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
