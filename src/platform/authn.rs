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
        match (authorization, api_key) {
            (Some(_), Some(_)) => {
                Err(DomainError::unauthenticated("send either a Bearer token or an API key, not both"))
            }
            (Some(header), None) => self.bearer(header),
            (None, Some(key)) => Ok(Actor::User(self.core.auth.authenticate_api_key(key.trim()).await?)),
            (None, None) => Ok(Actor::Anonymous),
        }
    }

    fn bearer(&self, header: &str) -> DomainResult<Actor> {
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| DomainError::unauthenticated("expected `Authorization: Bearer <token>`"))?;
        let claims = self.jwt.verify(token, TokenType::Access)?;
        Ok(Actor::User(Principal {
            user_id: claims.sub,
            role: claims.role,
            credential: Credential::AccessToken { jti: claims.jti, session_id: claims.sid },
        }))
    }
}
