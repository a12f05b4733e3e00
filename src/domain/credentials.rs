//! Stored credentials other than passwords: refresh tokens (rotating families) and API keys.

use chrono::{DateTime, Utc};

use super::policy::Scope;

/// One refresh token of a rotation family. Only the hash of the secret is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshToken {
    pub id: String,
    pub family_id: String,
    pub user_id: String,
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An API key acting as its owner, narrowed by scopes. Only the hash of the secret is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// The first characters of the key, shown in lists so people recognise it.
    pub prefix: String,
    pub key_hash: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What login and refresh hand out.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: String,
}

/// A freshly created API key with its secret, shown exactly once.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: String,
}

/// Scopes as stored: space separated.
pub fn scopes_to_string(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

pub fn scopes_from_string(s: &str) -> Vec<Scope> {
    s.split_whitespace().filter_map(|x| Scope::parse(x).ok()).collect()
}
