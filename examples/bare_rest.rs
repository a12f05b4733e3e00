//! Bare axum baseline for the REST benchmark (`bench/rest.sh`).
//!
//! Serves a post-shaped JSON object with no auth, no store, no middleware, so that
//! `bench/rest.sh` can report Polyport's REST throughput as a ratio of what plain axum does on
//! the same machine in the same run.
//!
//! Usage: `bare_rest [ADDR]` (default `127.0.0.1:0`). The first line on stdout is
//! `listening on http://ADDR`.
//!
//! - `GET /post` answers 200 with a post whose serialized size is `BARE_BODY_BYTES` bytes
//!   (default 400), padded in its `body` field; it is serialized on every request.
//! - `POST /post` parses a `{"title","body","tags"}` JSON body and answers 201 with a post built
//!   from it.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize)]
struct Post {
    id: String,
    author_id: String,
    title: String,
    body: String,
    status: &'static str,
    tags: Vec<String>,
    published_at: Option<&'static str>,
    created_at: &'static str,
    updated_at: &'static str,
    version: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePost {
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    tags: Vec<String>,
}

struct AppState {
    post: Post,
    next_id: AtomicU64,
}

const TIMESTAMP: &str = "2025-01-01T00:00:00.000000Z";
const AUTHOR_ID: &str = "0193f2a0-0000-7000-8000-000000000001";

fn sample_post(target_bytes: usize) -> Post {
    let mut post = Post {
        id: "0193f2a0-0000-7000-8000-0000000000aa".to_owned(),
        author_id: AUTHOR_ID.to_owned(),
        title: "A benchmark post".to_owned(),
        body: String::new(),
        status: "published",
        tags: vec!["bench".to_owned(), "rust".to_owned()],
        published_at: Some(TIMESTAMP),
        created_at: TIMESTAMP,
        updated_at: TIMESTAMP,
        version: 2,
    };
    let size = |post: &Post| serde_json::to_vec(post).expect("serialize post").len();
    // Very small targets: drop the tags, then shorten the title, before padding the body.
    if size(&post) > target_bytes {
        post.tags.clear();
    }
    while size(&post) > target_bytes && post.title.len() > 1 {
        post.title.pop();
    }
    let base = size(&post);
    if base > target_bytes {
        eprintln!("BARE_BODY_BYTES={target_bytes} is below the minimum post size {base}; using {base}");
    }
    // 'x' serializes as one byte, so the padded size is exact whenever target >= base.
    post.body = "x".repeat(target_bytes.saturating_sub(base));
    post
}

async fn get_post(State(state): State<Arc<AppState>>) -> Json<Post> {
    Json(state.post.clone())
}

async fn create_post(State(state): State<Arc<AppState>>, Json(input): Json<CreatePost>) -> (StatusCode, Json<Post>) {
    let n = state.next_id.fetch_add(1, Ordering::Relaxed);
    let post = Post {
        id: format!("0193f2a0-0000-7000-8000-{n:012x}"),
        author_id: AUTHOR_ID.to_owned(),
        title: input.title,
        body: input.body,
        status: "draft",
        tags: input.tags,
        published_at: None,
        created_at: TIMESTAMP,
        updated_at: TIMESTAMP,
        version: 1,
    };
    (StatusCode::CREATED, Json(post))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let body_bytes = match std::env::var("BARE_BODY_BYTES") {
        Ok(v) => v.trim().parse::<usize>().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("BARE_BODY_BYTES={v:?}: {e}"))
        })?,
        Err(_) => 400,
    };

    let state = Arc::new(AppState { post: sample_post(body_bytes), next_id: AtomicU64::new(1) });
    let app = Router::new().route("/post", get(get_post).post(create_post)).with_state(state);

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{local}")?;
        out.flush()?;
    }
    axum::serve(listener, app).await
}
