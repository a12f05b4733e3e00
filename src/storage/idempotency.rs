//! `IdempotencyStore` on SQL: atomic claims keyed by (scope, key) and kept outcomes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{SqlStore, db_error, micros, text};
use crate::domain::error::DomainResult;
use crate::domain::ports::{IdempotencyClaim, IdempotencyStore, SavedOutcome};

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
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, idem_key, fingerprint, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (scope, idem_key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .bind(micros(now))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        if inserted.rows_affected() == 1 {
            return Ok(IdempotencyClaim::Claimed);
        }
        let row = sqlx::query(
            "SELECT fingerprint, completed_at, body, created_at FROM idempotency_keys \
             WHERE scope = $1 AND idem_key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.write)
        .await
        .map_err(db_error)?;
        let Some(row) = row else {
            return Box::pin(self.claim(scope, key, fingerprint, now, stale_after)).await;
        };
        if text(&row, "fingerprint")? != fingerprint {
            return Ok(IdempotencyClaim::Mismatch);
        }
        if row.try_get::<Option<i64>, _>("completed_at").map_err(db_error)?.is_some() {
            return Ok(IdempotencyClaim::Replay(SavedOutcome {
                body: row.try_get::<Option<Vec<u8>>, _>("body").map_err(db_error)?.unwrap_or_default(),
            }));
        }
        let created: i64 = row.try_get("created_at").map_err(db_error)?;
        if created >= micros(stale_after) {
            return Ok(IdempotencyClaim::InProgress);
        }
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET created_at = $1 WHERE scope = $2 AND idem_key = $3 AND completed_at IS NULL AND created_at = $4",
        )
        .bind(micros(now))
        .bind(scope)
        .bind(key)
        .bind(created)
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(if taken.rows_affected() == 1 { IdempotencyClaim::Claimed } else { IdempotencyClaim::InProgress })
    }

    async fn complete(&self, scope: &str, key: &str, outcome: &SavedOutcome, now: DateTime<Utc>) -> DomainResult<()> {
        sqlx::query("UPDATE idempotency_keys SET body = $1, completed_at = $2 WHERE scope = $3 AND idem_key = $4")
            .bind(&outcome.body)
            .bind(micros(now))
            .bind(scope)
            .bind(key)
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn release(&self, scope: &str, key: &str) -> DomainResult<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND completed_at IS NULL")
            .bind(scope)
            .bind(key)
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn purge_before(&self, before: DateTime<Utc>) -> DomainResult<u64> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(micros(before))
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected())
    }
}
