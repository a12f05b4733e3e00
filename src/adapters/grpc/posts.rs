//! `polyport.v1.PostService`: unary CRUD, `ListPosts` as a server stream and `ImportPosts` as a
//! client stream, over the core's PostService.

use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use super::call::{Call, idempotency_key};
use super::stream::{Out, channel, ended};
use super::{Grpc, convert, pb};
use crate::domain::error::{DomainError, DomainResult, ErrorCode};
use crate::domain::post::{NewPost, PostFilter, PostPatch};
use crate::platform::cursor::posts_context;

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
        let key = none_if_empty(row.idempotency_key.clone()).or_else(|| call_key.map(|k| format!("{k}#{index}")));
        let create = || async {
            let input = NewPost { title: row.title.clone(), body: row.body.clone(), tags: row.tags.clone() };
            Ok(convert::post(self.shared.core.posts.create(call.actor(), input).await?))
        };
        let outcome = match call.charge() {
            Err(e) => Err(e),
            Ok(()) => match &key {
                Some(k) => call.run_once("ImportPosts/row", k, &row.encode_to_vec(), create).await,
                None => create().await.map(|p| (p, false)),
            },
        };
        let index = index as i32;
        match outcome {
            Ok((post, replayed)) => pb::ImportRowResult { index, post_id: post.id, replayed, error: None },
            Err(e) => pb::ImportRowResult { index, error: Some(row_error(&e)), ..Default::default() },
        }
    }
}

#[tonic::async_trait]
impl pb::post_service_server::PostService for Grpc {
    type ListPostsStream = Out<pb::ListPostsResponse>;

    async fn create_post(&self, req: Request<pb::CreatePostRequest>) -> Result<Response<pb::Post>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let key = idempotency_key(&req);
        let r = req.into_inner();
        call.once("CreatePost", key, &r.encode_to_vec(), || async {
            let input = NewPost { title: r.title.clone(), body: r.body.clone(), tags: r.tags.clone() };
            Ok(convert::post(self.shared.core.posts.create(call.actor(), input).await?))
        })
        .await
    }

    async fn get_post(&self, req: Request<pb::GetPostRequest>) -> Result<Response<pb::Post>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let post = self.shared.core.posts.get(call.actor(), &req.get_ref().id).await.map_err(|e| call.fail(&e))?;
        Ok(call.reply(convert::post(post)))
    }

    async fn list_posts(&self, req: Request<pb::ListPostsRequest>) -> Result<Response<Self::ListPostsStream>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        let filter = PostFilter::parse(none_if_empty(r.author_id), none_if_empty(r.status), none_if_empty(r.tag))
            .map_err(|e| call.fail(&e))?;
        let context = posts_context(&filter);
        let mut page = self.page(&call, &context, 100, &r.cursor)?;
        let slot = call.stream_slot()?;
        let (tx, out) = channel(64);
        let mut remaining = if r.limit > 0 { r.limit as usize } else { usize::MAX };
        let grpc = self.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let end = ended(&call, false);
            tokio::pin!(end);
            while remaining > 0 {
                page.limit = page.limit.min(remaining.min(100) as u32);
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
        let key = idempotency_key(&req);
        let r = req.into_inner();
        call.once("UpdatePost", key, &r.encode_to_vec(), || async {
            let p = patch(&r)?;
            Ok(convert::post(self.shared.core.posts.update(call.actor(), &r.id, p, r.expected_version).await?))
        })
        .await
    }

    async fn publish_post(&self, req: Request<pb::PublishPostRequest>) -> Result<Response<pb::Post>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let key = idempotency_key(&req);
        let r = req.into_inner();
        call.once("PublishPost", key, &r.encode_to_vec(), || async {
            Ok(convert::post(self.shared.core.posts.publish(call.actor(), &r.id, r.expected_version).await?))
        })
        .await
    }

    async fn unpublish_post(&self, req: Request<pb::UnpublishPostRequest>) -> Result<Response<pb::Post>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let key = idempotency_key(&req);
        let r = req.into_inner();
        call.once("UnpublishPost", key, &r.encode_to_vec(), || async {
            Ok(convert::post(self.shared.core.posts.unpublish(call.actor(), &r.id, r.expected_version).await?))
        })
        .await
    }

    async fn delete_post(
        &self,
        req: Request<pb::DeletePostRequest>,
    ) -> Result<Response<pb::DeletePostResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let key = idempotency_key(&req);
        let r = req.into_inner();
        call.once("DeletePost", key, &r.encode_to_vec(), || async {
            self.shared.core.posts.delete(call.actor(), &r.id, r.expected_version).await?;
            Ok(pb::DeletePostResponse { deleted: true })
        })
        .await
    }

    async fn import_posts(
        &self,
        req: Request<Streaming<pb::ImportPostsRequest>>,
    ) -> Result<Response<pb::ImportPostsResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        call.actor().require_user().map_err(|e| call.fail(&e))?;
        let call_key = idempotency_key(&req);
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
