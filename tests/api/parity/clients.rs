//! One client per protocol behind one call: a canonical operation with a credential in, the
//! canonical outcome out (`OK` or the contract's error code).

use futures::StreamExt;
use polyport::adapters::grpc::pb;
use polyport::adapters::grpc::pb::audit_service_client::AuditServiceClient;
use polyport::adapters::grpc::pb::auth_service_client::AuthServiceClient;
use polyport::adapters::grpc::pb::post_service_client::PostServiceClient;
use polyport::adapters::grpc::pb::user_service_client::UserServiceClient;
use polyport::adapters::grpc::pb::webhook_service_client::WebhookServiceClient;
use polyport::adapters::soap::envelope::Version;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tonic::Request;
use tonic_types::StatusExt;

use super::{Fixture, Op};
use crate::graphql::gws;
use crate::grpc::channel;
use crate::helpers::{PASSWORD, TestApp};
use crate::realtime_support::ws_try;
use crate::soap::{envelope, op as soap_op, send};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Rest,
    GraphqlHttp,
    GraphqlWs,
    Grpc,
    Soap,
    WsFrames,
}

impl Proto {
    pub const ALL: [Proto; 6] =
        [Proto::Rest, Proto::GraphqlHttp, Proto::GraphqlWs, Proto::Grpc, Proto::Soap, Proto::WsFrames];

    /// SOAP serves the core's users and posts, not the caller's own profile or API keys.
    pub fn offers(self, op: Op) -> bool {
        !(self == Proto::Soap && matches!(op, Op::Me | Op::CreateApiKey))
    }
}

#[derive(Debug, Clone)]
pub enum Cred {
    None,
    Bearer(String),
    Key(String),
}

impl Cred {
    /// As HTTP headers (REST, SOAP, WebSocket upgrades).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Cred::None => vec![],
            Cred::Bearer(t) => vec![("authorization", format!("Bearer {t}"))],
            Cred::Key(k) => vec![("x-api-key", k.clone())],
        }
    }
}

/// A public address (no DNS needed) on a topic no event uses: accepted, never called.
const HOOK_URL: &str = "http://93.184.216.34/hook";
const HOOK_TOPIC: &str = "posts/none";

fn fresh_email() -> String {
    format!("new-{}@example.com", uuid::Uuid::now_v7().simple())
}

pub async fn call(app: &TestApp, proto: Proto, cred: &Cred, op: Op, fx: &Fixture) -> String {
    match proto {
        Proto::Rest => rest(app, cred, op, fx).await,
        Proto::GraphqlHttp => graphql_http(app, cred, op, fx).await,
        Proto::GraphqlWs => graphql_ws(app, cred, op, fx).await,
        Proto::Grpc => grpc(app, cred, op, fx).await,
        Proto::Soap => soap(app, cred, op, fx).await,
        Proto::WsFrames => ws_frames(app, cred, op, fx).await,
    }
}

// ---- REST ----------------------------------------------------------------------------------

pub async fn rest(app: &TestApp, cred: &Cred, op: Op, fx: &Fixture) -> String {
    use reqwest::Method;
    let (method, path, body) = match op {
        Op::GetDraft => (Method::GET, format!("/posts/{}", fx.draft), None),
        Op::GetPublished => (Method::GET, format!("/posts/{}", fx.published), None),
        Op::ListPosts => (Method::GET, "/posts".into(), None),
        Op::CreatePost => (Method::POST, "/posts".into(), Some(json!({"title": "new"}))),
        Op::UpdateDraft => (Method::PATCH, format!("/posts/{}", fx.draft), Some(json!({"title": "edited"}))),
        Op::PublishDraft => (Method::POST, format!("/posts/{}/publish", fx.draft), None),
        Op::UnpublishPublished => (Method::POST, format!("/posts/{}/unpublish", fx.published), None),
        Op::DeleteDraft => (Method::DELETE, format!("/posts/{}", fx.draft), None),
        Op::Me => (Method::GET, "/users/me".into(), None),
        Op::GetUser => (Method::GET, format!("/users/{}", fx.target_user), None),
        Op::ListUsers => (Method::GET, "/users".into(), None),
        Op::PromoteUser => (Method::PATCH, format!("/users/{}", fx.target_user), Some(json!({"role": "admin"}))),
        Op::DeleteUser => (Method::DELETE, format!("/users/{}", fx.target_user), None),
        Op::CreateApiKey => (Method::POST, "/api-keys".into(), Some(json!({"name": "k", "scopes": ["posts:read"]}))),
        Op::Login => (Method::POST, "/auth/login".into(), Some(json!({"email": fx.owner_email, "password": PASSWORD}))),
        Op::Register => {
            (Method::POST, "/users".into(), Some(json!({"email": fresh_email(), "name": "N", "password": PASSWORD})))
        }
        Op::CreateWebhook => (Method::POST, "/webhooks".into(), Some(json!({"url": HOOK_URL, "topics": [HOOK_TOPIC]}))),
        Op::ListWebhooks => (Method::GET, "/webhooks".into(), None),
        Op::DeleteWebhook => (Method::DELETE, format!("/webhooks/{}", fx.webhook), None),
        Op::ListWebhookDeliveries => (Method::GET, format!("/webhooks/{}/deliveries", fx.webhook), None),
        Op::ListAuditEntries => (Method::GET, "/audit-log".into(), None),
    };
    let mut rb = app.client.request(method, app.api(&path));
    for (k, v) in cred.headers() {
        rb = rb.header(k, v);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("REST request sent");
    if r.status().is_success() {
        return "OK".into();
    }
    let body: Value = r.json().await.unwrap_or(Value::Null);
    body["error"]["code"].as_str().unwrap_or("(no code)").to_string()
}

// ---- GraphQL -------------------------------------------------------------------------------

/// The document and variables of an operation.
pub fn graphql_request(op: Op, fx: &Fixture) -> Value {
    let (query, variables) = match op {
        Op::GetDraft => ("query($id: ID!) { post(id: $id) { id } }", json!({"id": fx.draft})),
        Op::GetPublished => ("query($id: ID!) { post(id: $id) { id } }", json!({"id": fx.published})),
        Op::ListPosts => ("{ posts { edges { cursor } } }", json!({})),
        Op::CreatePost => ("mutation { createPost(input: {title: \"new\"}) { id } }", json!({})),
        Op::UpdateDraft => {
            ("mutation($id: ID!) { updatePost(id: $id, input: {title: \"edited\"}) { id } }", json!({"id": fx.draft}))
        }
        Op::PublishDraft => ("mutation($id: ID!) { publishPost(id: $id) { id } }", json!({"id": fx.draft})),
        Op::UnpublishPublished => ("mutation($id: ID!) { unpublishPost(id: $id) { id } }", json!({"id": fx.published})),
        Op::DeleteDraft => ("mutation($id: ID!) { deletePost(id: $id) }", json!({"id": fx.draft})),
        Op::Me => ("{ me { id } }", json!({})),
        Op::GetUser => ("query($id: ID!) { user(id: $id) { id } }", json!({"id": fx.target_user})),
        Op::ListUsers => ("{ users { edges { cursor } } }", json!({})),
        Op::PromoteUser => {
            ("mutation($id: ID!) { updateUser(id: $id, input: {role: ADMIN}) { id } }", json!({"id": fx.target_user}))
        }
        Op::DeleteUser => ("mutation($id: ID!) { deleteUser(id: $id) }", json!({"id": fx.target_user})),
        Op::CreateApiKey => {
            ("mutation { createApiKey(input: {name: \"k\", scopes: [\"posts:read\"]}) { key } }", json!({}))
        }
        Op::Login => (
            "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }",
            json!({"e": fx.owner_email, "p": PASSWORD}),
        ),
        Op::Register => (
            "mutation($e: String!, $p: String!) { register(input: {email: $e, name: \"N\", password: $p}) { id } }",
            json!({"e": fresh_email(), "p": PASSWORD}),
        ),
        Op::CreateWebhook => (
            "mutation($u: String!, $t: String!) { createWebhook(input: {url: $u, topics: [$t]}) { secret webhook { id } } }",
            json!({"u": HOOK_URL, "t": HOOK_TOPIC}),
        ),
        Op::ListWebhooks => ("{ webhooks { id } }", json!({})),
        Op::DeleteWebhook => ("mutation($id: ID!) { deleteWebhook(id: $id) }", json!({"id": fx.webhook})),
        Op::ListWebhookDeliveries => {
            ("query($id: ID!) { webhookDeliveries(id: $id) { edges { cursor } } }", json!({"id": fx.webhook}))
        }
        Op::ListAuditEntries => ("{ auditLog(first: 5) { edges { cursor node { id action } } } }", json!({})),
    };
    json!({"query": query, "variables": variables})
}

/// `OK`, or the first error's code.
fn graphql_outcome(result: &Value) -> String {
    match result["errors"][0]["extensions"]["code"].as_str() {
        Some(code) => code.to_string(),
        None if result["errors"].is_array() => "(error without a code)".into(),
        None => "OK".into(),
    }
}

async fn graphql_http(app: &TestApp, cred: &Cred, op: Op, fx: &Fixture) -> String {
    let headers = cred.headers();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, body) = app.gql_with(None, graphql_request(op, fx), &headers).await;
    graphql_outcome(&body)
}

async fn graphql_ws(app: &TestApp, cred: &Cred, op: Op, fx: &Fixture) -> String {
    let mut ws = gws(app, "graphql-transport-ws").await;
    let payload = match cred {
        Cred::None => json!({}),
        Cred::Bearer(t) => json!({"authorization": format!("Bearer {t}")}),
        Cred::Key(k) => json!({"apiKey": k}),
    };
    ws.send(json!({"type": "connection_init", "payload": payload})).await;
    loop {
        match ws.0.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "connection_ack" {
                    break;
                }
            }
            Some(Ok(Message::Close(Some(frame)))) if u16::from(frame.code) == 4403 => {
                return "UNAUTHENTICATED".into();
            }
            Some(Ok(Message::Close(frame))) => return format!("(closed {frame:?})"),
            Some(Ok(_)) => {}
            other => return format!("(connection ended {other:?})"),
        }
    }
    ws.send(json!({"type": "subscribe", "id": "1", "payload": graphql_request(op, fx)})).await;
    let m = ws.recv().await;
    match m["type"].as_str() {
        Some("next") => graphql_outcome(&m["payload"]),
        Some("error") => graphql_outcome(&json!({"errors": m["payload"]})),
        _ => format!("(unexpected {m})"),
    }
}

// ---- gRPC ----------------------------------------------------------------------------------

fn grpc_request<T>(message: T, cred: &Cred) -> Request<T> {
    let mut req = Request::new(message);
    for (k, v) in cred.headers() {
        req.metadata_mut().insert(k, v.parse().unwrap());
    }
    req
}

fn grpc_outcome<T>(result: Result<T, tonic::Status>) -> String {
    match result {
        Ok(_) => "OK".into(),
        Err(status) => {
            status.get_error_details().error_info().map_or_else(|| format!("({status:?})"), |i| i.reason.clone())
        }
    }
}

async fn grpc(app: &TestApp, cred: &Cred, op: Op, fx: &Fixture) -> String {
    let ch = channel(app).await;
    let mut posts = PostServiceClient::new(ch.clone());
    let mut users = UserServiceClient::new(ch.clone());
    let mut auth = AuthServiceClient::new(ch.clone());
    let mut hooks = WebhookServiceClient::new(ch.clone());
    let mut audit = AuditServiceClient::new(ch);
    let r = |m| grpc_request(m, cred);
    match op {
        Op::GetDraft => grpc_outcome(posts.get_post(r(pb::GetPostRequest { id: fx.draft.clone() })).await),
        Op::GetPublished => grpc_outcome(posts.get_post(r(pb::GetPostRequest { id: fx.published.clone() })).await),
        Op::ListPosts => match posts.list_posts(grpc_request(pb::ListPostsRequest::default(), cred)).await {
            Ok(stream) => grpc_outcome(stream.into_inner().message().await),
            Err(status) => grpc_outcome::<()>(Err(status)),
        },
        Op::CreatePost => {
            let m = pb::CreatePostRequest { title: "new".into(), ..Default::default() };
            grpc_outcome(posts.create_post(grpc_request(m, cred)).await)
        }
        Op::UpdateDraft => {
            let m = pb::UpdatePostRequest { id: fx.draft.clone(), title: Some("edited".into()), ..Default::default() };
            grpc_outcome(posts.update_post(grpc_request(m, cred)).await)
        }
        Op::PublishDraft => {
            let m = pb::PublishPostRequest { id: fx.draft.clone(), expected_version: None };
            grpc_outcome(posts.publish_post(grpc_request(m, cred)).await)
        }
        Op::UnpublishPublished => {
            let m = pb::UnpublishPostRequest { id: fx.published.clone(), expected_version: None };
            grpc_outcome(posts.unpublish_post(grpc_request(m, cred)).await)
        }
        Op::DeleteDraft => {
            let m = pb::DeletePostRequest { id: fx.draft.clone(), expected_version: None };
            grpc_outcome(posts.delete_post(grpc_request(m, cred)).await)
        }
        Op::Me => grpc_outcome(users.get_me(grpc_request(pb::GetMeRequest {}, cred)).await),
        Op::GetUser => {
            grpc_outcome(users.get_user(grpc_request(pb::GetUserRequest { id: fx.target_user.clone() }, cred)).await)
        }
        Op::ListUsers => grpc_outcome(users.list_users(grpc_request(pb::ListUsersRequest::default(), cred)).await),
        Op::PromoteUser => {
            let m =
                pb::UpdateUserRequest { id: fx.target_user.clone(), role: Some("admin".into()), ..Default::default() };
            grpc_outcome(users.update_user(grpc_request(m, cred)).await)
        }
        Op::DeleteUser => {
            let m = pb::DeleteUserRequest { id: fx.target_user.clone(), expected_version: None };
            grpc_outcome(users.delete_user(grpc_request(m, cred)).await)
        }
        Op::CreateApiKey => {
            let m = pb::CreateApiKeyRequest { name: "k".into(), scopes: vec!["posts:read".into()] };
            grpc_outcome(auth.create_api_key(grpc_request(m, cred)).await)
        }
        Op::Login => {
            let m = pb::LoginRequest { email: fx.owner_email.clone(), password: PASSWORD.into() };
            grpc_outcome(auth.login(grpc_request(m, cred)).await)
        }
        Op::Register => {
            let m = pb::RegisterRequest { email: fresh_email(), name: "N".into(), password: PASSWORD.into() };
            grpc_outcome(users.register(grpc_request(m, cred)).await)
        }
        Op::CreateWebhook => {
            let m = pb::CreateWebhookRequest { url: HOOK_URL.into(), topics: vec![HOOK_TOPIC.into()] };
            grpc_outcome(hooks.create_webhook(grpc_request(m, cred)).await)
        }
        Op::ListWebhooks => grpc_outcome(hooks.list_webhooks(grpc_request(pb::ListWebhooksRequest {}, cred)).await),
        Op::DeleteWebhook => {
            let m = pb::DeleteWebhookRequest { id: fx.webhook.clone() };
            grpc_outcome(hooks.delete_webhook(grpc_request(m, cred)).await)
        }
        Op::ListWebhookDeliveries => {
            let m = pb::ListWebhookDeliveriesRequest { id: fx.webhook.clone(), ..Default::default() };
            grpc_outcome(hooks.list_webhook_deliveries(grpc_request(m, cred)).await)
        }
        Op::ListAuditEntries => {
            grpc_outcome(audit.list_audit_entries(grpc_request(pb::ListAuditEntriesRequest::default(), cred)).await)
        }
    }
}

// ---- SOAP ----------------------------------------------------------------------------------

async fn soap(app: &TestApp, cred: &Cred, op: Op, fx: &Fixture) -> String {
    let email = fresh_email();
    let (name, fields): (&str, Vec<(&str, &str)>) = match op {
        Op::GetDraft => ("GetPost", vec![("id", &fx.draft)]),
        Op::GetPublished => ("GetPost", vec![("id", &fx.published)]),
        Op::ListPosts => ("ListPosts", vec![]),
        Op::CreatePost => ("CreatePost", vec![("title", "new")]),
        Op::UpdateDraft => ("UpdatePost", vec![("id", &fx.draft), ("title", "edited")]),
        Op::PublishDraft => ("PublishPost", vec![("id", &fx.draft)]),
        Op::UnpublishPublished => ("UnpublishPost", vec![("id", &fx.published)]),
        Op::DeleteDraft => ("DeletePost", vec![("id", &fx.draft)]),
        Op::GetUser => ("GetUser", vec![("id", &fx.target_user)]),
        Op::ListUsers => ("ListUsers", vec![]),
        Op::PromoteUser => ("UpdateUser", vec![("id", &fx.target_user), ("role", "admin")]),
        Op::DeleteUser => ("DeleteUser", vec![("id", &fx.target_user)]),
        Op::Login => ("Login", vec![("email", &fx.owner_email), ("password", PASSWORD)]),
        Op::Register => ("Register", vec![("email", &email), ("name", "N"), ("password", PASSWORD)]),
        Op::CreateWebhook => ("CreateWebhook", vec![("url", HOOK_URL), ("topics", "<p:topic>posts/none</p:topic>")]),
        Op::ListWebhooks => ("ListWebhooks", vec![]),
        Op::DeleteWebhook => ("DeleteWebhook", vec![("id", &fx.webhook)]),
        Op::ListWebhookDeliveries => ("ListWebhookDeliveries", vec![("id", &fx.webhook)]),
        Op::ListAuditEntries => ("ListAuditEntries", vec![("limit", "5")]),
        Op::Me | Op::CreateApiKey => unreachable!("not offered over SOAP"),
    };
    let headers = cred.headers();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer =
        send(app, Version::Soap12, name, envelope(Version::Soap12, "", &soap_op(name, &fields)), &headers).await;
    if answer.status.is_success() { "OK".into() } else { answer.text("code").unwrap_or_else(|| "(no code)".into()) }
}

// ---- /ws request frames --------------------------------------------------------------------

/// The `request` frame of an operation: the canonical op name and REST's body plus `id`.
pub fn ws_frame(op: Op, fx: &Fixture) -> (&'static str, Value) {
    match op {
        Op::GetDraft => ("getPost", json!({"id": fx.draft})),
        Op::GetPublished => ("getPost", json!({"id": fx.published})),
        Op::ListPosts => ("listPosts", json!({})),
        Op::CreatePost => ("createPost", json!({"title": "new"})),
        Op::UpdateDraft => ("updatePost", json!({"id": fx.draft, "title": "edited"})),
        Op::PublishDraft => ("publishPost", json!({"id": fx.draft})),
        Op::UnpublishPublished => ("unpublishPost", json!({"id": fx.published})),
        Op::DeleteDraft => ("deletePost", json!({"id": fx.draft})),
        Op::Me => ("me", json!({})),
        Op::GetUser => ("getUser", json!({"id": fx.target_user})),
        Op::ListUsers => ("listUsers", json!({})),
        Op::PromoteUser => ("updateUser", json!({"id": fx.target_user, "role": "admin"})),
        Op::DeleteUser => ("deleteUser", json!({"id": fx.target_user})),
        Op::CreateApiKey => ("createApiKey", json!({"name": "k", "scopes": ["posts:read"]})),
        Op::Login => ("login", json!({"email": fx.owner_email, "password": PASSWORD})),
        Op::Register => ("register", json!({"email": fresh_email(), "name": "N", "password": PASSWORD})),
        Op::CreateWebhook => ("createWebhook", json!({"url": HOOK_URL, "topics": [HOOK_TOPIC]})),
        Op::ListWebhooks => ("listWebhooks", json!({})),
        Op::DeleteWebhook => ("deleteWebhook", json!({"id": fx.webhook})),
        Op::ListWebhookDeliveries => ("listWebhookDeliveries", json!({"id": fx.webhook})),
        Op::ListAuditEntries => ("listAuditEntries", json!({"limit": 5})),
    }
}

async fn ws_frames(app: &TestApp, cred: &Cred, op: Op, fx: &Fixture) -> String {
    let headers = cred.headers();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut client = match ws_try(app, &headers, None).await {
        Ok(client) => client,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401 => return "UNAUTHENTICATED".into(),
        Err(e) => return format!("(upgrade failed: {e})"),
    };
    let (name, params) = ws_frame(op, fx);
    let reply = client.request("r", name, params).await;
    match reply["type"].as_str() {
        Some("response") => "OK".into(),
        Some("error") => reply["code"].as_str().unwrap_or("(no code)").to_string(),
        _ => format!("(unexpected {reply})"),
    }
}
