//! Background housekeeping timers: purging expired idempotency keys, events and audit entries
//! past retention, and finished jobs. (The job queue itself is `platform::queue`.)

use std::sync::Arc;
use std::time::Duration;

use crate::domain::ports::{AuditLog, Clock, EventLog, IdempotencyStore, JobStore};
use crate::platform::shutdown::Shutdown;

pub struct Housekeeping {
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub idempotency_retention: chrono::Duration,
    pub events: Arc<dyn EventLog>,
    pub event_retention: chrono::Duration,
    pub audit: Arc<dyn AuditLog>,
    pub audit_retention: chrono::Duration,
    pub clock: Arc<dyn Clock>,
    pub every: Duration,
    /// Succeeded jobs are kept this long (dead ones stay until an operator removes them).
    pub jobs: Arc<dyn JobStore>,
    pub job_retention: chrono::Duration,
}

impl Housekeeping {
    /// Runs until shutdown, once per `every`.
    pub async fn run(self, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.once().await,
                () = shutdown.wait() => break,
            }
        }
    }

    pub async fn once(&self) {
        let now = self.clock.now();
        match self.idempotency.purge_before(now - self.idempotency_retention).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
        }
        match self.events.purge_before(now - self.event_retention).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "events past retention purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging events failed"),
        }
        match self.audit.purge_before(now - self.audit_retention).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "audit entries past retention purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging audit entries failed"),
        }
        match self.jobs.purge_succeeded_before(now - self.job_retention).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "succeeded jobs purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging succeeded jobs failed"),
        }
    }
}
