//! REST handlers for `/users`.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use super::dto::{
    PageParams, PostList, PostOut, RegisterRequest, UpdateUserRequest, UserList, UserOut, UserPostsParams,
};
use super::error::{ApiResult, Json, Path, Query};
use super::extract::{Caller, Preconditions};
use super::respond::{conditional, page, resource};
use crate::adapters::Shared;
use crate::domain::post::PostFilter;
use crate::domain::service::UserView;

fn variant(view: &UserView) -> &'static str {
    if matches!(view, UserView::Full(_)) { "" } else { "-public" }
}

/// Register a new member.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = RegisterRequest,
    responses((status = 201, body = UserOut, headers(("location" = String), ("etag" = String)))))]
pub async fn register(State(s): State<Shared>, Json(req): Json<RegisterRequest>) -> ApiResult<Response> {
    let user = s.core.users.register(req.into()).await?;
    let location = format!("/api/v1/users/{}", user.id);
    Ok(resource(StatusCode::CREATED, user.version, "", UserOut::from(user), Some(location)))
}

/// List users: admins see every field, everyone else public profiles.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageParams), responses((status = 200, body = UserList)))]
pub async fn list(
    State(s): State<Shared>,
    Caller(actor): Caller,
    uri: Uri,
    Query(q): Query<PageParams>,
) -> ApiResult<Response> {
    let req = s.page_request("users", q.limit, q.cursor)?;
    let users = s.core.users.list(&actor, &req).await?;
    Ok(page(&s, &uri, "users", users, |data, next_cursor, has_more| UserList {
        data: data.into_iter().map(UserOut::from).collect(),
        next_cursor,
        has_more,
    }))
}

/// The caller's own profile.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", responses((status = 200, body = UserOut)))]
pub async fn me(State(s): State<Shared>, Caller(actor): Caller, pre: Preconditions) -> ApiResult<Response> {
    let user = s.core.users.me(&actor).await?;
    Ok(conditional(&pre, user.version, "", UserOut::from(user)))
}

/// A user: every field for the user and admins, else the public profile.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserOut, headers(("etag" = String))), (status = 304)))]
pub async fn get(
    State(s): State<Shared>,
    Caller(actor): Caller,
    pre: Preconditions,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let view = s.core.users.get(&actor, &id).await?;
    Ok(conditional(&pre, view.version(), variant(&view), UserOut::from(view)))
}

/// Change a profile (yourself, or anyone as admin). `If-Match` guards against lost updates.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)), request_body = UpdateUserRequest,
    responses((status = 200, body = UserOut)))]
pub async fn update(
    State(s): State<Shared>,
    Caller(actor): Caller,
    pre: Preconditions,
    Path(id): Path<String>,
    Json(req): Json<UpdateUserRequest>,
) -> ApiResult<Response> {
    let user = s.core.users.update(&actor, &id, req.into(), pre.expected_version()?).await?;
    Ok(resource(StatusCode::OK, user.version, "", UserOut::from(user), None))
}

/// Delete a user with their posts, keys and sessions (admins only).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)), responses((status = 204)))]
pub async fn delete(
    State(s): State<Shared>,
    Caller(actor): Caller,
    pre: Preconditions,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.core.users.delete(&actor, &id, pre.expected_version()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's posts the caller may read.
#[utoipa::path(get, path = "/api/v1/users/{id}/posts", tag = "users", params(("id" = String, Path), UserPostsParams),
    responses((status = 200, body = PostList)))]
pub async fn posts(
    State(s): State<Shared>,
    Caller(actor): Caller,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<UserPostsParams>,
) -> ApiResult<Response> {
    let mut filter = PostFilter::parse(None, q.status, q.tag)?;
    filter.author_id = Some(id.clone());
    let context = super::posts::context(&filter);
    let req = s.page_request(&context, q.limit, q.cursor)?;
    let posts = s.core.posts.list_by_author(&actor, &id, &filter, &req).await?;
    Ok(page(&s, &uri, &context, posts, |data, next_cursor, has_more| PostList {
        data: data.into_iter().map(PostOut::from).collect(),
        next_cursor,
        has_more,
    }))
}
