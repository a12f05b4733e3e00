//! The GraphQL output and input types: posts, users, connections, tokens, API keys, events.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::super::error::{GqlResult, or_null};
use super::guard::page_cost;
use super::loader::{AuthorPosts, Batches};
use super::{Caller, shared};
use crate::domain::credentials::{ApiKey as DomainApiKey, CreatedApiKey as DomainCreatedApiKey, TokenPair};
use crate::domain::page::{Page, PageRequest};
use crate::domain::post::{self, Post as DomainPost, PostFilter as DomainPostFilter};
use crate::domain::service::UserView;
use crate::domain::user;
use crate::platform::cursor::posts_context;

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Admin,
    Editor,
    Member,
}

impl From<user::Role> for Role {
    fn from(r: user::Role) -> Self {
        match r {
            user::Role::Admin => Role::Admin,
            user::Role::Editor => Role::Editor,
            user::Role::Member => Role::Member,
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Member => "member",
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum PostStatus {
    Draft,
    Published,
}

impl From<post::PostStatus> for PostStatus {
    fn from(s: post::PostStatus) -> Self {
        match s {
            post::PostStatus::Draft => PostStatus::Draft,
            post::PostStatus::Published => PostStatus::Published,
        }
    }
}

impl From<PostStatus> for post::PostStatus {
    fn from(s: PostStatus) -> Self {
        match s {
            PostStatus::Draft => post::PostStatus::Draft,
            PostStatus::Published => post::PostStatus::Published,
        }
    }
}

/// A post. Drafts are visible to their author, editors and admins only.
pub struct Post(pub DomainPost);

#[Object]
impl Post {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn author_id(&self) -> ID {
        ID(self.0.author_id.clone())
    }
    /// The author's profile as the caller may see it (batched across a page).
    async fn author(&self, ctx: &Context<'_>) -> Option<User> {
        let result: async_graphql::Result<_> = async {
            let id = self.0.author_id.clone();
            match ctx.data_opt::<Batches>() {
                Some(batches) => Ok(batches.user(id).await?.map(User)),
                // Subscriptions deliver one post at a time: nothing to batch, no loader kept.
                None => {
                    let caller = ctx.data::<Caller>()?;
                    Ok(shared(ctx).core.users.get_many(&caller.actor, &[id]).await.gql()?.pop().map(User))
                }
            }
        }
        .await;
        or_null(ctx, result)
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn status(&self) -> PostStatus {
        self.0.status.into()
    }
    async fn tags(&self) -> &[String] {
        &self.0.tags
    }
    async fn published_at(&self) -> Option<DateTime<Utc>> {
        self.0.published_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn version(&self) -> i64 {
        self.0.version
    }
}

/// A user: everyone sees `id` and `name`; the user and admins see the private fields.
pub struct User(pub UserView);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id().to_string())
    }
    async fn name(&self) -> &str {
        match &self.0 {
            UserView::Full(u) => &u.name,
            UserView::Public { name, .. } => name,
        }
    }
    async fn email(&self) -> Option<&str> {
        self.full().map(|u| u.email.as_str())
    }
    async fn role(&self) -> Option<Role> {
        self.full().map(|u| u.role.into())
    }
    async fn created_at(&self) -> Option<DateTime<Utc>> {
        self.full().map(|u| u.created_at)
    }
    async fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.full().map(|u| u.updated_at)
    }
    async fn version(&self) -> Option<i64> {
        self.full().map(|u| u.version)
    }
    /// The user's posts the caller may read, newest first.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn posts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<PostStatus>,
        tag: Option<String>,
    ) -> async_graphql::Result<PostConnection> {
        let filter = PostFilterInput { author_id: Some(ID(self.0.id().to_string())), status, tag };
        let Some(batches) = ctx.data_opt::<Batches>() else {
            return PostConnection::load(ctx, first, after, Some(filter)).await;
        };
        let (filter, context) = PostConnection::filter(filter)?;
        let page = page_request(ctx, &context, first, after)?;
        let key = AuthorPosts { author: self.0.id().to_string(), status: filter.status, tag: filter.tag, page };
        let page = batches.author_posts(key).await?.unwrap_or(Page { items: Vec::new(), next_after: None });
        Ok(PostConnection::of(ctx, &context, page))
    }
}

impl User {
    fn full(&self) -> Option<&user::User> {
        match &self.0 {
            UserView::Full(u) => Some(u),
            UserView::Public { .. } => None,
        }
    }
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct PostEdge {
    pub cursor: String,
    pub node: Post,
}

#[derive(SimpleObject)]
pub struct PostConnection {
    pub edges: Vec<PostEdge>,
    pub page_info: PageInfo,
}

#[derive(SimpleObject)]
pub struct UserEdge {
    pub cursor: String,
    pub node: User,
}

#[derive(SimpleObject)]
pub struct UserConnection {
    pub edges: Vec<UserEdge>,
    pub page_info: PageInfo,
}

/// Edges with their keyset cursors, and the page info REST's `next_cursor`/`has_more` carry.
pub fn edges<T, E>(
    ops: &crate::platform::operations::Operations,
    context: &str,
    page: crate::domain::page::Page<T>,
    key: impl Fn(&T) -> String,
    edge: impl Fn(String, T) -> E,
) -> (Vec<E>, PageInfo) {
    let has_next_page = page.next_after.is_some();
    let items: Vec<(String, T)> = page.items.into_iter().map(|t| (ops.cursor(context, &key(&t)), t)).collect();
    let start_cursor = items.first().map(|(c, _)| c.clone());
    let end_cursor = items.last().map(|(c, _)| c.clone());
    let info = PageInfo { has_next_page, has_previous_page: false, start_cursor, end_cursor };
    (items.into_iter().map(|(c, t)| edge(c, t)).collect(), info)
}

/// Decodes `after` for the list named `context` and clamps `first` like REST's `limit`.
pub fn page_request(
    ctx: &Context<'_>,
    context: &str,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<PageRequest> {
    let paging = crate::platform::operations::Paging { limit: first.map(i64::from), cursor: after };
    shared(ctx).ops.page(context, paging).gql()
}

impl PostConnection {
    pub async fn load(
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PostFilterInput>,
    ) -> async_graphql::Result<PostConnection> {
        let caller = ctx.data::<Caller>()?;
        let (filter, context) = Self::filter(filter.unwrap_or_default())?;
        let req = page_request(ctx, &context, first, after)?;
        let page = shared(ctx).core.posts.list(&caller.actor, &filter, &req).await.gql()?;
        Ok(Self::of(ctx, &context, page))
    }

    /// The domain filter and the cursor context it binds cursors to.
    fn filter(f: PostFilterInput) -> async_graphql::Result<(DomainPostFilter, String)> {
        let filter = DomainPostFilter::parse(
            f.author_id.map(|a| a.0),
            f.status.map(|s| post::PostStatus::from(s).as_str().to_string()),
            f.tag,
        )
        .gql()?;
        let context = posts_context(&filter);
        Ok((filter, context))
    }

    fn of(ctx: &Context<'_>, context: &str, page: Page<DomainPost>) -> PostConnection {
        let (edges, page_info) =
            edges(&shared(ctx).ops, context, page, |p| p.id.clone(), |cursor, p| PostEdge { cursor, node: Post(p) });
        PostConnection { edges, page_info }
    }
}

#[derive(InputObject, Default)]
pub struct PostFilterInput {
    pub author_id: Option<ID>,
    pub status: Option<PostStatus>,
    pub tag: Option<String>,
}

#[derive(InputObject)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

#[derive(InputObject)]
pub struct RegisterInput {
    pub email: String,
    pub name: String,
    pub password: String,
}

#[derive(InputObject)]
pub struct UpdateUserInput {
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<Role>,
}

#[derive(InputObject)]
pub struct CreatePostInput {
    pub title: String,
    #[graphql(default)]
    pub body: String,
    #[graphql(default)]
    pub tags: Vec<String>,
}

#[derive(InputObject)]
pub struct UpdatePostInput {
    pub title: Option<String>,
    pub body: Option<String>,
    pub tags: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub name: String,
    /// Any of `posts:read`, `posts:write`, `users:read`, `users:write`, `admin`.
    pub scopes: Vec<String>,
}

/// What login and refresh hand out.
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub refresh_token: String,
}

impl From<TokenPair> for AuthPayload {
    fn from(t: TokenPair) -> Self {
        Self {
            access_token: t.access_token,
            token_type: "Bearer".into(),
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
        }
    }
}

#[derive(SimpleObject)]
pub struct ApiKey {
    pub id: ID,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<DomainApiKey> for ApiKey {
    fn from(k: DomainApiKey) -> Self {
        Self {
            id: ID(k.id),
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.iter().map(|s| s.as_str().to_string()).collect(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new API key; `key` is shown exactly once.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub api_key: ApiKey,
    pub key: String,
}

impl From<DomainCreatedApiKey> for CreatedApiKey {
    fn from(c: DomainCreatedApiKey) -> Self {
        Self { api_key: c.key.into(), key: c.secret }
    }
}

/// One event of the log as the subscriber sees it; `data` is the REST view of the object.
#[derive(SimpleObject)]
pub struct Event {
    pub id: ID,
    #[graphql(name = "type")]
    pub event_type: String,
    pub topic: String,
    pub occurred_at: DateTime<Utc>,
    pub data: Json<serde_json::Value>,
}

/// A post event with the post as the subscriber may see it.
#[derive(SimpleObject)]
pub struct PostEvent {
    pub id: ID,
    #[graphql(name = "type")]
    pub event_type: String,
    pub topic: String,
    pub occurred_at: DateTime<Utc>,
    pub post: Post,
}

/// A user event with the user as the subscriber may see them.
#[derive(SimpleObject)]
pub struct UserEvent {
    pub id: ID,
    #[graphql(name = "type")]
    pub event_type: String,
    pub topic: String,
    pub occurred_at: DateTime<Utc>,
    pub user: User,
}

#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// Absolute http(s) URL whose host resolves to public addresses only.
    pub url: String,
    /// `posts`, `posts/{id}`, `users/{id}`, `users/{id}/posts`.
    pub topics: Vec<String>,
}

/// A webhook: every event its owner may read on its topics is POSTed to `url`, signed.
#[derive(SimpleObject)]
pub struct Webhook {
    pub id: ID,
    pub owner_id: ID,
    pub url: String,
    pub topics: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<crate::domain::webhook::Webhook> for Webhook {
    fn from(w: crate::domain::webhook::Webhook) -> Self {
        Self { id: ID(w.id), owner_id: ID(w.owner_id), url: w.url, topics: w.topics, created_at: w.created_at }
    }
}

/// A new webhook; `secret` (which signs every delivery) is shown exactly once.
#[derive(SimpleObject)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

impl From<crate::domain::webhook::CreatedWebhook> for CreatedWebhook {
    fn from(c: crate::domain::webhook::CreatedWebhook) -> Self {
        Self { webhook: c.webhook.into(), secret: c.secret }
    }
}

/// One delivery attempt of a webhook.
#[derive(SimpleObject)]
pub struct WebhookDelivery {
    pub id: ID,
    pub webhook_id: ID,
    /// The `Polyport-Delivery-Id` header: the same on every attempt of one event's delivery.
    pub delivery_id: ID,
    pub event_id: ID,
    /// 1 for the first attempt.
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub succeeded: bool,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub attempted_at: DateTime<Utc>,
}

impl From<crate::domain::webhook::WebhookDelivery> for WebhookDelivery {
    fn from(d: crate::domain::webhook::WebhookDelivery) -> Self {
        Self {
            id: ID(d.id),
            webhook_id: ID(d.webhook_id),
            delivery_id: ID(d.delivery_id),
            event_id: ID(d.event_id.to_string()),
            attempt: d.attempt,
            status_code: d.status_code,
            succeeded: d.succeeded,
            error: d.error,
            duration_ms: d.duration_ms,
            attempted_at: d.attempted_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct WebhookDeliveryEdge {
    pub cursor: String,
    pub node: WebhookDelivery,
}

#[derive(SimpleObject)]
pub struct WebhookDeliveryConnection {
    pub edges: Vec<WebhookDeliveryEdge>,
    pub page_info: PageInfo,
}
