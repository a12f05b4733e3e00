//! `request` frames: the canonical operation names mapped onto the canonical operations, with
//! params shaped like the REST bodies (plus `id` where REST has it in the path) and REST-shaped
//! results.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::domain::credentials::{ApiKey, TokenPair};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::post::{NewPost, PostFilter, PostPatch};
use crate::domain::service::UserView;
use crate::domain::user::{RegisterUser, UserPatch};
use crate::platform::operations::{Operation, Outcome, Paging};

fn params<T: DeserializeOwned>(raw: Value) -> DomainResult<T> {
    let raw = if raw.is_null() { json!({}) } else { raw };
    serde_json::from_value(raw)
        .map_err(|e| DomainError::invalid(format!("invalid params: {e}")).with_detail("params", "invalid"))
}

fn to_json<T: serde::Serialize>(v: &T) -> DomainResult<Value> {
    serde_json::to_value(v).map_err(DomainError::internal)
}

fn user_view(v: UserView) -> DomainResult<Value> {
    match v {
        UserView::Full(u) => to_json(&u),
        UserView::Public { id, name, .. } => Ok(json!({"id": id, "name": name})),
    }
}

fn tokens(p: TokenPair) -> Value {
    json!({"access_token": p.access_token, "token_type": "Bearer", "expires_in": p.expires_in, "refresh_token": p.refresh_token})
}

fn api_key(k: &ApiKey) -> Value {
    let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
    json!({"id": k.id, "name": k.name, "prefix": k.prefix, "scopes": scopes, "created_at": k.created_at, "revoked_at": k.revoked_at})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Id {
    id: String,
    #[serde(default)]
    expected_version: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePost {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePost {
    id: String,
    title: Option<String>,
    body: Option<String>,
    tags: Option<Vec<String>>,
    #[serde(default)]
    expected_version: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListPosts {
    limit: Option<i64>,
    cursor: Option<String>,
    author_id: Option<String>,
    status: Option<String>,
    tag: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListUsers {
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUser {
    id: String,
    email: Option<String>,
    name: Option<String>,
    role: Option<String>,
    #[serde(default)]
    expected_version: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refresh {
    #[serde(default)]
    refresh_token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApiKey {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Nothing {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWebhook {
    #[serde(default)]
    url: String,
    #[serde(default)]
    topics: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Deliveries {
    id: String,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn webhook(w: &crate::domain::webhook::Webhook) -> Value {
    json!({"id": w.id, "owner_id": w.owner_id, "url": w.url, "topics": w.topics, "created_at": w.created_at})
}

/// Every `op` a `request` frame may name (what `operation` accepts; a test holds them equal).
pub const OPS: [&str; 24] = [
    "createPost",
    "updatePost",
    "publishPost",
    "unpublishPost",
    "deletePost",
    "getPost",
    "listPosts",
    "register",
    "me",
    "getUser",
    "listUsers",
    "updateUser",
    "deleteUser",
    "login",
    "refreshToken",
    "logout",
    "createApiKey",
    "listApiKeys",
    "revokeApiKey",
    "createWebhook",
    "listWebhooks",
    "deleteWebhook",
    "listWebhookDeliveries",
    "listAuditEntries",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListAuditEntries {
    limit: Option<i64>,
    cursor: Option<String>,
    actor_id: Option<String>,
    action: Option<String>,
    target: Option<String>,
    since: Option<String>,
}

fn audit_entry(e: crate::domain::audit::AuditEntry) -> Value {
    json!({
        "id": e.id.to_string(), "at": e.at, "actor_id": e.actor_id, "actor_key_id": e.actor_key_id,
        "protocol": e.protocol, "request_id": e.request_id, "trace_id": e.trace_id, "action": e.action,
        "target": e.target, "outcome": e.outcome.as_str(), "client_ip": e.client_ip,
    })
}

/// The canonical operation a `request` frame names, from its params.
pub fn operation(op: &str, raw: Value) -> DomainResult<Operation> {
    Ok(match op {
        "createPost" => {
            let p: CreatePost = params(raw)?;
            Operation::CreatePost(NewPost { title: p.title, body: p.body, tags: p.tags })
        }
        "updatePost" => {
            let p: UpdatePost = params(raw)?;
            let patch = PostPatch { title: p.title, body: p.body, tags: p.tags };
            Operation::UpdatePost { id: p.id, patch, expected_version: p.expected_version }
        }
        "publishPost" => {
            let p: Id = params(raw)?;
            Operation::PublishPost { id: p.id, expected_version: p.expected_version }
        }
        "unpublishPost" => {
            let p: Id = params(raw)?;
            Operation::UnpublishPost { id: p.id, expected_version: p.expected_version }
        }
        "deletePost" => {
            let p: Id = params(raw)?;
            Operation::DeletePost { id: p.id, expected_version: p.expected_version }
        }
        "getPost" => Operation::GetPost { id: params::<Id>(raw)?.id },
        "listPosts" => {
            let p: ListPosts = params(raw)?;
            let filter = PostFilter::parse(p.author_id, p.status, p.tag)?;
            Operation::ListPosts { filter, paging: Paging { limit: p.limit, cursor: p.cursor } }
        }
        "register" => {
            let p: Register = params(raw)?;
            Operation::Register(RegisterUser { email: p.email, name: p.name, password: p.password })
        }
        "me" => {
            let _: Nothing = params(raw)?;
            Operation::Me
        }
        "getUser" => Operation::GetUser { id: params::<Id>(raw)?.id },
        "listUsers" => {
            let p: ListUsers = params(raw)?;
            Operation::ListUsers(Paging { limit: p.limit, cursor: p.cursor })
        }
        "updateUser" => {
            let p: UpdateUser = params(raw)?;
            let patch = UserPatch { email: p.email, name: p.name, role: p.role };
            Operation::UpdateUser { id: p.id, patch, expected_version: p.expected_version }
        }
        "deleteUser" => {
            let p: Id = params(raw)?;
            Operation::DeleteUser { id: p.id, expected_version: p.expected_version }
        }
        "login" => {
            let p: Login = params(raw)?;
            Operation::Login { email: p.email, password: p.password }
        }
        "refreshToken" => Operation::RefreshToken { refresh_token: params::<Refresh>(raw)?.refresh_token },
        "logout" => Operation::Logout { refresh_token: params::<Refresh>(raw)?.refresh_token },
        "createApiKey" => {
            let p: CreateApiKey = params(raw)?;
            Operation::CreateApiKey { name: p.name, scopes: p.scopes }
        }
        "listApiKeys" => {
            let _: Nothing = params(raw)?;
            Operation::ListApiKeys
        }
        "revokeApiKey" => Operation::RevokeApiKey { id: params::<Id>(raw)?.id },
        "createWebhook" => {
            let p: CreateWebhook = params(raw)?;
            Operation::CreateWebhook(crate::domain::webhook::NewWebhook { url: p.url, topics: p.topics })
        }
        "listWebhooks" => {
            let _: Nothing = params(raw)?;
            Operation::ListWebhooks
        }
        "deleteWebhook" => Operation::DeleteWebhook { id: params::<Id>(raw)?.id },
        "listWebhookDeliveries" => {
            let p: Deliveries = params(raw)?;
            Operation::ListWebhookDeliveries { id: p.id, paging: Paging { limit: p.limit, cursor: p.cursor } }
        }
        "listAuditEntries" => {
            let p: ListAuditEntries = params(raw)?;
            let filter = crate::domain::audit::AuditQuery {
                actor_id: p.actor_id,
                action: p.action,
                target: p.target,
                since: p.since,
            };
            Operation::ListAuditEntries { filter, paging: Paging { limit: p.limit, cursor: p.cursor } }
        }
        other => return Err(DomainError::invalid(format!("unknown op `{other}`")).with_detail("op", "unknown")),
    })
}

/// An outcome as the `data` of a response frame: REST's bodies.
pub fn data(op: &str, outcome: Outcome) -> DomainResult<Value> {
    Ok(match outcome {
        Outcome::Tokens(p) => tokens(p),
        Outcome::User(u) => to_json(&u)?,
        Outcome::UserView(v) => user_view(v)?,
        Outcome::Users(page) => {
            let has_more = page.has_more();
            let data = page.items.into_iter().map(user_view).collect::<DomainResult<Vec<_>>>()?;
            json!({"data": data, "has_more": has_more, "next_cursor": page.next_cursor})
        }
        Outcome::Post(p) => to_json(&p)?,
        Outcome::Posts(page) => {
            json!({"data": page.items, "has_more": page.has_more(), "next_cursor": page.next_cursor})
        }
        Outcome::ApiKey(created) => {
            let mut out = api_key(&created.key);
            out["key"] = json!(created.secret);
            out
        }
        Outcome::ApiKeys(keys) => json!({"data": keys.iter().map(api_key).collect::<Vec<_>>()}),
        Outcome::Webhook(created) => {
            let mut out = webhook(&created.webhook);
            out["secret"] = json!(created.secret);
            out
        }
        Outcome::Webhooks(hooks) => json!({"data": hooks.iter().map(webhook).collect::<Vec<_>>()}),
        Outcome::WebhookDeliveries(page) => {
            json!({"data": page.items, "has_more": page.has_more(), "next_cursor": page.next_cursor})
        }
        Outcome::AuditEntries(page) => {
            let has_more = page.has_more();
            let data: Vec<Value> = page.items.into_iter().map(audit_entry).collect();
            json!({"data": data, "has_more": has_more, "next_cursor": page.next_cursor})
        }
        Outcome::Done => match op {
            "logout" => json!({"logged_out": true}),
            "revokeApiKey" => json!({"revoked": true}),
            _ => json!({"deleted": true}),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_op_is_accepted_and_no_other() {
        for op in OPS {
            let refused = operation(op, json!({"no_such_param": 1})).err().map(|e| e.details);
            let unknown = refused.is_some_and(|d| d.iter().any(|i| i.field == "op"));
            assert!(!unknown, "{op} is listed but not accepted");
        }
        let e = operation("dropDatabase", Value::Null).unwrap_err();
        assert!(e.details.iter().any(|i| i.field == "op" && i.issue == "unknown"), "{e:?}");
        let mut sorted = OPS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), OPS.len(), "no op is listed twice");
    }
}
