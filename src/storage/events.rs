//! `EventLog` on SQL: reading the durable event log in id order, and retention.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{SqlStore, db_error, micros, text, time};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::events::{EventType, StoredEvent, Subject};
use crate::domain::ports::EventLog;

#[async_trait]
impl EventLog for SqlStore {
    async fn read_after(&self, after: i64, limit: u32) -> DomainResult<Vec<StoredEvent>> {
        let rows =
            sqlx::query("SELECT id, event_type, occurred_at, payload FROM events WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await
                .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let kind = text(row, "event_type")?;
                let event_type = EventType::parse(&kind)
                    .ok_or_else(|| DomainError::internal(anyhow::anyhow!("unknown stored event type {kind:?}")))?;
                let subject: Subject = serde_json::from_str(&text(row, "payload")?).map_err(DomainError::internal)?;
                Ok(StoredEvent {
                    id: row.try_get("id").map_err(db_error)?,
                    event_type,
                    occurred_at: time(row, "occurred_at")?,
                    subject,
                })
            })
            .collect()
    }

    async fn last_id(&self) -> DomainResult<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS last FROM events")
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        row.try_get::<i64, _>("last").map_err(db_error)
    }

    async fn purge_before(&self, before: DateTime<Utc>) -> DomainResult<u64> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS last FROM events WHERE occurred_at < $1")
            .bind(micros(before))
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let last: i64 = row.try_get("last").map_err(db_error)?;
        if last == 0 {
            return Ok(0);
        }
        let done =
            sqlx::query("DELETE FROM events WHERE id <= $1").bind(last).execute(&mut *tx).await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO event_log_state (name, value) VALUES ('purged_through', $1) ON CONFLICT (name) DO UPDATE \
             SET value = CASE WHEN excluded.value > event_log_state.value THEN excluded.value ELSE event_log_state.value END",
        )
        .bind(last)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(done.rows_affected())
    }

    async fn purged_through(&self) -> DomainResult<i64> {
        let row = sqlx::query("SELECT value FROM event_log_state WHERE name = 'purged_through'")
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        row.map_or(Ok(0), |r| r.try_get::<i64, _>("value").map_err(db_error))
    }
}
