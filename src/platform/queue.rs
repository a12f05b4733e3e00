//! The durable job queue's rules: leases, retries with exponential backoff and jitter, a dead
//! state after the configured attempts, bounded concurrency, graceful shutdown and metrics.
//! Jobs live in the store (`JobStore`), so they survive restarts and kill -9; a worker that
//! dies loses its lease and another instance takes the job once the lease expires. Execution
//! is at least once: handlers are idempotent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use super::metrics::{JobLabels, Metrics};
use super::shutdown::Shutdown;
use crate::domain::ports::{ClaimedJob, Clock, JobStore};

/// How the queue runs.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Jobs run at once by this instance.
    pub concurrency: usize,
    /// How long a claimed job is leased: past it, another worker may take it.
    pub lease: Duration,
    /// Attempts before a job is dead.
    pub max_attempts: u32,
    /// The first retry's delay; each later one doubles, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How often the store is polled for due jobs (jobs queued here wake the worker at once).
    pub poll: Duration,
    /// How long in-flight jobs get to finish at shutdown before their leases are handed back.
    pub grace: Duration,
}

/// Why a run failed.
#[derive(Debug)]
pub enum JobError {
    /// Worth another attempt (after the backoff).
    Retry(String),
    /// Never worth another attempt (a malformed payload): dead at once.
    Fatal(String),
}

/// Runs one kind of job. MUST be idempotent: a job may run more than once (a lease that
/// expired mid-run, a crash after the work and before the success was recorded).
#[async_trait]
pub trait Handler: Send + Sync {
    async fn run(&self, job: &ClaimedJob) -> Result<(), JobError>;
}

/// The delay before attempt `attempts + 1`: `base * 2^(attempts-1)` capped at `max`, with
/// "equal jitter" (half fixed, half random), so retries of many jobs spread out while a retry
/// never comes sooner than half its nominal delay.
pub fn backoff(attempts: i64, base: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let exp = attempts.clamp(1, 32) as u32 - 1;
    let nominal = base.saturating_mul(2u32.saturating_pow(exp)).min(max);
    let half = nominal / 2;
    half + half.mul_f64(rng.r#gen::<f64>())
}

/// The queue and its handlers.
pub struct Queue {
    store: Arc<dyn JobStore>,
    clock: Arc<dyn Clock>,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
    settings: QueueSettings,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    /// This process, in lease tokens (`<instance>:<claim>`), for operators reading the table.
    instance: String,
}

impl Queue {
    pub fn new(
        store: Arc<dyn JobStore>,
        clock: Arc<dyn Clock>,
        settings: QueueSettings,
        metrics: Arc<Metrics>,
        wake: Arc<Notify>,
    ) -> Self {
        let instance = crate::domain::service::new_id();
        Self { store, clock, handlers: HashMap::new(), settings, metrics, wake, instance }
    }

    /// Registers the handler of `kind`.
    pub fn handle(mut self, kind: &'static str, handler: Arc<dyn Handler>) -> Self {
        self.handlers.insert(kind, handler);
        self
    }

    /// Claims and runs jobs until shutdown starts (draining); then claims nothing more, lets
    /// in-flight jobs finish within the grace period, and hands back the leases of the rest.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut running: JoinSet<()> = JoinSet::new();
        let mut leased: HashMap<tokio::task::Id, (String, String)> = HashMap::new();
        let mut poll = tokio::time::interval(self.settings.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The gauges are read from the store, five polls apart (at least 250 ms, at most 5 s).
        let every = (self.settings.poll * 5).clamp(Duration::from_millis(250), Duration::from_secs(5));
        let mut sample = tokio::time::interval(every);
        sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let draining = shutdown.wait_draining();
        tokio::pin!(draining);
        loop {
            tokio::select! {
                () = &mut draining => break,
                _ = poll.tick() => {}
                () = self.wake.notified() => {}
                _ = sample.tick() => { self.sample().await; continue; }
                Some(done) = running.join_next_with_id() => {
                    leased.remove(&match done { Ok((id, ())) => id, Err(e) => e.id() });
                }
            }
            let free = slots.available_permits();
            if free == 0 {
                continue;
            }
            let now = self.clock.now();
            let until = now + chrono::Duration::from_std(self.settings.lease).unwrap_or_default();
            let lease = format!("{}:{}", self.instance, crate::domain::service::new_id());
            let jobs = match self.store.claim(&lease, now, until, free as u32).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming jobs failed; retrying at the next poll");
                    continue;
                }
            };
            let claimed = jobs.len();
            for job in jobs {
                let Ok(permit) = slots.clone().acquire_owned().await else { break };
                let (id, lease) = (job.id.clone(), job.lease.clone());
                let me = self.clone();
                let handle = running.spawn(async move {
                    me.execute(job).await;
                    drop(permit);
                });
                leased.insert(handle.id(), (id, lease));
            }
            // A full batch: there may be more due right now.
            if claimed == free {
                self.wake.notify_one();
            }
        }
        self.stop(running, leased).await;
    }

    /// Shutdown: waits up to the grace period, then aborts what still runs and releases its
    /// leases, so another instance (or this one after a restart) runs it without waiting for
    /// the lease to expire.
    async fn stop(&self, mut running: JoinSet<()>, mut leased: HashMap<tokio::task::Id, (String, String)>) {
        let deadline = tokio::time::Instant::now() + self.settings.grace;
        while !running.is_empty() {
            match tokio::time::timeout_at(deadline, running.join_next_with_id()).await {
                Ok(Some(Ok((id, ())))) => {
                    leased.remove(&id);
                }
                Ok(Some(Err(e))) => {
                    leased.remove(&e.id());
                }
                Ok(None) => break,
                Err(_) => {
                    running.abort_all();
                    while running.join_next().await.is_some() {}
                    let now = self.clock.now();
                    for (_, (id, lease)) in leased.drain() {
                        match self.store.release(&id, &lease, now).await {
                            Ok(_) => tracing::info!(job_id = %id, "job lease handed back at shutdown"),
                            Err(e) => tracing::warn!(job_id = %id, error = %e, "could not hand back a job lease"),
                        }
                    }
                    break;
                }
            }
        }
        tracing::info!("job workers stopped");
    }

    /// Runs one claimed job and records its outcome (lease-checked).
    async fn execute(&self, job: ClaimedJob) {
        let labels = |outcome: &'static str| JobLabels { kind: job.kind.clone(), outcome };
        let max = i64::from(self.settings.max_attempts.max(1));
        let result = if job.attempts > max {
            // Its earlier leases all expired (a crash or a hang each time): give up.
            Err(JobError::Fatal(format!("lease lost {} times", job.attempts - 1)))
        } else {
            match self.handlers.get(job.kind.as_str()) {
                Some(handler) => handler.run(&job).await,
                None => Err(JobError::Fatal(format!("no handler for job kind {:?}", job.kind))),
            }
        };
        let now = self.clock.now();
        let recorded = match result {
            Ok(()) => {
                self.metrics.job_runs.get_or_create(&labels("succeeded")).inc();
                self.store.succeed(&job.id, &job.lease, now).await
            }
            Err(JobError::Retry(error)) if job.attempts < max => {
                self.metrics.job_runs.get_or_create(&labels("failed")).inc();
                let delay = backoff(
                    job.attempts,
                    self.settings.backoff_base,
                    self.settings.backoff_max,
                    &mut rand::thread_rng(),
                );
                let run_at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                tracing::info!(job_id = %job.id, kind = %job.kind, attempt = job.attempts, retry_in_ms = delay.as_millis() as u64, %error, "job failed; retrying");
                self.store.retry(&job.id, &job.lease, run_at, &error, now).await
            }
            Err(JobError::Retry(error) | JobError::Fatal(error)) => {
                self.metrics.job_runs.get_or_create(&labels("dead")).inc();
                tracing::warn!(job_id = %job.id, kind = %job.kind, attempts = job.attempts, %error, "job is dead");
                self.store.bury(&job.id, &job.lease, &error, now).await
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job_id = %job.id, "the job's lease expired before it finished; another worker owns it")
            }
            Err(e) => {
                tracing::warn!(job_id = %job.id, error = %e, "recording a job outcome failed; it runs again after its lease")
            }
        }
    }

    /// Refreshes the queue gauges from the store (every instance sees the whole queue).
    async fn sample(&self) {
        let now = self.clock.now();
        match self.store.counts(now).await {
            Ok(c) => {
                self.metrics.jobs_queued.set(c.queued);
                self.metrics.jobs_running.set(c.running);
                self.metrics.jobs_dead.set(c.dead);
                let age = c.oldest_due.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
                self.metrics.jobs_oldest_queued_age.set(age);
            }
            Err(e) => tracing::warn!(error = %e, "sampling the job queue failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_with_at_most_half_jitter_and_a_cap() {
        let mut rng = rand::thread_rng();
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..100 {
            let first = backoff(1, base, max, &mut rng);
            assert!(first >= Duration::from_millis(50) && first <= base, "{first:?}");
            let third = backoff(3, base, max, &mut rng);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400), "{third:?}");
            assert!(backoff(30, base, max, &mut rng) <= max);
        }
    }
}
