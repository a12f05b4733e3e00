//! Bare axum broadcast baseline for the realtime benchmark (`bench/realtime.sh`).
//!
//! No auth, no store, no per-subscriber view: one `tokio::sync::broadcast` channel fans every
//! published event out to every SSE and WebSocket subscriber, serialized once per protocol. It is
//! what Polyport's realtime adapters are compared against, on the same machine, in the same run,
//! with the same load client (`examples/realtime_bench.rs`).
//!
//! Usage: `bare_broadcast [ADDR]` (default `127.0.0.1:0`). The first line on stdout is
//! `listening on http://ADDR`.
//!
//! - `GET /events` (SSE): `retry: 3000` and `: connected` first, then for every event
//!   `id: N`, `event: post.published`, `data: <envelope>`; `: keep-alive` every 15 s.
//! - `GET /ws` (WebSocket, JSON text frames): every event as
//!   `{"type":"event","subscription":..,"event_id":N,"event_type":..,"topic":..,"occurred_at":..,"data":{..}}`;
//!   answers `{"type":"subscribe","id":..}` with `{"type":"response","id":..,"data":{"subscribed":[..]}}`
//!   and `{"type":"ping"}` with `{"type":"pong"}`, so the load client speaks to both servers alike.
//!   Small buffers like Polyport's: read_buffer_size 4096 (Polyport's /ws: 2048), write_buffer_size 0,
//!   max_write_buffer_size 64 KiB.
//! - `POST /publish`: broadcasts one `post.published` event (envelope shaped like Polyport's
//!   `{id, type, topic, occurred_at, data}`, `data` a published post) with the next id and the
//!   current time as `occurred_at`; answers 201 `{"id": N, "subscribers": R}`.
//!
//! Env: `BARE_CHANNEL_CAPACITY` (default 4096) events buffered for slow receivers; a receiver that
//! falls further behind skips events (counted as lost by the load client).

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use futures::{SinkExt as _, Stream, StreamExt as _};
use serde_json::json;
use tokio::sync::broadcast;

/// One published event, serialized once for each protocol.
struct Published {
    id: u64,
    /// SSE `data:` payload: the envelope `{id, type, topic, occurred_at, data}`.
    sse_data: String,
    /// WebSocket frame: `{"type":"event","subscription":"s1",...}`.
    ws_frame: String,
}

struct AppState {
    tx: broadcast::Sender<Arc<Published>>,
    next_id: AtomicU64,
}

const AUTHOR_ID: &str = "0193f2a0-0000-7000-8000-000000000001";

async fn publish(State(state): State<Arc<AppState>>) -> (StatusCode, Json<serde_json::Value>) {
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    let post_id = format!("0193f2a0-0000-7000-8000-{id:012x}");
    // A published post of the size Polyport sends for the benchmark's posts.
    let data = json!({
        "id": post_id,
        "author_id": AUTHOR_ID,
        "title": format!("Benchmark post {id}"),
        "body": "Published by the realtime benchmark writer.",
        "status": "published",
        "tags": ["bench"],
        "published_at": now,
        "created_at": now,
        "updated_at": now,
        "version": 2,
    });
    let topic = format!("posts/{post_id}");
    let sse_data =
        json!({"id": id, "type": "post.published", "topic": topic, "occurred_at": now, "data": data}).to_string();
    let ws_frame = json!({
        "type": "event",
        "subscription": "s1",
        "event_id": id,
        "event_type": "post.published",
        "topic": topic,
        "occurred_at": now,
        "data": data,
    })
    .to_string();
    let receivers = state.tx.send(Arc::new(Published { id, sse_data, ws_frame })).unwrap_or(0);
    (StatusCode::CREATED, Json(json!({"id": id, "subscribers": receivers})))
}

async fn sse(State(state): State<Arc<AppState>>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = state.tx.subscribe();
    let hello = futures::stream::iter([Ok(SseEvent::default().retry(Duration::from_secs(3)).comment("connected"))]);
    let events = futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let frame = SseEvent::default().id(ev.id.to_string()).event("post.published").data(&ev.sse_data);
                    return Some((Ok(frame), rx));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(hello.chain(events)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive"))
}

async fn ws(State(state): State<Arc<AppState>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve_ws(socket, state.tx.subscribe()))
        .into_response()
}

async fn serve_ws(socket: WebSocket, mut rx: broadcast::Receiver<Arc<Published>>) {
    let (mut sink, mut stream) = socket.split();
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if sink.send(Message::Text(ev.ws_frame.as_str().into())).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let Ok(frame) = serde_json::from_str::<serde_json::Value>(text.as_str()) else { continue };
                    let reply = match frame.get("type").and_then(|t| t.as_str()) {
                        Some("ping") => json!({"type": "pong"}),
                        Some("subscribe") => json!({
                            "type": "response",
                            "id": frame.get("id"),
                            "data": {"subscribed": frame.get("topics").cloned().unwrap_or_else(|| json!([]))},
                        }),
                        _ => continue,
                    };
                    if sink.send(Message::Text(reply.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let capacity = match std::env::var("BARE_CHANNEL_CAPACITY") {
        Ok(v) => v.trim().parse::<usize>().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("BARE_CHANNEL_CAPACITY={v:?}: {e}"))
        })?,
        Err(_) => 4096,
    };
    let (tx, _) = broadcast::channel(capacity);
    let state = Arc::new(AppState { tx, next_id: AtomicU64::new(1) });
    let app = Router::new()
        .route("/events", get(sse))
        .route("/ws", get(ws))
        .route("/publish", post(publish))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state);

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{local}")?;
        writeln!(out, "websocket buffers: read_buffer_size=4096 write_buffer_size=0 max_write_buffer_size=65536")?;
        out.flush()?;
    }
    axum::serve(listener, app).await
}
