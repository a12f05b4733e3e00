//! REST handlers for `/api-keys`.

use axum::extract::State;
use axum::http::StatusCode;

use super::dto::{ApiKeyList, ApiKeyOut, CreateApiKeyRequest, CreatedApiKeyOut};
use super::error::{ApiResult, Json, Path};
use super::extract::Caller;
use crate::adapters::Shared;

/// Your API keys (secrets are never shown again).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", responses((status = 200, body = ApiKeyList)))]
pub async fn list(State(s): State<Shared>, Caller(actor): Caller) -> ApiResult<axum::Json<ApiKeyList>> {
    let keys = s.core.auth.list_api_keys(&actor).await?;
    Ok(axum::Json(ApiKeyList {
        data: keys.into_iter().map(ApiKeyOut::from).collect(),
        next_cursor: None,
        has_more: false,
    }))
}

/// Create a key acting as you, narrowed to `scopes`. The `key` is shown once.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyRequest,
    responses((status = 201, body = CreatedApiKeyOut)))]
pub async fn create(
    State(s): State<Shared>,
    Caller(actor): Caller,
    Json(req): Json<CreateApiKeyRequest>,
) -> ApiResult<(StatusCode, axum::Json<CreatedApiKeyOut>)> {
    let created = s.core.auth.create_api_key(&actor, &req.name, &req.scopes).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// Revoke one of your keys.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path)), responses((status = 204)))]
pub async fn revoke(State(s): State<Shared>, Caller(actor): Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.core.auth.revoke_api_key(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
