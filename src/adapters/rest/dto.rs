//! REST wire types (snake_case JSON) and their conversions from and to the domain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::credentials::{ApiKey, CreatedApiKey, TokenPair};
use crate::domain::post::{NewPost, Post, PostPatch};
use crate::domain::service::UserView;
use crate::domain::user::{RegisterUser, User, UserPatch};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleDto {
    Admin,
    Editor,
    Member,
}

/// A tag: 1 to 32 of `a-z`, `0-9` and `-` (schema only; tags travel as strings).
pub struct Tag;

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[a-z0-9-]{1,32}$"))
            .min_length(Some(1))
            .max_length(Some(32))
            .into()
    }
}

impl ToSchema for Tag {}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum ScopeDto {
    #[serde(rename = "posts:read")]
    PostsRead,
    #[serde(rename = "posts:write")]
    PostsWrite,
    #[serde(rename = "users:read")]
    UsersRead,
    #[serde(rename = "users:write")]
    UsersWrite,
    #[serde(rename = "admin")]
    Admin,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusDto {
    Draft,
    Published,
}

/// A user. Public profiles carry only `id` and `name`; the user and admins see every field.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<RoleDto>)]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::domain::timestamp::serialize_opt")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::domain::timestamp::serialize_opt")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            name: u.name,
            email: Some(u.email),
            role: Some(u.role.as_str().to_string()),
            created_at: Some(u.created_at),
            updated_at: Some(u.updated_at),
            version: Some(u.version),
        }
    }
}

impl From<UserView> for UserOut {
    fn from(v: UserView) -> Self {
        match v {
            UserView::Full(u) => u.into(),
            UserView::Public { id, name, .. } => {
                Self { id, name, email: None, role: None, created_at: None, updated_at: None, version: None }
            }
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PostOut {
    pub id: String,
    pub author_id: String,
    pub title: String,
    pub body: String,
    #[schema(value_type = StatusDto)]
    pub status: String,
    pub tags: Vec<String>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize_opt")]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<Post> for PostOut {
    fn from(p: Post) -> Self {
        Self {
            id: p.id,
            author_id: p.author_id,
            title: p.title,
            body: p.body,
            status: p.status.as_str().to_string(),
            tags: p.tags,
            published_at: p.published_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
            version: p.version,
        }
    }
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub data: Vec<UserOut>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

/// A page of posts.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostList {
    pub data: Vec<PostOut>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[serde(default)]
    #[schema(required = true, format = Email, max_length = 254, example = "ada@example.com")]
    pub email: String,
    /// 1 to 100 characters after trimming; no control characters.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$",
        example = "Ada Lovelace"
    )]
    pub name: String,
    /// 12 to 128 characters.
    #[serde(default)]
    #[schema(required = true, min_length = 12, max_length = 128, example = "correct horse battery")]
    pub password: String,
}

impl From<RegisterRequest> for RegisterUser {
    fn from(r: RegisterRequest) -> Self {
        RegisterUser { email: r.email, name: r.name, password: r.password }
    }
}

/// Absent fields stay as they are. Only admins may change `role`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// 1 to 100 characters after trimming; no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    pub role: Option<RoleDto>,
}

impl From<UpdateUserRequest> for UserPatch {
    fn from(r: UpdateUserRequest) -> Self {
        UserPatch {
            email: r.email,
            name: r.name,
            role: r.role.map(|r| {
                match r {
                    RoleDto::Admin => "admin",
                    RoleDto::Editor => "editor",
                    RoleDto::Member => "member",
                }
                .to_string()
            }),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePostRequest {
    /// 1 to 200 characters after trimming; no control characters.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$",
        example = "Hello, world"
    )]
    pub title: String,
    /// Up to 100,000 characters; any text but the NUL character.
    #[serde(default)]
    #[schema(max_length = 100000, pattern = r"^[^\u0000]*$")]
    pub body: String,
    /// Up to 10 tags, each `[a-z0-9-]{1,32}`; duplicates collapse.
    #[serde(default)]
    #[schema(value_type = Vec<Tag>, max_items = 10)]
    pub tags: Vec<String>,
}

impl From<CreatePostRequest> for NewPost {
    fn from(r: CreatePostRequest) -> Self {
        NewPost { title: r.title, body: r.body, tags: r.tags }
    }
}

/// Absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePostRequest {
    /// 1 to 200 characters after trimming; no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub title: Option<String>,
    /// Up to 100,000 characters; any text but the NUL character.
    #[schema(max_length = 100000, pattern = r"^[^\u0000]*$")]
    pub body: Option<String>,
    /// Up to 10 tags, each `[a-z0-9-]{1,32}`; duplicates collapse.
    #[schema(value_type = Option<Vec<Tag>>, max_items = 10)]
    pub tags: Option<Vec<String>>,
}

impl From<UpdatePostRequest> for PostPatch {
    fn from(r: UpdatePostRequest) -> Self {
        PostPatch { title: r.title, body: r.body, tags: r.tags }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 254)]
    pub email: String,
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 128)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 128)]
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; works once (rotation).
    pub refresh_token: String,
}

impl From<TokenPair> for TokenResponse {
    fn from(p: TokenPair) -> Self {
        Self {
            access_token: p.access_token,
            token_type: "Bearer".into(),
            expires_in: p.expires_in,
            refresh_token: p.refresh_token,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// 1 to 100 characters after trimming; no control characters.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$",
        example = "ci deploys"
    )]
    pub name: String,
    /// At least one scope; `admin` needs the admin role. Duplicates collapse.
    #[serde(default)]
    #[schema(required = true, value_type = Vec<ScopeDto>, min_items = 1, example = json!(["posts:read"]))]
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    pub id: String,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize_opt")]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyOut {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.iter().map(|s| s.as_str().to_string()).collect(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new key. `key` is shown this once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyOut {
    #[serde(flatten)]
    pub api_key: ApiKeyOut,
    pub key: String,
}

impl From<CreatedApiKey> for CreatedApiKeyOut {
    fn from(c: CreatedApiKey) -> Self {
        Self { api_key: c.key.into(), key: c.secret }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub data: Vec<ApiKeyOut>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

/// `limit` (the domain's page size rule) and `cursor` (opaque, from `next_cursor`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size (see the domain's page rule).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Filters of a user's post list (the author is in the path).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserPostsParams {
    /// Page size (see the domain's page rule).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only posts in this status.
    #[param(value_type = Option<StatusDto>)]
    pub status: Option<String>,
    /// Only posts with this tag.
    #[param(pattern = "^[a-z0-9-]{1,32}$")]
    pub tag: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PostListParams {
    /// Page size (see the domain's page rule).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only posts by this author.
    #[param(pattern = "^[A-Za-z0-9-]{1,64}$")]
    pub author_id: Option<String>,
    /// Only posts in this status.
    #[param(value_type = Option<StatusDto>)]
    pub status: Option<String>,
    /// Only posts with this tag.
    #[param(pattern = "^[a-z0-9-]{1,32}$")]
    pub tag: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where events are POSTed: absolute `http` or `https`, no userinfo, at most 2048 bytes. Its
    /// host must resolve to public addresses only (refused: loopback, private, link-local,
    /// metadata and other non-public ranges), unless the server allows private targets.
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 2048, example = "https://hooks.example.com/polyport")]
    pub url: String,
    /// 1 to 20 topics: `posts`, `posts/{id}`, `users/{id}`, `users/{id}/posts`.
    #[serde(default)]
    #[schema(required = true, min_items = 1, max_items = 20, example = json!(["posts"]))]
    pub topics: Vec<String>,
}

impl From<CreateWebhookRequest> for crate::domain::webhook::NewWebhook {
    fn from(r: CreateWebhookRequest) -> Self {
        Self { url: r.url, topics: r.topics }
    }
}

/// A webhook (its signing secret is never shown again after creation).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    pub id: String,
    pub owner_id: String,
    pub url: String,
    pub topics: Vec<String>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

impl From<crate::domain::webhook::Webhook> for WebhookOut {
    fn from(w: crate::domain::webhook::Webhook) -> Self {
        Self { id: w.id, owner_id: w.owner_id, url: w.url, topics: w.topics, created_at: w.created_at }
    }
}

/// A new webhook. `secret` signs every delivery (`Polyport-Signature`) and is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhookOut {
    #[serde(flatten)]
    pub webhook: WebhookOut,
    pub secret: String,
}

impl From<crate::domain::webhook::CreatedWebhook> for CreatedWebhookOut {
    fn from(c: crate::domain::webhook::CreatedWebhook) -> Self {
        Self { webhook: c.webhook.into(), secret: c.secret }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub data: Vec<WebhookOut>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryOut {
    pub id: String,
    pub webhook_id: String,
    /// The `Polyport-Delivery-Id` header: the same on every attempt of one event's delivery.
    pub delivery_id: String,
    pub event_id: i64,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// The HTTP status the receiver answered, when it answered.
    pub status_code: Option<i64>,
    /// A 2xx answer within 5 seconds.
    pub succeeded: bool,
    pub error: Option<String>,
    pub duration_ms: i64,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub attempted_at: DateTime<Utc>,
}

impl From<crate::domain::webhook::WebhookDelivery> for WebhookDeliveryOut {
    fn from(d: crate::domain::webhook::WebhookDelivery) -> Self {
        Self {
            id: d.id,
            webhook_id: d.webhook_id,
            delivery_id: d.delivery_id,
            event_id: d.event_id,
            attempt: d.attempt,
            status_code: d.status_code,
            succeeded: d.succeeded,
            error: d.error,
            duration_ms: d.duration_ms,
            attempted_at: d.attempted_at,
        }
    }
}

/// One audit log entry. It holds no secret: ids, the action, its target and how it ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryOut {
    /// Increasing with time of appending.
    pub id: String,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub at: DateTime<Utc>,
    /// The user who acted (null for anonymous attempts, such as a failed login).
    pub actor_id: Option<String>,
    /// The API key the actor used, if any.
    pub actor_key_id: Option<String>,
    /// `rest`, `graphql`, `grpc`, `soap`, `websocket`, `sse`, `cli` or `internal`.
    pub protocol: String,
    pub request_id: String,
    /// W3C trace id (32 hex digits) of the request.
    pub trace_id: Option<String>,
    /// For example `post.created`, `user.role_changed`, `auth.login`.
    pub action: String,
    /// `user:<id>`, `post:<id>`, `api_key:<id>`, `webhook:<id>`, `session:<id>` or `email:<address>`.
    pub target: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    pub client_ip: Option<String>,
}

impl From<crate::domain::audit::AuditEntry> for AuditEntryOut {
    fn from(e: crate::domain::audit::AuditEntry) -> Self {
        Self {
            id: e.id.to_string(),
            at: e.at,
            actor_id: e.actor_id,
            actor_key_id: e.actor_key_id,
            protocol: e.protocol,
            request_id: e.request_id,
            trace_id: e.trace_id,
            action: e.action,
            target: e.target,
            outcome: e.outcome.as_str().to_string(),
            client_ip: e.client_ip,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryList {
    pub data: Vec<WebhookDeliveryOut>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

/// A page of audit log entries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLogList {
    pub data: Vec<AuditEntryOut>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

/// Audit log filters (all given ones must hold) and the page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditLogParams {
    /// Only entries of this acting user.
    pub actor_id: Option<String>,
    /// Only this action (`post.created`, `auth.login`, ...).
    pub action: Option<String>,
    /// Only this target (`post:<id>`, `user:<id>`, ...).
    pub target: Option<String>,
    /// Only entries at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Page size (see the domain's page rule).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
