//! `polyport.v1.PostService`: unary CRUD, `ListPosts` as a server stream and `ImportPosts` as a
//! client stream, over the core's PostService.

use tonic::{Request, Response, Status, Streaming};

use super::call::{Call, unexpected};
use super::stream::{Out, channel, ended};
use super::users::paging;
use super::{Grpc, convert, pb};
use crate::domain::error::{DomainError, DomainResult, ErrorCode};
use crate::domain::page::MAX_LIMIT;
use crate::domain::post::{NewPost, PostFilter, PostPatch};
use crate::platform::cursor::posts_context;
use crate::platform::operations::{Operation, Outcome};

/// Most rows one ImportPosts call accepts; the row after them fails and ends the import.
pub const MAX_IMPORT_ROWS: usize = 1000;

fn none_if_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn patch(r: &pb::UpdatePostRequest) -> DomainResult<PostPatch> {
    let Some(mask) = &r.update_mask else {
        let tags = (!r.tags.is_empty()).then(|| r.tags.clone());
        return Ok(PostPatch { title: r.title.clone(), body: r.body.clone(), tags });
    };
    let mut patch = PostPatch::default();
    for (i, path) in mask.paths.iter().enumerate() {
        match path.as_str() {
            "title" => patch.title = Some(r.title.clone().unwrap_or_default()),
            "body" => patch.body = Some(r.body.clone().unwrap_or_default()),
            "tags" => patch.tags = Some(r.tags.clone()),
            _ => {
                return Err(DomainError::invalid("update_mask names an unknown field")
                    .with_detail(format!("update_mask.paths[{i}]"), "unknown_field"));
            }
        }
    }
    Ok(patch)
}

async fn post(call: &Call, op: Operation) -> Result<Response<pb::Post>, Status> {
    match call.run(op).await? {
        (Outcome::Post(p), replayed) => Ok(call.respond(convert::post(p), replayed)),
        _ => Err(unexpected(call)),
    }
}

fn row_error(e: &DomainError) -> pb::RowError {
    pb::RowError {
        code: e.code.as_str().to_string(),
        message: e.message.clone(),
        details: e.details.iter().map(|d| pb::FieldIssue { field: d.field.clone(), issue: d.issue.clone() }).collect(),
    }
}

impl Grpc {
    async fn import_row(
        &self,
        call: &Call,
        call_key: Option<&str>,
        index: usize,
        row: pb::ImportPostsRequest,
    ) -> pb::ImportRowResult {
        let key = none_if_empty(row.idempotency_key).or_else(|| call_key.map(|k| format!("{k}#{index}")));
        let op = Operation::CreatePost(NewPost { title: row.title, body: row.body, tags: row.tags });
        let outcome = match call.charge().await {
            Err(e) => Err(e),
            Ok(()) => self.shared.ops.run(&call.admitted, op, key.as_deref()).await,
        };
        let index = index as i32;
        match outcome {
            Ok((Outcome::Post(post), replayed)) => {
                pb::ImportRowResult { index, post_id: post.id, replayed, error: None }
            }
            Ok(_) => pb::ImportRowResult {
                index,
                error: Some(row_error(&DomainError::internal(anyhow::anyhow!("unexpected outcome")))),
                ..Default::default()
            },
            Err(e) => pb::ImportRowResult { index, error: Some(row_error(&e)), ..Default::default() },
        }
    }
}

#[tonic::async_trait]
impl pb::post_service_server::PostService for Grpc {
    type ListPostsStream = Out<pb::ListPostsResponse>;

    async fn create_post(&self, req: Request<pb::CreatePostRequest>) -> Result<Response<pb::Post>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        post(&call, Operation::CreatePost(NewPost { title: r.title, body: r.body, tags: r.tags })).await
    }

    async fn get_post(&self, req: Request<pb::GetPostRequest>) -> Result<Response<pb::Post>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        post(&call, Operation::GetPost { id: req.into_inner().id }).await
    }

    async fn list_posts(&self, req: Request<pb::ListPostsRequest>) -> Result<Response<Self::ListPostsStream>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        let filter = PostFilter::parse(none_if_empty(r.author_id), none_if_empty(r.status), none_if_empty(r.tag))
            .map_err(|e| call.fail(&e))?;
        let context = posts_context(&filter);
        let mut page =
            self.shared.ops.page(&context, paging(MAX_LIMIT as i32, &r.cursor)).map_err(|e| call.fail(&e))?;
        let slot = call.stream_slot().await?;
        let (tx, out) = channel(64);
        let mut remaining = if r.limit > 0 { r.limit as usize } else { usize::MAX };
        let grpc = self.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let end = ended(&call, false);
            tokio::pin!(end);
            while remaining > 0 {
                page.limit = page.limit.min(remaining.min(MAX_LIMIT as usize) as u32);
                let found = tokio::select! {
                    found = grpc.shared.core.posts.list(call.actor(), &filter, &page) => found,
                    status = &mut end => { let _ = tx.send(Err(status)).await; return; }
                };
                let found = match found {
                    Ok(found) => found,
                    Err(e) => {
                        let _ = tx.send(Err(call.fail(&e))).await;
                        return;
                    }
                };
                for post in found.items {
                    let next_cursor = grpc.shared.cursors.encode(&context, &post.id);
                    let item = Ok(pb::ListPostsResponse { post: Some(convert::post(post)), next_cursor });
                    tokio::select! {
                        sent = tx.send(item) => if sent.is_err() { return },
                        status = &mut end => { let _ = tx.send(Err(status)).await; return; }
                    }
                    remaining -= 1;
                }
                match found.next_after {
                    Some(after) => page.after = Some(after),
                    None => return,
                }
            }
        });
        Ok(Response::new(out))
    }

    async fn update_post(&self, req: Request<pb::UpdatePostRequest>) -> Result<Response<pb::Post>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        let p = patch(&r).map_err(|e| call.fail(&e))?;
        post(&call, Operation::UpdatePost { id: r.id, patch: p, expected_version: r.expected_version }).await
    }

    async fn publish_post(&self, req: Request<pb::PublishPostRequest>) -> Result<Response<pb::Post>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        post(&call, Operation::PublishPost { id: r.id, expected_version: r.expected_version }).await
    }

    async fn unpublish_post(&self, req: Request<pb::UnpublishPostRequest>) -> Result<Response<pb::Post>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        post(&call, Operation::UnpublishPost { id: r.id, expected_version: r.expected_version }).await
    }

    async fn delete_post(
        &self,
        req: Request<pb::DeletePostRequest>,
    ) -> Result<Response<pb::DeletePostResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        let (_, replayed) = call.run(Operation::DeletePost { id: r.id, expected_version: r.expected_version }).await?;
        Ok(call.respond(pb::DeletePostResponse { deleted: true }, replayed))
    }

    async fn import_posts(
        &self,
        req: Request<Streaming<pb::ImportPostsRequest>>,
    ) -> Result<Response<pb::ImportPostsResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        call.actor().require_user().map_err(|e| call.fail(&e))?;
        let call_key = call.idempotency_key.clone();
        let mut rows = req.into_inner();
        let mut summary = pb::ImportPostsResponse::default();
        while let Some(row) = rows.message().await.map_err(super::error::from_codec)? {
            let index = summary.received as usize;
            summary.received += 1;
            let result = if index >= MAX_IMPORT_ROWS {
                let mut e =
                    DomainError::new(ErrorCode::PayloadTooLarge, format!("at most {MAX_IMPORT_ROWS} rows per import"));
                e.details.push(crate::domain::error::FieldIssue::new("rows", "too_many"));
                pb::ImportRowResult { index: index as i32, error: Some(row_error(&e)), ..Default::default() }
            } else {
                self.import_row(&call, call_key.as_deref(), index, row).await
            };
            if result.error.is_some() {
                summary.failed += 1
            } else {
                summary.created += 1
            }
            summary.results.push(result);
            if index >= MAX_IMPORT_ROWS {
                break;
            }
        }
        Ok(call.reply(summary))
    }
}
