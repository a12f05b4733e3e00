//! `polyport.v1.AuthService`: login, refresh, logout and API keys over the core's AuthService.

use prost::Message;
use tonic::{Request, Response, Status};

use super::call::{Call, idempotency_key};
use super::{Grpc, convert, pb};

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for Grpc {
    async fn login(&self, req: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        let pair =
            self.shared.core.auth.login(&r.email, &r.password, &call.client()).await.map_err(|e| call.fail(&e))?;
        Ok(call.reply(convert::login(pair)))
    }

    async fn refresh_token(
        &self,
        req: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let pair = self.shared.core.auth.refresh(&req.get_ref().refresh_token).await.map_err(|e| call.fail(&e))?;
        let l = convert::login(pair);
        Ok(call.reply(pb::RefreshTokenResponse {
            access_token: l.access_token,
            token_type: l.token_type,
            expires_in: l.expires_in,
            refresh_token: l.refresh_token,
        }))
    }

    async fn logout(&self, req: Request<pb::LogoutRequest>) -> Result<Response<pb::LogoutResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        self.shared.core.auth.logout(&req.get_ref().refresh_token).await.map_err(|e| call.fail(&e))?;
        Ok(call.reply(pb::LogoutResponse { logged_out: true }))
    }

    async fn create_api_key(&self, req: Request<pb::CreateApiKeyRequest>) -> Result<Response<pb::ApiKey>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let key = idempotency_key(&req);
        let r = req.into_inner();
        call.once("CreateApiKey", key, &r.encode_to_vec(), || async {
            let created = self.shared.core.auth.create_api_key(call.actor(), &r.name, &r.scopes).await?;
            Ok(pb::ApiKey { key: created.secret, ..convert::api_key(created.key) })
        })
        .await
    }

    async fn list_api_keys(
        &self,
        req: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let keys = self.shared.core.auth.list_api_keys(call.actor()).await.map_err(|e| call.fail(&e))?;
        Ok(call.reply(pb::ListApiKeysResponse { data: keys.into_iter().map(convert::api_key).collect() }))
    }

    async fn revoke_api_key(
        &self,
        req: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        self.shared.core.auth.revoke_api_key(call.actor(), &req.get_ref().id).await.map_err(|e| call.fail(&e))?;
        Ok(call.reply(pb::RevokeApiKeyResponse { revoked: true }))
    }
}
