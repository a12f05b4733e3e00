//! `UserRepo` on SQL: users, and the cascade that deletes a user with their posts.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Cached, SqlStore, db_error, micros, text, time, unique_or};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::events::{EventType, NewEvent};
use crate::domain::page::PageRequest;
use crate::domain::ports::UserRepo;
use crate::domain::user::{Role, User};

const COLUMNS: &str = "id, email, name, role, password_hash, created_at, updated_at, version";

fn to_user(row: &AnyRow) -> DomainResult<User> {
    let role = text(row, "role")?;
    Ok(User {
        id: text(row, "id")?,
        email: text(row, "email")?,
        name: text(row, "name")?,
        role: Role::parse(&role).map_err(|e| DomainError::internal(anyhow::anyhow!("stored role {role:?}: {e}")))?,
        password_hash: text(row, "password_hash")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        version: row.try_get("version").map_err(db_error)?,
    })
}

const EMAIL_TAKEN: &str = "a user with this email already exists";

#[async_trait]
impl UserRepo for SqlStore {
    async fn insert(&self, user: &User, event: &NewEvent) -> DomainResult<()> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO users (id, email, email_normalized, name, role, password_hash, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(user.email.to_lowercase())
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(micros(user.created_at))
        .bind(micros(user.updated_at))
        .bind(user.version)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_or(e, "email", EMAIL_TAKEN))?;
        self.append_event(&mut tx, event).await?;
        self.commit_events(tx).await?;
        self.users_cache.written(user);
        Ok(())
    }

    async fn get(&self, id: &str) -> DomainResult<Option<User>> {
        if id.contains('\0') {
            return Ok(None);
        }
        match self.users_cache.get(id) {
            Cached::Hit(user) => return Ok(Some(user)),
            Cached::Deleted => return Ok(None),
            Cached::Miss => {}
        }
        self.get_current(id).await
    }

    async fn get_current(&self, id: &str) -> DomainResult<Option<User>> {
        if id.contains('\0') {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        let user = row.as_ref().map(to_user).transpose()?;
        if let Some(u) = &user {
            self.users_cache.offer(u);
        }
        Ok(user)
    }

    async fn get_by_email(&self, email_normalized: &str) -> DomainResult<Option<User>> {
        if email_normalized.contains('\0') {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE email_normalized = $1"))
            .bind(email_normalized)
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        row.as_ref().map(to_user).transpose()
    }

    async fn update(&self, user: &User, expected_version: i64, event: &NewEvent) -> DomainResult<()> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let done = sqlx::query(
            "UPDATE users SET email = $1, email_normalized = $2, name = $3, role = $4, updated_at = $5, version = $6 \
             WHERE id = $7 AND version = $8",
        )
        .bind(&user.email)
        .bind(user.email.to_lowercase())
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(micros(user.updated_at))
        .bind(user.version)
        .bind(&user.id)
        .bind(expected_version)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_or(e, "email", EMAIL_TAKEN))?;
        if done.rows_affected() == 0 {
            self.users_cache.forget(&user.id);
            return Err(missing_or_stale(&mut tx, "users", &user.id).await);
        }
        self.append_event(&mut tx, event).await?;
        self.commit_events(tx).await?;
        self.users_cache.written(user);
        Ok(())
    }

    async fn delete(&self, user: &User, event: &NewEvent) -> DomainResult<()> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let rows =
            sqlx::query(&format!("SELECT {} FROM posts WHERE author_id = $1 ORDER BY id", super::posts::COLUMNS))
                .bind(&user.id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
        let mut deleted_posts = Vec::with_capacity(rows.len());
        for row in &rows {
            let post = super::posts::to_post(row)?;
            deleted_posts.push(post.id.clone());
            self.append_event(&mut tx, &NewEvent::post(EventType::PostDeleted, &post, event.occurred_at)).await?;
        }
        for table in [
            "post_tags WHERE post_id IN (SELECT id FROM posts WHERE author_id = $1)",
            "posts WHERE author_id = $1",
            "api_keys WHERE user_id = $1",
            "refresh_tokens WHERE user_id = $1",
        ] {
            sqlx::query(&format!("DELETE FROM {table}")).bind(&user.id).execute(&mut *tx).await.map_err(db_error)?;
        }
        let done =
            sqlx::query("DELETE FROM users WHERE id = $1").bind(&user.id).execute(&mut *tx).await.map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(DomainError::not_found("user"));
        }
        self.append_event(&mut tx, event).await?;
        self.commit_events(tx).await?;
        self.users_cache.deleted(&user.id);
        for id in &deleted_posts {
            self.posts_cache.deleted(id);
        }
        Ok(())
    }

    async fn list(&self, page: &PageRequest) -> DomainResult<Vec<User>> {
        let fetch = i64::from(page.limit) + 1;
        let rows = match &page.after {
            Some(after) => {
                sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id < $1 ORDER BY id DESC LIMIT $2"))
                    .bind(after)
                    .bind(fetch)
                    .fetch_all(&self.read)
                    .await
            }
            None => {
                sqlx::query(&format!("SELECT {COLUMNS} FROM users ORDER BY id DESC LIMIT $1"))
                    .bind(fetch)
                    .fetch_all(&self.read)
                    .await
            }
        }
        .map_err(db_error)?;
        rows.iter().map(to_user).collect()
    }

    async fn get_many(&self, ids: &[String]) -> DomainResult<Vec<User>> {
        let ids: Vec<&String> = ids.iter().filter(|id| !id.contains('\0')).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id IN ({})", placeholders.join(", "));
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.read).await.map_err(db_error)?;
        rows.iter().map(to_user).collect()
    }
}

/// After an update touched no row: NOT_FOUND if the row is gone, else a version mismatch.
pub(super) async fn missing_or_stale(tx: &mut sqlx::AnyConnection, table: &str, id: &str) -> DomainError {
    let exists = sqlx::query(&format!("SELECT 1 FROM {table} WHERE id = $1")).bind(id).fetch_optional(&mut *tx).await;
    match exists {
        Ok(Some(_)) => DomainError::version_mismatch(),
        Ok(None) => DomainError::not_found(table.trim_end_matches('s')),
        Err(e) => db_error(e),
    }
}
