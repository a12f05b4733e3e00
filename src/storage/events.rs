//! `EventLog` on SQL: reading the durable event log in id order, and retention.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::sql::{Arg, Row};
use super::{PURGE_CHUNK, SqlStore, micros, time};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::events::{EventType, StoredEvent, Subject};
use crate::domain::ports::EventLog;

fn to_event(row: &dyn Row) -> DomainResult<StoredEvent> {
    let kind = row.text(1)?;
    let event_type = EventType::parse(&kind)
        .ok_or_else(|| DomainError::internal(anyhow::anyhow!("unknown stored event type {kind:?}")))?;
    let subject: Subject = serde_json::from_str(&row.text(3)?).map_err(DomainError::internal)?;
    Ok(StoredEvent { id: row.int(0)?, event_type, occurred_at: time(row, 2)?, subject, trace_id: row.opt_text(4)? })
}

#[async_trait]
impl EventLog for SqlStore {
    async fn read_after(&self, after: i64, limit: u32) -> DomainResult<Vec<StoredEvent>> {
        self.db
            .fetch_all(
                "SELECT id, event_type, occurred_at, payload, trace_id FROM events WHERE id > $1 ORDER BY id LIMIT $2",
                &[Arg::Int(after), Arg::Int(i64::from(limit))],
                to_event,
            )
            .await
    }

    async fn last_id(&self) -> DomainResult<i64> {
        self.db.read(|c| Box::pin(c.query_int("SELECT COALESCE(MAX(id), 0) FROM events", &[]))).await
    }

    /// Deletes in chunks of `PURGE_CHUNK` rows, each its own write, so a large purge never
    /// holds the writer for long.
    async fn purge_before(&self, before: DateTime<Utc>) -> DomainResult<u64> {
        let before = micros(before);
        let last = self
            .db
            .read(move |c| {
                Box::pin(async move {
                    c.query_int("SELECT COALESCE(MAX(id), 0) FROM events WHERE occurred_at < $1", &[Arg::Int(before)])
                        .await
                })
            })
            .await?;
        if last == 0 {
            return Ok(0);
        }
        let mut purged = 0;
        loop {
            let done = self
                .db
                .write((), move |_, c| {
                    Box::pin(async move {
                        let done = c
                            .exec(
                                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= $1 ORDER BY id LIMIT $2)",
                                &[Arg::Int(last), Arg::Int(PURGE_CHUNK)],
                            )
                            .await?;
                        c.exec(
                            "INSERT INTO event_log_state (name, value) VALUES ('purged_through', $1) ON CONFLICT (name) DO UPDATE \
                             SET value = CASE WHEN excluded.value > event_log_state.value THEN excluded.value \
                             ELSE event_log_state.value END",
                            &[Arg::Int(last)],
                        )
                        .await?;
                        Ok(done)
                    })
                })
                .await?;
            purged += done;
            if done < PURGE_CHUNK as u64 {
                return Ok(purged);
            }
        }
    }

    async fn purged_through(&self) -> DomainResult<i64> {
        let value = self
            .db
            .fetch_opt("SELECT value FROM event_log_state WHERE name = 'purged_through'", &[], |r| r.int(0))
            .await?;
        Ok(value.unwrap_or(0))
    }
}
