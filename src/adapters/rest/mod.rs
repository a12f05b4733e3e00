//! The REST/JSON adapter under `/api/v1`.

mod api_keys;
mod audit;
mod auth;
pub mod dto;
pub mod error;
pub mod extract;
mod middleware;
pub mod openapi;
pub mod ops;
mod posts;
mod rendered;
mod respond;
mod users;
mod webhooks;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, delete, get, post};

use crate::adapters::Shared;
use crate::adapters::http_error::ApiError;
use crate::domain::error::DomainError;

/// Every `/api/v1` route behind the gate (auth + rate limit) and idempotency keys. The paths
/// are written out in full rather than nested: a nested router rewrites every request's URI.
pub fn routes(shared: Shared) -> Router {
    Router::new()
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/users", post(users::register).get(users::list))
        .route("/api/v1/users/me", get(users::me))
        .route("/api/v1/users/{id}", get(users::get).patch(users::update).delete(users::delete))
        .route("/api/v1/users/{id}/posts", get(users::posts))
        .route("/api/v1/posts", get(posts::list).post(posts::create))
        .route("/api/v1/posts/{id}", get(posts::get).patch(posts::update).delete(posts::delete))
        .route("/api/v1/posts/{id}/publish", post(posts::publish))
        .route("/api/v1/posts/{id}/unpublish", post(posts::unpublish))
        .route("/api/v1/api-keys", get(api_keys::list).post(api_keys::create))
        .route("/api/v1/api-keys/{id}", delete(api_keys::revoke))
        .route("/api/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/api/v1/webhooks/{id}", delete(webhooks::delete))
        .route("/api/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/api/v1/audit-log", get(audit::list))
        // Unknown paths under the prefix are refused behind the gate, like the known ones: a
        // scan of them is charged to the caller's budget.
        .route("/api/v1", any(unknown))
        .route("/api/v1/{*rest}", any(unknown))
        .layer(from_fn_with_state(shared.clone(), middleware::gate))
        .with_state(shared)
}

async fn unknown() -> ApiError {
    ApiError(DomainError::not_found("route"))
}
