//! The OpenAPI 3.1 document, generated from the handlers and wire types.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi as Doc, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::dto::*;
use super::error::{ErrorBody, ErrorObject, FieldIssueBody};
use super::{api_keys, audit, auth, posts, users, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "Polyport REST API", version = "1.0.0", description = "Users and posts over REST/JSON. Errors use one envelope: `{\"error\": {code, message, details, request_id}}`. Every write but login, refresh, API key and webhook creation takes an `Idempotency-Key` header (the same key and input replays the first outcome; another input answers 422 IDEMPOTENCY_KEY_REUSED). Reads of one post or user answer an `ETag` (`\"v<version>\"`) and 304 to a current `If-None-Match`; updates, deletes, publish and unpublish take `If-Match` and answer 412 to a stale one."),
    paths(
        auth::login, auth::refresh, auth::logout,
        users::register, users::list, users::me, users::get, users::update, users::delete, users::posts,
        posts::list, posts::create, posts::get, posts::update, posts::delete, posts::publish, posts::unpublish,
        api_keys::list, api_keys::create, api_keys::revoke,
        webhooks::create, webhooks::list, webhooks::delete, webhooks::deliveries,
        audit::list,
    ),
    components(schemas(ErrorBody, ErrorObject, FieldIssueBody, RoleDto, StatusDto)),
    modifiers(&CommonResponses),
    tags((name = "auth"), (name = "users"), (name = "posts"), (name = "api-keys"), (name = "webhooks"), (name = "audit")),
)]
pub struct ApiDoc;

/// How every list's `limit` behaves, from the domain's own constants.
pub fn page_size_text() -> String {
    use crate::domain::page::{DEFAULT_LIMIT, MAX_LIMIT};
    format!("Page size, clamped into 1..={MAX_LIMIT} (default {DEFAULT_LIMIT}).")
}

/// Adds the security schemes, who may call each operation, the headers each accepts
/// (`Idempotency-Key`, `If-Match`, `If-None-Match`), the error responses each can give, and
/// the page size rule on every `limit`.
struct CommonResponses;

const ERRORS: [(&str, &str); 13] = [
    ("400", "Malformed request (INVALID_REQUEST)"),
    ("401", "Missing or invalid credentials (UNAUTHENTICATED)"),
    ("403", "Not allowed, or a key without the scope (FORBIDDEN)"),
    ("404", "Not found, or not visible to you (NOT_FOUND)"),
    ("406", "Accept excludes application/json (INVALID_REQUEST)"),
    ("409", "Conflict, or the same Idempotency-Key in flight"),
    ("412", "If-Match did not match the current version"),
    ("413", "Body too large (PAYLOAD_TOO_LARGE)"),
    ("415", "Body is not `Content-Type: application/json` (INVALID_REQUEST)"),
    ("422", "Field rules broken (VALIDATION_FAILED) or Idempotency-Key reused"),
    ("429", "Rate limited (RATE_LIMITED); see Retry-After"),
    ("500", "Unexpected error (INTERNAL)"),
    ("503", "Store unavailable or draining (UNAVAILABLE)"),
];

/// Operations an anonymous caller may call (the others answer 401 without credentials; the
/// parity matrix holds the server to it, and a test holds this list to the server).
/// `logout` needs only the refresh token it ends.
pub const ANONYMOUS: [&str; 9] =
    ["login", "refreshToken", "logout", "register", "listPosts", "getPost", "listUserPosts", "getUser", "listUsers"];
/// Operations whose version `If-Match` guards (412 on a stale one).
const IF_MATCH: [&str; 6] = ["updatePost", "deletePost", "publishPost", "unpublishPost", "updateUser", "deleteUser"];
/// Operations answering 304 to an `If-None-Match` of the current version.
const IF_NONE_MATCH: [&str; 3] = ["getPost", "getUser", "me"];
/// A header parameter with a string schema.
fn header(name: &str, description: &str, schema: utoipa::openapi::ObjectBuilder) -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .description(Some(description))
        .schema(Some(schema.schema_type(utoipa::openapi::Type::String)))
        .build()
}

/// The headers `id` accepts: `Idempotency-Key` on the operations that take part in
/// idempotency (the list lives with the operations), the version preconditions where they apply.
fn headers_of(id: &str) -> Vec<utoipa::openapi::path::Parameter> {
    use utoipa::openapi::ObjectBuilder;
    let mut headers = Vec::new();
    if crate::platform::operations::IDEMPOTENT.contains(&id) {
        headers.push(header(
            "Idempotency-Key",
            "1 to 255 visible ASCII characters, a new one per intended change. A repeat with the same \
             key and input replays the first outcome (kept 24 h, marked `idempotent-replayed: true`); \
             another input answers 422 IDEMPOTENCY_KEY_REUSED; a repeat while the first still runs \
             answers 409.",
            ObjectBuilder::new().min_length(Some(1)).max_length(Some(255)).pattern(Some("^[!-~]+$")),
        ));
    }
    if IF_MATCH.contains(&id) {
        headers.push(header(
            "If-Match",
            "The version this change is based on, as the `ETag` a read answered (`\"v<version>\"`), or \
             `*`. Any other value, or a version that is no longer current, answers 412.",
            ObjectBuilder::new(),
        ));
    }
    if IF_NONE_MATCH.contains(&id) {
        headers.push(header(
            "If-None-Match",
            "ETags the caller holds (`\"v<version>\"`, comma separated, or `*`): 304 without a body \
             while one of them is current.",
            ObjectBuilder::new(),
        ));
    }
    headers
}

/// Whether `status` is an answer `op` can give (`writes`: not a GET; a write can meet a
/// conflict or its `Idempotency-Key` in flight, 409).
fn can_answer(op: &Operation, id: &str, writes: bool, status: &str) -> bool {
    let has_path_id = op.parameters.iter().flatten().any(|p| p.name == "id");
    match status {
        "404" => has_path_id,
        "409" => writes,
        "412" => IF_MATCH.contains(&id),
        "413" | "415" => op.request_body.is_some(),
        _ => true,
    }
}

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut Doc) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))));
        let credentials = vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("api_key", Vec::<String>::new()),
        ];
        let optional = [vec![SecurityRequirement::default()], credentials.clone()].concat();
        for item in doc.paths.paths.values_mut() {
            let ops: [(bool, &mut Option<Operation>); 5] = [
                (false, &mut item.get),
                (true, &mut item.post),
                (true, &mut item.patch),
                (true, &mut item.delete),
                (true, &mut item.put),
            ];
            for (writes, op) in ops {
                let Some(op) = op else { continue };
                let id = op.operation_id.clone().unwrap_or_default();
                op.security =
                    Some(if ANONYMOUS.contains(&id.as_str()) { optional.clone() } else { credentials.clone() });
                for param in op.parameters.iter_mut().flatten().filter(|p| p.name == "limit") {
                    param.description = Some(page_size_text());
                }
                let headers = headers_of(&id);
                if !headers.is_empty() {
                    op.parameters.get_or_insert_with(Vec::new).extend(headers);
                }
                if IF_NONE_MATCH.contains(&id.as_str()) {
                    op.responses
                        .responses
                        .entry("304".to_string())
                        .or_insert_with(|| ResponseBuilder::new().description("Not modified").build().into());
                }
                let answers: Vec<_> = ERRORS.into_iter().filter(|(s, _)| can_answer(op, &id, writes, s)).collect();
                for (status, description) in answers {
                    op.responses.responses.entry(status.to_string()).or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(description)
                            .content(
                                "application/json",
                                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                            )
                            .build()
                            .into()
                    });
                }
            }
        }
        components.add_security_scheme(
            "stream_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "access_token",
                "A stream token from `POST /api/v1/events/token` (EventSource cannot send headers; an access token in a URL is refused).",
            ))),
        );
        add_event_operations(doc);
    }
}

/// An error response in the one envelope.
fn error_response(description: &str) -> serde_json::Value {
    serde_json::json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

/// `GET /api/v1/events` (the SSE stream) and `POST /api/v1/events/token`, served by the SSE
/// adapter; described here because they are not JSON handlers.
fn add_event_operations(doc: &mut Doc) {
    use serde_json::json;
    use utoipa::openapi::path::HttpMethod;
    let error = |status: &str| error_response(ERRORS.iter().find(|(s, _)| *s == status).map_or("", |(_, d)| d));
    let subscribe = json!({
        "tags": ["events"],
        "operationId": "subscribeEvents",
        "summary": "Stream events (Server-Sent Events)",
        "description": "A `text/event-stream` that never ends by itself: a `retry:` hint, then one frame per event (`id:` the event id, `event:` its type, `data:` the envelope `{id, type, topic, occurred_at, data}`), and a `: keep-alive` comment after 15 s without a frame. Only events the caller may read at delivery time arrive (anonymous callers: published posts and public profiles). Resume with `Last-Event-ID` (EventSource sends it by itself) or `after`: missed events are replayed from the log first, with no gap and no duplicate. A resume point older than the retention window answers 400 with detail `after`/`expired`.",
        "parameters": [
            {"name": "topics", "in": "query", "required": true, "style": "form", "explode": false,
             "description": "Comma separated: `posts`, `posts/{id}`, `users/{id}`, `users/{id}/posts`.",
             "schema": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
            {"name": "after", "in": "query", "required": false,
             "description": "Resume after this event id.", "schema": {"type": "integer", "format": "int64", "minimum": 0}},
            {"name": "Last-Event-ID", "in": "header", "required": false,
             "description": "Resume after this event id (takes precedence over `after`).", "schema": {"type": "string"}}
        ],
        "responses": {
            "200": {"description": "The event stream.", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
            "400": error("400"),
            "401": error("401"),
            "429": error_response("Rate limited, or too many open streams for this caller (RATE_LIMITED); see Retry-After"),
            "500": error("500"),
            "503": error_response("Store unavailable, draining, or the server's stream cap reached (UNAVAILABLE)")
        },
        "security": [{}, {"bearer": []}, {"api_key": []}, {"stream_token": []}]
    });
    let token = json!({
        "tags": ["events"],
        "operationId": "createStreamToken",
        "summary": "Mint a stream token for EventSource",
        "description": "A short-lived token acting as the caller, valid only as `access_token` on `GET /api/v1/events`. Takes no body and no `Idempotency-Key` (it issues a credential).",
        "responses": {
            "201": {"description": "The stream token.", "content": {"application/json": {"schema": {
                "type": "object", "required": ["token", "expires_in"],
                "properties": {
                    "token": {"type": "string"},
                    "expires_in": {"type": "integer", "format": "int64", "minimum": 0, "description": "Lifetime in seconds."}
                }
            }}}},
            "401": error("401"),
            "429": error("429"),
            "500": error("500"),
            "503": error("503")
        },
        "security": [{"bearer": []}, {"api_key": []}]
    });
    for (path, method, op) in
        [("/api/v1/events", HttpMethod::Get, subscribe), ("/api/v1/events/token", HttpMethod::Post, token)]
    {
        let op: Operation = serde_json::from_value(op).expect("the event operations are valid OpenAPI");
        doc.paths.add_path_operation(path, vec![method], op);
    }
    let tags = doc.tags.get_or_insert_with(Vec::new);
    if !tags.iter().any(|t| t.name == "events") {
        tags.push(utoipa::openapi::tag::Tag::new("events"));
    }
}
