//! `request` frames: the canonical operation names mapped onto the core, with params shaped
//! like the REST bodies (plus `id` where REST has it in the path) and REST-shaped results.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::adapters::Shared;
use crate::domain::credentials::{ApiKey, TokenPair};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::page::PageRequest;
use crate::domain::policy::Actor;
use crate::domain::post::{NewPost, PostFilter, PostPatch};
use crate::domain::service::{ClientInfo, UserView};
use crate::domain::user::{RegisterUser, UserPatch};
use crate::platform::cursor::{USERS_CONTEXT, posts_context};

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

/// Runs one operation for `actor`.
pub async fn dispatch(s: &Shared, actor: &Actor, client: &ClientInfo, op: &str, raw: Value) -> DomainResult<Value> {
    let core = &s.core;
    match op {
        "createPost" => {
            let p: CreatePost = params(raw)?;
            to_json(&core.posts.create(actor, NewPost { title: p.title, body: p.body, tags: p.tags }).await?)
        }
        "updatePost" => {
            let p: UpdatePost = params(raw)?;
            let patch = PostPatch { title: p.title, body: p.body, tags: p.tags };
            to_json(&core.posts.update(actor, &p.id, patch, p.expected_version).await?)
        }
        "publishPost" => {
            let p: Id = params(raw)?;
            to_json(&core.posts.publish(actor, &p.id, p.expected_version).await?)
        }
        "unpublishPost" => {
            let p: Id = params(raw)?;
            to_json(&core.posts.unpublish(actor, &p.id, p.expected_version).await?)
        }
        "deletePost" => {
            let p: Id = params(raw)?;
            core.posts.delete(actor, &p.id, p.expected_version).await?;
            Ok(json!({"deleted": true}))
        }
        "getPost" => {
            let p: Id = params(raw)?;
            to_json(&core.posts.get(actor, &p.id).await?)
        }
        "listPosts" => {
            let p: ListPosts = params(raw)?;
            let filter = PostFilter::parse(p.author_id, p.status, p.tag)?;
            let context = posts_context(&filter);
            let page = page_request(s, &context, p.limit, p.cursor)?;
            let found = core.posts.list(actor, &filter, &page).await?;
            let next = found.next_after.as_deref().map(|a| s.cursors.encode(&context, a));
            Ok(json!({"data": found.items, "has_more": next.is_some(), "next_cursor": next}))
        }
        "register" => {
            let p: Register = params(raw)?;
            to_json(&core.users.register(RegisterUser { email: p.email, name: p.name, password: p.password }).await?)
        }
        "me" => {
            let _: Nothing = params(raw)?;
            to_json(&core.users.me(actor).await?)
        }
        "getUser" => {
            let p: Id = params(raw)?;
            user_view(core.users.get(actor, &p.id).await?)
        }
        "listUsers" => {
            let p: ListPosts = params(raw)?;
            let page = page_request(s, USERS_CONTEXT, p.limit, p.cursor)?;
            let found = core.users.list(actor, &page).await?;
            let next = found.next_after.as_deref().map(|a| s.cursors.encode(USERS_CONTEXT, a));
            let data = found.items.into_iter().map(user_view).collect::<DomainResult<Vec<_>>>()?;
            Ok(json!({"data": data, "has_more": next.is_some(), "next_cursor": next}))
        }
        "updateUser" => {
            let p: UpdateUser = params(raw)?;
            let patch = UserPatch { email: p.email, name: p.name, role: p.role };
            to_json(&core.users.update(actor, &p.id, patch, p.expected_version).await?)
        }
        "deleteUser" => {
            let p: Id = params(raw)?;
            core.users.delete(actor, &p.id, p.expected_version).await?;
            Ok(json!({"deleted": true}))
        }
        "login" => {
            let p: Login = params(raw)?;
            Ok(tokens(core.auth.login(&p.email, &p.password, client).await?))
        }
        "refreshToken" => {
            let p: Refresh = params(raw)?;
            Ok(tokens(core.auth.refresh(&p.refresh_token).await?))
        }
        "logout" => {
            let p: Refresh = params(raw)?;
            core.auth.logout(&p.refresh_token).await?;
            Ok(json!({"logged_out": true}))
        }
        "createApiKey" => {
            let p: CreateApiKey = params(raw)?;
            let created = core.auth.create_api_key(actor, &p.name, &p.scopes).await?;
            let mut out = api_key(&created.key);
            out["key"] = json!(created.secret);
            Ok(out)
        }
        "revokeApiKey" => {
            let p: Id = params(raw)?;
            core.auth.revoke_api_key(actor, &p.id).await?;
            Ok(json!({"revoked": true}))
        }
        other => Err(DomainError::invalid(format!("unknown op `{other}`")).with_detail("op", "unknown")),
    }
}

fn page_request(s: &Shared, context: &str, limit: Option<i64>, cursor: Option<String>) -> DomainResult<PageRequest> {
    let after = match cursor.filter(|c| !c.is_empty()) {
        Some(c) => Some(s.cursors.decode(context, &c)?),
        None => None,
    };
    Ok(PageRequest::new(limit, after))
}
