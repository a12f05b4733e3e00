//! `CredentialRepo` on SQL: refresh-token families and API keys.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::sql::{Arg, Conn, Row};
use super::{SqlStore, micros, opt_time, time};
use crate::domain::audit::AuditRecord;
use crate::domain::credentials::{ApiKey, RefreshToken, scopes_from_string, scopes_to_string};
use crate::domain::error::DomainResult;
use crate::domain::ports::CredentialRepo;

fn to_refresh(row: &dyn Row) -> DomainResult<RefreshToken> {
    Ok(RefreshToken {
        id: row.text(0)?,
        family_id: row.text(1)?,
        user_id: row.text(2)?,
        token_hash: row.text(3)?,
        created_at: time(row, 4)?,
        expires_at: time(row, 5)?,
        used_at: opt_time(row, 6)?,
        revoked_at: opt_time(row, 7)?,
    })
}

fn to_api_key(row: &dyn Row) -> DomainResult<ApiKey> {
    Ok(ApiKey {
        id: row.text(0)?,
        user_id: row.text(1)?,
        name: row.text(2)?,
        prefix: row.text(3)?,
        key_hash: row.text(4)?,
        scopes: scopes_from_string(&row.text(5)?),
        created_at: time(row, 6)?,
        revoked_at: opt_time(row, 7)?,
    })
}

/// Whether login sessions are revoked, as last read: a revocation is final and kept; a live
/// answer is trusted for at most a second (how long a revocation made by another instance may
/// take to be seen here), none when caching is off. Revocations made here are recorded at once.
pub(super) struct SessionStates {
    live_for: std::time::Duration,
    states: std::sync::Mutex<foldhash::HashMap<String, (bool, std::time::Instant)>>,
}

const SESSION_STATES: usize = 100_000;

impl SessionStates {
    pub(super) fn new(cache_ttl: std::time::Duration) -> Self {
        Self { live_for: cache_ttl.min(std::time::Duration::from_secs(1)), states: Default::default() }
    }

    fn known(&self, family_id: &str) -> Option<bool> {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        match states.get(family_id) {
            Some((true, _)) => Some(true),
            Some((false, at)) if at.elapsed() < self.live_for => Some(false),
            _ => None,
        }
    }

    pub(super) fn record(&self, family_id: &str, revoked: bool) {
        if !revoked && self.live_for.is_zero() {
            return;
        }
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        if states.len() >= SESSION_STATES {
            states.clear();
        }
        states.insert(family_id.to_string(), (revoked, std::time::Instant::now()));
    }
}

macro_rules! refresh_columns {
    () => {
        "id, family_id, user_id, token_hash, created_at, expires_at, used_at, revoked_at"
    };
}
macro_rules! key_columns {
    () => {
        "id, user_id, name, prefix, key_hash, scopes, created_at, revoked_at"
    };
}
const INSERT_REFRESH: &str =
    concat!("INSERT INTO refresh_tokens (", refresh_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
const REFRESH_BY_HASH: &str = concat!("SELECT ", refresh_columns!(), " FROM refresh_tokens WHERE token_hash = $1");
const INSERT_KEY: &str = concat!("INSERT INTO api_keys (", key_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
const KEY_BY_HASH: &str = concat!("SELECT ", key_columns!(), " FROM api_keys WHERE key_hash = $1");
const KEY_BY_ID: &str = concat!("SELECT ", key_columns!(), " FROM api_keys WHERE id = $1");
const KEYS_OF_USER: &str = concat!("SELECT ", key_columns!(), " FROM api_keys WHERE user_id = $1 ORDER BY id DESC");

async fn insert_refresh(c: &mut Conn<'_>, t: &RefreshToken) -> DomainResult<()> {
    c.exec(
        INSERT_REFRESH,
        &[
            Arg::from(&t.id),
            Arg::from(&t.family_id),
            Arg::from(&t.user_id),
            Arg::from(&t.token_hash),
            Arg::Int(micros(t.created_at)),
            Arg::Int(micros(t.expires_at)),
            Arg::OptInt(t.used_at.map(micros)),
            Arg::OptInt(t.revoked_at.map(micros)),
        ],
    )
    .await
    .map_err(|e| e.user_gone_or(USER_GONE))?;
    Ok(())
}

/// A write for a user deleted meanwhile: the credential that asked is no longer any good.
const USER_GONE: &str = "the user no longer exists";

#[async_trait]
impl CredentialRepo for SqlStore {
    async fn insert_refresh_token(&self, token: &RefreshToken) -> DomainResult<()> {
        self.db.write(token.clone(), move |token, c| Box::pin(async move { insert_refresh(c, token).await })).await
    }

    async fn find_refresh_token(&self, token_hash: &str) -> DomainResult<Option<RefreshToken>> {
        self.db.fetch_opt(REFRESH_BY_HASH, &[Arg::Text(token_hash)], to_refresh).await
    }

    async fn rotate_refresh_token(&self, old_id: &str, next: &RefreshToken, now: DateTime<Utc>) -> DomainResult<bool> {
        self.db
            .write((old_id.to_string(), next.clone()), move |(old_id, next), c| {
                Box::pin(async move {
                    let spent = c
                        .exec(
                            "UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
                            &[Arg::Int(micros(now)), Arg::from(old_id)],
                        )
                        .await?;
                    if spent != 1 {
                        return Ok(false);
                    }
                    insert_refresh(c, next).await?;
                    Ok(true)
                })
            })
            .await
    }

    async fn revoke_family(&self, family_id: &str, now: DateTime<Utc>) -> DomainResult<()> {
        self.db
            .write(family_id.to_string(), move |family, c| {
                Box::pin(async move {
                    c.exec(
                        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
                        &[Arg::Int(micros(now)), Arg::from(family)],
                    )
                    .await?;
                    Ok(())
                })
            })
            .await?;
        self.sessions.record(family_id, true);
        Ok(())
    }

    async fn is_family_revoked(&self, family_id: &str) -> DomainResult<bool> {
        if let Some(revoked) = self.sessions.known(family_id) {
            return Ok(revoked);
        }
        let revoked = self
            .db
            .fetch_opt(
                "SELECT 1 FROM refresh_tokens WHERE family_id = $1 AND revoked_at IS NOT NULL LIMIT 1",
                &[Arg::Text(family_id)],
                |_| Ok(()),
            )
            .await?
            .is_some();
        self.sessions.record(family_id, revoked);
        Ok(revoked)
    }

    async fn insert_api_key(&self, key: &ApiKey, audit: &AuditRecord) -> DomainResult<()> {
        self.db
            .write((key.clone(), audit.clone()), move |(key, audit), c| {
                Box::pin(async move {
                    c.exec(
                        INSERT_KEY,
                        &[
                            Arg::from(&key.id),
                            Arg::from(&key.user_id),
                            Arg::from(&key.name),
                            Arg::from(&key.prefix),
                            Arg::from(&key.key_hash),
                            Arg::Text(&scopes_to_string(&key.scopes)),
                            Arg::Int(micros(key.created_at)),
                            Arg::OptInt(key.revoked_at.map(micros)),
                        ],
                    )
                    .await
                    .map_err(|e| e.user_gone_or(USER_GONE))?;
                    super::audit::append_audit(c, audit).await
                })
            })
            .await
    }

    async fn find_api_key(&self, key_hash: &str) -> DomainResult<Option<ApiKey>> {
        self.db.fetch_opt(KEY_BY_HASH, &[Arg::Text(key_hash)], to_api_key).await
    }

    async fn find_api_key_by_id(&self, key_id: &str) -> DomainResult<Option<ApiKey>> {
        if key_id.contains('\0') {
            return Ok(None);
        }
        self.db.fetch_opt(KEY_BY_ID, &[Arg::Text(key_id)], to_api_key).await
    }

    async fn list_api_keys(&self, user_id: &str) -> DomainResult<Vec<ApiKey>> {
        self.db.fetch_all(KEYS_OF_USER, &[Arg::Text(user_id)], to_api_key).await
    }

    async fn revoke_api_key(
        &self,
        user_id: &str,
        key_id: &str,
        now: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> DomainResult<bool> {
        if key_id.contains('\0') {
            return Ok(false);
        }
        self.db
            .write((user_id.to_string(), key_id.to_string(), audit.clone()), move |(user_id, key_id, audit), c| {
                Box::pin(async move {
                    let done = c
                        .exec(
                            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
                            &[Arg::Int(micros(now)), Arg::from(key_id), Arg::from(user_id)],
                        )
                        .await?;
                    if done == 1 {
                        super::audit::append_audit(c, audit).await?;
                    }
                    Ok(done == 1)
                })
            })
            .await
    }
}
