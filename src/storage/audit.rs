//! `AuditLog` on SQL: appending entries (inside a write's transaction, or on their own),
//! filtered keyset reads, and the retention purge, the one delete the stores' triggers let
//! through (it opens `audit_purge_gate` inside its own transaction and closes it before the
//! commit).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::sql::{Arg, Conn, Row};
use super::{PURGE_CHUNK, SqlStore, micros, time};
use crate::domain::audit::{AuditEntry, AuditFilter, AuditOutcome, AuditRecord};
use crate::domain::error::DomainResult;
use crate::domain::page::PageRequest;
use crate::domain::ports::AuditLog;

const COLUMNS: &str =
    "id, at, actor_id, actor_key_id, protocol, request_id, trace_id, action, target, outcome, client_ip";

fn opt_text(row: &dyn Row, i: usize) -> DomainResult<Option<String>> {
    row.opt_text(i)
}

fn to_entry(row: &dyn Row) -> DomainResult<AuditEntry> {
    Ok(AuditEntry {
        id: row.int(0)?,
        at: time(row, 1)?,
        actor_id: opt_text(row, 2)?,
        actor_key_id: opt_text(row, 3)?,
        protocol: row.text(4)?,
        request_id: row.text(5)?,
        trace_id: opt_text(row, 6)?,
        action: row.text(7)?,
        target: opt_text(row, 8)?,
        outcome: AuditOutcome::parse(&row.text(9)?)?,
        client_ip: opt_text(row, 10)?,
    })
}

/// Appends `record` inside the caller's transaction.
pub(super) async fn append_audit(c: &mut Conn<'_>, record: &AuditRecord) -> DomainResult<()> {
    c.exec(
        "INSERT INTO audit_log (at, actor_id, actor_key_id, protocol, request_id, trace_id, action, target, outcome, client_ip) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            Arg::Int(micros(record.at)),
            Arg::OptText(record.actor_id.as_deref()),
            Arg::OptText(record.actor_key_id.as_deref()),
            Arg::Text(&record.protocol),
            Arg::Text(&record.request_id),
            Arg::OptText(record.trace_id.as_deref()),
            Arg::Text(record.action),
            Arg::OptText(record.target.as_deref()),
            Arg::Text(record.outcome.as_str()),
            Arg::OptText(record.client_ip.as_deref()),
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl AuditLog for SqlStore {
    async fn append(&self, record: &AuditRecord) -> DomainResult<()> {
        self.db.write(record.clone(), |record, c| Box::pin(async move { append_audit(c, record).await })).await
    }

    async fn list(&self, filter: &AuditFilter, page: &PageRequest) -> DomainResult<Vec<AuditEntry>> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_log WHERE 1 = 1");
        let after = page.after.as_deref().and_then(|a| a.parse::<i64>().ok());
        let since = filter.since.map(micros);
        let mut args: Vec<Arg<'_>> = Vec::new();
        for (clause, value) in [
            (" AND actor_id = $?", filter.actor_id.as_deref()),
            (" AND action = $?", filter.action.as_deref()),
            (" AND target = $?", filter.target.as_deref()),
        ] {
            if let Some(v) = value {
                args.push(Arg::Text(v));
                sql.push_str(&clause.replace("$?", &format!("${}", args.len())));
            }
        }
        if let Some(since) = since {
            args.push(Arg::Int(since));
            sql.push_str(&format!(" AND at >= ${}", args.len()));
        }
        if let Some(after) = after {
            args.push(Arg::Int(after));
            sql.push_str(&format!(" AND id < ${}", args.len()));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", i64::from(page.limit) + 1));
        self.db.fetch_all(&sql, &args, to_entry).await
    }

    /// Deletes in chunks of `PURGE_CHUNK` entries, each its own write that opens the gate for
    /// entries older than `before`, deletes, and closes it again before committing.
    async fn purge_before(&self, before: DateTime<Utc>) -> DomainResult<u64> {
        let before = micros(before);
        let mut purged = 0;
        loop {
            let done = self
                .db
                .write((), move |_, c| {
                    Box::pin(async move {
                        c.exec("INSERT INTO audit_purge_gate (before_at) VALUES ($1)", &[Arg::Int(before)]).await?;
                        let done = c
                            .exec(
                                "DELETE FROM audit_log WHERE id IN \
                                 (SELECT id FROM audit_log WHERE at < $1 ORDER BY id LIMIT $2)",
                                &[Arg::Int(before), Arg::Int(PURGE_CHUNK)],
                            )
                            .await?;
                        c.exec("DELETE FROM audit_purge_gate", &[]).await?;
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
}
