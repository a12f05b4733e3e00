//! `polyport.v1.AuthService`: login, refresh, logout and API keys, as canonical operations.

use tonic::{Request, Response, Status};

use super::call::{Call, unexpected};
use super::{Grpc, convert, pb};
use crate::platform::operations::{Operation, Outcome};

async fn tokens(call: &Call, op: Operation) -> Result<pb::LoginResponse, Status> {
    match call.run(op).await? {
        (Outcome::Tokens(pair), _) => Ok(convert::login(pair)),
        _ => Err(unexpected(call)),
    }
}

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for Grpc {
    async fn login(&self, req: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        Ok(call.reply(tokens(&call, Operation::Login { email: r.email, password: r.password }).await?))
    }

    async fn refresh_token(
        &self,
        req: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let l = tokens(&call, Operation::RefreshToken { refresh_token: req.into_inner().refresh_token }).await?;
        Ok(call.reply(pb::RefreshTokenResponse {
            access_token: l.access_token,
            token_type: l.token_type,
            expires_in: l.expires_in,
            refresh_token: l.refresh_token,
        }))
    }

    async fn logout(&self, req: Request<pb::LogoutRequest>) -> Result<Response<pb::LogoutResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let (_, replayed) = call.run(Operation::Logout { refresh_token: req.into_inner().refresh_token }).await?;
        Ok(call.respond(pb::LogoutResponse { logged_out: true }, replayed))
    }

    async fn create_api_key(&self, req: Request<pb::CreateApiKeyRequest>) -> Result<Response<pb::ApiKey>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        match call.run(Operation::CreateApiKey { name: r.name, scopes: r.scopes }).await? {
            (Outcome::ApiKey(created), _) => {
                Ok(call.reply(pb::ApiKey { key: created.secret, ..convert::api_key(created.key) }))
            }
            _ => Err(unexpected(&call)),
        }
    }

    async fn list_api_keys(
        &self,
        req: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        match call.run(Operation::ListApiKeys).await? {
            (Outcome::ApiKeys(keys), _) => {
                Ok(call.reply(pb::ListApiKeysResponse { data: keys.into_iter().map(convert::api_key).collect() }))
            }
            _ => Err(unexpected(&call)),
        }
    }

    async fn revoke_api_key(
        &self,
        req: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let (_, replayed) = call.run(Operation::RevokeApiKey { id: req.into_inner().id }).await?;
        Ok(call.respond(pb::RevokeApiKeyResponse { revoked: true }, replayed))
    }
}
