//! REST handler for `/audit-log` (admins only).

use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;

use super::dto::{AuditEntryOut, AuditLogList, AuditLogParams};
use super::error::{ApiResult, Query};
use super::extract::{Caller, unexpected};
use super::respond::page;
use crate::adapters::Shared;
use crate::domain::audit::AuditQuery;
use crate::platform::operations::{Operation, Outcome, Paging};

/// The audit log, newest first: every state change and security event (admins only).
#[utoipa::path(get, path = "/api/v1/audit-log", operation_id = "listAuditEntries", tag = "audit", params(AuditLogParams),
    responses((status = 200, body = AuditLogList)))]
pub async fn list(
    State(s): State<Shared>,
    caller: Caller,
    uri: Uri,
    Query(q): Query<AuditLogParams>,
) -> ApiResult<Response> {
    let filter = AuditQuery { actor_id: q.actor_id, action: q.action, target: q.target, since: q.since };
    let op = Operation::ListAuditEntries { filter, paging: Paging { limit: q.limit, cursor: q.cursor } };
    let (Outcome::AuditEntries(entries), _) = caller.run(&s, op).await? else { return Err(unexpected()) };
    Ok(page(&uri, entries, |data, next_cursor, has_more| AuditLogList {
        data: data.into_iter().map(AuditEntryOut::from).collect(),
        next_cursor,
        has_more,
    }))
}
