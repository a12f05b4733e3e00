//! `polyport.v1.AuditService`: the audit log for admins, as the canonical `listAuditEntries`.

use tonic::{Request, Response, Status};

use super::call::{Call, unexpected};
use super::users::paging;
use super::{Grpc, convert, pb};
use crate::domain::audit::{AuditEntry, AuditQuery};
use crate::platform::operations::{Operation, Outcome};

fn some(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn entry(e: AuditEntry) -> pb::AuditEntry {
    pb::AuditEntry {
        id: e.id.to_string(),
        at: Some(convert::ts(e.at)),
        actor_id: e.actor_id,
        actor_key_id: e.actor_key_id,
        protocol: e.protocol,
        request_id: e.request_id,
        trace_id: e.trace_id,
        action: e.action,
        target: e.target,
        outcome: e.outcome.as_str().to_string(),
        client_ip: e.client_ip,
    }
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for Grpc {
    async fn list_audit_entries(
        &self,
        req: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        let paging = paging(r.limit, &r.cursor);
        let filter = AuditQuery {
            actor_id: some(r.actor_id),
            action: some(r.action),
            target: some(r.target),
            since: some(r.since),
        };
        let (Outcome::AuditEntries(page), _) = call.run(Operation::ListAuditEntries { filter, paging }).await? else {
            return Err(unexpected(&call));
        };
        let has_more = page.has_more();
        Ok(call.reply(pb::ListAuditEntriesResponse {
            data: page.items.into_iter().map(entry).collect(),
            has_more,
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }
}
