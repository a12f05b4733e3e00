//! REST handlers for `/posts`.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::dto::{CreatePostRequest, PostList, PostListParams, PostOut, UpdatePostRequest};
use super::error::{ApiResult, Json, Path, Query};
use super::extract::{Caller, Preconditions, replayed, unexpected};
use super::respond::{conditional_with, page, resource};
use crate::adapters::Shared;
use crate::domain::post::PostFilter;
use crate::platform::operations::{Operation, Outcome, Paging};

fn ok((outcome, replay): (Outcome, bool)) -> ApiResult<Response> {
    let Outcome::Post(post) = outcome else { return Err(unexpected()) };
    Ok(replayed(resource(StatusCode::OK, post.version, "", PostOut::from(post), None), replay))
}

/// Posts the caller may read, newest first, filtered by author, status and tag.
#[utoipa::path(get, path = "/api/v1/posts", operation_id = "listPosts", tag = "posts", params(PostListParams), responses((status = 200, body = PostList)))]
pub async fn list(
    State(s): State<Shared>,
    caller: Caller,
    uri: Uri,
    Query(q): Query<PostListParams>,
) -> ApiResult<Response> {
    let filter = PostFilter::parse(q.author_id, q.status, q.tag)?;
    let op = Operation::ListPosts { filter, paging: Paging { limit: q.limit, cursor: q.cursor } };
    post_page(&uri, caller.run(&s, op).await?.0)
}

/// A page of posts as `{data, next_cursor, has_more}` with its `Link`.
pub(super) fn post_page(uri: &Uri, outcome: Outcome) -> ApiResult<Response> {
    let Outcome::Posts(posts) = outcome else { return Err(unexpected()) };
    Ok(page(uri, posts, |data, next_cursor, has_more| PostList {
        data: data.into_iter().map(PostOut::from).collect(),
        next_cursor,
        has_more,
    }))
}

/// Write a new post; it starts as a draft.
#[utoipa::path(post, path = "/api/v1/posts", operation_id = "createPost", tag = "posts", request_body = CreatePostRequest,
    responses((status = 201, body = PostOut, headers(("location" = String), ("etag" = String)))))]
pub async fn create(
    State(s): State<Shared>,
    caller: Caller,
    Json(req): Json<CreatePostRequest>,
) -> ApiResult<Response> {
    let (Outcome::Post(post), replay) = caller.run(&s, Operation::CreatePost(req.into())).await? else {
        return Err(unexpected());
    };
    let location = format!("/api/v1/posts/{}", post.id);
    Ok(replayed(resource(StatusCode::CREATED, post.version, "", PostOut::from(post), Some(location)), replay))
}

/// A post. Drafts are visible to their author, editors and admins only.
#[utoipa::path(get, path = "/api/v1/posts/{id}", operation_id = "getPost", tag = "posts", params(("id" = String, Path)),
    responses((status = 200, body = PostOut, headers(("etag" = String))), (status = 304)))]
pub async fn get(
    State(s): State<Shared>,
    caller: Caller,
    pre: Preconditions,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (Outcome::Post(post), _) = caller.run(&s, Operation::GetPost { id }).await? else {
        return Err(unexpected());
    };
    Ok(conditional_with(&pre, post.version, "", || super::rendered::post(post)))
}

/// Change a post (author, editors, admins). `If-Match` guards against lost updates.
#[utoipa::path(patch, path = "/api/v1/posts/{id}", operation_id = "updatePost", tag = "posts", params(("id" = String, Path)), request_body = UpdatePostRequest,
    responses((status = 200, body = PostOut)))]
pub async fn update(
    State(s): State<Shared>,
    caller: Caller,
    pre: Preconditions,
    Path(id): Path<String>,
    Json(req): Json<UpdatePostRequest>,
) -> ApiResult<Response> {
    let op = Operation::UpdatePost { id, patch: req.into(), expected_version: pre.expected_version()? };
    ok(caller.run(&s, op).await?)
}

/// Delete a post (author, editors, admins).
#[utoipa::path(delete, path = "/api/v1/posts/{id}", operation_id = "deletePost", tag = "posts", params(("id" = String, Path)), responses((status = 204)))]
pub async fn delete(
    State(s): State<Shared>,
    caller: Caller,
    pre: Preconditions,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (_, replay) = caller.run(&s, Operation::DeletePost { id, expected_version: pre.expected_version()? }).await?;
    Ok(replayed(StatusCode::NO_CONTENT.into_response(), replay))
}

/// Publish a post (author, editors, admins). Publishing a published post changes nothing.
#[utoipa::path(post, path = "/api/v1/posts/{id}/publish", operation_id = "publishPost", tag = "posts", params(("id" = String, Path)), responses((status = 200, body = PostOut)))]
pub async fn publish(
    State(s): State<Shared>,
    caller: Caller,
    pre: Preconditions,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ok(caller.run(&s, Operation::PublishPost { id, expected_version: pre.expected_version()? }).await?)
}

/// Return a post to draft (editors and admins).
#[utoipa::path(post, path = "/api/v1/posts/{id}/unpublish", operation_id = "unpublishPost", tag = "posts", params(("id" = String, Path)), responses((status = 200, body = PostOut)))]
pub async fn unpublish(
    State(s): State<Shared>,
    caller: Caller,
    pre: Preconditions,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ok(caller.run(&s, Operation::UnpublishPost { id, expected_version: pre.expected_version()? }).await?)
}
