//! The canonical operations, run the same way for every protocol: an adapter turns its wire
//! into an `Operation`, `Operations::run` pages it, makes it idempotent when asked, calls the
//! core once, and hands back an `Outcome` the adapter renders. Which operations take part in
//! idempotency, what a cursor means and how a page continues are decided here only.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::admission::Admitted;
use super::cursor::{CursorCodec, USERS_CONTEXT, audit_context, posts_context};
use super::idempotency::Idempotency;
use crate::domain::audit::{AuditEntry, AuditQuery};
use crate::domain::credentials::{ApiKey, CreatedApiKey, TokenPair};
use crate::domain::error::DomainResult;
use crate::domain::page::{Page, PageRequest};
use crate::domain::post::{NewPost, Post, PostFilter, PostPatch};
use crate::domain::service::{ClientInfo, Core, UserView};
use crate::domain::user::{RegisterUser, User, UserPatch};
use crate::domain::webhook::{CreatedWebhook, NewWebhook, Webhook, WebhookDelivery};

/// A client's page parameters, as sent: a limit (clamped by the domain's rule) and a cursor.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every canonical operation with its domain input.
#[derive(Debug, Clone)]
pub enum Operation {
    Login {
        email: String,
        password: String,
    },
    RefreshToken {
        refresh_token: String,
    },
    Logout {
        refresh_token: String,
    },
    Register(RegisterUser),
    Me,
    GetUser {
        id: String,
    },
    ListUsers(Paging),
    UpdateUser {
        id: String,
        patch: UserPatch,
        expected_version: Option<i64>,
    },
    DeleteUser {
        id: String,
        expected_version: Option<i64>,
    },
    GetPost {
        id: String,
    },
    ListPosts {
        filter: PostFilter,
        paging: Paging,
    },
    /// One user's posts (NOT_FOUND when the user does not exist).
    ListUserPosts {
        user_id: String,
        filter: PostFilter,
        paging: Paging,
    },
    CreatePost(NewPost),
    UpdatePost {
        id: String,
        patch: PostPatch,
        expected_version: Option<i64>,
    },
    PublishPost {
        id: String,
        expected_version: Option<i64>,
    },
    UnpublishPost {
        id: String,
        expected_version: Option<i64>,
    },
    DeletePost {
        id: String,
        expected_version: Option<i64>,
    },
    CreateApiKey {
        name: String,
        scopes: Vec<String>,
    },
    ListApiKeys,
    RevokeApiKey {
        id: String,
    },
    CreateWebhook(NewWebhook),
    ListWebhooks,
    DeleteWebhook {
        id: String,
    },
    ListWebhookDeliveries {
        id: String,
        paging: Paging,
    },
    /// Admins only: the audit log, newest first.
    ListAuditEntries {
        filter: AuditQuery,
        paging: Paging,
    },
}

/// A page with the opaque cursor of what follows, if anything does.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Listed<T> {
    pub fn has_more(&self) -> bool {
        self.next_cursor.is_some()
    }
}

/// What an operation answers.
#[derive(Debug, Clone)]
pub enum Outcome {
    Tokens(TokenPair),
    User(User),
    UserView(UserView),
    Users(Listed<UserView>),
    Post(Post),
    Posts(Listed<Post>),
    ApiKey(CreatedApiKey),
    ApiKeys(Vec<ApiKey>),
    /// A new webhook with its signing secret (never kept for replay).
    Webhook(CreatedWebhook),
    Webhooks(Vec<Webhook>),
    WebhookDeliveries(Listed<WebhookDelivery>),
    AuditEntries(Listed<AuditEntry>),
    /// Done, nothing to show (deleted, logged out, revoked).
    Done,
}

/// The outcomes kept for idempotent replay: no secret is ever among them.
#[derive(Serialize, Deserialize)]
enum Kept {
    User(User),
    Post(Post),
    Done,
}

impl Operation {
    /// The canonical name (GraphQL's mutation and query names).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Login { .. } => "login",
            Self::RefreshToken { .. } => "refreshToken",
            Self::Logout { .. } => "logout",
            Self::Register(_) => "register",
            Self::Me => "me",
            Self::GetUser { .. } => "getUser",
            Self::ListUsers(_) => "listUsers",
            Self::UpdateUser { .. } => "updateUser",
            Self::DeleteUser { .. } => "deleteUser",
            Self::GetPost { .. } => "getPost",
            Self::ListPosts { .. } => "listPosts",
            Self::ListUserPosts { .. } => "listUserPosts",
            Self::CreatePost(_) => "createPost",
            Self::UpdatePost { .. } => "updatePost",
            Self::PublishPost { .. } => "publishPost",
            Self::UnpublishPost { .. } => "unpublishPost",
            Self::DeletePost { .. } => "deletePost",
            Self::CreateApiKey { .. } => "createApiKey",
            Self::ListApiKeys => "listApiKeys",
            Self::RevokeApiKey { .. } => "revokeApiKey",
            Self::CreateWebhook(_) => "createWebhook",
            Self::ListWebhooks => "listWebhooks",
            Self::DeleteWebhook { .. } => "deleteWebhook",
            Self::ListWebhookDeliveries { .. } => "listWebhookDeliveries",
            Self::ListAuditEntries { .. } => "listAuditEntries",
        }
    }

    /// The input an idempotency key is bound to, for the operations that take part: every
    /// state change except those that issue credentials (`login`, `refreshToken`,
    /// `createApiKey`, `createWebhook` with its signing secret), whose answers are secrets that must never be stored; a key sent with
    /// them, or with a read, is ignored. Passwords are left out of the fingerprint.
    fn idempotent_input(&self) -> Option<Value> {
        Some(match self {
            Self::Logout { refresh_token } => {
                json!({"refresh_token_sha256": crate::domain::service::hash_secret(refresh_token)})
            }
            Self::Register(r) => json!({"email": r.email, "name": r.name}),
            Self::UpdateUser { id, patch, expected_version } => json!({
                "id": id, "email": patch.email, "name": patch.name, "role": patch.role, "expected_version": expected_version,
            }),
            Self::DeleteUser { id, expected_version }
            | Self::PublishPost { id, expected_version }
            | Self::UnpublishPost { id, expected_version }
            | Self::DeletePost { id, expected_version } => json!({"id": id, "expected_version": expected_version}),
            Self::CreatePost(p) => json!({"title": p.title, "body": p.body, "tags": p.tags}),
            Self::UpdatePost { id, patch, expected_version } => json!({
                "id": id, "title": patch.title, "body": patch.body, "tags": patch.tags, "expected_version": expected_version,
            }),
            Self::RevokeApiKey { id } => json!({"id": id}),
            Self::DeleteWebhook { id } => json!({"webhook_id": id}),
            _ => return None,
        })
    }
}

/// The operations whose `idempotent_input` is `Some`: the ones an idempotency key applies to
/// (the API documents declare the key on these; a unit test holds the list to the code).
pub const IDEMPOTENT: [&str; 11] = [
    "logout",
    "register",
    "updateUser",
    "deleteUser",
    "publishPost",
    "unpublishPost",
    "deletePost",
    "createPost",
    "updatePost",
    "revokeApiKey",
    "deleteWebhook",
];

/// The operations, with what they share: the core, the cursor codec, the idempotency store.
#[derive(Clone)]
pub struct Operations {
    pub core: Core,
    pub cursors: CursorCodec,
    pub idempotency: Idempotency,
}

impl Operations {
    /// Runs `op` for an admitted caller. With an idempotency key, an operation that takes part
    /// runs once per key: a repeat (on any protocol) replays the first outcome, and the
    /// second value is true.
    pub async fn run(&self, caller: &Admitted, op: Operation, key: Option<&str>) -> DomainResult<(Outcome, bool)> {
        let (Some(key), Some(input)) = (key, op.idempotent_input()) else {
            return Ok((self.call(caller, op).await?, false));
        };
        let scope = caller.idempotency_scope();
        let name = op.name();
        let (kept, replayed) =
            self.idempotency.once(&scope, key, name, &input, || async { keep(self.call(caller, op).await?) }).await?;
        Ok((unkeep(kept), replayed))
    }

    /// The one core call of an operation.
    async fn call(&self, caller: &Admitted, op: Operation) -> DomainResult<Outcome> {
        let (core, actor) = (&self.core, caller.actor());
        // Only writes and sign-ins name their client (the audit trail); reads never build it.
        let client = &std::sync::LazyLock::new(|| client_info(caller));
        Ok(match op {
            Operation::Login { email, password } => Outcome::Tokens(core.auth.login(&email, &password, client).await?),
            Operation::RefreshToken { refresh_token } => {
                Outcome::Tokens(core.auth.refresh(&refresh_token, client).await?)
            }
            Operation::Logout { refresh_token } => {
                core.auth.logout(&refresh_token, client).await?;
                Outcome::Done
            }
            Operation::Register(input) => Outcome::User(core.users.register(input, client).await?),
            Operation::Me => Outcome::User(core.users.me(actor).await?),
            Operation::GetUser { id } => Outcome::UserView(core.users.get(actor, &id).await?),
            Operation::ListUsers(paging) => {
                let page = core.users.list(actor, &self.page(USERS_CONTEXT, paging)?).await?;
                Outcome::Users(self.listed(USERS_CONTEXT, page))
            }
            Operation::UpdateUser { id, patch, expected_version } => {
                Outcome::User(core.users.update(actor, &id, patch, expected_version, client).await?)
            }
            Operation::DeleteUser { id, expected_version } => {
                core.users.delete(actor, &id, expected_version, client).await?;
                Outcome::Done
            }
            Operation::GetPost { id } => Outcome::Post(core.posts.get(actor, &id).await?),
            Operation::ListPosts { filter, paging } => {
                let context = posts_context(&filter);
                let page = core.posts.list(actor, &filter, &self.page(&context, paging)?).await?;
                Outcome::Posts(self.listed(&context, page))
            }
            Operation::ListUserPosts { user_id, mut filter, paging } => {
                filter.author_id = Some(user_id.clone());
                let context = posts_context(&filter);
                let page = core.posts.list_by_author(actor, &user_id, &filter, &self.page(&context, paging)?).await?;
                Outcome::Posts(self.listed(&context, page))
            }
            Operation::CreatePost(input) => Outcome::Post(core.posts.create(actor, input, client).await?),
            Operation::UpdatePost { id, patch, expected_version } => {
                Outcome::Post(core.posts.update(actor, &id, patch, expected_version, client).await?)
            }
            Operation::PublishPost { id, expected_version } => {
                Outcome::Post(core.posts.publish(actor, &id, expected_version, client).await?)
            }
            Operation::UnpublishPost { id, expected_version } => {
                Outcome::Post(core.posts.unpublish(actor, &id, expected_version, client).await?)
            }
            Operation::DeletePost { id, expected_version } => {
                core.posts.delete(actor, &id, expected_version, client).await?;
                Outcome::Done
            }
            Operation::CreateApiKey { name, scopes } => {
                Outcome::ApiKey(core.auth.create_api_key(actor, &name, &scopes, client).await?)
            }
            Operation::ListApiKeys => Outcome::ApiKeys(core.auth.list_api_keys(actor).await?),
            Operation::RevokeApiKey { id } => {
                core.auth.revoke_api_key(actor, &id, client).await?;
                Outcome::Done
            }
            Operation::CreateWebhook(input) => Outcome::Webhook(core.webhooks.create(actor, input, client).await?),
            Operation::ListWebhooks => Outcome::Webhooks(core.webhooks.list(actor).await?),
            Operation::DeleteWebhook { id } => {
                core.webhooks.delete(actor, &id, client).await?;
                Outcome::Done
            }
            Operation::ListWebhookDeliveries { id, paging } => {
                let context = webhook_deliveries_context(&id);
                let page = core.webhooks.deliveries(actor, &id, &self.page(&context, paging)?).await?;
                Outcome::WebhookDeliveries(self.listed(&context, page))
            }
            Operation::ListAuditEntries { filter, paging } => {
                // Who may read comes before the cursor is decoded.
                crate::domain::service::AuditService::may_read(actor)?;
                let context = audit_context(&filter);
                let page = core.audit.list(actor, filter, &self.page(&context, paging)?).await?;
                Outcome::AuditEntries(self.listed(&context, page))
            }
        })
    }

    /// A client's limit and cursor as a page request of the list named by `context`.
    pub fn page(&self, context: &str, paging: Paging) -> DomainResult<PageRequest> {
        let after = match paging.cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            Some(cursor) => Some(self.cursors.decode(context, cursor)?),
            None => None,
        };
        Ok(PageRequest::new(paging.limit, after))
    }

    /// A page with the cursor that continues it.
    pub fn listed<T>(&self, context: &str, page: Page<T>) -> Listed<T> {
        let next_cursor = page.next_after.as_deref().map(|after| self.cursor(context, after));
        Listed { items: page.items, next_cursor }
    }

    /// The opaque cursor that continues the list named `context` after the item keyed `key`
    /// (Relay edges carry one per item).
    pub fn cursor(&self, context: &str, key: &str) -> String {
        self.cursors.encode(context, key)
    }
}

/// The cursor context of one webhook's delivery list (a cursor of one webhook is refused by
/// another's list).
pub fn webhook_deliveries_context(webhook_id: &str) -> String {
    format!("webhooks/{webhook_id}/deliveries")
}

/// Where the call came from, as the platform knows it: the admitted caller's address and the
/// request context's protocol, request id and trace (set by the router, never by an adapter).
pub fn client_info(caller: &Admitted) -> ClientInfo {
    super::request_id::client_info(Some(caller.peer.clone()))
}

fn keep(outcome: Outcome) -> DomainResult<Kept> {
    Ok(match outcome {
        Outcome::User(u) => Kept::User(u),
        Outcome::Post(p) => Kept::Post(p),
        Outcome::Done => Kept::Done,
        _ => {
            return Err(crate::domain::error::DomainError::internal(anyhow::anyhow!(
                "only users, posts and nothing are kept for replay"
            )));
        }
    })
}

fn unkeep(kept: Kept) -> Outcome {
    match kept {
        Kept::User(u) => Outcome::User(u),
        Kept::Post(p) => Outcome::Post(p),
        Kept::Done => Outcome::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation, once (add a new variant here too).
    fn every_operation() -> Vec<Operation> {
        let id = || "x".to_string();
        vec![
            Operation::Login { email: id(), password: id() },
            Operation::RefreshToken { refresh_token: id() },
            Operation::Logout { refresh_token: id() },
            Operation::Register(RegisterUser { email: id(), name: id(), password: id() }),
            Operation::Me,
            Operation::GetUser { id: id() },
            Operation::ListUsers(Paging::default()),
            Operation::UpdateUser { id: id(), patch: UserPatch::default(), expected_version: None },
            Operation::DeleteUser { id: id(), expected_version: None },
            Operation::GetPost { id: id() },
            Operation::ListPosts { filter: PostFilter::default(), paging: Paging::default() },
            Operation::ListUserPosts { user_id: id(), filter: PostFilter::default(), paging: Paging::default() },
            Operation::CreatePost(NewPost::default()),
            Operation::UpdatePost { id: id(), patch: PostPatch::default(), expected_version: None },
            Operation::PublishPost { id: id(), expected_version: None },
            Operation::UnpublishPost { id: id(), expected_version: None },
            Operation::DeletePost { id: id(), expected_version: None },
            Operation::CreateApiKey { name: id(), scopes: vec![] },
            Operation::ListApiKeys,
            Operation::RevokeApiKey { id: id() },
            Operation::CreateWebhook(NewWebhook::default()),
            Operation::ListWebhooks,
            Operation::DeleteWebhook { id: id() },
            Operation::ListWebhookDeliveries { id: id(), paging: Paging::default() },
            Operation::ListAuditEntries { filter: AuditQuery::default(), paging: Paging::default() },
        ]
    }

    #[test]
    fn the_idempotent_list_names_exactly_the_operations_a_key_applies_to() {
        let all = every_operation();
        let mut names: Vec<&str> = all.iter().map(Operation::name).collect();
        names.dedup();
        assert_eq!(names.len(), 25, "every operation is listed once");
        let applies: Vec<&str> = all.iter().filter(|op| op.idempotent_input().is_some()).map(Operation::name).collect();
        let mut listed = IDEMPOTENT.to_vec();
        listed.sort_unstable();
        let mut applies_sorted = applies.clone();
        applies_sorted.sort_unstable();
        assert_eq!(listed, applies_sorted);
    }
}
