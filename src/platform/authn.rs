//! Turns presented credentials (Bearer token, stream token or API key) into the core's `Actor`
//! as the records say NOW: the role comes from the user record, and a deleted user, a revoked
//! session or a revoked key is refused on the very next use, whatever the token still claims.

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

impl Authenticated {
    pub const ANONYMOUS: Authenticated = Authenticated { actor: Actor::Anonymous, expires_at: None };
}

/// Shared by every protocol adapter (through admission) so credentials mean the same thing
/// everywhere.
#[derive(Clone)]
pub struct Authenticator {
    pub jwt: Arc<JwtKeys>,
    pub core: Core,
}

impl Authenticator {
    /// `authorization` is the raw header value (`Bearer …`), `api_key` the raw `x-api-key` value.
    /// No credentials means anonymous; bad credentials are UNAUTHENTICATED, never anonymous.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        api_key: Option<&str>,
    ) -> DomainResult<Authenticated> {
        match (authorization, api_key) {
            (Some(_), Some(_)) => {
                Err(DomainError::unauthenticated("send either a Bearer token or an API key, not both"))
            }
            (Some(header), None) => self.bearer(header).await,
            (None, Some(key)) => Ok(Authenticated {
                actor: Actor::User(self.core.auth.authenticate_api_key(key.trim()).await?),
                expires_at: None,
            }),
            (None, None) => Ok(Authenticated::ANONYMOUS),
        }
    }

    async fn bearer(&self, header: &str) -> DomainResult<Authenticated> {
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| DomainError::unauthenticated("expected `Authorization: Bearer <token>`"))?;
        self.token(token, TokenType::Access).await
    }

    /// Verifies a raw token of the given type (access tokens in frames, stream tokens in URLs),
    /// then checks its user and session as they are now.
    pub async fn token(&self, token: &str, typ: TokenType) -> DomainResult<Authenticated> {
        let claims = self.jwt.verify(token, typ)?;
        let credential = match claims.kid {
            Some(key_id) if typ == TokenType::Stream => Credential::ApiKey { key_id, scopes: Vec::new() },
            Some(_) => return Err(DomainError::unauthenticated("invalid access token")),
            None => Credential::AccessToken { jti: claims.jti, session_id: claims.sid },
        };
        let claimed = Principal { user_id: claims.sub.clone(), role: claims.role, credential };
        let current = self.current(claimed).await?;
        if current.user_id != claims.sub {
            return Err(DomainError::unauthenticated("invalid access token"));
        }
        Ok(Authenticated { actor: Actor::User(current), expires_at: DateTime::<Utc>::from_timestamp(claims.exp, 0) })
    }

    /// The principal as the records say now: its user's current role; UNAUTHENTICATED when the
    /// user is gone, the login session was revoked (logout, a reused refresh token) or the API
    /// key was revoked.
    pub async fn current(&self, claimed: Principal) -> DomainResult<Principal> {
        let gone = || DomainError::unauthenticated("the user of this credential no longer exists");
        match &claimed.credential {
            Credential::AccessToken { session_id, .. } => {
                if self.core.auth.is_session_revoked(session_id).await? {
                    return Err(DomainError::unauthenticated("this session was signed out; log in again"));
                }
                let user = self.core.deps.users.get(&claimed.user_id).await?.ok_or_else(gone)?;
                Ok(Principal { role: user.role, ..claimed })
            }
            Credential::ApiKey { key_id, .. } => match self.core.auth.api_key_by_id(key_id).await? {
                Some((_, principal)) => Ok(principal),
                None => Err(DomainError::unauthenticated("this API key was revoked")),
            },
        }
    }

    /// A token that opens event streams from a URL (EventSource cannot send headers), tied to
    /// the login session (refresh-token family) or API key of `auth` rather than to the access
    /// token's short life: it keeps reopening the stream (a browser's reconnect, after a restart,
    /// on any instance) until `ttl_secs` pass or, checked against the store on every connect and
    /// at every revalidation, that session or key is revoked or its user deleted. It is typed
    /// `stream`, so no other endpoint accepts it.
    pub fn mint_stream_token(&self, auth: &Authenticated, ttl_secs: u64) -> DomainResult<String> {
        let principal = auth.actor.require_user()?;
        let (session_id, key_id) = match &principal.credential {
            Credential::AccessToken { session_id, .. } => (session_id.as_str(), None),
            Credential::ApiKey { key_id, .. } => ("", Some(key_id.as_str())),
        };
        self.jwt.sign_claims(&principal.user_id, principal.role, session_id, TokenType::Stream, ttl_secs, key_id)
    }

    /// The caller of a long-lived connection as it is now: Ok(None) once its credential was
    /// revoked or its user deleted (the connection must end); its current role otherwise.
    /// Anonymous callers stay as they are.
    pub async fn revalidate(&self, auth: &Authenticated) -> DomainResult<Option<Authenticated>> {
        let Some(principal) = auth.actor.principal() else {
            return Ok(Some(auth.clone()));
        };
        match self.current(principal.clone()).await {
            Ok(p) => Ok(Some(Authenticated { actor: Actor::User(p), expires_at: auth.expires_at })),
            Err(e) if e.code == crate::domain::error::ErrorCode::Unauthenticated => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// False once the credential behind `actor` was revoked or its user deleted.
    pub async fn still_valid(&self, actor: &Actor) -> DomainResult<bool> {
        let auth = Authenticated { actor: actor.clone(), expires_at: None };
        Ok(self.revalidate(&auth).await?.is_some())
    }
}
