//! REST handlers for `/api-keys`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::dto::{ApiKeyList, ApiKeyOut, CreateApiKeyRequest, CreatedApiKeyOut};
use super::error::{ApiResult, Json, Path};
use super::extract::{Caller, replayed, unexpected};
use crate::adapters::Shared;
use crate::platform::operations::{Operation, Outcome};

/// Your API keys (secrets are never shown again).
#[utoipa::path(get, path = "/api/v1/api-keys", operation_id = "listApiKeys", tag = "api-keys", responses((status = 200, body = ApiKeyList)))]
pub async fn list(State(s): State<Shared>, caller: Caller) -> ApiResult<axum::Json<ApiKeyList>> {
    let (Outcome::ApiKeys(keys), _) = caller.run(&s, Operation::ListApiKeys).await? else { return Err(unexpected()) };
    Ok(axum::Json(ApiKeyList {
        data: keys.into_iter().map(ApiKeyOut::from).collect(),
        next_cursor: None,
        has_more: false,
    }))
}

/// Create a key acting as you, narrowed to `scopes`. The `key` is shown once.
#[utoipa::path(post, path = "/api/v1/api-keys", operation_id = "createApiKey", tag = "api-keys", request_body = CreateApiKeyRequest,
    responses((status = 201, body = CreatedApiKeyOut)))]
pub async fn create(
    State(s): State<Shared>,
    caller: Caller,
    Json(req): Json<CreateApiKeyRequest>,
) -> ApiResult<(StatusCode, axum::Json<CreatedApiKeyOut>)> {
    let op = Operation::CreateApiKey { name: req.name, scopes: req.scopes };
    let (Outcome::ApiKey(created), _) = caller.run(&s, op).await? else { return Err(unexpected()) };
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// Revoke one of your keys.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", operation_id = "revokeApiKey", tag = "api-keys", params(("id" = String, Path)), responses((status = 204)))]
pub async fn revoke(State(s): State<Shared>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let (_, replay) = caller.run(&s, Operation::RevokeApiKey { id }).await?;
    Ok(replayed(StatusCode::NO_CONTENT.into_response(), replay))
}
