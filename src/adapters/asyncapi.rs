//! The AsyncAPI 3.0 document of the event streams (SSE at `/api/v1/events` and the `/ws` JSON
//! frames), served at `GET /api/v1/asyncapi.json`. Written from the lists the code runs on: the
//! event types, the topic forms, the `/ws` operations, the error codes and the REST schemas of
//! posts and users (taken from the OpenAPI document), so it cannot name what the server lacks.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use super::rest::openapi::ApiDoc;
use super::{sse, ws};
use crate::domain::error::ErrorCode;
use crate::domain::events::EventType;

/// Where the document is served, next to the OpenAPI one.
pub const PATH: &str = "/api/v1/asyncapi.json";

pub fn routes() -> Router {
    Router::new().route(PATH, get(serve))
}

async fn serve() -> Response {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| document().to_string());
    let mut response = DOCUMENT.as_str().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The schema name under `components/schemas` of the object an event type is about.
fn subject_schema(t: EventType) -> &'static str {
    if t.as_str().starts_with("post.") { "PostOut" } else { "UserOut" }
}

/// A component name for an event type (`post.created` -> `postCreated`).
fn message_name(t: EventType) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in t.as_str().chars() {
        if c == '.' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn reference(path: &str) -> Value {
    json!({ "$ref": path })
}

/// The REST schemas the envelopes embed, with every schema they reference.
fn rest_schemas(roots: &[&str]) -> Map<String, Value> {
    let openapi = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    let all = openapi["components"]["schemas"].as_object().cloned().unwrap_or_default();
    let mut wanted: Vec<String> = roots.iter().map(|r| r.to_string()).collect();
    let mut seen = BTreeSet::new();
    let mut out = Map::new();
    while let Some(name) = wanted.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(schema) = all.get(&name) else { continue };
        collect_refs(schema, &mut wanted);
        out.insert(name, schema.clone());
    }
    out
}

fn collect_refs(v: &Value, into: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref")
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                into.push(name.to_string());
            }
            m.values().for_each(|v| collect_refs(v, into));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, into)),
        _ => {}
    }
}

/// The document.
pub fn document() -> Value {
    let types = EventType::ALL;
    let type_names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let topic_forms: Vec<&str> = crate::domain::delivery::Topic::FORMS.iter().map(|(f, _)| *f).collect();
    let topics_text: Vec<String> =
        crate::domain::delivery::Topic::FORMS.iter().map(|(f, what)| format!("`{f}`: {what}")).collect();

    let mut schemas = rest_schemas(&["PostOut", "UserOut"]);
    let data_of = json!({
        "description": "The subscriber's view of the object: what a REST GET would answer it now \
            (a post as `PostOut`; a user as `UserOut`, only `id` and `name` unless the subscriber may read the rest).",
        "oneOf": [reference("#/components/schemas/PostOut"), reference("#/components/schemas/UserOut")],
    });
    schemas.insert(
        "EventEnvelope".into(),
        json!({
            "type": "object",
            "description": "One event of the durable log, as SSE sends it in `data:` (and GraphQL and gRPC in their own shapes).",
            "required": ["id", "type", "topic", "occurred_at", "data"],
            "properties": {
                "id": {"type": "integer", "description": "The event id: increases monotonically; resume after it with Last-Event-ID or `after`."},
                "type": {"type": "string", "enum": type_names},
                "topic": {"type": "string", "description": format!("The object's own topic (one of {}).", topic_forms.join(", "))},
                "occurred_at": {"type": "string", "format": "date-time"},
                "data": data_of,
            },
        }),
    );
    schemas.insert(
        "FieldIssue".into(),
        json!({"type": "object", "required": ["field", "issue"], "properties": {"field": {"type": "string"}, "issue": {"type": "string"}}}),
    );
    schemas.insert(
        "ErrorFrame".into(),
        json!({
            "type": "object",
            "description": "The one error model, as a /ws frame: `id` names the client frame it answers (absent for connection-level errors).",
            "required": ["type", "code", "message", "details", "request_id"],
            "properties": {
                "type": {"const": "error"},
                "id": {"type": "string"},
                "code": {"type": "string", "enum": codes},
                "message": {"type": "string"},
                "details": {"type": "array", "items": reference("#/components/schemas/FieldIssue")},
                "request_id": {"type": "string"},
                "retry_after": {"type": "integer", "description": "Seconds to wait (RATE_LIMITED)."},
            },
        }),
    );

    let mut messages = Map::new();
    for t in types {
        let schema = subject_schema(t);
        messages.insert(
            message_name(t),
            json!({
                "name": t.as_str(),
                "title": t.as_str(),
                "summary": format!("`{}` on the SSE stream: `id:` is the event id, `event:` is `{}`, `data:` the envelope.", t.as_str(), t.as_str()),
                "contentType": "application/json",
                "payload": {
                    "allOf": [
                        reference("#/components/schemas/EventEnvelope"),
                        {"type": "object", "properties": {
                            "type": {"const": t.as_str()},
                            "data": reference(&format!("#/components/schemas/{schema}")),
                        }},
                    ],
                },
            }),
        );
    }
    let ws_frames = [
        (
            "wsAuth",
            "Client: signs the connection in (within 5 s of opening when no Authorization header was sent).",
            json!({"type": "object", "additionalProperties": false, "required": ["type", "token"], "properties": {
                "type": {"const": "auth"}, "token": {"type": "string", "description": "An access token."}, "id": {"type": "string"}}}),
        ),
        (
            "wsSubscribe",
            "Client: opens a subscription `id` to topics, optionally resuming after an event id.",
            json!({"type": "object", "additionalProperties": false, "required": ["type", "id", "topics"], "properties": {
                "type": {"const": "subscribe"}, "id": {"type": "string"},
                "topics": {"type": "array", "minItems": 1, "maxItems": crate::domain::delivery::MAX_TOPICS, "items": {"type": "string"}},
                "after": {"type": "integer"}}}),
        ),
        (
            "wsUnsubscribe",
            "Client: closes subscription `id`.",
            json!({"type": "object", "additionalProperties": false, "required": ["type", "id"], "properties": {
                "type": {"const": "unsubscribe"}, "id": {"type": "string"}}}),
        ),
        (
            "wsPing",
            "Client: asks for a `pong`.",
            json!({"type": "object", "additionalProperties": false, "required": ["type"], "properties": {"type": {"const": "ping"}}}),
        ),
        (
            "wsRequest",
            "Client: runs a canonical operation; `params` is the REST body (plus `id` where REST has it in the path).",
            json!({"type": "object", "additionalProperties": false, "required": ["type", "id", "op"], "properties": {
                "type": {"const": "request"}, "id": {"type": "string"},
                "op": {"type": "string", "enum": ws::OPS},
                "params": {"type": "object"},
                "idempotency_key": {"type": "string"}}}),
        ),
        (
            "wsResponse",
            "Server: the answer to `request` `id` (REST's body in `data`); also acknowledges `subscribe`, `unsubscribe` and `auth`.",
            json!({"type": "object", "required": ["type", "id", "data"], "properties": {
                "type": {"const": "response"}, "id": {"type": ["string", "null"]}, "data": {},
                "replayed": {"type": "boolean", "description": "True when an idempotency key replayed a kept outcome."}}}),
        ),
        ("wsError", "Server: an error in the one error model.", reference("#/components/schemas/ErrorFrame")),
        (
            "wsEvent",
            "Server: an event on subscription `subscription`, authorized for the connection's caller at delivery.",
            json!({"type": "object", "required": ["type", "subscription", "event_id", "event_type", "topic", "occurred_at", "data"], "properties": {
                "type": {"const": "event"}, "subscription": {"type": "string"},
                "event_id": {"type": "integer"}, "event_type": {"type": "string", "enum": type_names},
                "topic": {"type": "string"}, "occurred_at": {"type": "string", "format": "date-time"},
                "data": reference("#/components/schemas/EventEnvelope/properties/data")}}),
        ),
        (
            "wsPong",
            "Server: the answer to `ping`.",
            json!({"type": "object", "required": ["type"], "properties": {"type": {"const": "pong"}}}),
        ),
    ];
    for (name, summary, payload) in ws_frames {
        messages.insert(
            name.into(),
            json!({"name": name, "summary": summary, "contentType": "application/json", "payload": payload}),
        );
    }

    let event_refs = |filter: &dyn Fn(EventType) -> bool| -> Map<String, Value> {
        types
            .iter()
            .filter(|t| filter(**t))
            .map(|t| (message_name(*t), reference(&format!("#/components/messages/{}", message_name(*t)))))
            .collect()
    };
    let ws_refs = |names: &[&str]| -> Map<String, Value> {
        names.iter().map(|n| (n.to_string(), reference(&format!("#/components/messages/{n}")))).collect()
    };
    let channel_messages = |channel: &str, names: Vec<String>| -> Vec<Value> {
        names.iter().map(|n| reference(&format!("#/channels/{channel}/messages/{n}"))).collect()
    };

    let sse_description = format!(
        "`GET {path}?topics=...` (comma separated or repeated, at most {max}): {topics}. \
         The first frame carries `retry:` and `id:` (the head of the log, or the client's resume point) so a \
         subscriber that has seen no event yet resumes without loss; then every event the caller may read, \
         as `id:`, `event:` and `data:` (the envelope), checked at delivery. Resume with `Last-Event-ID` (or `?after=`). \
         Keep-alive comments; endings are said first as `event: error` (`{{code, message}}`). \
         Browsers pass a stream token from `POST {token}` as `?access_token=`: it lives with the session \
         (or API key) that minted it, so EventSource's reconnects keep working, and is refused once that \
         session is signed out or its refresh family revoked, the key revoked or the user deleted.",
        path = sse::PATH,
        max = crate::domain::delivery::MAX_TOPICS,
        topics = topics_text.join("; "),
        token = sse::TOKEN_PATH,
    );
    let all_events = event_refs(&|_| true);
    let sse_names: Vec<String> = all_events.keys().cloned().collect();
    let mut channels = Map::new();
    channels.insert(
        "events".into(),
        json!({
            "address": sse::PATH,
            "title": "Server-Sent Events",
            "description": sse_description,
            "servers": [reference("#/servers/http")],
            "messages": all_events,
        }),
    );
    channels.insert(
        "ws".into(),
        json!({
            "address": ws::PATH,
            "title": "WebSocket JSON frames",
            "description": format!(
                "JSON text frames. Credentials: an `Authorization` or `x-api-key` header on the upgrade, or an `auth` \
                 frame; without them only public topics. Topics: {}.",
                topics_text.join("; ")
            ),
            "servers": [reference("#/servers/ws")],
            "messages": ws_refs(&["wsAuth", "wsSubscribe", "wsUnsubscribe", "wsPing", "wsRequest", "wsResponse", "wsError", "wsEvent", "wsPong"]),
        }),
    );

    let operations = json!({
        "receiveEvents": {
            "action": "receive",
            "title": "Receive events over SSE",
            "channel": reference("#/channels/events"),
            "messages": channel_messages("events", sse_names),
        },
        "authenticate": {
            "action": "send",
            "channel": reference("#/channels/ws"),
            "messages": channel_messages("ws", vec!["wsAuth".into()]),
            "reply": {"channel": reference("#/channels/ws"), "messages": channel_messages("ws", vec!["wsResponse".into(), "wsError".into()])},
        },
        "subscribe": {
            "action": "send",
            "channel": reference("#/channels/ws"),
            "messages": channel_messages("ws", vec!["wsSubscribe".into()]),
            "reply": {"channel": reference("#/channels/ws"), "messages": channel_messages("ws", vec!["wsResponse".into(), "wsError".into()])},
        },
        "unsubscribe": {
            "action": "send",
            "channel": reference("#/channels/ws"),
            "messages": channel_messages("ws", vec!["wsUnsubscribe".into()]),
            "reply": {"channel": reference("#/channels/ws"), "messages": channel_messages("ws", vec!["wsResponse".into(), "wsError".into()])},
        },
        "request": {
            "action": "send",
            "channel": reference("#/channels/ws"),
            "messages": channel_messages("ws", vec!["wsRequest".into()]),
            "reply": {"channel": reference("#/channels/ws"), "messages": channel_messages("ws", vec!["wsResponse".into(), "wsError".into()])},
        },
        "ping": {
            "action": "send",
            "channel": reference("#/channels/ws"),
            "messages": channel_messages("ws", vec!["wsPing".into()]),
            "reply": {"channel": reference("#/channels/ws"), "messages": channel_messages("ws", vec!["wsPong".into()])},
        },
        "receiveFrames": {
            "action": "receive",
            "title": "Receive events and connection-level errors over /ws",
            "channel": reference("#/channels/ws"),
            "messages": channel_messages("ws", vec!["wsEvent".into(), "wsError".into()]),
        },
    });

    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Polyport event streams",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The durable event log as Server-Sent Events and over the `/ws` WebSocket. \
                The same events reach GraphQL subscriptions (`/graphql/ws`) and gRPC `EventService`.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "http": {
                "host": "{host}",
                "protocol": "http",
                "description": "Polyport's one listener (HTTP/1.1 and h2c).",
                "variables": {"host": {"default": "127.0.0.1:8080", "description": "host:port of the server"}},
                "security": [
                    reference("#/components/securitySchemes/bearer"),
                    reference("#/components/securitySchemes/apiKey"),
                    reference("#/components/securitySchemes/streamToken"),
                ],
            },
            "ws": {
                "host": "{host}",
                "protocol": "ws",
                "variables": {"host": {"default": "127.0.0.1:8080", "description": "host:port of the server"}},
                "security": [
                    reference("#/components/securitySchemes/bearer"),
                    reference("#/components/securitySchemes/apiKey"),
                ],
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "An access token (`Authorization: Bearer ...`)."},
                "apiKey": {"type": "httpApiKey", "name": "x-api-key", "in": "header"},
                "streamToken": {
                    "type": "httpApiKey", "name": "access_token", "in": "query",
                    "description": format!("A stream token from `POST {}` (SSE only; refused everywhere else).", sse::TOKEN_PATH),
                },
            },
        },
    })
}
