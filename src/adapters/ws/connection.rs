//! One WebSocket connection in one task: a loop that owns the state (caller, subscriptions,
//! timers) and a bounded outbox it writes to the socket whenever the socket can take more, so
//! a delivered event costs one wake-up and a slow client only ever hurts itself.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, ready};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::{Sink, SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::frames::{self, ClientFrame};
use super::ops;
use crate::adapters::Shared;
use crate::domain::error::{DomainError, DomainResult, ErrorCode};
use crate::domain::events::StoredEvent;
use crate::platform::admission::Admitted;
use crate::platform::caps::Slot;
use crate::platform::feeds::{Feeds, lag_notice};
use crate::platform::tokens::TokenType;

/// How long a client without header credentials has to send its first frame.
const FIRST_FRAME_DEADLINE: Duration = Duration::from_secs(5);

pub struct Opening {
    pub admitted: Admitted,
    pub header_credentials: bool,
    pub slot: Slot,
    /// The upgrade request's trace: frames without a `traceparent` of their own continue it.
    pub trace: crate::platform::trace::TraceContext,
}

/// How the connection ends: a close frame, optionally after one last frame.
struct Close {
    code: u16,
    reason: String,
    last_words: Option<Value>,
    /// For a lagging client: each subscription and where it started; turned into the lag
    /// notice from what was actually written, so the resume points are exact.
    lagged: Option<HashMap<String, i64>>,
}

/// How long a full outbox may go without draining before its client counts as lagging.
const LAG_GRACE: Duration = Duration::from_secs(1);

/// A queued frame; event frames say which subscription and event they carry.
struct Outgoing {
    message: Message,
    event: Option<(Arc<str>, i64)>,
}

type Socket = futures::stream::SplitSink<WebSocket, Message>;

/// Frames waiting for the socket. Bounded by not reading the client or the feeds while full.
struct Outbox {
    queue: VecDeque<Outgoing>,
    capacity: usize,
    /// Since when the outbox has been full without a frame leaving it.
    full_since: Option<Instant>,
    /// Frames handed to the socket but not flushed yet.
    unflushed: bool,
    /// Per subscription, the last event handed to the socket: the resume point a lagging
    /// client is told (frames still queued are dropped on close).
    written: HashMap<Arc<str>, i64>,
}

impl Outbox {
    fn new(capacity: usize) -> Self {
        Self { queue: VecDeque::new(), capacity, full_since: None, unflushed: false, written: HashMap::new() }
    }

    fn full(&self) -> bool {
        self.queue.len() >= self.capacity
    }

    fn busy(&self) -> bool {
        !self.queue.is_empty() || self.unflushed
    }

    fn push(&mut self, message: Message, event: Option<(Arc<str>, i64)>) {
        self.queue.push_back(Outgoing { message, event });
        if self.full() && self.full_since.is_none() {
            self.full_since = Some(Instant::now());
        }
    }

    fn push_json(&mut self, frame: Value) {
        self.push(Message::Text(Utf8Bytes::from(frame.to_string())), None);
    }

    /// Hands queued frames to the socket while it takes them, then flushes. Holds no state
    /// of its own between polls, so dropping it (another branch won) loses nothing: a frame
    /// leaves the queue only once the socket accepted it whole.
    async fn drain(&mut self, socket: &mut Socket) -> Result<(), axum::Error> {
        std::future::poll_fn(|cx| {
            while !self.queue.is_empty() {
                ready!(socket.poll_ready_unpin(cx))?;
                let Some(Outgoing { message, event }) = self.queue.pop_front() else { break };
                socket.start_send_unpin(message)?;
                self.unflushed = true;
                self.full_since = None;
                if let Some((subscription, id)) = event {
                    match self.written.get_mut(&subscription) {
                        Some(last) => *last = id,
                        None => {
                            self.written.insert(subscription, id);
                        }
                    }
                }
            }
            ready!(Pin::new(&mut *socket).poll_flush(cx))?;
            self.unflushed = false;
            Poll::Ready(Ok(()))
        })
        .await
    }
}

struct Conn {
    shared: Shared,
    admitted: Admitted,
    /// The connection's stream slot, under its caller's cap (re-keyed when it signs in).
    slot: Slot,
    out: Outbox,
    closing: Option<Close>,
    /// The subscriptions: the shared session core.
    feeds: Feeds,
    heard_from: bool,
    trace: crate::platform::trace::TraceContext,
}

pub async fn run(socket: WebSocket, shared: Shared, opening: Opening) {
    let (mut sink, mut incoming) = socket.split();
    let settings = shared.stream_settings;
    let mut conn = Conn {
        shared: shared.clone(),
        admitted: opening.admitted,
        slot: opening.slot,
        out: Outbox::new(settings.ws_send_queue.max(1)),
        closing: None,
        feeds: Feeds::new(shared.bus.clone(), settings.ws_max_subscriptions, "id"),
        heard_from: opening.header_credentials,
        trace: opening.trace,
    };
    let opened = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + settings.ws_ping, settings.ws_ping);
    let mut revalidate = tokio::time::interval_at(Instant::now() + settings.revalidate, settings.revalidate);
    revalidate.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopping = conn.shared.shutdown.waiter();
    tokio::pin!(stopping);
    let mut socket_ok = true;
    loop {
        let expiry = conn.expiry();
        let first_frame_due = (!conn.heard_from).then_some(opened + FIRST_FRAME_DEADLINE);
        let lag_due = conn.out.full_since.map(|at| at + LAG_GRACE);
        let room = !conn.out.full();
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
            () = sleep_until(lag_due) => {
                conn.lagging();
                break;
            }
            drained = conn.out.drain(&mut sink), if conn.out.busy() => if let Err(e) = drained {
                tracing::info!(error = %e, "websocket write failed");
                socket_ok = false;
                break;
            },
            _ = revalidate.tick(), if conn.admitted.auth.actor.principal().is_some() => {
                if !Box::pin(conn.refresh_caller()).await {
                    break;
                }
            }
            _ = ping.tick() => {
                if room {
                    conn.out.push(Message::Ping(Default::default()), None);
                }
            }
            message = incoming.next(), if room => match message {
                Some(Ok(Message::Text(text))) => {
                    conn.heard_from = true;
                    // Boxed: an idle connection need not reserve room for a whole request's state.
                    // Each frame is a request of its own: its id, its one log line.
                    // Its trace: the frame's own `traceparent`, else its connection's upgrade.
                    use crate::platform::request_id;
                    let id = request_id::accept_or_generate(None);
                    let parent = match frames::traceparent_of(text.as_str()) {
                        Some(tp) => crate::platform::trace::parse_traceparent(&tp),
                        None => Some(conn.trace.clone()),
                    };
                    let (span, trace) = crate::telemetry::request_span(&id, parent.as_ref(), "FRAME", Some("/ws"));
                    let frame = async {
                        let go_on = conn.on_text(text.as_str()).await;
                        if let Some(e) = request_id::take() {
                            request_id::log(&e, "websocket operation");
                        }
                        go_on
                    };
                    let frame = tracing::Instrument::instrument(request_id::scope_with(id, "websocket", trace, frame), span);
                    if !Box::pin(frame).await {
                        break;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    conn.heard_from = true;
                    conn.send(frames::error(None, &DomainError::invalid("frames are JSON text")));
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    if let Some((code, reason)) = crate::adapters::request::ws_read_error_close(&e) {
                        conn.close_with(code, reason, None);
                    }
                    break;
                }
            },
            (id, event) = conn.feeds.next(), if room && !conn.feeds.is_empty() => {
                conn.on_event(&id, event);
            }
        }
    }
    conn.feeds.close_all();
    if socket_ok {
        say_goodbye(sink, conn.closing.take(), conn.out).await;
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How long a closing connection may take to flush its last frames to a client that is not
/// reading, before it is dropped.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// Ends the connection. A close jumps the queue: frames still queued are dropped (the socket
/// holds whole frames only, so one is either wholly ahead of the close frame or not sent), and
/// the last words and close frame go out. Without a close (the client left or closed), what is
/// queued is still delivered. Either way within `CLOSE_FLUSH`.
async fn say_goodbye(mut sink: Socket, close: Option<Close>, mut out: Outbox) {
    let Some(Close { code, mut reason, mut last_words, lagged }) = close else {
        let drain = async {
            out.drain(&mut sink).await?;
            sink.close().await
        };
        let _ = tokio::time::timeout(CLOSE_FLUSH, drain).await;
        return;
    };
    if let Some(started) = lagged {
        let (notice, resume) = lag_notice(&started, &out.written);
        last_words = Some(frames::error(None, &notice));
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
        self.admitted
            .auth
            .expires_at
            .map(|at| Instant::now() + (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
    }

    fn close_with(&mut self, code: u16, reason: &str, last_words: Option<Value>) {
        if self.closing.is_none() {
            self.closing = Some(Close { code, reason: reason.to_string(), last_words, lagged: None });
        }
    }

    /// Queues a frame (the outbox is bounded by the loop: nothing is read while it is full).
    fn send(&mut self, frame: Value) {
        self.out.push_json(frame);
    }

    /// The client stopped reading: close 1013 with a notice of where each subscription resumes.
    fn lagging(&mut self) {
        tracing::info!(subscriptions = self.feeds.len(), "websocket client lagging; closing with 1013");
        self.shared.metrics.lagged_clients.inc();
        let started = self.feeds.starting_points();
        self.closing = Some(Close { code: 1013, reason: String::new(), last_words: None, lagged: Some(started) });
    }

    fn on_event(&mut self, id: &Arc<str>, event: DomainResult<Arc<StoredEvent>>) {
        match event {
            Ok(event) if self.admitted.auth.actor == crate::domain::policy::Actor::Anonymous => {
                if self.feeds.listens(id, &event)
                    && let Some(v) = self.shared.public_views.of(&event)
                {
                    let frame = Message::Text(Utf8Bytes::from(v.ws_frame(id)));
                    self.out.push(frame, Some((id.clone(), v.delivery.id)));
                }
            }
            Ok(event) => {
                if let Some(d) = self.feeds.delivery(&self.admitted.auth.actor, id, &event) {
                    let frame = Message::Text(Utf8Bytes::from(frames::event(id, &d).to_string()));
                    self.out.push(frame, Some((id.clone(), d.id)));
                }
            }
            Err(e) => self.send(frames::error(Some(id), &e)),
        }
    }

    /// The caller as the records say now (its role may have changed); false (and a 4401
    /// close) once its credential was revoked or its user deleted.
    async fn refresh_caller(&mut self) -> bool {
        match self.shared.admission.revalidate(&self.admitted).await {
            Ok(Some(current)) => {
                self.admitted = current;
                true
            }
            Ok(None) => {
                let e = DomainError::unauthenticated("the credential of this connection was revoked");
                self.close_with(4401, "credential revoked", Some(frames::error(None, &e)));
                false
            }
            Err(_) => true,
        }
    }

    /// Handles one text frame; false ends the connection. Every frame but `ping` is an
    /// operation charged to the caller's budget, run as the caller is now.
    async fn on_text(&mut self, text: &str) -> bool {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                let err = DomainError::invalid(format!("malformed frame: {e}")).with_detail("frame", "invalid");
                self.send(frames::error(frames::id_of(text).as_deref(), &err));
                return true;
            }
        };
        if !matches!(frame, ClientFrame::Ping | ClientFrame::Auth { .. }) {
            if !self.refresh_caller().await {
                return false;
            }
            if let Err(e) = self.shared.admission.charge(&self.admitted, 1).await {
                self.send(frames::error(frame.id(), &e));
                return true;
            }
        }
        match frame {
            ClientFrame::Ping => self.send(frames::pong()),
            ClientFrame::Auth { token, id } => match self.reauthenticate(&token).await {
                Ok((data, widened)) => {
                    if widened {
                        self.widen_feeds().await;
                    }
                    self.send(frames::response(id.as_deref(), data))
                }
                Err(e) if e.code == ErrorCode::Unauthenticated => {
                    self.close_with(4401, "invalid token", Some(frames::error(id.as_deref(), &e)));
                    return false;
                }
                Err(e) => self.send(frames::error(id.as_deref(), &e)),
            },
            ClientFrame::Subscribe { id, topics, after } => {
                let reply = match self.subscribe(&id, &topics, after).await {
                    Ok(names) => frames::response(Some(&id), json!({"subscribed": names})),
                    Err(e) => frames::error(Some(&id), &e),
                };
                self.send(reply)
            }
            ClientFrame::Unsubscribe { id } => {
                let reply = match self.feeds.unsubscribe(&id) {
                    Ok(()) => frames::response(Some(&id), json!({"unsubscribed": true})),
                    Err(e) => frames::error(Some(&id), &e),
                };
                self.send(reply)
            }
            ClientFrame::Request { id, op, params, idempotency_key, .. } => {
                let reply = self.request(&id, &op, params, idempotency_key).await;
                self.send(reply)
            }
        }
        true
    }

    /// An access token for the same user (or the first one) extends or upgrades the connection
    /// (charged like any operation, to the budget it names). Also answers whether the
    /// connection went from anonymous to signed in.
    async fn reauthenticate(&mut self, token: &str) -> DomainResult<(Value, bool)> {
        let admission = &self.shared.admission;
        let fresh = admission.authn.token(token, TokenType::Access).await;
        let fresh = admission.admit_with(fresh, &self.admitted.peer, 1).await.admitted?.auth;
        if let (Some(now), Some(new)) = (self.admitted.auth.actor.user_id(), fresh.actor.user_id())
            && now != new
        {
            return Err(DomainError::forbidden("a connection cannot switch users; open a new one"));
        }
        let widened =
            self.admitted.auth.actor == crate::domain::policy::Actor::Anonymous && fresh.actor.principal().is_some();
        let signed_in = admission.signed_in(&self.admitted, fresh);
        if widened {
            self.slot = admission.stream_slot(&signed_in).await?;
        }
        self.admitted = signed_in;
        Ok((
            json!({"user_id": self.admitted.auth.actor.user_id(), "expires_at": self.admitted.auth.expires_at}),
            widened,
        ))
    }

    async fn subscribe(&mut self, id: &str, topics: &[String], after: Option<i64>) -> DomainResult<Vec<String>> {
        self.feeds.subscribe(&self.admitted.auth.actor, id, topics, after).await?;
        Ok(topics.to_vec())
    }

    /// An anonymous connection just signed in: every feed is reopened for what it may now see.
    async fn widen_feeds(&mut self) {
        for (id, e) in self.feeds.widen(&self.admitted.auth.actor).await {
            self.send(frames::error(Some(&id), &e));
        }
    }

    /// A canonical operation, run as every protocol runs it (idempotent with a key).
    async fn request(&mut self, id: &str, op: &str, params: Value, key: Option<String>) -> Value {
        let outcome = async {
            let operation = ops::operation(op, params)?;
            let (outcome, replayed) = self.shared.ops.run(&self.admitted, operation, key.as_deref()).await?;
            Ok::<_, DomainError>((ops::data(op, outcome)?, replayed))
        };
        match outcome.await {
            Ok((data, replayed)) => {
                let mut frame = frames::response(Some(id), data);
                if replayed {
                    frame["replayed"] = json!(true);
                }
                frame
            }
            Err(e) => frames::error(Some(id), &e),
        }
    }
}
