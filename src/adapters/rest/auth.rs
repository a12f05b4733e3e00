//! REST handlers for `/auth`: login, refresh, logout.

use axum::extract::State;
use axum::http::{Extensions, StatusCode};

use super::dto::{LoginRequest, RefreshRequest, TokenResponse};
use super::error::{ApiResult, ErrorBody, Json};
use crate::adapters::Shared;
use crate::adapters::request::peer_ip;
use crate::domain::service::ClientInfo;

/// Log in with email and password. Fails the same way whether or not the email exists.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(s): State<Shared>,
    ext: Extensions,
    Json(req): Json<LoginRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    let client = ClientInfo { ip: peer_ip(&ext) };
    Ok(axum::Json(s.core.auth.login(&req.email, &req.password, &client).await?.into()))
}

/// Exchange a refresh token for a new pair. Each refresh token works once; reuse revokes the session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
pub async fn refresh(State(s): State<Shared>, Json(req): Json<RefreshRequest>) -> ApiResult<axum::Json<TokenResponse>> {
    Ok(axum::Json(s.core.auth.refresh(&req.refresh_token).await?.into()))
}

/// Revoke the session of a refresh token.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest, responses((status = 204)))]
pub async fn logout(State(s): State<Shared>, Json(req): Json<RefreshRequest>) -> ApiResult<StatusCode> {
    s.core.auth.logout(&req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}
