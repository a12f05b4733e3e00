//! Queries: `me`, `user`, `users`, `post`, `posts` (Relay connections) and `apiKeys`.

use async_graphql::{Context, ID, Object};

use super::super::error::{GqlResult, or_null};
use super::guard::page_cost;
use super::types::{
    ApiKey, Post, PostConnection, PostFilterInput, User, UserConnection, UserEdge, Webhook, WebhookDelivery,
    WebhookDeliveryConnection, WebhookDeliveryEdge, edges, page_request,
};
use super::{Caller, shared};
use crate::domain::service::UserView;
use crate::platform::cursor::USERS_CONTEXT;

pub struct Query;

#[Object]
impl Query {
    /// The authenticated caller.
    async fn me(&self, ctx: &Context<'_>) -> Option<User> {
        let result: async_graphql::Result<_> = async {
            let caller = ctx.data::<Caller>()?;
            let me = shared(ctx).core.users.me(&caller.actor).await.gql()?;
            Ok(Some(User(UserView::Full(me))))
        }
        .await;
        or_null(ctx, result)
    }

    /// A user as the caller may see them.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Option<User> {
        let result: async_graphql::Result<_> = async {
            let caller = ctx.data::<Caller>()?;
            Ok(Some(User(shared(ctx).core.users.get(&caller.actor, &id).await.gql()?)))
        }
        .await;
        or_null(ctx, result)
    }

    /// Users, newest first (admins see every field; others public profiles).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        let s = shared(ctx);
        let caller = ctx.data::<Caller>()?;
        let req = page_request(ctx, USERS_CONTEXT, first, after)?;
        let page = s.core.users.list(&caller.actor, &req).await.gql()?;
        let (edges, page_info) =
            edges(&s.ops, USERS_CONTEXT, page, |u| u.id().to_string(), |cursor, u| UserEdge { cursor, node: User(u) });
        Ok(UserConnection { edges, page_info })
    }

    /// A post the caller may read.
    async fn post(&self, ctx: &Context<'_>, id: ID) -> Option<Post> {
        let result: async_graphql::Result<_> = async {
            let caller = ctx.data::<Caller>()?;
            Ok(Some(Post(shared(ctx).core.posts.get(&caller.actor, &id).await.gql()?)))
        }
        .await;
        or_null(ctx, result)
    }

    /// Posts the caller may read, newest first, filtered by author, status and tag.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn posts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PostFilterInput>,
    ) -> async_graphql::Result<PostConnection> {
        PostConnection::load(ctx, first, after, filter).await
    }

    /// The audit log, newest first (admins only): every state change and security event.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<super::audit::AuditLogFilter>,
    ) -> async_graphql::Result<super::audit::AuditEntryConnection> {
        super::audit::load(ctx, first, after, filter).await
    }

    /// The caller's API keys (sessions only; API keys cannot list keys).
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiKey>> {
        let caller = ctx.data::<Caller>()?;
        let keys = shared(ctx).core.auth.list_api_keys(&caller.actor).await.gql()?;
        Ok(keys.into_iter().map(ApiKey::from).collect())
    }

    /// The caller's webhooks (their secrets are never shown again).
    async fn webhooks(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Webhook>> {
        let caller = ctx.data::<Caller>()?;
        let op = crate::platform::operations::Operation::ListWebhooks;
        match shared(ctx).ops.run(&caller.admitted, op, None).await.gql()?.0 {
            crate::platform::operations::Outcome::Webhooks(hooks) => Ok(hooks.into_iter().map(Webhook::from).collect()),
            _ => Err(async_graphql::Error::new("unexpected outcome")),
        }
    }

    /// A webhook's delivery attempts, newest first (its owner or an admin).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<WebhookDeliveryConnection> {
        use crate::platform::operations::{Operation, Outcome, Paging, webhook_deliveries_context};
        let (s, caller) = (shared(ctx), ctx.data::<Caller>()?);
        let op = Operation::ListWebhookDeliveries {
            id: id.to_string(),
            paging: Paging { limit: first.map(i64::from), cursor: after },
        };
        let Outcome::WebhookDeliveries(listed) = s.ops.run(&caller.admitted, op, None).await.gql()?.0 else {
            return Err(async_graphql::Error::new("unexpected outcome"));
        };
        let context = webhook_deliveries_context(&id);
        let page = crate::domain::page::Page {
            next_after: listed.next_cursor.as_ref().and(listed.items.last().map(|d| d.id.clone())),
            items: listed.items,
        };
        let (edges, page_info) = edges(
            &s.ops,
            &context,
            page,
            |d| d.id.clone(),
            |cursor, d| WebhookDeliveryEdge { cursor, node: WebhookDelivery::from(d) },
        );
        Ok(WebhookDeliveryConnection { edges, page_info })
    }
}
