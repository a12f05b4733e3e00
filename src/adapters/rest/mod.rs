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
mod respond;
mod users;
mod webhooks;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post};

use crate::adapters::Shared;
use crate::adapters::http_error::ApiError;
use crate::domain::error::DomainError;

/// Every `/api/v1` route behind the gate (auth + rate limit) and idempotency keys.
pub fn routes(shared: Shared) -> Router {
    let api = Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/users", post(users::register).get(users::list))
        .route("/users/me", get(users::me))
        .route("/users/{id}", get(users::get).patch(users::update).delete(users::delete))
        .route("/users/{id}/posts", get(users::posts))
        .route("/posts", get(posts::list).post(posts::create))
        .route("/posts/{id}", get(posts::get).patch(posts::update).delete(posts::delete))
        .route("/posts/{id}/publish", post(posts::publish))
        .route("/posts/{id}/unpublish", post(posts::unpublish))
        .route("/api-keys", get(api_keys::list).post(api_keys::create))
        .route("/api-keys/{id}", delete(api_keys::revoke))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", delete(webhooks::delete))
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/audit-log", get(audit::list))
        .fallback(|| async { ApiError(DomainError::not_found("route")) })
        .layer(from_fn_with_state(shared.clone(), middleware::gate))
        .with_state(shared);
    Router::new().nest("/api/v1", api)
}
