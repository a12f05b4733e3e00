//! Mutations: one per REST write, named as the contract's canonical operations.

use async_graphql::{Context, ID, Object};

use super::super::error::GqlResult;
use super::types::{
    AuthPayload, CreateApiKeyInput, CreatePostInput, CreatedApiKey, LoginInput, Post, RegisterInput, UpdatePostInput,
    UpdateUserInput, User,
};
use super::{Caller, shared};
use crate::domain::post::{NewPost, PostPatch};
use crate::domain::service::{ClientInfo, UserView};
use crate::domain::user::{RegisterUser, UserPatch};

pub struct Mutation;

fn caller<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Caller> {
    ctx.data::<Caller>()
}

#[Object]
impl Mutation {
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> async_graphql::Result<AuthPayload> {
        let client = ClientInfo { ip: Some(caller(ctx)?.admitted.peer.clone()) };
        Ok(shared(ctx).core.auth.login(&input.email, &input.password, &client).await.gql()?.into())
    }

    /// Rotates: the presented refresh token is spent.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> async_graphql::Result<AuthPayload> {
        Ok(shared(ctx).core.auth.refresh(&refresh_token).await.gql()?.into())
    }

    /// Ends the refresh token's session.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> async_graphql::Result<bool> {
        shared(ctx).core.auth.logout(&refresh_token).await.gql()?;
        Ok(true)
    }

    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> async_graphql::Result<User> {
        let input = RegisterUser { email: input.email, name: input.name, password: input.password };
        Ok(User(UserView::Full(shared(ctx).core.users.register(input).await.gql()?)))
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
        let user = shared(ctx).core.users.update(&caller(ctx)?.actor, &id, patch, version).await.gql()?;
        Ok(User(UserView::of(&caller(ctx)?.actor, user)))
    }

    /// Admins only. Answers the deleted id.
    async fn delete_user(&self, ctx: &Context<'_>, id: ID, version: Option<i64>) -> async_graphql::Result<ID> {
        shared(ctx).core.users.delete(&caller(ctx)?.actor, &id, version).await.gql()?;
        Ok(id)
    }

    async fn create_post(&self, ctx: &Context<'_>, input: CreatePostInput) -> async_graphql::Result<Post> {
        let input = NewPost { title: input.title, body: input.body, tags: input.tags };
        Ok(Post(shared(ctx).core.posts.create(&caller(ctx)?.actor, input).await.gql()?))
    }

    async fn update_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePostInput,
        version: Option<i64>,
    ) -> async_graphql::Result<Post> {
        let patch = PostPatch { title: input.title, body: input.body, tags: input.tags };
        Ok(Post(shared(ctx).core.posts.update(&caller(ctx)?.actor, &id, patch, version).await.gql()?))
    }

    async fn publish_post(&self, ctx: &Context<'_>, id: ID, version: Option<i64>) -> async_graphql::Result<Post> {
        Ok(Post(shared(ctx).core.posts.publish(&caller(ctx)?.actor, &id, version).await.gql()?))
    }

    async fn unpublish_post(&self, ctx: &Context<'_>, id: ID, version: Option<i64>) -> async_graphql::Result<Post> {
        Ok(Post(shared(ctx).core.posts.unpublish(&caller(ctx)?.actor, &id, version).await.gql()?))
    }

    /// Answers the deleted id.
    async fn delete_post(&self, ctx: &Context<'_>, id: ID, version: Option<i64>) -> async_graphql::Result<ID> {
        shared(ctx).core.posts.delete(&caller(ctx)?.actor, &id, version).await.gql()?;
        Ok(id)
    }

    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreatedApiKey> {
        let created =
            shared(ctx).core.auth.create_api_key(&caller(ctx)?.actor, &input.name, &input.scopes).await.gql()?;
        Ok(created.into())
    }

    /// Answers the revoked key's id.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        shared(ctx).core.auth.revoke_api_key(&caller(ctx)?.actor, &id).await.gql()?;
        Ok(id)
    }
}
