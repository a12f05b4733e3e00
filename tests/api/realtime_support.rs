//! Shared support for the realtime tests: an SSE reader over a real HTTP response, a WebSocket
//! client over a real socket, and the durable log as the source of truth for ids.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::{SinkExt, Stream, StreamExt};
use polyport::domain::events::{StoredEvent, Subject};
use reqwest::Response;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::helpers::TestApp;

/// The longest any single await in these tests may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut` for at most `limit`, failing the test with `what` when it takes longer.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The durable log
// ---------------------------------------------------------------------------------------------

/// Every event in the log, in id order.
pub async fn log(app: &TestApp) -> Vec<StoredEvent> {
    app.core.deps.events.read_after(0, 100_000).await.expect("the log is readable")
}

/// The newest event id (0 when the log is empty).
pub async fn last_id(app: &TestApp) -> i64 {
    app.core.deps.events.last_id().await.expect("the log is readable")
}

/// Ids of the post events after `after`, in order.
pub async fn post_event_ids_after(app: &TestApp, after: i64) -> Vec<i64> {
    log(app).await.iter().filter(|e| e.id > after && matches!(e.subject, Subject::Post(_))).map(|e| e.id).collect()
}

/// The stored event with `id`.
pub async fn stored(app: &TestApp, id: i64) -> StoredEvent {
    log(app).await.into_iter().find(|e| e.id == id).unwrap_or_else(|| panic!("event {id} is in the log"))
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("`{key}` is a string in {v}"))
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events
// ---------------------------------------------------------------------------------------------

/// One SSE block (the lines up to a blank line).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SseBlock {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Option<String>,
    pub retry: Option<String>,
    pub comments: Vec<String>,
}

/// One event as read from an SSE stream.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: i64,
    pub event: String,
    pub envelope: Value,
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>;

/// An open `text/event-stream` response, read block by block.
pub struct Sse {
    body: ByteStream,
    buf: String,
    ended: bool,
}

impl Sse {
    pub fn new(response: Response) -> Self {
        assert_eq!(response.status(), reqwest::StatusCode::OK, "the stream opened");
        Self { body: Box::pin(response.bytes_stream()), buf: String::new(), ended: false }
    }

    /// The next block, or None when the server ended the stream. Fails after `limit`.
    pub async fn block_within(&mut self, limit: Duration) -> Option<SseBlock> {
        within(limit, "the next SSE block", self.block()).await
    }

    async fn block(&mut self) -> Option<SseBlock> {
        loop {
            let normalized = self.buf.replace("\r\n", "\n");
            if normalized.len() != self.buf.len() {
                self.buf = normalized;
            }
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                return Some(parse_block(&raw));
            }
            if self.ended {
                assert!(self.buf.trim().is_empty(), "the stream ended inside a block: {:?}", self.buf);
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.push_str(std::str::from_utf8(&chunk).expect("UTF-8 stream")),
                Some(Err(_)) | None => self.ended = true,
            }
        }
    }

    /// The next event (skipping comments and `retry:` blocks); fails if the stream ends first.
    pub async fn event(&mut self) -> SseEvent {
        within(WAIT, "the next SSE event", async {
            loop {
                let block = self.block().await.expect("the stream is still open");
                if let Some(e) = block_event(&block) {
                    return e;
                }
            }
        })
        .await
    }

    /// The next `n` events.
    pub async fn events(&mut self, n: usize) -> Vec<SseEvent> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.event().await);
        }
        out
    }

    /// Reads until the server ends the stream (within `limit`), returning every block seen.
    pub async fn until_end(&mut self, limit: Duration) -> Vec<SseBlock> {
        within(limit, "the server ending the SSE stream", async {
            let mut seen = Vec::new();
            while let Some(b) = self.block().await {
                seen.push(b);
            }
            seen
        })
        .await
    }

    /// Asserts no event arrives for `quiet` (comments are fine).
    pub async fn no_event_for(&mut self, quiet: Duration) {
        let r = tokio::time::timeout(quiet, async {
            loop {
                match self.block().await {
                    Some(b) => {
                        if let Some(e) = block_event(&b) {
                            return e;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            }
        })
        .await;
        if let Ok(e) = r {
            panic!("no event expected, got {e:?}");
        }
    }
}

fn block_event(block: &SseBlock) -> Option<SseEvent> {
    let data = block.data.as_ref()?;
    let event = block.event.clone().unwrap_or_else(|| "message".into());
    let envelope: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("data is JSON ({e}): {data}"));
    let id = match &block.id {
        Some(id) => id.parse().unwrap_or_else(|_| panic!("numeric id: {id}")),
        None => -1,
    };
    Some(SseEvent { id, event, envelope })
}

pub fn parse_block(raw: &str) -> SseBlock {
    let mut b = SseBlock::default();
    for line in raw.split('\n').filter(|l| !l.is_empty()) {
        if let Some(c) = line.strip_prefix(':') {
            b.comments.push(c.trim().to_string());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_string();
        match field {
            "id" => b.id = Some(value),
            "event" => b.event = Some(value),
            "data" => {
                b.data = Some(match b.data.take() {
                    Some(prev) => format!("{prev}\n{value}"),
                    None => value,
                })
            }
            "retry" => b.retry = Some(value),
            other => panic!("unknown SSE field {other:?} in {raw:?}"),
        }
    }
    b
}

/// Percent-encodes a query value.
pub fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How a stream authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Cred<'a> {
    Anonymous,
    Bearer(&'a str),
    ApiKey(&'a str),
}

/// `GET /api/v1/events?{query}` with `cred` and an optional `Last-Event-ID`; the raw response.
pub async fn sse_request(app: &TestApp, query: &str, cred: Cred<'_>, last_event_id: Option<i64>) -> Response {
    let mut rb = app.client.get(app.api(&format!("/events?{query}"))).header("accept", "text/event-stream");
    rb = match cred {
        Cred::Anonymous => rb,
        Cred::Bearer(t) => rb.bearer_auth(t),
        Cred::ApiKey(k) => rb.header("x-api-key", k),
    };
    if let Some(id) = last_event_id {
        rb = rb.header("last-event-id", id.to_string());
    }
    within(WAIT, "the SSE response head", rb.send()).await.expect("request sent")
}

/// An open SSE stream, past its opening `retry:` / `: connected` block.
pub async fn sse(app: &TestApp, query: &str, cred: Cred<'_>, last_event_id: Option<i64>) -> Sse {
    opened(sse_request(app, query, cred, last_event_id).await).await
}

/// Checks the head and the opening `retry:` / `: connected` block of a stream response.
pub async fn opened(response: Response) -> Sse {
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        let body = response.text().await.unwrap_or_default();
        panic!("the stream did not open: {status} {body}");
    }
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    assert!(content_type.as_deref().is_some_and(|c| c.starts_with("text/event-stream")), "{content_type:?}");
    let cache = response.headers().get("cache-control").map(|v| v.to_str().unwrap().to_string());
    assert!(cache.as_deref().is_some_and(|c| c.contains("no-cache")), "cache-control: {cache:?}");
    let mut s = Sse::new(response);
    let first = s.block_within(WAIT).await.expect("an opening block");
    assert_eq!(first.retry.as_deref(), Some("3000"), "the first frame is the retry hint: {first:?}");
    assert!(first.comments.iter().any(|c| c == "connected") || connected_next(&mut s).await, "`: connected`");
    s
}

/// `: connected` may come in its own block right after `retry:`.
async fn connected_next(s: &mut Sse) -> bool {
    let b = s.block_within(WAIT).await.expect("a `: connected` block");
    b.comments.iter().any(|c| c == "connected")
}

/// Checks an SSE event against the stored event with the same id.
pub async fn assert_sse_matches_log(app: &TestApp, e: &SseEvent) {
    let stored = stored(app, e.id).await;
    assert_eq!(e.event, stored.event_type.as_str(), "event: line");
    assert_eq!(e.envelope["id"], json!(e.id), "envelope id = id: line");
    assert_eq!(e.envelope["type"], stored.event_type.as_str());
    assert_eq!(e.envelope["topic"], stored.subject.topic());
    assert_eq!(e.envelope["data"]["id"], stored.subject.id());
    let at = chrono::DateTime::parse_from_rfc3339(str_of(&e.envelope, "occurred_at")).expect("RFC 3339 occurred_at");
    assert_eq!(at.timestamp_millis(), stored.occurred_at.timestamp_millis(), "occurred_at");
}

// ---------------------------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------------------------

pub type WsStream = WebSocketStream<TcpStream>;

/// A WebSocket client on `/ws`.
pub struct Ws {
    pub stream: WsStream,
}

/// How a WebSocket connection ended.
#[derive(Debug)]
pub struct Closed {
    /// Close code, None when the connection dropped without a close frame.
    pub code: Option<u16>,
    pub reason: String,
    /// Text frames received before the close.
    pub frames: Vec<Value>,
}

/// Opens `/ws` with extra upgrade headers; the handshake error (e.g. HTTP 403) as Err.
pub async fn ws_try(app: &TestApp, headers: &[(&str, &str)], recv_buffer: Option<u32>) -> Result<Ws, WsError> {
    let mut request = format!("ws://{}/ws", app.addr).into_client_request().unwrap();
    for (k, v) in headers {
        request.headers_mut().insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let tcp = within(WAIT, "TCP connect", socket.connect(app.addr)).await.expect("TCP connect");
    tcp.set_nodelay(true).unwrap();
    let (stream, _) = within(WAIT, "the WebSocket handshake", tokio_tungstenite::client_async(request, tcp)).await?;
    Ok(Ws { stream })
}

/// Opens `/ws` anonymously.
pub async fn ws(app: &TestApp) -> Ws {
    ws_try(app, &[], None).await.expect("upgrade accepted")
}

/// Opens `/ws` with a Bearer token in the upgrade request.
pub async fn ws_bearer(app: &TestApp, token: &str) -> Ws {
    ws_try(app, &[("authorization", &format!("Bearer {token}"))], None).await.expect("upgrade accepted")
}

impl Ws {
    pub async fn send_json(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        within(WAIT, "sending a frame", self.stream.send(Message::text(text))).await.expect("frame sent");
    }

    /// The next JSON text frame (control frames skipped), or the close.
    pub async fn next_frame(&mut self) -> Result<Value, Closed> {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(t))) => {
                    return Ok(serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("server frames are JSON ({e}): {}", t.as_str())));
                }
                Some(Ok(Message::Binary(b))) => panic!("unexpected binary frame ({} bytes)", b.len()),
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = match frame {
                        Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_string()),
                        None => (None, String::new()),
                    };
                    return Err(Closed { code, reason, frames: Vec::new() });
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(Closed { code: None, reason: String::new(), frames: Vec::new() }),
            }
        }
    }

    /// The next JSON frame; fails on close or after `WAIT`.
    pub async fn recv(&mut self) -> Value {
        match within(WAIT, "the next WebSocket frame", self.next_frame()).await {
            Ok(v) => v,
            Err(c) => panic!("the connection closed while a frame was expected: {c:?}"),
        }
    }

    /// The next frame that is not an `event` (events before it are returned too).
    pub async fn recv_reply(&mut self) -> (Value, Vec<Value>) {
        let mut events = Vec::new();
        loop {
            let f = self.recv().await;
            if f["type"] == "event" {
                events.push(f);
            } else {
                return (f, events);
            }
        }
    }

    /// The next `event` frame (failing on anything else).
    pub async fn event(&mut self) -> Value {
        let f = self.recv().await;
        assert_eq!(f["type"], "event", "an event frame: {f}");
        f
    }

    /// Reads until the connection closes (within `limit`).
    pub async fn closed_within(&mut self, limit: Duration) -> Closed {
        let mut frames = Vec::new();
        let read = tokio::time::timeout(limit, async {
            loop {
                match self.next_frame().await {
                    Ok(v) => frames.push(v),
                    Err(c) => return c,
                }
            }
        })
        .await;
        match read {
            Ok(mut c) => {
                c.frames = frames;
                c
            }
            Err(_) => panic!(
                "timed out after {limit:?} waiting for the server to close the WebSocket; {} frames read, the last: {:?}",
                frames.len(),
                frames.last()
            ),
        }
    }

    /// Sends `subscribe` and waits for its acknowledgement (events before it are returned).
    pub async fn subscribe(&mut self, id: &str, topics: &[&str], after: Option<i64>) -> Vec<Value> {
        let mut frame = json!({"type": "subscribe", "id": id, "topics": topics});
        if let Some(a) = after {
            frame["after"] = json!(a);
        }
        self.send_json(frame).await;
        let (reply, events) = self.recv_reply().await;
        assert_eq!(reply["type"], "response", "subscribe {id} acknowledged: {reply}");
        assert_eq!(reply["id"], id);
        assert_eq!(reply["data"]["subscribed"], json!(topics), "{reply}");
        events
    }

    /// Sends a `request` frame and returns the reply (response or error).
    pub async fn request(&mut self, id: &str, op: &str, params: Value) -> Value {
        self.request_with(json!({"type": "request", "id": id, "op": op, "params": params})).await
    }

    pub async fn request_with(&mut self, frame: Value) -> Value {
        let id = frame["id"].clone();
        self.send_json(frame).await;
        let (reply, _) = self.recv_reply().await;
        assert_eq!(reply["id"], id, "a reply to {id}: {reply}");
        reply
    }

    /// A ping answered by a pong: the connection is open and served.
    pub async fn assert_alive(&mut self) {
        self.send_json(json!({"type": "ping"})).await;
        let (reply, _) = self.recv_reply().await;
        assert_eq!(reply, json!({"type": "pong"}));
    }
}

/// Checks a WS event frame against the stored event with the same id; returns the id.
pub async fn assert_ws_matches_log(app: &TestApp, frame: &Value, subscription: &str) -> i64 {
    assert_eq!(frame["type"], "event", "{frame}");
    assert_eq!(frame["subscription"], subscription, "{frame}");
    let id = frame["event_id"].as_i64().unwrap_or_else(|| panic!("numeric event_id: {frame}"));
    let stored = stored(app, id).await;
    assert_eq!(frame["event_type"], stored.event_type.as_str(), "{frame}");
    assert_eq!(frame["topic"], stored.subject.topic(), "{frame}");
    assert_eq!(frame["data"]["id"], stored.subject.id(), "{frame}");
    let at = chrono::DateTime::parse_from_rfc3339(str_of(frame, "occurred_at")).expect("RFC 3339 occurred_at");
    assert_eq!(at.timestamp_millis(), stored.occurred_at.timestamp_millis(), "occurred_at");
    id
}

/// The event ids of `frames` (event frames only).
pub fn event_ids(frames: &[Value]) -> Vec<i64> {
    frames.iter().filter(|f| f["type"] == "event").map(|f| f["event_id"].as_i64().unwrap()).collect()
}
