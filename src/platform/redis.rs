//! Limits shared by every instance through Redis (`POLYPORT_REDIS_URL`): request budgets, the
//! failed-login throttle and the WS-Security nonce replay cache, each one atomic script.
//!
//! When Redis does not answer within `TIMEOUT`, each call reports `None` and its caller falls
//! back (budgets and the login throttle to this instance's own memory, nonces refuse); the
//! first failure logs a warning, each fallback counts in `polyport_redis_fallbacks_total`, and
//! for a second after a failure calls go straight to the fallback, so an outage adds no latency.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

pub struct Redis {
    conn: ConnectionManager,
    prefix: String,
    paused_until_ms: AtomicU64,
    healthy: AtomicBool,
    fallbacks: Family<LimitLabels, Counter>,
    up: Gauge,
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
        })
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
                "Redis unreachable: request budgets and the login throttle count per instance and \
                 WS-Security digests are refused until it answers"
            );
        }
        None
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
