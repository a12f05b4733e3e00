//! REST handlers for `/auth`: login, refresh, logout.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::dto::{LoginRequest, RefreshRequest, TokenResponse};
use super::error::{ApiResult, ErrorBody, Json};
use super::extract::{Caller, replayed, unexpected};
use crate::adapters::Shared;
use crate::platform::operations::{Operation, Outcome};

fn tokens(outcome: Outcome) -> ApiResult<axum::Json<TokenResponse>> {
    let Outcome::Tokens(pair) = outcome else { return Err(unexpected()) };
    Ok(axum::Json(pair.into()))
}

/// Log in with email and password. Fails the same way whether or not the email exists.
#[utoipa::path(post, path = "/api/v1/auth/login", operation_id = "login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(s): State<Shared>,
    caller: Caller,
    Json(req): Json<LoginRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    tokens(caller.run(&s, Operation::Login { email: req.email, password: req.password }).await?.0)
}

/// Exchange a refresh token for a new pair. Each refresh token works once; reuse revokes the session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", operation_id = "refreshToken", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(s): State<Shared>,
    caller: Caller,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    tokens(caller.run(&s, Operation::RefreshToken { refresh_token: req.refresh_token }).await?.0)
}

/// Revoke the session of a refresh token.
#[utoipa::path(post, path = "/api/v1/auth/logout", operation_id = "logout", tag = "auth", request_body = RefreshRequest, responses((status = 204)))]
pub async fn logout(State(s): State<Shared>, caller: Caller, Json(req): Json<RefreshRequest>) -> ApiResult<Response> {
    let (_, replay) = caller.run(&s, Operation::Logout { refresh_token: req.refresh_token }).await?;
    Ok(replayed(StatusCode::NO_CONTENT.into_response(), replay))
}
