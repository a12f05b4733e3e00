//! Authentication: login, rotating refresh tokens, logout, API keys and their resolution.

use std::sync::Arc;

use super::Deps;
use super::secret::{hash_secret, new_id, random_secret};
use crate::domain::audit::{AuditOutcome, AuditRecord, ClientInfo, action, target};
use crate::domain::credentials::{ApiKey, CreatedApiKey, RefreshToken, TokenPair};
use crate::domain::error::{DomainError, DomainResult, Issues};
use crate::domain::policy::{Actor, Credential, Principal, Scope};
use crate::domain::user::{Role, User};

/// A PHC string for a password nobody has: verified against when the email is unknown so that
/// both cases take the same time.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3m2yFK1M8qBnXWe0zO8P8u1N1z9sAXUn1w1mhkmJ0ts";

/// API keys look like `ppk_<43 url-safe chars>`; the first 12 characters are the shown prefix.
const API_KEY_PREFIX: &str = "ppk_";

#[derive(Clone)]
pub struct AuthService {
    deps: Arc<Deps>,
}

fn bad_credentials() -> DomainError {
    DomainError::unauthenticated("invalid email or password")
}

fn require_token(refresh_token: &str) -> DomainResult<()> {
    // Characters, as the documented `maxLength` counts them (not UTF-8 bytes).
    let issue = match refresh_token.chars().count() {
        0 => "required",
        n if n > 128 => "too_long",
        _ => return Ok(()),
    };
    Err(DomainError::validation(vec![crate::domain::error::FieldIssue::new("refresh_token", issue)]))
}

fn bad_refresh() -> DomainError {
    DomainError::unauthenticated("invalid or expired refresh token")
}

impl AuthService {
    pub(super) fn new(deps: Arc<Deps>) -> Self {
        Self { deps }
    }

    /// Same status and body whether the email exists or not.
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, email: &str, password: &str, client: &ClientInfo) -> DomainResult<TokenPair> {
        let user = self.check_password(email, password, client).await?;
        let pair = self.start_session(&user).await?;
        let audit =
            AuditRecord::new(client, &Actor::Anonymous, action::LOGIN, target("user", &user.id), self.deps.clock.now())
                .by_user(&user.id);
        self.deps.audit.append(&audit).await?;
        Ok(pair)
    }

    /// Appends a security event that accompanies a refusal: a failure to record it is logged,
    /// and the refusal still answers.
    async fn record_refusal(&self, audit: AuditRecord) {
        if let Err(e) = self.deps.audit.append(&audit).await {
            tracing::error!(error = %e, action = audit.action, "an audit entry could not be appended");
        }
    }

    /// An audit record of an attempt on `email` (which may name nobody).
    fn attempt(&self, client: &ClientInfo, what: &'static str, email_key: &str) -> AuditRecord {
        let shown: String = email_key.chars().filter(|c| !c.is_control()).take(254).collect();
        AuditRecord::new(client, &Actor::Anonymous, what, target("email", &shown), self.deps.clock.now())
    }

    /// Checks an email and password (with the failed-login throttle) without opening a session,
    /// for protocols that send credentials with every call (WS-Security PasswordText).
    pub async fn authenticate_password(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> DomainResult<Principal> {
        let user = self.check_password(email, password, client).await?;
        let session_id = format!("password:{}", user.id);
        Ok(Principal {
            user_id: user.id,
            role: user.role,
            credential: Credential::AccessToken { jti: new_id(), session_id },
        })
    }

    /// A live API key by id with the principal it acts as, for digest schemes where the shared
    /// secret is the key's stored SHA-256 (`key_hash`). None when unknown or revoked.
    pub async fn api_key_by_id(&self, key_id: &str) -> DomainResult<Option<(ApiKey, Principal)>> {
        let Some(key) = self.deps.credentials.find_api_key_by_id(key_id).await? else {
            return Ok(None);
        };
        if key.revoked_at.is_some() {
            return Ok(None);
        }
        let Some(user) = self.deps.users.get(&key.user_id).await? else {
            return Ok(None);
        };
        let principal = Principal {
            user_id: user.id,
            role: user.role,
            credential: Credential::ApiKey { key_id: key.id.clone(), scopes: key.scopes.clone() },
        };
        Ok(Some((key, principal)))
    }

    async fn check_password(&self, email: &str, password: &str, client: &ClientInfo) -> DomainResult<User> {
        let mut issues = Issues::default();
        if email.trim().is_empty() {
            issues.add("email", "required");
        }
        if password.is_empty() {
            issues.add("password", "required");
        }
        issues.finish()?;
        let email_key = email.trim().to_lowercase();
        let ip = client.ip.as_deref();
        if let Err(wait) = self.deps.throttle.reserve(&email_key, ip).await {
            let audit = self.attempt(client, action::LOGIN_LOCKED_OUT, &email_key).with_outcome(AuditOutcome::Denied);
            self.record_refusal(audit).await;
            return Err(DomainError::rate_limited(wait));
        }
        let user = match self.deps.users.get_by_email(&email_key).await {
            Ok(user) => user,
            Err(e) => {
                self.deps.throttle.release(&email_key, ip).await;
                return Err(e);
            }
        };
        let hash = user.as_ref().map_or(DUMMY_HASH, |u| u.password_hash.as_str());
        let ok = match self.deps.hasher.verify(password, hash).await {
            Ok(ok) => ok,
            Err(e) => {
                self.deps.throttle.release(&email_key, ip).await;
                return Err(e);
            }
        };
        let user = match (ok, user) {
            (true, Some(user)) => user,
            (_, user) => {
                tracing::info!("login failed");
                let mut audit = self.attempt(client, action::LOGIN, &email_key).with_outcome(AuditOutcome::Failure);
                if let Some(user) = user {
                    audit.target = target("user", &user.id);
                }
                self.record_refusal(audit).await;
                return Err(bad_credentials());
            }
        };
        self.deps.throttle.succeeded(&email_key, ip).await;
        tracing::info!(user_id = %user.id, "login succeeded");
        Ok(user)
    }

    /// Rotates: the presented token is spent; a spent token presented again revokes its family.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> DomainResult<TokenPair> {
        require_token(refresh_token)?;
        let now = self.deps.clock.now();
        let creds = &self.deps.credentials;
        let Some(current) = creds.find_refresh_token(&hash_secret(refresh_token)).await? else {
            return Err(bad_refresh());
        };
        if current.used_at.is_some() || current.revoked_at.is_some() {
            if current.revoked_at.is_none() {
                tracing::warn!(family_id = %current.family_id, user_id = %current.user_id, "refresh token reuse; revoking the family");
            }
            creds.revoke_family(&current.family_id, now).await?;
            self.record_reuse(client, &current).await;
            return Err(bad_refresh());
        }
        if current.expires_at <= now {
            return Err(bad_refresh());
        }
        let Some(user) = self.deps.users.get(&current.user_id).await? else {
            return Err(bad_refresh());
        };
        let (secret, next) = self.new_refresh_token(&user, &current.family_id);
        if !creds.rotate_refresh_token(&current.id, &next, now).await? {
            creds.revoke_family(&current.family_id, now).await?;
            self.record_reuse(client, &current).await;
            return Err(bad_refresh());
        }
        self.pair(&user, &current.family_id, secret)
    }

    /// A spent refresh token came back: the reuse, and the revocation of its family.
    async fn record_reuse(&self, client: &ClientInfo, token: &RefreshToken) {
        let now = self.deps.clock.now();
        let session = target("session", &token.family_id);
        let reuse = AuditRecord::new(client, &Actor::Anonymous, action::REFRESH_REUSED, session.clone(), now)
            .by_user(&token.user_id)
            .with_outcome(AuditOutcome::Failure);
        self.record_refusal(reuse).await;
        let revoked =
            AuditRecord::new(client, &Actor::Anonymous, action::SESSION_REVOKED, session, now).by_user(&token.user_id);
        self.record_refusal(revoked).await;
    }

    /// Revokes the token's whole session. Unknown tokens are accepted silently.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, refresh_token: &str, client: &ClientInfo) -> DomainResult<()> {
        require_token(refresh_token)?;
        let creds = &self.deps.credentials;
        if let Some(token) = creds.find_refresh_token(&hash_secret(refresh_token)).await? {
            let now = self.deps.clock.now();
            creds.revoke_family(&token.family_id, now).await?;
            tracing::info!(user_id = %token.user_id, "logged out");
            let audit =
                AuditRecord::new(client, &Actor::Anonymous, action::LOGOUT, target("session", &token.family_id), now)
                    .by_user(&token.user_id);
            self.deps.audit.append(&audit).await?;
        }
        Ok(())
    }

    /// Resolves an `x-api-key` secret to the principal it acts as.
    pub async fn authenticate_api_key(&self, secret: &str) -> DomainResult<Principal> {
        let invalid = || DomainError::unauthenticated("invalid API key");
        if !secret.starts_with(API_KEY_PREFIX) || secret.len() > 128 {
            return Err(invalid());
        }
        let key = self.deps.credentials.find_api_key(&hash_secret(secret)).await?.ok_or_else(invalid)?;
        if key.revoked_at.is_some() {
            return Err(invalid());
        }
        let user = self.deps.users.get(&key.user_id).await?.ok_or_else(invalid)?;
        Ok(Principal {
            user_id: user.id,
            role: user.role,
            credential: Credential::ApiKey { key_id: key.id, scopes: key.scopes },
        })
    }

    /// True when the login session behind an access token was revoked.
    pub async fn is_session_revoked(&self, session_id: &str) -> DomainResult<bool> {
        self.deps.credentials.is_family_revoked(session_id).await
    }

    /// Users (not API keys) mint keys; the `admin` scope needs the admin role.
    #[tracing::instrument(skip_all)]
    pub async fn create_api_key(
        &self,
        actor: &Actor,
        name: &str,
        scopes: &[String],
        client: &ClientInfo,
    ) -> DomainResult<CreatedApiKey> {
        let me = self.require_session_user(actor)?;
        let mut issues = Issues::default();
        let name = issues.check("name", crate::domain::user::parse_name(name));
        if scopes.is_empty() {
            issues.add("scopes", "required");
        }
        let mut parsed = Vec::new();
        for (i, raw) in scopes.iter().enumerate() {
            match Scope::parse(raw) {
                Ok(s) if !parsed.contains(&s) => parsed.push(s),
                Ok(_) => {}
                Err(e) => issues.add(format!("scopes[{i}]"), e),
            }
        }
        issues.finish()?;
        if parsed.contains(&Scope::Admin) && me.role != Role::Admin {
            return Err(DomainError::forbidden("the admin scope needs the admin role")
                .with_detail("scopes", "requires_admin_role"));
        }
        let secret = format!("{API_KEY_PREFIX}{}", random_secret());
        let key = ApiKey {
            id: new_id(),
            user_id: me.user_id.clone(),
            name: name.unwrap_or_default(),
            prefix: secret[..12].to_string(),
            key_hash: hash_secret(&secret),
            scopes: parsed,
            created_at: self.deps.clock.now(),
            revoked_at: None,
        };
        let audit =
            AuditRecord::new(client, actor, action::API_KEY_CREATED, target("api_key", &key.id), key.created_at);
        self.deps.credentials.insert_api_key(&key, &audit).await?;
        tracing::info!(key_id = %key.id, "api key created");
        Ok(CreatedApiKey { key, secret })
    }

    pub async fn list_api_keys(&self, actor: &Actor) -> DomainResult<Vec<ApiKey>> {
        let me = self.require_session_user(actor)?;
        self.deps.credentials.list_api_keys(&me.user_id).await
    }

    #[tracing::instrument(skip_all, fields(key_id = %key_id))]
    pub async fn revoke_api_key(&self, actor: &Actor, key_id: &str, client: &ClientInfo) -> DomainResult<()> {
        let me = self.require_session_user(actor)?;
        let now = self.deps.clock.now();
        let audit = AuditRecord::new(client, actor, action::API_KEY_REVOKED, target("api_key", key_id), now);
        if self.deps.credentials.revoke_api_key(&me.user_id, key_id, now, &audit).await? {
            Ok(())
        } else {
            Err(DomainError::not_found("api key"))
        }
    }

    fn require_session_user<'a>(&self, actor: &'a Actor) -> DomainResult<&'a Principal> {
        let me = actor.require_user()?;
        match me.credential {
            Credential::AccessToken { .. } => Ok(me),
            Credential::ApiKey { .. } => Err(DomainError::forbidden("API keys cannot manage API keys; log in")),
        }
    }

    async fn start_session(&self, user: &User) -> DomainResult<TokenPair> {
        let family = new_id();
        let (secret, token) = self.new_refresh_token(user, &family);
        self.deps.credentials.insert_refresh_token(&token).await?;
        self.pair(user, &family, secret)
    }

    fn new_refresh_token(&self, user: &User, family_id: &str) -> (String, RefreshToken) {
        let now = self.deps.clock.now();
        let secret = random_secret();
        let token = RefreshToken {
            id: new_id(),
            family_id: family_id.to_string(),
            user_id: user.id.clone(),
            token_hash: hash_secret(&secret),
            created_at: now,
            expires_at: now + self.deps.refresh_ttl,
            used_at: None,
            revoked_at: None,
        };
        (secret, token)
    }

    fn pair(&self, user: &User, session_id: &str, refresh_token: String) -> DomainResult<TokenPair> {
        let (access_token, expires_in) = self.deps.tokens.issue_access(user, session_id)?;
        Ok(TokenPair { access_token, expires_in, refresh_token })
    }
}
