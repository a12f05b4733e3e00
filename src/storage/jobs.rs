//! `JobStore` on SQL: the durable job queue. PostgreSQL claims with `FOR UPDATE SKIP LOCKED`
//! so concurrent instances never lease the same row; SQLite claims through its one writer,
//! which serializes claims anyway. Every change of a claimed job checks its lease token.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::sql::{Arg, Conn, Row};
use super::{SqlStore, micros, time};
use crate::domain::error::DomainResult;
use crate::domain::ports::{ClaimedJob, JobCounts, JobStore, NewJob};
use crate::domain::service::new_id;

fn to_claimed(lease: String) -> impl Fn(&dyn Row) -> DomainResult<ClaimedJob> + Sync {
    move |row| {
        Ok(ClaimedJob {
            id: row.text(0)?,
            kind: row.text(1)?,
            payload: row.text(2)?,
            trace_id: row.opt_text(3)?,
            attempts: row.int(4)?,
            lease: lease.clone(),
            created_at: time(row, 5)?,
        })
    }
}

/// Inserts a job inside the caller's transaction; false when its dedupe key existed.
pub(super) async fn insert_job(c: &mut Conn<'_>, job: &NewJob, now: DateTime<Utc>) -> DomainResult<bool> {
    let id = new_id();
    let done = c
        .exec(
            "INSERT INTO jobs (id, kind, payload, dedupe_key, trace_id, state, attempts, run_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $7) ON CONFLICT (dedupe_key) DO NOTHING",
            &[
                Arg::from(&id),
                Arg::from(&job.kind),
                Arg::from(&job.payload),
                Arg::OptText(job.dedupe_key.as_deref()),
                Arg::OptText(job.trace_id.as_deref()),
                Arg::Int(micros(job.run_at)),
                Arg::Int(micros(now)),
            ],
        )
        .await?;
    Ok(done > 0)
}

/// The outbox half of webhooks: in the transaction that appends event `event_id`, queues the
/// job that fans it out, only when some webhook listens to one of the event's `topics`. The job
/// carries the event's `trace_id` (when it has one). Most events have no listener: they cost one
/// indexed lookup, and only a listened-to event makes a job (and its id).
pub(super) async fn enqueue_fanout(
    c: &mut Conn<'_>,
    event_id: i64,
    topics: &[String],
    at: DateTime<Utc>,
    trace_id: Option<&str>,
) -> DomainResult<()> {
    if topics.is_empty() {
        return Ok(());
    }
    if !any_subscribed(c, topics).await? {
        return Ok(());
    }
    let job = NewJob {
        kind: crate::domain::webhook::FANOUT_JOB.to_string(),
        payload: format!("{{\"event_id\":{event_id}}}"),
        dedupe_key: Some(format!("fanout:{event_id}")),
        trace_id: trace_id.map(str::to_string),
        run_at: at,
    };
    insert_job(c, &job, at).await?;
    FANOUTS_QUEUED.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Fan-out jobs queued by this process's write jobs, counted so a write wakes the job queue
/// only when it queued one: most writes touch no subscribed topic, and a wake costs the queue
/// a claim. A count that moves for another store's write (tests run several in one process)
/// or for a batch attempt that was rolled back only wakes the queue for nothing; it cannot
/// miss one, since the count moves before the commit that a write waits for.
static FANOUTS_QUEUED: AtomicU64 = AtomicU64::new(0);

/// The count so far: a write reads it before it starts and again after its commit.
pub(super) fn fanouts_queued() -> u64 {
    FANOUTS_QUEUED.load(Ordering::Relaxed)
}

/// Whether any webhook subscribes to one of `topics`. SQLite seeks the index once per topic: an
/// `IN` list there builds an ephemeral index on every call, several times the cost of the
/// seeks. PostgreSQL gets one statement (one round trip).
async fn any_subscribed(c: &mut Conn<'_>, topics: &[String]) -> DomainResult<bool> {
    if matches!(c, Conn::Sqlite(_)) {
        for topic in topics {
            let args = [Arg::from(topic)];
            if c.query_opt("SELECT 1 FROM webhook_topics WHERE topic = $1 LIMIT 1", &args, |_| Ok(())).await?.is_some()
            {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    let sql =
        format!("SELECT 1 FROM webhook_topics WHERE topic IN ({}) LIMIT 1", super::sql::placeholders(topics.len()));
    let args: Vec<Arg<'_>> = topics.iter().map(Arg::from).collect();
    Ok(c.query_opt(&sql, &args, |_| Ok(())).await?.is_some())
}

#[async_trait]
impl JobStore for SqlStore {
    async fn enqueue(&self, jobs: &[NewJob]) -> DomainResult<u64> {
        let now = chrono::Utc::now();
        let inserted = self
            .db
            .write(jobs.to_vec(), move |jobs, c| {
                Box::pin(async move {
                    let mut n = 0;
                    for job in jobs {
                        n += u64::from(insert_job(c, job, now).await?);
                    }
                    Ok(n)
                })
            })
            .await?;
        if inserted > 0 {
            self.jobs_enqueued.notify_one();
        }
        Ok(inserted)
    }

    async fn claim(
        &self,
        lease: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> DomainResult<Vec<ClaimedJob>> {
        // A read first: an idle queue costs no write transaction per poll (on SQLite every write
        // goes through the one writer, which requests need).
        let due = self
            .db
            .fetch_opt(
                "SELECT 1 FROM jobs WHERE (state = 'queued' AND run_at <= $1) OR (state = 'running' AND locked_until <= $1) \
                 LIMIT 1",
                &[Arg::Int(micros(now))],
                |_| Ok(()),
            )
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        self.db
            .write(lease.to_string(), move |lease, c| {
                Box::pin(async move {
                    // PostgreSQL: rows another claimer holds are skipped, not waited for.
                    let lock = if matches!(c, Conn::Postgres(_)) { " FOR UPDATE SKIP LOCKED" } else { "" };
                    let sql = format!(
                        "UPDATE jobs SET state = 'running', lease_owner = $1, locked_until = $2, attempts = attempts + 1, \
                         updated_at = $3 WHERE id IN (SELECT id FROM jobs WHERE (state = 'queued' AND run_at <= $3) \
                         OR (state = 'running' AND locked_until <= $3) ORDER BY run_at, id LIMIT $4{lock}) \
                         RETURNING id, kind, payload, trace_id, attempts, created_at"
                    );
                    let args = [Arg::from(lease), Arg::Int(micros(until)), Arg::Int(micros(now)), Arg::Int(i64::from(limit))];
                    c.query_all(&sql, &args, to_claimed(lease.clone())).await
                })
            })
            .await
    }

    async fn succeed(&self, id: &str, lease: &str, now: DateTime<Utc>) -> DomainResult<bool> {
        self.finish(
            "UPDATE jobs SET state = 'succeeded', locked_until = NULL, last_error = NULL, updated_at = $1 \
             WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
            vec![V::I(micros(now))],
            id,
            lease,
        )
        .await
    }

    async fn retry(
        &self,
        id: &str,
        lease: &str,
        run_at: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> DomainResult<bool> {
        self.finish(
            "UPDATE jobs SET state = 'queued', locked_until = NULL, lease_owner = NULL, updated_at = $1, run_at = $2, \
             last_error = $3 WHERE id = $4 AND lease_owner = $5 AND state = 'running'",
            vec![V::I(micros(now)), V::I(micros(run_at)), V::error(error)],
            id,
            lease,
        )
        .await
    }

    async fn bury(&self, id: &str, lease: &str, error: &str, now: DateTime<Utc>) -> DomainResult<bool> {
        self.finish(
            "UPDATE jobs SET state = 'dead', locked_until = NULL, updated_at = $1, last_error = $2 \
             WHERE id = $3 AND lease_owner = $4 AND state = 'running'",
            vec![V::I(micros(now)), V::error(error)],
            id,
            lease,
        )
        .await
    }

    async fn release(&self, id: &str, lease: &str, now: DateTime<Utc>) -> DomainResult<bool> {
        self.finish(
            "UPDATE jobs SET state = 'queued', locked_until = NULL, lease_owner = NULL, updated_at = $1, run_at = $1, \
             attempts = attempts - 1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
            vec![V::I(micros(now))],
            id,
            lease,
        )
        .await
    }

    async fn counts(&self, now: DateTime<Utc>) -> DomainResult<JobCounts> {
        let rows = self
            .db
            .fetch_all(
                "SELECT state, COUNT(*) FROM jobs WHERE state IN ('queued', 'running', 'dead') GROUP BY state",
                &[],
                |r| Ok((r.text(0)?, r.int(1)?)),
            )
            .await?;
        let mut counts = JobCounts::default();
        for (state, n) in rows {
            match state.as_str() {
                "queued" => counts.queued = n,
                "running" => counts.running = n,
                _ => counts.dead = n,
            }
        }
        counts.oldest_due = self
            .db
            .fetch_opt(
                "SELECT MIN(run_at) FROM jobs WHERE state = 'queued' AND run_at <= $1",
                &[Arg::Int(micros(now))],
                |r| Ok(r.opt_int(0)?.map(super::from_micros)),
            )
            .await?
            .flatten();
        Ok(counts)
    }

    async fn purge_succeeded_before(&self, before: DateTime<Utc>) -> DomainResult<u64> {
        let before = micros(before);
        let mut purged = 0;
        loop {
            let done = self
                .db
                .write((), move |_, c| {
                    Box::pin(async move {
                        Ok(c.exec(
                            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state = 'succeeded' AND updated_at < $1 \
                             LIMIT $2)",
                            &[Arg::Int(before), Arg::Int(super::PURGE_CHUNK)],
                        )
                        .await?)
                    })
                })
                .await?;
            purged += done;
            if done < super::PURGE_CHUNK as u64 {
                return Ok(purged);
            }
        }
    }
}

/// An owned statement value (a job outcome's update outlives the caller's borrows).
enum V {
    I(i64),
    T(String),
}

impl V {
    /// Errors are kept short: they are read by people, never a whole answer body.
    fn error(e: &str) -> V {
        V::T(e.chars().take(500).collect())
    }
}

impl SqlStore {
    /// Runs one lease-checked update: `values` first (placeholders are numbered in order of
    /// first use), then the job id and its lease.
    async fn finish(&self, sql: &'static str, values: Vec<V>, id: &str, lease: &str) -> DomainResult<bool> {
        self.db
            .write((values, id.to_string(), lease.to_string()), move |(values, id, lease), c| {
                Box::pin(async move {
                    let mut args: Vec<Arg<'_>> = values
                        .iter()
                        .map(|v| match v {
                            V::I(i) => Arg::Int(*i),
                            V::T(t) => Arg::Text(t),
                        })
                        .collect();
                    args.extend([Arg::from(id), Arg::from(lease)]);
                    Ok(c.exec(sql, &args).await? > 0)
                })
            })
            .await
    }
}
