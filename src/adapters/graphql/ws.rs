//! Subscriptions at `/graphql/ws` (`graphql-transport-ws` and legacy `graphql-ws`). The engine's
//! protocol machine runs behind a guard that owns the socket: credentials are checked at
//! `connection_init` (4403), the init deadline (4408), duplicate ids (4409), bad messages
//! (4400), the subscription cap, credential expiry and revocation (4401) and shutdown (1001).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::http::{WebSocket as Engine, WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State as AxumState};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::State;
use super::error::server_error;
use super::schema::{Caller, parse, vet};
use crate::adapters::http_error::ApiError;
use crate::adapters::request::{header_str, origin_allowed, ws_read_error_close};
use crate::domain::error::{DomainError, ErrorCode};
use crate::platform::admission::{Admitted, Presented};
use crate::platform::authn::Authenticated;
use crate::platform::caps::Slot;
use crate::platform::request_id;

/// How long a client has to send `connection_init`.
const INIT_DEADLINE: Duration = Duration::from_secs(5);
/// How long one outgoing message may wait on a slow client before the connection is dropped.
const SEND_DEADLINE: Duration = Duration::from_secs(10);

pub async fn upgrade(
    AxumState(s): AxumState<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return ApiError(crate::adapters::http_error::upgrade_required()).into_response();
    };
    if !origin_allowed(&s.shared.cors_origins, &headers) {
        return ApiError(DomainError::forbidden("this Origin may not open WebSockets here")).into_response();
    }
    let Some(protocol) = negotiate(&headers) else {
        let e = DomainError::invalid("ask for the graphql-transport-ws or graphql-ws subprotocol")
            .with_detail("sec-websocket-protocol", "unsupported");
        return ApiError(e).into_response();
    };
    let ip = peer.ip().to_string();
    // Credentials come with `connection_init`: until then the connection is its address's.
    let verdict = s.shared.admission.admit(Presented::default(), &ip, 1).await;
    let slot = match verdict.admitted {
        Ok(a) => s.shared.admission.stream_slot(&a).await,
        Err(e) => Err(e),
    };
    let slot = match slot {
        Ok(slot) => slot,
        Err(e) => return ApiError(e).into_response(),
    };
    let max = s.shared.stream_settings.ws_max_message_bytes;
    let trace = request_id::trace().unwrap_or_else(crate::platform::trace::TraceContext::root);
    ws.protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(max.max(64 * 1024) * 4)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            request_id::scope_with(
                request_id::accept_or_generate(None),
                "graphql",
                trace.child(),
                run(socket, s, protocol, ip, slot),
            )
        })
}

/// The first subprotocol the client offers that we speak.
fn negotiate(headers: &HeaderMap) -> Option<WebSocketProtocols> {
    header_str(headers, header::SEC_WEBSOCKET_PROTOCOL.as_str())?
        .split(',')
        .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
}

/// What the guard closes with.
struct Close(u16, String);

struct Guarded {
    state: State,
    protocol: WebSocketProtocols,
    ip: String,
    auth: Option<Authenticated>,
    /// The caller admitted at `connection_init`, and the shared cell its subscriptions read
    /// the caller from at each delivery (updated by revalidation).
    admitted: Option<(Admitted, Arc<std::sync::RwLock<crate::domain::policy::Actor>>)>,
    /// The connection's stream slot: its address's until `connection_init` names a principal.
    slot: Slot,
    /// Connection data handed to the engine when it processes `connection_init`.
    pending: Arc<Mutex<Option<async_graphql::Data>>>,
    active: HashSet<String>,
    /// Ids the client completed whose engine-side `complete` echo is still to come.
    stopping: HashSet<String>,
    to_engine: mpsc::Sender<String>,
}

async fn run(socket: WebSocket, state: State, protocol: WebSocketProtocols, ip: String, slot: Slot) {
    let (mut sink, mut incoming) = socket.split();
    let (to_engine, engine_in) = mpsc::channel::<String>(64);
    let pending: Arc<Mutex<Option<async_graphql::Data>>> = Arc::default();
    let handoff = pending.clone();
    let mut engine = Engine::new(state.schema.clone(), engine_in, protocol)
        .on_connection_init(move |_| {
            let data = handoff.lock().unwrap_or_else(|e| e.into_inner()).take();
            async move { data.ok_or_else(|| async_graphql::Error::new("Forbidden")) }
        })
        .boxed();
    let settings = state.shared.stream_settings;
    let stopping = state.shared.shutdown.waiter();
    tokio::pin!(stopping);
    let mut g = Guarded {
        state,
        protocol,
        ip,
        auth: None,
        admitted: None,
        slot,
        pending,
        active: HashSet::new(),
        stopping: HashSet::new(),
        to_engine,
    };
    let init_due = Instant::now() + INIT_DEADLINE;
    let mut revalidate = tokio::time::interval_at(Instant::now() + settings.revalidate, settings.revalidate);
    revalidate.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ping = tokio::time::interval_at(Instant::now() + settings.ws_ping, settings.ws_ping);
    let close = loop {
        let expiry = g.expiry();
        let init = g.auth.is_none().then_some(init_due);
        tokio::select! {
            biased;
            () = &mut stopping => break Some(Close(1001, "server shutting down".into())),
            () = sleep_until(expiry) => break Some(Close(4401, "token expired".into())),
            () = sleep_until(init) => break Some(Close(4408, "Connection initialisation timeout".into())),
            _ = revalidate.tick(), if g.auth.as_ref().is_some_and(|a| a.actor.principal().is_some()) => {
                // The caller as the records say now: gone closes, a changed role applies to
                // every later delivery.
                let (admitted, current) = g.admitted.as_ref().expect("set with auth");
                match Box::pin(g.state.shared.admission.revalidate(admitted)).await {
                    Ok(None) => break Some(Close(4401, "credential revoked".into())),
                    Ok(Some(fresh)) => {
                        *current.write().unwrap_or_else(|e| e.into_inner()) = fresh.auth.actor.clone();
                    }
                    Err(_) => {} // the store did not answer: check again next time
                }
            }
            _ = ping.tick() => {
                if send(&mut sink, Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            message = incoming.next() => match message {
                // Boxed: an idle connection need not reserve room for `connection_init`'s state.
                Some(Ok(Message::Text(text))) => match Box::pin(g.on_text(text.as_str())).await {
                    Ok(Some(reply)) => {
                        if send(&mut sink, Message::Text(Utf8Bytes::from(reply))).await.is_err() {
                            break None;
                        }
                    }
                    Ok(None) => {}
                    Err(close) => break Some(close),
                },
                Some(Ok(Message::Binary(_))) => break Some(Close(4400, "Invalid message received".into())),
                Some(Ok(Message::Close(_))) | None => break None,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    break ws_read_error_close(&e).map(|(code, reason)| Close(code, reason.into()));
                }
            },
            out = engine.next() => match out {
                Some(WsMessage::Text(text)) => {
                    g.on_outgoing(&text);
                    let text = with_contract_errors(text);
                    if let Some(e) = request_id::take() {
                        request_id::log(&e, "graphql-ws operation");
                    }
                    if send(&mut sink, Message::Text(Utf8Bytes::from(text))).await.is_err() {
                        break None;
                    }
                }
                Some(WsMessage::Close(code, reason)) => break Some(Close(code, reason)),
                None => break Some(Close(1000, "bye".into())),
            },
        }
    };
    if let Some(Close(code, reason)) = close {
        let frame = Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from(reason) }));
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(frame)).await;
    }
}

/// An engine message whose errors lack the contract's `extensions` (parse and validation
/// errors the engine raised itself) gets them: code, request id, details.
fn with_contract_errors(text: String) -> String {
    if !text.contains("\"errors\"") && !text.starts_with("{\"type\":\"error\"") {
        return text;
    }
    let Ok(mut message) = serde_json::from_str::<Value>(&text) else { return text };
    let errors = match message.get_mut("payload") {
        Some(Value::Array(list)) => Some(list),
        Some(Value::Object(payload)) => payload.get_mut("errors").and_then(Value::as_array_mut),
        _ => None,
    };
    let Some(errors) = errors else { return text };
    let mut changed = false;
    for error in errors.iter_mut() {
        if error.get("extensions").and_then(|x| x.get("code")).is_none() {
            let message = error.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
            request_id::record(&DomainError::invalid(message));
            error["extensions"] = json!({"code": "INVALID_REQUEST", "requestId": request_id::current(), "details": []});
            changed = true;
        }
    }
    if changed { message.to_string() } else { text }
}

async fn send(sink: &mut futures::stream::SplitSink<WebSocket, Message>, message: Message) -> Result<(), ()> {
    match tokio::time::timeout(SEND_DEADLINE, sink.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn invalid() -> Close {
    Close(4400, "Invalid message received".into())
}

impl Guarded {
    fn expiry(&self) -> Option<Instant> {
        let at = self.auth.as_ref()?.expires_at?;
        Some(Instant::now() + (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
    }

    fn forward(&mut self, text: &str) -> Result<Option<String>, Close> {
        self.to_engine.try_send(text.to_string()).map_err(|_| Close(1008, "too many messages".into()))?;
        Ok(None)
    }

    /// Checks one client message; forwards it to the engine, answers it, or closes.
    async fn on_text(&mut self, text: &str) -> Result<Option<String>, Close> {
        let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(text) else {
            return Err(invalid());
        };
        let kind = msg.get("type").and_then(Value::as_str).ok_or_else(invalid)?;
        let modern = self.protocol == WebSocketProtocols::GraphQLWS;
        match (kind, modern) {
            ("connection_init", _) => {
                if self.auth.is_some() {
                    return Err(Close(4429, "Too many initialisation requests".into()));
                }
                self.init(msg.get("payload")).await?;
                self.forward(text)
            }
            ("subscribe", true) | ("start", false) => {
                if self.auth.is_none() {
                    return Err(Close(4401, "Unauthorized".into()));
                }
                let id = msg.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()).ok_or_else(invalid)?;
                let Some(query) = msg.get("payload").and_then(|p| p.get("query")).and_then(Value::as_str) else {
                    return Err(invalid());
                };
                if self.active.contains(id) {
                    return Err(Close(4409, format!("Subscriber for {id} already exists")));
                }
                // The engine's own checks expand fragments: vet the document before it sees it.
                if let Err(e) = parse(query).and_then(|doc| vet(&doc, &self.state.shared.graphql)) {
                    return Ok(Some(self.error_message(id, e)));
                }
                let max = self.state.shared.stream_settings.ws_max_subscriptions;
                if self.active.len() >= max {
                    let mut e = DomainError::rate_limited(1);
                    e.message = format!("at most {max} subscriptions per connection");
                    return Ok(Some(self.error_message(id, e)));
                }
                self.active.insert(id.to_string());
                self.forward(text)
            }
            ("complete", true) | ("stop", false) => {
                let id = msg.get("id").and_then(Value::as_str).ok_or_else(invalid)?;
                if self.active.remove(id) {
                    self.stopping.insert(id.to_string());
                }
                self.forward(text)
            }
            ("ping" | "pong", true) | ("connection_terminate", false) => self.forward(text),
            _ => Err(invalid()),
        }
    }

    /// Authenticates the `connection_init` payload (`authorization` or `apiKey`); none means
    /// anonymous (public data only), bad credentials close with 4403.
    async fn init(&mut self, payload: Option<&Value>) -> Result<(), Close> {
        let field = |names: &[&str]| {
            names.iter().find_map(|n| payload.and_then(|p| p.get(*n)).and_then(Value::as_str).map(str::to_string))
        };
        let authorization = field(&["authorization", "Authorization"]);
        let api_key = field(&["apiKey", "x-api-key"]);
        let presented =
            Presented { authorization: authorization.as_deref(), api_key: api_key.as_deref(), stream_token: None };
        let admission = &self.state.shared.admission;
        let admitted = match admission.admit(presented, &self.ip, 1).await.admitted {
            Ok(admitted) => admitted,
            Err(e) if e.code == ErrorCode::RateLimited => return Err(Close(4429, "Too many requests".into())),
            Err(e) => return Err(Close(4403, format!("Forbidden: {}", e.message))),
        };
        if admitted.actor().principal().is_some() {
            self.slot =
                admission.stream_slot(&admitted).await.map_err(|_| Close(4429, "Too many open streams".into()))?;
        }
        let auth = admitted.auth.clone();
        let caller = Caller::new(admitted.clone(), None, 0);
        self.admitted = Some((admitted, caller.current.clone()));
        let mut data = async_graphql::Data::default();
        data.insert(caller);
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(data);
        self.auth = Some(auth);
        Ok(())
    }

    /// The protocol's error message for one subscription id.
    fn error_message(&self, id: &str, e: DomainError) -> String {
        let error = serde_json::to_value(server_error(e)).unwrap_or(Value::Null);
        let payload = if self.protocol == WebSocketProtocols::GraphQLWS { json!([error]) } else { error };
        json!({"type": "error", "id": id, "payload": payload}).to_string()
    }

    /// Frees the id of a subscription the engine finished.
    fn on_outgoing(&mut self, text: &str) {
        if (text.starts_with("{\"type\":\"complete\"") || text.starts_with("{\"type\":\"error\""))
            && let Ok(v) = serde_json::from_str::<Value>(text)
            && let Some(id) = v.get("id").and_then(Value::as_str)
            && !self.stopping.remove(id)
        {
            self.active.remove(id);
        }
    }
}
