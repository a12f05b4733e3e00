//! `polyport.v1.WebhookService`: register, list and delete webhooks and list their delivery
//! attempts, as canonical operations.

use tonic::{Request, Response, Status};

use super::call::{Call, unexpected};
use super::users::paging;
use super::{Grpc, convert, pb};
use crate::domain::webhook::{NewWebhook, Webhook, WebhookDelivery};
use crate::platform::operations::{Operation, Outcome};

fn webhook(w: Webhook) -> pb::Webhook {
    pb::Webhook {
        id: w.id,
        owner_id: w.owner_id,
        url: w.url,
        topics: w.topics,
        created_at: Some(convert::ts(w.created_at)),
    }
}

fn delivery(d: WebhookDelivery) -> pb::WebhookDelivery {
    pb::WebhookDelivery {
        id: d.id,
        webhook_id: d.webhook_id,
        delivery_id: d.delivery_id,
        event_id: d.event_id,
        attempt: d.attempt,
        status_code: d.status_code,
        succeeded: d.succeeded,
        error: d.error,
        duration_ms: d.duration_ms,
        attempted_at: Some(convert::ts(d.attempted_at)),
    }
}

#[tonic::async_trait]
impl pb::webhook_service_server::WebhookService for Grpc {
    async fn create_webhook(
        &self,
        req: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::CreatedWebhook>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        match call.run(Operation::CreateWebhook(NewWebhook { url: r.url, topics: r.topics })).await? {
            (Outcome::Webhook(created), _) => {
                Ok(call.reply(pb::CreatedWebhook { webhook: Some(webhook(created.webhook)), secret: created.secret }))
            }
            _ => Err(unexpected(&call)),
        }
    }

    async fn list_webhooks(
        &self,
        req: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        match call.run(Operation::ListWebhooks).await? {
            (Outcome::Webhooks(hooks), _) => {
                Ok(call.reply(pb::ListWebhooksResponse { data: hooks.into_iter().map(webhook).collect() }))
            }
            _ => Err(unexpected(&call)),
        }
    }

    async fn delete_webhook(
        &self,
        req: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let (_, replayed) = call.run(Operation::DeleteWebhook { id: req.into_inner().id }).await?;
        Ok(call.respond(pb::DeleteWebhookResponse { deleted: true }, replayed))
    }

    async fn list_webhook_deliveries(
        &self,
        req: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        let op = Operation::ListWebhookDeliveries { id: r.id, paging: paging(r.limit, &r.cursor) };
        let (Outcome::WebhookDeliveries(page), _) = call.run(op).await? else { return Err(unexpected(&call)) };
        let has_more = page.has_more();
        Ok(call.reply(pb::ListWebhookDeliveriesResponse {
            data: page.items.into_iter().map(delivery).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
            has_more,
        }))
    }
}
