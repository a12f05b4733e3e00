//! `CredentialRepo` on SQL: refresh-token families and API keys.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;

use super::{SqlStore, db_error, micros, opt_time, text, time};
use crate::domain::credentials::{ApiKey, RefreshToken, scopes_from_string, scopes_to_string};
use crate::domain::error::DomainResult;
use crate::domain::ports::CredentialRepo;

fn to_refresh(row: &AnyRow) -> DomainResult<RefreshToken> {
    Ok(RefreshToken {
        id: text(row, "id")?,
        family_id: text(row, "family_id")?,
        user_id: text(row, "user_id")?,
        token_hash: text(row, "token_hash")?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
        used_at: opt_time(row, "used_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
    })
}

fn to_api_key(row: &AnyRow) -> DomainResult<ApiKey> {
    Ok(ApiKey {
        id: text(row, "id")?,
        user_id: text(row, "user_id")?,
        name: text(row, "name")?,
        prefix: text(row, "prefix")?,
        key_hash: text(row, "key_hash")?,
        scopes: scopes_from_string(&text(row, "scopes")?),
        created_at: time(row, "created_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
    })
}

/// Whether login sessions are revoked, as last read: a revocation is final and kept; a live
/// answer is trusted for at most a second (how long a revocation made by another instance may
/// take to be seen here), none when caching is off. Revocations made here are recorded at once.
pub(super) struct SessionStates {
    live_for: std::time::Duration,
    states: std::sync::Mutex<std::collections::HashMap<String, (bool, std::time::Instant)>>,
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

    fn record(&self, family_id: &str, revoked: bool) {
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

const REFRESH_COLUMNS: &str = "id, family_id, user_id, token_hash, created_at, expires_at, used_at, revoked_at";
const KEY_COLUMNS: &str = "id, user_id, name, prefix, key_hash, scopes, created_at, revoked_at";

async fn insert_refresh(conn: &mut sqlx::AnyConnection, t: &RefreshToken) -> DomainResult<()> {
    sqlx::query(&format!("INSERT INTO refresh_tokens ({REFRESH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
        .bind(&t.id)
        .bind(&t.family_id)
        .bind(&t.user_id)
        .bind(&t.token_hash)
        .bind(micros(t.created_at))
        .bind(micros(t.expires_at))
        .bind(t.used_at.map(micros))
        .bind(t.revoked_at.map(micros))
        .execute(conn)
        .await
        .map_err(user_gone_or)?;
    Ok(())
}

/// A write for a user deleted meanwhile: the credential that asked is no longer any good.
fn user_gone_or(err: sqlx::Error) -> crate::domain::error::DomainError {
    match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            crate::domain::error::DomainError::unauthenticated("the user no longer exists")
        }
        _ => db_error(err),
    }
}

#[async_trait]
impl CredentialRepo for SqlStore {
    async fn insert_refresh_token(&self, token: &RefreshToken) -> DomainResult<()> {
        let mut conn = self.write.acquire().await.map_err(db_error)?;
        insert_refresh(&mut conn, token).await
    }

    async fn find_refresh_token(&self, token_hash: &str) -> DomainResult<Option<RefreshToken>> {
        let row = sqlx::query(&format!("SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(&self.write)
            .await
            .map_err(db_error)?;
        row.as_ref().map(to_refresh).transpose()
    }

    async fn rotate_refresh_token(&self, old_id: &str, next: &RefreshToken, now: DateTime<Utc>) -> DomainResult<bool> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(micros(now))
        .bind(old_id)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if spent.rows_affected() != 1 {
            return Ok(false);
        }
        insert_refresh(&mut tx, next).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn revoke_family(&self, family_id: &str, now: DateTime<Utc>) -> DomainResult<()> {
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
            .bind(micros(now))
            .bind(family_id)
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        self.sessions.record(family_id, true);
        Ok(())
    }

    async fn is_family_revoked(&self, family_id: &str) -> DomainResult<bool> {
        if let Some(revoked) = self.sessions.known(family_id) {
            return Ok(revoked);
        }
        let row = sqlx::query("SELECT 1 FROM refresh_tokens WHERE family_id = $1 AND revoked_at IS NOT NULL LIMIT 1")
            .bind(family_id)
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        self.sessions.record(family_id, row.is_some());
        Ok(row.is_some())
    }

    async fn insert_api_key(&self, key: &ApiKey) -> DomainResult<()> {
        sqlx::query(&format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
            .bind(&key.id)
            .bind(&key.user_id)
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(&key.key_hash)
            .bind(scopes_to_string(&key.scopes))
            .bind(micros(key.created_at))
            .bind(key.revoked_at.map(micros))
            .execute(&self.write)
            .await
            .map_err(user_gone_or)?;
        Ok(())
    }

    async fn find_api_key(&self, key_hash: &str) -> DomainResult<Option<ApiKey>> {
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"))
            .bind(key_hash)
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        row.as_ref().map(to_api_key).transpose()
    }

    async fn find_api_key_by_id(&self, key_id: &str) -> DomainResult<Option<ApiKey>> {
        if key_id.contains('\0') {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(key_id)
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        row.as_ref().map(to_api_key).transpose()
    }

    async fn list_api_keys(&self, user_id: &str) -> DomainResult<Vec<ApiKey>> {
        let rows = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY id DESC"))
            .bind(user_id)
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(to_api_key).collect()
    }

    async fn revoke_api_key(&self, user_id: &str, key_id: &str, now: DateTime<Utc>) -> DomainResult<bool> {
        if key_id.contains('\0') {
            return Ok(false);
        }
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
                .bind(micros(now))
                .bind(key_id)
                .bind(user_id)
                .execute(&self.write)
                .await
                .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }
}
