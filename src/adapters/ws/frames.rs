//! The WebSocket JSON protocol: client frames in, server frames out.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::delivery::Delivery;
use crate::domain::error::DomainError;

/// A frame from the client, tagged by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientFrame {
    Auth {
        token: String,
        #[serde(default)]
        id: Option<String>,
    },
    Subscribe {
        id: String,
        topics: Vec<String>,
        #[serde(default)]
        after: Option<i64>,
    },
    Unsubscribe {
        id: String,
    },
    Ping,
    Request {
        id: String,
        op: String,
        #[serde(default)]
        params: Value,
        #[serde(default)]
        idempotency_key: Option<String>,
        /// W3C `traceparent` of the client's span for this request (read before the frame is
        /// run, by `traceparent_of`).
        #[serde(default)]
        #[allow(dead_code)]
        traceparent: Option<String>,
    },
}

impl ClientFrame {
    /// The client's id of the frame (subscription or request), when it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Auth { id, .. } => id.as_deref(),
            Self::Subscribe { id, .. } | Self::Unsubscribe { id } | Self::Request { id, .. } => Some(id),
            Self::Ping => None,
        }
    }
}

pub fn response(id: Option<&str>, data: Value) -> Value {
    json!({"type": "response", "id": id, "data": data})
}

pub fn pong() -> Value {
    json!({"type": "pong"})
}

pub fn event(subscription: &str, d: &Delivery) -> Value {
    json!({
        "type": "event",
        "subscription": subscription,
        "event_id": d.id,
        "event_type": d.event_type,
        "topic": d.topic,
        "occurred_at": d.occurred_at,
        "data": d.data,
    })
}

/// The error frame of the contract: `{type: "error", id?, code, message, details,
/// request_id}` (each frame the client sends runs under its own request id).
pub fn error(id: Option<&str>, e: &DomainError) -> Value {
    crate::platform::request_id::record(e);
    let mut frame = json!({
        "type": "error",
        "code": e.code.as_str(),
        "message": e.message,
        "details": e.details,
        "request_id": crate::platform::request_id::current(),
    });
    if let Some(id) = id {
        frame["id"] = json!(id);
    }
    if let Some(secs) = e.retry_after {
        frame["retry_after"] = json!(secs);
    }
    frame
}

/// The `id` of a frame that failed to parse, so the error can still be correlated.
/// The `traceparent` of a request frame, if it has one.
pub fn traceparent_of(raw: &str) -> Option<String> {
    if !raw.contains("\"traceparent\"") {
        return None;
    }
    let value = serde_json::from_str::<Value>(raw).ok()?;
    (value.get("type")?.as_str()? == "request").then_some(())?;
    value.get("traceparent")?.as_str().map(str::to_string)
}

pub fn id_of(raw: &str) -> Option<String> {
    serde_json::from_str::<Value>(raw).ok()?.get("id")?.as_str().map(str::to_string)
}
