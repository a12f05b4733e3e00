//! `IdempotencyStore` on SQL: atomic claims keyed by (scope, key) and kept outcomes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::sql::Arg;
use super::{PURGE_CHUNK, SqlStore, micros};
use crate::domain::error::DomainResult;
use crate::domain::ports::{IdempotencyClaim, IdempotencyStore, SavedOutcome};

/// What a claim found of an existing key: its fingerprint, completion, outcome and claim time.
type Existing = (String, Option<i64>, Option<Vec<u8>>, i64);

#[async_trait]
impl IdempotencyStore for SqlStore {
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        stale_after: DateTime<Utc>,
    ) -> DomainResult<IdempotencyClaim> {
        let (now, stale_after) = (micros(now), micros(stale_after));
        self.db
            .write((scope.to_string(), key.to_string(), fingerprint.to_string()), move |(scope, key, fingerprint), c| {
                Box::pin(async move {
                    let inserted = c
                        .exec(
                            "INSERT INTO idempotency_keys (scope, idem_key, fingerprint, created_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (scope, idem_key) DO NOTHING",
                            &[Arg::from(scope), Arg::from(key), Arg::from(fingerprint), Arg::Int(now)],
                        )
                        .await?;
                    if inserted == 1 {
                        return Ok(IdempotencyClaim::Claimed);
                    }
                    let existing: Option<Existing> = c
                        .query_opt(
                            "SELECT fingerprint, completed_at, body, created_at FROM idempotency_keys \
                             WHERE scope = $1 AND idem_key = $2",
                            &[Arg::from(scope), Arg::from(key)],
                            |r| Ok((r.text(0)?, r.opt_int(1)?, r.opt_blob(2)?, r.int(3)?)),
                        )
                        .await?;
                    // Gone between the insert and the read (a purge or a release): someone else's
                    // claim ended, so ours counts as in progress; the client retries.
                    let Some((stored, completed, body, created)) = existing else {
                        return Ok(IdempotencyClaim::InProgress);
                    };
                    if stored != *fingerprint {
                        return Ok(IdempotencyClaim::Mismatch);
                    }
                    if completed.is_some() {
                        return Ok(IdempotencyClaim::Replay(SavedOutcome { body: body.unwrap_or_default() }));
                    }
                    if created >= stale_after {
                        return Ok(IdempotencyClaim::InProgress);
                    }
                    let taken = c
                        .exec(
                            "UPDATE idempotency_keys SET created_at = $1 WHERE scope = $2 AND idem_key = $3 \
                             AND completed_at IS NULL AND created_at = $4",
                            &[Arg::Int(now), Arg::from(scope), Arg::from(key), Arg::Int(created)],
                        )
                        .await?;
                    Ok(if taken == 1 { IdempotencyClaim::Claimed } else { IdempotencyClaim::InProgress })
                })
            })
            .await
    }

    async fn complete(&self, scope: &str, key: &str, outcome: &SavedOutcome, now: DateTime<Utc>) -> DomainResult<()> {
        self.db
            .write((scope.to_string(), key.to_string(), outcome.body.clone()), move |(scope, key, body), c| {
                Box::pin(async move {
                    c.exec(
                        "UPDATE idempotency_keys SET body = $1, completed_at = $2 WHERE scope = $3 AND idem_key = $4",
                        &[Arg::Blob(body), Arg::Int(micros(now)), Arg::from(scope), Arg::from(key)],
                    )
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    async fn release(&self, scope: &str, key: &str) -> DomainResult<()> {
        self.db
            .write((scope.to_string(), key.to_string()), move |(scope, key), c| {
                Box::pin(async move {
                    c.exec(
                        "DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND completed_at IS NULL",
                        &[Arg::from(scope), Arg::from(key)],
                    )
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    /// In chunks, like the event log's purge.
    async fn purge_before(&self, before: DateTime<Utc>) -> DomainResult<u64> {
        let before = micros(before);
        let mut purged = 0;
        loop {
            let done = self
                .db
                .write((), move |_, c| {
                    Box::pin(async move {
                        Ok(c.exec(
                            "DELETE FROM idempotency_keys WHERE (scope, idem_key) IN \
                             (SELECT scope, idem_key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
                            &[Arg::Int(before), Arg::Int(PURGE_CHUNK)],
                        )
                        .await?)
                    })
                })
                .await?;
            purged += done;
            if done < PURGE_CHUNK as u64 {
                return Ok(purged);
            }
        }
    }
}
