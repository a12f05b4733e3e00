//! The audit log on GraphQL: `auditLog(first, after, filter)`, a Relay connection of entries,
//! run as the canonical `listAuditEntries` operation.

use async_graphql::{Context, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};

use super::super::error::GqlResult;
use super::types::PageInfo;
use super::{Caller, shared};
use crate::domain::audit::{AuditEntry as DomainEntry, AuditQuery};
use crate::domain::error::DomainError;
use crate::platform::cursor::audit_context;
use crate::platform::operations::{Operation, Outcome, Paging};

/// One audit log entry (no secret ever appears in one).
#[derive(SimpleObject)]
pub struct AuditEntry {
    pub id: ID,
    pub at: DateTime<Utc>,
    /// The user who acted (null for anonymous attempts, such as a failed login).
    pub actor_id: Option<ID>,
    /// The API key the actor used, if any.
    pub actor_key_id: Option<ID>,
    /// `rest`, `graphql`, `grpc`, `soap`, `websocket`, `sse`, `cli` or `internal`.
    pub protocol: String,
    pub request_id: String,
    /// W3C trace id (32 hex digits) of the request.
    pub trace_id: Option<String>,
    /// For example `post.created`, `user.role_changed`, `auth.login`.
    pub action: String,
    /// `user:<id>`, `post:<id>`, `api_key:<id>`, `session:<id>` or `email:<address>`.
    pub target: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    pub client_ip: Option<String>,
}

impl From<DomainEntry> for AuditEntry {
    fn from(e: DomainEntry) -> Self {
        Self {
            id: ID(e.id.to_string()),
            at: e.at,
            actor_id: e.actor_id.map(ID),
            actor_key_id: e.actor_key_id.map(ID),
            protocol: e.protocol,
            request_id: e.request_id,
            trace_id: e.trace_id,
            action: e.action,
            target: e.target,
            outcome: e.outcome.as_str().to_string(),
            client_ip: e.client_ip,
        }
    }
}

#[derive(SimpleObject)]
pub struct AuditEntryEdge {
    pub cursor: String,
    pub node: AuditEntry,
}

#[derive(SimpleObject)]
pub struct AuditEntryConnection {
    pub edges: Vec<AuditEntryEdge>,
    pub page_info: PageInfo,
}

/// Audit log filters (all given ones must hold).
#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    pub actor_id: Option<ID>,
    pub action: Option<String>,
    pub target: Option<String>,
    /// Entries at or after this RFC 3339 time.
    pub since: Option<String>,
}

/// Runs `listAuditEntries` for the caller and shapes the page as a connection.
pub async fn load(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<AuditLogFilter>,
) -> async_graphql::Result<AuditEntryConnection> {
    let caller = ctx.data::<Caller>()?;
    let f = filter.unwrap_or_default();
    let query = AuditQuery { actor_id: f.actor_id.map(|a| a.0), action: f.action, target: f.target, since: f.since };
    let context = audit_context(&query);
    let ops = &shared(ctx).ops;
    let op =
        Operation::ListAuditEntries { filter: query, paging: Paging { limit: first.map(i64::from), cursor: after } };
    let Outcome::AuditEntries(listed) = ops.run(&caller.admitted, op, None).await.gql()?.0 else {
        return Err(DomainError::internal(anyhow::anyhow!("listAuditEntries answered another outcome"))).gql();
    };
    let has_next_page = listed.has_more();
    let edges: Vec<AuditEntryEdge> = listed
        .items
        .into_iter()
        .map(|e| AuditEntryEdge { cursor: ops.cursor(&context, &e.id.to_string()), node: e.into() })
        .collect();
    let page_info = PageInfo {
        has_next_page,
        has_previous_page: false,
        start_cursor: edges.first().map(|e| e.cursor.clone()),
        end_cursor: edges.last().map(|e| e.cursor.clone()),
    };
    Ok(AuditEntryConnection { edges, page_info })
}
