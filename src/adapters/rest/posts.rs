//! REST handlers for `/posts`.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use super::dto::{CreatePostRequest, PostList, PostListParams, PostOut, UpdatePostRequest};
use super::error::{ApiResult, Json, Path, Query};
use super::extract::{Caller, Preconditions};
use super::respond::{conditional, page, resource};
use crate::adapters::Shared;
use crate::domain::post::{Post, PostFilter};

pub use crate::platform::cursor::posts_context as context;

fn ok(post: Post) -> Response {
    resource(StatusCode::OK, post.version, "", PostOut::from(post), None)
}

/// Posts the caller may read, newest first, filtered by author, status and tag.
#[utoipa::path(get, path = "/api/v1/posts", tag = "posts", params(PostListParams), responses((status = 200, body = PostList)))]
pub async fn list(
    State(s): State<Shared>,
    Caller(actor): Caller,
    uri: Uri,
    Query(q): Query<PostListParams>,
) -> ApiResult<Response> {
    let filter = PostFilter::parse(q.author_id, q.status, q.tag)?;
    let context = context(&filter);
    let req = s.page_request(&context, q.limit, q.cursor)?;
    let posts = s.core.posts.list(&actor, &filter, &req).await?;
    Ok(page(&s, &uri, &context, posts, |data, next_cursor, has_more| PostList {
        data: data.into_iter().map(PostOut::from).collect(),
        next_cursor,
        has_more,
    }))
}

/// Write a new post; it starts as a draft.
#[utoipa::path(post, path = "/api/v1/posts", tag = "posts", request_body = CreatePostRequest,
    responses((status = 201, body = PostOut, headers(("location" = String), ("etag" = String)))))]
pub async fn create(
    State(s): State<Shared>,
    Caller(actor): Caller,
    Json(req): Json<CreatePostRequest>,
) -> ApiResult<Response> {
    let post = s.core.posts.create(&actor, req.into()).await?;
    let location = format!("/api/v1/posts/{}", post.id);
    Ok(resource(StatusCode::CREATED, post.version, "", PostOut::from(post), Some(location)))
}

/// A post. Drafts are visible to their author, editors and admins only.
#[utoipa::path(get, path = "/api/v1/posts/{id}", tag = "posts", params(("id" = String, Path)),
    responses((status = 200, body = PostOut, headers(("etag" = String))), (status = 304)))]
pub async fn get(
    State(s): State<Shared>,
    Caller(actor): Caller,
    pre: Preconditions,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let post = s.core.posts.get(&actor, &id).await?;
    Ok(conditional(&pre, post.version, "", PostOut::from(post)))
}

/// Change a post (author, editors, admins). `If-Match` guards against lost updates.
#[utoipa::path(patch, path = "/api/v1/posts/{id}", tag = "posts", params(("id" = String, Path)), request_body = UpdatePostRequest,
    responses((status = 200, body = PostOut)))]
pub async fn update(
    State(s): State<Shared>,
    Caller(actor): Caller,
    pre: Preconditions,
    Path(id): Path<String>,
    Json(req): Json<UpdatePostRequest>,
) -> ApiResult<Response> {
    Ok(ok(s.core.posts.update(&actor, &id, req.into(), pre.expected_version()?).await?))
}

/// Delete a post (author, editors, admins).
#[utoipa::path(delete, path = "/api/v1/posts/{id}", tag = "posts", params(("id" = String, Path)), responses((status = 204)))]
pub async fn delete(
    State(s): State<Shared>,
    Caller(actor): Caller,
    pre: Preconditions,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.core.posts.delete(&actor, &id, pre.expected_version()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Publish a post (author, editors, admins). Publishing a published post changes nothing.
#[utoipa::path(post, path = "/api/v1/posts/{id}/publish", tag = "posts", params(("id" = String, Path)), responses((status = 200, body = PostOut)))]
pub async fn publish(
    State(s): State<Shared>,
    Caller(actor): Caller,
    pre: Preconditions,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(ok(s.core.posts.publish(&actor, &id, pre.expected_version()?).await?))
}

/// Return a post to draft (editors and admins).
#[utoipa::path(post, path = "/api/v1/posts/{id}/unpublish", tag = "posts", params(("id" = String, Path)), responses((status = 200, body = PostOut)))]
pub async fn unpublish(
    State(s): State<Shared>,
    Caller(actor): Caller,
    pre: Preconditions,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(ok(s.core.posts.unpublish(&actor, &id, pre.expected_version()?).await?))
}
