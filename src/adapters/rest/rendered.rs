//! Post bodies as REST writes them, kept per post: a post read again unchanged (equal in every
//! field, so the same bytes) is answered with the bytes written the last time instead of being
//! serialized again, the largest part of a cached read's work. It is a memo of a pure function,
//! so one per process serves every server in it; bounded in bytes, emptied when full.

use std::sync::{LazyLock, PoisonError, RwLock};

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::dto::PostOut;
use super::respond::{json_bytes, to_json};
use crate::domain::post::Post;

/// What the kept posts and their bodies may weigh together.
const BUDGET_BYTES: usize = 8 << 20;

#[derive(Default)]
struct Kept {
    posts: foldhash::HashMap<String, (Post, Bytes)>,
    weight: usize,
}

static KEPT: LazyLock<RwLock<Kept>> = LazyLock::new(Default::default);

/// `post` as a 200 JSON answer.
pub fn post(post: Post) -> Response {
    let kept = KEPT.read().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, body)) = kept.posts.get(&post.id).filter(|(known, _)| *known == post) {
        return json_bytes(StatusCode::OK, body.clone());
    }
    drop(kept);
    match to_json(&PostOut::from(post.clone())) {
        Ok(body) => {
            keep(post, body.clone());
            json_bytes(StatusCode::OK, body)
        }
        Err(e) => e.into_response(),
    }
}

fn keep(post: Post, body: Bytes) {
    let weight = 2 * body.len() + 64;
    let mut kept = KEPT.write().unwrap_or_else(PoisonError::into_inner);
    if kept.weight + weight > BUDGET_BYTES {
        *kept = Kept::default();
    }
    if weight <= BUDGET_BYTES {
        kept.weight += weight;
        if let Some((_, old)) = kept.posts.insert(post.id.clone(), (post, body)) {
            kept.weight -= 2 * old.len() + 64;
        }
    }
}
