//! REST handlers for `/users`.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::dto::{PageParams, PostList, RegisterRequest, UpdateUserRequest, UserList, UserOut, UserPostsParams};
use super::error::{ApiResult, Json, Path, Query};
use super::extract::{Caller, Preconditions, replayed, unexpected};
use super::respond::{conditional, page, resource};
use crate::adapters::Shared;
use crate::domain::post::PostFilter;
use crate::domain::service::UserView;
use crate::platform::operations::{Operation, Outcome, Paging};

fn variant(view: &UserView) -> &'static str {
    if matches!(view, UserView::Full(_)) { "" } else { "-public" }
}

fn user((outcome, replay): (Outcome, bool)) -> ApiResult<Response> {
    let Outcome::User(user) = outcome else { return Err(unexpected()) };
    Ok(replayed(resource(StatusCode::OK, user.version, "", UserOut::from(user), None), replay))
}

/// Register a new member.
#[utoipa::path(post, path = "/api/v1/users", operation_id = "register", tag = "users", request_body = RegisterRequest,
    responses((status = 201, body = UserOut, headers(("location" = String), ("etag" = String)))))]
pub async fn register(
    State(s): State<Shared>,
    caller: Caller,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<Response> {
    let (Outcome::User(user), replay) = caller.run(&s, Operation::Register(req.into())).await? else {
        return Err(unexpected());
    };
    let location = format!("/api/v1/users/{}", user.id);
    Ok(replayed(resource(StatusCode::CREATED, user.version, "", UserOut::from(user), Some(location)), replay))
}

/// List users: admins see every field, everyone else public profiles.
#[utoipa::path(get, path = "/api/v1/users", operation_id = "listUsers", tag = "users", params(PageParams), responses((status = 200, body = UserList)))]
pub async fn list(
    State(s): State<Shared>,
    caller: Caller,
    uri: Uri,
    Query(q): Query<PageParams>,
) -> ApiResult<Response> {
    let op = Operation::ListUsers(Paging { limit: q.limit, cursor: q.cursor });
    let (Outcome::Users(users), _) = caller.run(&s, op).await? else { return Err(unexpected()) };
    Ok(page(&uri, users, |data, next_cursor, has_more| UserList {
        data: data.into_iter().map(UserOut::from).collect(),
        next_cursor,
        has_more,
    }))
}

/// The caller's own profile.
#[utoipa::path(get, path = "/api/v1/users/me", operation_id = "me", tag = "users", responses((status = 200, body = UserOut)))]
pub async fn me(State(s): State<Shared>, caller: Caller, pre: Preconditions) -> ApiResult<Response> {
    let (Outcome::User(user), _) = caller.run(&s, Operation::Me).await? else { return Err(unexpected()) };
    Ok(conditional(&pre, user.version, "", UserOut::from(user)))
}

/// A user: every field for the user and admins, else the public profile.
#[utoipa::path(get, path = "/api/v1/users/{id}", operation_id = "getUser", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserOut, headers(("etag" = String))), (status = 304)))]
pub async fn get(
    State(s): State<Shared>,
    caller: Caller,
    pre: Preconditions,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (Outcome::UserView(view), _) = caller.run(&s, Operation::GetUser { id }).await? else {
        return Err(unexpected());
    };
    Ok(conditional(&pre, view.version(), variant(&view), UserOut::from(view)))
}

/// Change a profile (yourself, or anyone as admin). `If-Match` guards against lost updates.
#[utoipa::path(patch, path = "/api/v1/users/{id}", operation_id = "updateUser", tag = "users", params(("id" = String, Path)), request_body = UpdateUserRequest,
    responses((status = 200, body = UserOut)))]
pub async fn update(
    State(s): State<Shared>,
    caller: Caller,
    pre: Preconditions,
    Path(id): Path<String>,
    Json(req): Json<UpdateUserRequest>,
) -> ApiResult<Response> {
    let op = Operation::UpdateUser { id, patch: req.into(), expected_version: pre.expected_version()? };
    user(caller.run(&s, op).await?)
}

/// Delete a user with their posts, keys and sessions (admins only).
#[utoipa::path(delete, path = "/api/v1/users/{id}", operation_id = "deleteUser", tag = "users", params(("id" = String, Path)), responses((status = 204)))]
pub async fn delete(
    State(s): State<Shared>,
    caller: Caller,
    pre: Preconditions,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (_, replay) = caller.run(&s, Operation::DeleteUser { id, expected_version: pre.expected_version()? }).await?;
    Ok(replayed(StatusCode::NO_CONTENT.into_response(), replay))
}

/// A user's posts the caller may read.
#[utoipa::path(get, path = "/api/v1/users/{id}/posts", operation_id = "listUserPosts", tag = "users", params(("id" = String, Path), UserPostsParams),
    responses((status = 200, body = PostList)))]
pub async fn posts(
    State(s): State<Shared>,
    caller: Caller,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<UserPostsParams>,
) -> ApiResult<Response> {
    let filter = PostFilter::parse(None, q.status, q.tag)?;
    let op = Operation::ListUserPosts { user_id: id, filter, paging: Paging { limit: q.limit, cursor: q.cursor } };
    super::posts::post_page(&uri, caller.run(&s, op).await?.0)
}
