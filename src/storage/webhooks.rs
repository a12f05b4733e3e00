//! `WebhookRepo` on SQL: webhooks with their topics (one row per topic, so an event finds its
//! webhooks by index), the signing secret (read by the delivery job only) and delivery attempts.

use async_trait::async_trait;

use super::sql::{Arg, Conn, Failure, Row};
use super::{SqlStore, micros, time};
use crate::domain::audit::AuditRecord;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::page::PageRequest;
use crate::domain::ports::WebhookRepo;
use crate::domain::webhook::{Webhook, WebhookDelivery};

const COLUMNS: &str = "id, owner_id, url, topics, created_at";

fn to_webhook(row: &dyn Row) -> DomainResult<Webhook> {
    Ok(Webhook {
        id: row.text(0)?,
        owner_id: row.text(1)?,
        url: row.text(2)?,
        topics: serde_json::from_str(&row.text(3)?).map_err(DomainError::internal)?,
        created_at: time(row, 4)?,
    })
}

fn to_delivery(row: &dyn Row) -> DomainResult<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: row.text(0)?,
        webhook_id: row.text(1)?,
        delivery_id: row.text(2)?,
        event_id: row.int(3)?,
        attempt: row.int(4)?,
        status_code: row.opt_int(5)?,
        succeeded: row.int(6)? != 0,
        error: row.opt_text(7)?,
        duration_ms: row.int(8)?,
        attempted_at: time(row, 9)?,
    })
}

#[async_trait]
impl WebhookRepo for SqlStore {
    async fn insert(&self, hook: &Webhook, secret: &str, cap: usize, audit: &AuditRecord) -> DomainResult<()> {
        self.db
            .write((hook.clone(), secret.to_string(), audit.clone()), move |(hook, secret, audit), c| {
                Box::pin(async move {
                    // PostgreSQL: the owner's row lock serializes concurrent registrations, so
                    // the count below cannot be raced past the cap. (SQLite has one writer.)
                    if matches!(c, Conn::Postgres(_)) {
                        c.exec("SELECT id FROM users WHERE id = $1 FOR UPDATE", &[Arg::from(&hook.owner_id)]).await?;
                    }
                    let n = c.query_int("SELECT COUNT(*) FROM webhooks WHERE owner_id = $1", &[Arg::from(&hook.owner_id)]).await?;
                    if n >= cap as i64 {
                        return Err(DomainError::conflict(format!("at most {cap} webhooks per user"))
                            .with_detail("webhooks", "limit_reached"));
                    }
                    let topics = serde_json::to_string(&hook.topics).map_err(DomainError::internal)?;
                    c.exec(
                        "INSERT INTO webhooks (id, owner_id, url, topics, secret, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                        &[
                            Arg::from(&hook.id),
                            Arg::from(&hook.owner_id),
                            Arg::from(&hook.url),
                            Arg::from(&topics),
                            Arg::from(secret),
                            Arg::Int(micros(hook.created_at)),
                        ],
                    )
                    .await
                    .map_err(|e| e.user_gone_or("the owner no longer exists"))?;
                    for topic in &hook.topics {
                        c.exec(
                            "INSERT INTO webhook_topics (webhook_id, topic) VALUES ($1, $2)",
                            &[Arg::from(&hook.id), Arg::from(topic)],
                        )
                        .await?;
                    }
                    super::audit::append_audit(c, audit).await
                })
            })
            .await
    }

    async fn get(&self, id: &str) -> DomainResult<Option<Webhook>> {
        if id.contains('\0') {
            return Ok(None);
        }
        self.db.fetch_opt(&format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1"), &[Arg::Text(id)], to_webhook).await
    }

    async fn list(&self, owner_id: &str) -> DomainResult<Vec<Webhook>> {
        self.db
            .fetch_all(
                &format!("SELECT {COLUMNS} FROM webhooks WHERE owner_id = $1 ORDER BY id"),
                &[Arg::Text(owner_id)],
                to_webhook,
            )
            .await
    }

    async fn delete(&self, id: &str, audit: &AuditRecord) -> DomainResult<bool> {
        self.db
            .write((id.to_string(), audit.clone()), move |(id, audit), c| {
                Box::pin(async move {
                    c.exec("DELETE FROM webhook_deliveries WHERE webhook_id = $1", &[Arg::from(id)]).await?;
                    c.exec("DELETE FROM webhook_topics WHERE webhook_id = $1", &[Arg::from(id)]).await?;
                    let deleted = c.exec("DELETE FROM webhooks WHERE id = $1", &[Arg::from(id)]).await? > 0;
                    if deleted {
                        super::audit::append_audit(c, audit).await?;
                    }
                    Ok(deleted)
                })
            })
            .await
    }

    async fn listening(&self, topics: &[String]) -> DomainResult<Vec<Webhook>> {
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM webhooks WHERE id IN (SELECT webhook_id FROM webhook_topics WHERE topic IN ({})) ORDER BY id",
            super::sql::placeholders(topics.len())
        );
        let args: Vec<Arg<'_>> = topics.iter().map(Arg::from).collect();
        self.db.fetch_all(&sql, &args, to_webhook).await
    }

    async fn secret(&self, id: &str) -> DomainResult<Option<String>> {
        self.db.fetch_opt("SELECT secret FROM webhooks WHERE id = $1", &[Arg::Text(id)], |r| r.text(0)).await
    }

    async fn record_delivery(&self, d: &WebhookDelivery) -> DomainResult<()> {
        self.db
            .write(d.clone(), move |d, c| {
                Box::pin(async move {
                    let done = c
                        .exec(
                            "INSERT INTO webhook_deliveries (id, webhook_id, delivery_id, event_id, attempt, status_code, \
                             succeeded, error, duration_ms, attempted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                            &[
                                Arg::from(&d.id),
                                Arg::from(&d.webhook_id),
                                Arg::from(&d.delivery_id),
                                Arg::Int(d.event_id),
                                Arg::Int(d.attempt),
                                Arg::OptInt(d.status_code),
                                Arg::Int(i64::from(d.succeeded)),
                                Arg::OptText(d.error.as_deref()),
                                Arg::Int(d.duration_ms),
                                Arg::Int(micros(d.attempted_at)),
                            ],
                        )
                        .await;
                    match done {
                        // The webhook was deleted meanwhile: nobody can read this record any more.
                        Err(e) if e.kind == Failure::ForeignKeyViolation => Ok(()),
                        Err(e) => Err(e.into()),
                        Ok(_) => Ok(()),
                    }
                })
            })
            .await
    }

    async fn deliveries(&self, webhook_id: &str, page: &PageRequest) -> DomainResult<Vec<WebhookDelivery>> {
        let mut sql = String::from(
            "SELECT id, webhook_id, delivery_id, event_id, attempt, status_code, succeeded, error, duration_ms, attempted_at \
             FROM webhook_deliveries WHERE webhook_id = $1",
        );
        let mut args = vec![Arg::Text(webhook_id)];
        if let Some(after) = &page.after {
            sql.push_str(" AND id < $2");
            args.push(Arg::from(after));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", page.limit + 1));
        self.db.fetch_all(&sql, &args, to_delivery).await
    }
}
