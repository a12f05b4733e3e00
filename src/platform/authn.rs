//! Turns presented credentials (Bearer token or API key) into the core's `Actor`.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::tokens::{JwtKeys, TokenType};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::policy::{Actor, Credential, Principal};
use crate::domain::service::Core;

/// A caller and when its credential expires (None: never, or anonymous).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub actor: Actor,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Shared by every protocol adapter so credentials mean the same thing everywhere.
#[derive(Clone)]
pub struct Authenticator {
    pub jwt: Arc<JwtKeys>,
    pub core: Core,
}

impl Authenticator {
    /// `authorization` is the raw header value (`Bearer …`), `api_key` the raw `x-api-key` value.
    /// No credentials means anonymous; bad credentials are UNAUTHENTICATED, never anonymous.
    pub async fn authenticate(&self, authorization: Option<&str>, api_key: Option<&str>) -> DomainResult<Actor> {
        Ok(self.authenticate_until(authorization, api_key).await?.actor)
    }

    /// Like `authenticate`, also telling when the credential stops being valid (streams end then).
    pub async fn authenticate_until(
        &self,
        authorization: Option<&str>,
        api_key: Option<&str>,
    ) -> DomainResult<Authenticated> {
        match (authorization, api_key) {
            (Some(_), Some(_)) => {
                Err(DomainError::unauthenticated("send either a Bearer token or an API key, not both"))
            }
            (Some(header), None) => self.bearer(header),
            (None, Some(key)) => Ok(Authenticated {
                actor: Actor::User(self.core.auth.authenticate_api_key(key.trim()).await?),
                expires_at: None,
            }),
            (None, None) => Ok(Authenticated { actor: Actor::Anonymous, expires_at: None }),
        }
    }

    fn bearer(&self, header: &str) -> DomainResult<Authenticated> {
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| DomainError::unauthenticated("expected `Authorization: Bearer <token>`"))?;
        self.token(token, TokenType::Access)
    }

    /// Verifies a raw token of the given type (access tokens in frames, stream tokens in URLs).
    pub fn token(&self, token: &str, typ: TokenType) -> DomainResult<Authenticated> {
        let claims = self.jwt.verify(token, typ)?;
        let until = if typ == TokenType::Stream { claims.lex.unwrap_or(claims.exp) } else { claims.exp };
        Ok(Authenticated {
            actor: Actor::User(Principal {
                user_id: claims.sub,
                role: claims.role,
                credential: Credential::AccessToken { jti: claims.jti, session_id: claims.sid },
            }),
            expires_at: DateTime::<Utc>::from_timestamp(until, 0),
        })
    }

    /// A short-lived token that opens one event stream (EventSource cannot send headers). It
    /// must be used within `ttl_secs`; the stream it opens lives as long as the access token.
    pub fn mint_stream_token(&self, auth: &Authenticated, ttl_secs: u64) -> DomainResult<String> {
        let principal = auth.actor.require_user()?;
        let Credential::AccessToken { session_id, .. } = &principal.credential else {
            return Err(DomainError::forbidden("API keys send the x-api-key header instead of a stream token"));
        };
        let lex = auth.expires_at.map(|t| t.timestamp());
        self.jwt.sign_claims(&principal.user_id, principal.role, session_id, TokenType::Stream, ttl_secs, lex)
    }

    /// False once the credential behind `actor` was revoked (logout, family revocation, key
    /// revocation) or its user deleted. Anonymous callers stay valid.
    pub async fn still_valid(&self, actor: &Actor) -> DomainResult<bool> {
        let Some(principal) = actor.principal() else {
            return Ok(true);
        };
        match &principal.credential {
            Credential::AccessToken { session_id, .. } => Ok(!self.core.auth.is_session_revoked(session_id).await?
                && self.core.deps.users.get(&principal.user_id).await?.is_some()),
            Credential::ApiKey { key_id, .. } => Ok(self.core.auth.api_key_by_id(key_id).await?.is_some()),
        }
    }
}
