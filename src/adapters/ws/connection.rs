//! One WebSocket connection: a reader loop that owns the state (caller, subscriptions, timers)
//! and a writer task draining a bounded queue, so a slow client only ever hurts itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::stream::{AbortHandle, Abortable, BoxStream, SelectAll};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::frames::{self, ClientFrame};
use super::ops;
use crate::adapters::Shared;
use crate::domain::delivery::{Topic, deliver, listens};
use crate::domain::error::{DomainError, DomainResult, ErrorCode};
use crate::domain::events::StoredEvent;
use crate::domain::ports::SavedResponse;
use crate::domain::service::ClientInfo;
use crate::platform::authn::Authenticated;
use crate::platform::idempotency::{Begin, fingerprint};
use crate::platform::streams::StreamSlot;
use crate::platform::tokens::TokenType;

/// How long a client without header credentials has to send its first frame.
const FIRST_FRAME_DEADLINE: Duration = Duration::from_secs(5);

pub struct Opening {
    pub auth: Authenticated,
    pub header_credentials: bool,
    pub ip: String,
    pub slot: StreamSlot,
}

/// A close the writer sends ahead of anything queued, optionally after one last frame.
struct Close {
    code: u16,
    reason: String,
    last_words: Option<Value>,
    /// For a lagging client: each subscription and where it started. The writer turns this
    /// into the lag notice once its in-flight frame is out, so the resume points are exact.
    lagged: Option<HashMap<String, i64>>,
}

/// How long a full queue may take to drain before its client counts as lagging.
const LAG_GRACE: Duration = Duration::from_secs(1);

type Feed = BoxStream<'static, (String, DomainResult<Arc<StoredEvent>>)>;

/// A queued frame; event frames say which subscription and event they carry.
struct Outgoing {
    message: Message,
    event: Option<(String, i64)>,
}

/// Per subscription, the id of the last event the writer actually put on the socket: the
/// resume point a lagging client is told (queued but unsent frames are dropped on close).
type Written = Arc<std::sync::Mutex<HashMap<String, i64>>>;

struct Sub {
    topics: Vec<Topic>,
    abort: AbortHandle,
}

struct Conn {
    shared: Shared,
    auth: Authenticated,
    ip: String,
    out: mpsc::Sender<Outgoing>,
    close: Option<oneshot::Sender<Close>>,
    subs: HashMap<String, Sub>,
    feeds: SelectAll<Feed>,
    /// Where each subscription started, for lag notices before anything was written.
    resume_from: HashMap<String, i64>,
    heard_from: bool,
}

pub async fn run(socket: WebSocket, shared: Shared, opening: Opening) {
    let (sink, mut incoming) = socket.split();
    let (out, queue) = mpsc::channel(shared.stream_settings.ws_send_queue);
    let (close_tx, close_rx) = oneshot::channel();
    let written = Written::default();
    let writer = tokio::spawn(write(sink, queue, close_rx, written));
    let settings = shared.stream_settings;
    let mut conn = Conn {
        shared,
        auth: opening.auth,
        ip: opening.ip,
        out,
        close: Some(close_tx),
        subs: HashMap::new(),
        feeds: SelectAll::new(),
        resume_from: HashMap::new(),
        heard_from: opening.header_credentials,
    };
    let _slot = opening.slot;
    let opened = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + settings.ws_ping, settings.ws_ping);
    let mut revalidate = tokio::time::interval_at(Instant::now() + settings.revalidate, settings.revalidate);
    revalidate.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopping = conn.shared.shutdown.waiter();
    tokio::pin!(stopping);
    loop {
        let expiry = conn.expiry();
        let first_frame_due = (!conn.heard_from).then_some(opened + FIRST_FRAME_DEADLINE);
        tokio::select! {
            biased;
            () = &mut stopping => {
                conn.close_with(1001, "server shutting down", None);
                break;
            }
            () = sleep_until(expiry) => {
                let e = DomainError::unauthenticated("the access token of this connection has expired");
                conn.close_with(4401, "token expired", Some(frames::error(None, &e)));
                break;
            }
            () = sleep_until(first_frame_due) => {
                conn.close_with(4401, "authenticate or subscribe within 5 seconds", None);
                break;
            }
            _ = revalidate.tick(), if conn.auth.actor.principal().is_some() => {
                if !Box::pin(conn.shared.authn.still_valid(&conn.auth.actor)).await.unwrap_or(true) {
                    let e = DomainError::unauthenticated("the credential of this connection was revoked");
                    conn.close_with(4401, "credential revoked", Some(frames::error(None, &e)));
                    break;
                }
            }
            _ = ping.tick() => {
                let _ = conn.out.try_send(Outgoing { message: Message::Ping(Default::default()), event: None });
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    conn.heard_from = true;
                    // Boxed: an idle connection need not reserve room for a whole request's state.
                    if !Box::pin(conn.on_text(text.as_str())).await {
                        break;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    conn.heard_from = true;
                    let e = DomainError::invalid("frames are JSON text");
                    if !conn.send(frames::error(None, &e)).await {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    if is_too_big(&e) {
                        conn.close_with(1009, "message too big", None);
                    }
                    break;
                }
            },
            Some((id, event)) = conn.feeds.next(), if !conn.feeds.is_empty() => {
                if !Box::pin(conn.on_event(&id, event)).await {
                    break;
                }
            }
        }
    }
    for sub in conn.subs.values() {
        sub.abort.abort();
    }
    drop(conn);
    let _ = tokio::time::timeout(CLOSE_FLUSH + Duration::from_secs(1), writer).await;
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn is_too_big(e: &axum::Error) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("too long") || text.contains("too big") || text.contains("capacity") || text.contains("size")
}

/// The error frame and resume point told to a lagging client: per subscription, the last event
/// actually written, or where it started when nothing was.
fn lag_notice(started: &HashMap<String, i64>, written: &HashMap<String, i64>) -> (Value, i64) {
    let sent = |id: &String| written.get(id).copied().unwrap_or_else(|| started[id]);
    let mut e = DomainError::unavailable("you fell behind; reconnect and resubscribe with `after`");
    e.details = started
        .keys()
        .map(|id| {
            crate::domain::error::FieldIssue::new(format!("subscription:{id}"), format!("lagged_after:{}", sent(id)))
        })
        .collect();
    let resume = started.keys().map(sent).min().unwrap_or(0);
    (frames::error(None, &e), resume)
}

/// How long a closing connection may take to flush its last frames to a client that is not
/// reading, before it is dropped.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

type Sink = futures::stream::SplitSink<WebSocket, Message>;

/// Drains the queue into the socket. A close request jumps the queue and interrupts a write
/// blocked on a client that stopped reading: tungstenite keeps whole frames in its buffer, so a
/// frame is either wholly ahead of the close frame or not sent at all, and a frame counts as
/// written (for resume points) as soon as it is in that buffer.
async fn write(
    mut sink: Sink,
    mut queue: mpsc::Receiver<Outgoing>,
    mut close: oneshot::Receiver<Close>,
    written: Written,
) {
    loop {
        let next = tokio::select! {
            biased;
            request = &mut close => return say_goodbye(sink, request.ok(), &written).await,
            next = queue.recv() => next,
        };
        let Some(Outgoing { message, event }) = next else {
            let _ = sink.close().await;
            return;
        };
        tokio::select! {
            biased;
            request = &mut close => return say_goodbye(sink, request.ok(), &written).await,
            fed = sink.feed(message) => if let Err(e) = fed {
                tracing::info!(error = %e, "websocket write failed");
                return;
            },
        }
        if let Some((subscription, id)) = event {
            written.lock().unwrap_or_else(|e| e.into_inner()).insert(subscription, id);
        }
        tokio::select! {
            biased;
            request = &mut close => return say_goodbye(sink, request.ok(), &written).await,
            flushed = sink.flush() => if let Err(e) = flushed {
                tracing::info!(error = %e, "websocket flush failed");
                return;
            },
        }
    }
}

async fn say_goodbye(mut sink: Sink, request: Option<Close>, written: &Written) {
    let Some(Close { code, mut reason, mut last_words, lagged }) = request else {
        return;
    };
    if let Some(started) = lagged {
        let written = written.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (notice, resume) = lag_notice(&started, &written);
        last_words = Some(notice);
        reason = format!("lagged; resume after {resume}");
    }
    let bye = async {
        if let Some(frame) = last_words {
            sink.feed(Message::Text(Utf8Bytes::from(frame.to_string()))).await?;
        }
        sink.feed(Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from(reason) }))).await?;
        sink.flush().await
    };
    if tokio::time::timeout(CLOSE_FLUSH, bye).await.is_err() {
        tracing::info!(code, "websocket client did not take its close frame in time; dropping it");
    }
}

impl Conn {
    fn expiry(&self) -> Option<Instant> {
        self.auth.expires_at.map(|at| Instant::now() + (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
    }

    fn close_with(&mut self, code: u16, reason: &str, last_words: Option<Value>) {
        if let Some(close) = self.close.take() {
            let _ = close.send(Close { code, reason: reason.to_string(), last_words, lagged: None });
        }
    }

    /// Queues a frame; false (and a 1013 close) when the client is not keeping up.
    async fn send(&mut self, frame: Value) -> bool {
        self.enqueue(frame, None).await
    }

    /// A full queue gets `LAG_GRACE` to drain (a client replaying a backlog keeps reading);
    /// still full after that, the client is lagging.
    async fn enqueue(&mut self, frame: Value, event: Option<(String, i64)>) -> bool {
        self.enqueue_text(frame.to_string(), event).await
    }

    async fn enqueue_text(&mut self, frame: String, event: Option<(String, i64)>) -> bool {
        let outgoing = Outgoing { message: Message::Text(Utf8Bytes::from(frame)), event };
        match self.out.try_send(outgoing) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(outgoing)) => {
                match tokio::time::timeout(LAG_GRACE, self.out.send(outgoing)).await {
                    Ok(sent) => sent.is_ok(),
                    Err(_) => {
                        self.lagging();
                        false
                    }
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// The client stopped reading: close 1013 with a notice of where each subscription resumes.
    fn lagging(&mut self) -> bool {
        tracing::info!(subscriptions = self.subs.len(), "websocket client lagging; closing with 1013");
        self.shared.metrics.lagged_clients.inc();
        let started: HashMap<String, i64> =
            self.subs.keys().map(|id| (id.clone(), self.resume_from.get(id).copied().unwrap_or(0))).collect();
        if let Some(close) = self.close.take() {
            let _ = close.send(Close { code: 1013, reason: String::new(), last_words: None, lagged: Some(started) });
        }
        true
    }

    async fn on_event(&mut self, id: &str, event: DomainResult<Arc<StoredEvent>>) -> bool {
        let Some(sub) = self.subs.get(id) else {
            return true;
        };
        match event {
            Ok(event) if self.auth.actor == crate::domain::policy::Actor::Anonymous => {
                if !listens(&sub.topics, &event) {
                    return true;
                }
                match self.shared.public_views.of(&event) {
                    Some(v) => self.enqueue_text(v.ws_frame(id), Some((id.to_string(), v.delivery.id))).await,
                    None => true,
                }
            }
            Ok(event) => match deliver(&self.auth.actor, &sub.topics, &event) {
                Some(d) => self.enqueue(frames::event(id, &d), Some((id.to_string(), d.id))).await,
                None => true,
            },
            Err(e) => {
                let frame = frames::error(Some(id), &e);
                self.subs.remove(id).inspect(|s| s.abort.abort());
                self.send(frame).await
            }
        }
    }

    /// Handles one text frame; false ends the connection.
    async fn on_text(&mut self, text: &str) -> bool {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                let err = DomainError::invalid(format!("malformed frame: {e}")).with_detail("frame", "invalid");
                return self.send(frames::error(frames::id_of(text).as_deref(), &err)).await;
            }
        };
        match frame {
            ClientFrame::Ping => self.send(frames::pong()).await,
            ClientFrame::Auth { token, id } => match self.reauthenticate(&token) {
                Ok(data) => self.send(frames::response(id.as_deref(), data)).await,
                Err(e) if e.code == ErrorCode::Unauthenticated => {
                    self.close_with(4401, "invalid token", Some(frames::error(id.as_deref(), &e)));
                    false
                }
                Err(e) => self.send(frames::error(id.as_deref(), &e)).await,
            },
            ClientFrame::Subscribe { id, topics, after } => {
                let reply = match self.subscribe(&id, &topics, after).await {
                    Ok(names) => frames::response(Some(&id), json!({"subscribed": names})),
                    Err(e) => frames::error(Some(&id), &e),
                };
                self.send(reply).await
            }
            ClientFrame::Unsubscribe { id } => {
                let reply = match self.subs.remove(&id) {
                    Some(sub) => {
                        sub.abort.abort();
                        frames::response(Some(&id), json!({"unsubscribed": true}))
                    }
                    None => frames::error(Some(&id), &DomainError::not_found("subscription")),
                };
                self.send(reply).await
            }
            ClientFrame::Request { id, op, params, idempotency_key } => {
                let reply = self.request(&id, &op, params, idempotency_key).await;
                self.send(reply).await
            }
        }
    }

    /// An access token for the same user (or the first one) extends or upgrades the connection.
    fn reauthenticate(&mut self, token: &str) -> DomainResult<Value> {
        let fresh = self.shared.authn.token(token, TokenType::Access)?;
        if let (Some(now), Some(new)) = (self.auth.actor.user_id(), fresh.actor.user_id())
            && now != new
        {
            return Err(DomainError::forbidden("a connection cannot switch users; open a new one"));
        }
        self.auth = fresh;
        Ok(json!({"user_id": self.auth.actor.user_id(), "expires_at": self.auth.expires_at}))
    }

    async fn subscribe(&mut self, id: &str, topics: &[String], after: Option<i64>) -> DomainResult<Vec<String>> {
        if id.is_empty() || id.len() > 64 {
            return Err(DomainError::invalid("subscription ids are 1 to 64 characters").with_detail("id", "invalid"));
        }
        if self.subs.contains_key(id) {
            return Err(DomainError::conflict("this subscription id is in use").with_detail("id", "taken"));
        }
        if self.subs.len() >= self.shared.stream_settings.ws_max_subscriptions {
            let mut e = DomainError::rate_limited(1);
            e.message =
                format!("at most {} subscriptions per connection", self.shared.stream_settings.ws_max_subscriptions);
            return Err(e);
        }
        let parsed = Topic::parse_all(topics)?;
        let subscription = self.shared.bus.subscribe(after).await?;
        let (abort, registration) = AbortHandle::new_pair();
        let name = id.to_string();
        let feed = futures::stream::unfold(subscription, |mut s| async move {
            let next = s.next().await;
            Some((next, s))
        })
        .map(move |e| (name.clone(), e));
        self.feeds.push(Abortable::new(feed, registration).boxed());
        self.subs.insert(id.to_string(), Sub { topics: parsed, abort });
        self.resume_from.insert(id.to_string(), after.unwrap_or_else(|| self.shared.bus.published().max(0)));
        Ok(topics.to_vec())
    }

    /// A core operation with REST's rate limit and idempotency.
    async fn request(&mut self, id: &str, op: &str, params: Value, key: Option<String>) -> Value {
        let (budget, decision) = self.shared.charge(&self.auth.actor, &self.ip, 1);
        let principal = self.auth.actor.principal().is_some();
        if !decision.allowed {
            return frames::error(Some(id), &DomainError::rate_limited(decision.reset_secs));
        }
        let client = ClientInfo { ip: Some(self.ip.clone()) };
        let Some(key) = key else {
            return run_op(&self.shared, &self.auth, id, op, params, &client).await;
        };
        let scope = if principal { budget } else { format!("anon:{}", self.ip) };
        let print = fingerprint(&format!("ws:{op}"), params.to_string().as_bytes());
        let ticket = match self.shared.idempotency.begin(&scope, &key, &print).await {
            Ok(Begin::Proceed(ticket)) => ticket,
            Ok(Begin::Replay(saved)) => {
                let mut frame: Value = serde_json::from_slice(&saved.body).unwrap_or(Value::Null);
                frame["id"] = json!(id);
                frame["replayed"] = json!(true);
                return frame;
            }
            Err(e) => return frames::error(Some(id), &e),
        };
        let frame = run_op(&self.shared, &self.auth, id, op, params, &client).await;
        let code = frame.get("code").and_then(Value::as_str).and_then(ErrorCode::parse);
        // The whole frame is replayed (error frames included); `status` is an HTTP notion.
        let saved = SavedResponse {
            status: 200,
            content_type: "application/json".into(),
            location: None,
            body: frame.to_string().into_bytes(),
        };
        self.shared.idempotency.finish(ticket, saved, code.is_some_and(ErrorCode::is_retryable)).await;
        frame
    }
}

/// Runs one request frame's operation into a response or error frame.
async fn run_op(
    shared: &Shared,
    auth: &Authenticated,
    id: &str,
    op: &str,
    params: Value,
    client: &ClientInfo,
) -> Value {
    match ops::dispatch(shared, &auth.actor, client, op, params).await {
        Ok(data) => frames::response(Some(id), data),
        Err(e) => {
            if e.code == ErrorCode::Internal {
                tracing::error!(op, error = %e, "websocket request failed");
            }
            frames::error(Some(id), &e)
        }
    }
}
