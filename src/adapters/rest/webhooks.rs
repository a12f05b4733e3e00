//! REST handlers for `/webhooks`.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::dto::{
    CreateWebhookRequest, CreatedWebhookOut, PageParams, WebhookDeliveryList, WebhookDeliveryOut, WebhookList,
    WebhookOut,
};
use super::error::{ApiResult, Json, Path, Query};
use super::extract::{Caller, replayed, unexpected};
use super::respond::page;
use crate::adapters::Shared;
use crate::platform::operations::{Operation, Outcome, Paging};

/// Register a webhook: every event you may read on its topics is POSTed to `url`, signed with
/// the `secret` shown in this answer only.
#[utoipa::path(post, path = "/api/v1/webhooks", operation_id = "createWebhook", tag = "webhooks", request_body = CreateWebhookRequest,
    responses((status = 201, body = CreatedWebhookOut, headers(("location" = String)))))]
pub async fn create(
    State(s): State<Shared>,
    caller: Caller,
    Json(req): Json<CreateWebhookRequest>,
) -> ApiResult<Response> {
    let (Outcome::Webhook(created), _) = caller.run(&s, Operation::CreateWebhook(req.into())).await? else {
        return Err(unexpected());
    };
    let location = format!("/api/v1/webhooks/{}", created.webhook.id);
    let mut response = (StatusCode::CREATED, axum::Json(CreatedWebhookOut::from(created))).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
        response.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(response)
}

/// Your webhooks (secrets are never shown again).
#[utoipa::path(get, path = "/api/v1/webhooks", operation_id = "listWebhooks", tag = "webhooks", responses((status = 200, body = WebhookList)))]
pub async fn list(State(s): State<Shared>, caller: Caller) -> ApiResult<axum::Json<WebhookList>> {
    let (Outcome::Webhooks(hooks), _) = caller.run(&s, Operation::ListWebhooks).await? else {
        return Err(unexpected());
    };
    Ok(axum::Json(WebhookList {
        data: hooks.into_iter().map(WebhookOut::from).collect(),
        next_cursor: None,
        has_more: false,
    }))
}

/// Delete a webhook (yours, or anyone's as an admin); queued deliveries are dropped.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", operation_id = "deleteWebhook", tag = "webhooks", params(("id" = String, Path)), responses((status = 204)))]
pub async fn delete(State(s): State<Shared>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let (_, replay) = caller.run(&s, Operation::DeleteWebhook { id }).await?;
    Ok(replayed(StatusCode::NO_CONTENT.into_response(), replay))
}

/// A webhook's delivery attempts, newest first, with status, timing and error (its owner or an admin).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", operation_id = "listWebhookDeliveries", tag = "webhooks",
    params(("id" = String, Path), PageParams), responses((status = 200, body = WebhookDeliveryList)))]
pub async fn deliveries(
    State(s): State<Shared>,
    caller: Caller,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> ApiResult<Response> {
    let op = Operation::ListWebhookDeliveries { id, paging: Paging { limit: q.limit, cursor: q.cursor } };
    let (Outcome::WebhookDeliveries(list), _) = caller.run(&s, op).await? else { return Err(unexpected()) };
    Ok(page(&uri, list, |data, next_cursor, has_more| WebhookDeliveryList {
        data: data.into_iter().map(WebhookDeliveryOut::from).collect(),
        next_cursor,
        has_more,
    }))
}
