//! Mutations: one per REST write, named as the contract's canonical operations, each run as a
//! canonical operation.

use async_graphql::{Context, ID, Object};

use super::super::error::{GqlResult, to_graphql};
use super::types::{
    AuthPayload, CreateApiKeyInput, CreatePostInput, CreateWebhookInput, CreatedApiKey, CreatedWebhook, LoginInput,
    Post, RegisterInput, UpdatePostInput, UpdateUserInput, User,
};
use super::{Caller, shared};
use crate::domain::error::DomainError;
use crate::domain::post::{NewPost, PostPatch};
use crate::domain::service::UserView;
use crate::domain::user::{RegisterUser, UserPatch};
use crate::platform::operations::{Operation, Outcome};

pub struct Mutation;

fn caller<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Caller> {
    ctx.data::<Caller>()
}

/// Runs a canonical operation for the caller (idempotent with the request's key).
async fn run(ctx: &Context<'_>, op: Operation) -> async_graphql::Result<Outcome> {
    let caller = caller(ctx)?;
    let (outcome, replayed) =
        shared(ctx).ops.run(&caller.admitted, op, caller.idempotency_key.as_deref()).await.gql()?;
    if replayed {
        caller.mark_replayed();
    }
    Ok(outcome)
}

fn unexpected() -> async_graphql::Error {
    to_graphql(DomainError::internal(anyhow::anyhow!("the operation answered an unexpected outcome")))
}

async fn post(ctx: &Context<'_>, op: Operation) -> async_graphql::Result<Post> {
    match run(ctx, op).await? {
        Outcome::Post(p) => Ok(Post(p)),
        _ => Err(unexpected()),
    }
}

async fn tokens(ctx: &Context<'_>, op: Operation) -> async_graphql::Result<AuthPayload> {
    match run(ctx, op).await? {
        Outcome::Tokens(pair) => Ok(pair.into()),
        _ => Err(unexpected()),
    }
}

#[Object]
impl Mutation {
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> async_graphql::Result<AuthPayload> {
        tokens(ctx, Operation::Login { email: input.email, password: input.password }).await
    }

    /// Rotates: the presented refresh token is spent.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> async_graphql::Result<AuthPayload> {
        tokens(ctx, Operation::RefreshToken { refresh_token }).await
    }

    /// Ends the refresh token's session.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> async_graphql::Result<bool> {
        run(ctx, Operation::Logout { refresh_token }).await?;
        Ok(true)
    }

    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> async_graphql::Result<User> {
        let input = RegisterUser { email: input.email, name: input.name, password: input.password };
        match run(ctx, Operation::Register(input)).await? {
            Outcome::User(u) => Ok(User(UserView::Full(u))),
            _ => Err(unexpected()),
        }
    }

    /// `version` guards against lost updates like REST's `If-Match`.
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateUserInput,
        version: Option<i64>,
    ) -> async_graphql::Result<User> {
        let patch =
            UserPatch { email: input.email, name: input.name, role: input.role.map(|r| r.as_str().to_string()) };
        match run(ctx, Operation::UpdateUser { id: id.0, patch, expected_version: version }).await? {
            Outcome::User(u) => Ok(User(UserView::of(&caller(ctx)?.actor, u))),
            _ => Err(unexpected()),
        }
    }

    /// Admins only. Answers the deleted id.
    async fn delete_user(&self, ctx: &Context<'_>, id: ID, version: Option<i64>) -> async_graphql::Result<ID> {
        run(ctx, Operation::DeleteUser { id: id.to_string(), expected_version: version }).await?;
        Ok(id)
    }

    async fn create_post(&self, ctx: &Context<'_>, input: CreatePostInput) -> async_graphql::Result<Post> {
        post(ctx, Operation::CreatePost(NewPost { title: input.title, body: input.body, tags: input.tags })).await
    }

    async fn update_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePostInput,
        version: Option<i64>,
    ) -> async_graphql::Result<Post> {
        let patch = PostPatch { title: input.title, body: input.body, tags: input.tags };
        post(ctx, Operation::UpdatePost { id: id.0, patch, expected_version: version }).await
    }

    async fn publish_post(&self, ctx: &Context<'_>, id: ID, version: Option<i64>) -> async_graphql::Result<Post> {
        post(ctx, Operation::PublishPost { id: id.0, expected_version: version }).await
    }

    async fn unpublish_post(&self, ctx: &Context<'_>, id: ID, version: Option<i64>) -> async_graphql::Result<Post> {
        post(ctx, Operation::UnpublishPost { id: id.0, expected_version: version }).await
    }

    /// Answers the deleted id.
    async fn delete_post(&self, ctx: &Context<'_>, id: ID, version: Option<i64>) -> async_graphql::Result<ID> {
        run(ctx, Operation::DeletePost { id: id.to_string(), expected_version: version }).await?;
        Ok(id)
    }

    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreatedApiKey> {
        match run(ctx, Operation::CreateApiKey { name: input.name, scopes: input.scopes }).await? {
            Outcome::ApiKey(created) => Ok(created.into()),
            _ => Err(unexpected()),
        }
    }

    /// Answers the revoked key's id.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        run(ctx, Operation::RevokeApiKey { id: id.to_string() }).await?;
        Ok(id)
    }

    /// Registers a webhook; the signing secret is in this answer only.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> async_graphql::Result<CreatedWebhook> {
        let input = crate::domain::webhook::NewWebhook { url: input.url, topics: input.topics };
        match run(ctx, Operation::CreateWebhook(input)).await? {
            Outcome::Webhook(created) => Ok(created.into()),
            _ => Err(unexpected()),
        }
    }

    /// Deletes a webhook (yours, or anyone's as an admin). Answers the deleted id.
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        run(ctx, Operation::DeleteWebhook { id: id.to_string() }).await?;
        Ok(id)
    }
}
