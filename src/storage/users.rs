//! `UserRepo` on SQL: users, and the cascade that deletes a user with their posts.

use async_trait::async_trait;

use super::sql::{Arg, Conn, Row};
use super::{Cached, SqlStore, append_change, append_event, micros, time};
use crate::domain::audit::AuditRecord;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::events::{EventType, NewEvent};
use crate::domain::page::PageRequest;
use crate::domain::ports::UserRepo;
use crate::domain::user::{Role, User};

macro_rules! columns {
    () => {
        "id, email, name, role, password_hash, created_at, updated_at, version"
    };
}
const COLUMNS: &str = columns!();
const BY_ID: &str = concat!("SELECT ", columns!(), " FROM users WHERE id = $1");
const BY_EMAIL: &str = concat!("SELECT ", columns!(), " FROM users WHERE email_normalized = $1");
const PAGE_AFTER: &str = concat!("SELECT ", columns!(), " FROM users WHERE id < $1 ORDER BY id DESC LIMIT $2");
const FIRST_PAGE: &str = concat!("SELECT ", columns!(), " FROM users ORDER BY id DESC LIMIT $1");

fn to_user(row: &dyn Row) -> DomainResult<User> {
    let role = row.text(3)?;
    Ok(User {
        id: row.text(0)?,
        email: row.text(1)?,
        name: row.text(2)?,
        role: Role::parse(&role).map_err(|e| DomainError::internal(anyhow::anyhow!("stored role {role:?}: {e}")))?,
        password_hash: row.text(4)?,
        created_at: time(row, 5)?,
        updated_at: time(row, 6)?,
        version: row.int(7)?,
    })
}

const EMAIL_TAKEN: &str = "a user with this email already exists";

#[async_trait]
impl UserRepo for SqlStore {
    async fn insert(&self, user: &User, event: &NewEvent, audit: &AuditRecord) -> DomainResult<()> {
        self.write_events((user.clone(), event.clone(), audit.clone()), move |(u, event, audit), c| {
            Box::pin(async move {
                c.exec(
                    "INSERT INTO users (id, email, email_normalized, name, role, password_hash, created_at, updated_at, version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[
                        Arg::from(&u.id),
                        Arg::from(&u.email),
                        Arg::Text(&u.email.to_lowercase()),
                        Arg::from(&u.name),
                        Arg::Text(u.role.as_str()),
                        Arg::from(&u.password_hash),
                        Arg::Int(micros(u.created_at)),
                        Arg::Int(micros(u.updated_at)),
                        Arg::Int(u.version),
                    ],
                )
                .await
                .map_err(|e| e.unique_or("email", EMAIL_TAKEN))?;
                append_change(c, event, audit).await
            })
        })
        .await?;
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
        let user = self.db.fetch_opt(BY_ID, &[Arg::Text(id)], to_user).await?;
        if let Some(u) = &user {
            self.users_cache.offer(u);
        }
        Ok(user)
    }

    async fn get_by_email(&self, email_normalized: &str) -> DomainResult<Option<User>> {
        if email_normalized.contains('\0') {
            return Ok(None);
        }
        self.db.fetch_opt(BY_EMAIL, &[Arg::Text(email_normalized)], to_user).await
    }

    async fn update(
        &self,
        user: &User,
        expected_version: i64,
        event: &NewEvent,
        audit: &AuditRecord,
    ) -> DomainResult<()> {
        let written = self
            .write_events((user.clone(), event.clone(), audit.clone()), move |(u, event, audit), c| {
                Box::pin(async move {
                    let done = c
                        .exec(
                            "UPDATE users SET email = $1, email_normalized = $2, name = $3, role = $4, updated_at = $5, version = $6 \
                             WHERE id = $7 AND version = $8",
                            &[
                                Arg::from(&u.email),
                                Arg::Text(&u.email.to_lowercase()),
                                Arg::from(&u.name),
                                Arg::Text(u.role.as_str()),
                                Arg::Int(micros(u.updated_at)),
                                Arg::Int(u.version),
                                Arg::from(&u.id),
                                Arg::Int(expected_version),
                            ],
                        )
                        .await
                        .map_err(|e| e.unique_or("email", EMAIL_TAKEN))?;
                    if done == 0 {
                        return Err(missing_or_stale(c, "users", &u.id).await);
                    }
                    append_change(c, event, audit).await
                })
            })
            .await;
        match written {
            Ok(()) => self.users_cache.written(user),
            Err(_) => self.users_cache.forget(&user.id),
        }
        written
    }

    async fn update_password(
        &self,
        user: &User,
        expected_version: i64,
        event: &NewEvent,
        audit: &AuditRecord,
    ) -> DomainResult<()> {
        let written = self
            .write_events((user.clone(), event.clone(), audit.clone()), move |(u, event, audit), c| {
                Box::pin(async move {
                    let done = c
                        .exec(
                            "UPDATE users SET password_hash = $1, updated_at = $2, version = $3 WHERE id = $4 AND version = $5",
                            &[
                                Arg::from(&u.password_hash),
                                Arg::Int(micros(u.updated_at)),
                                Arg::Int(u.version),
                                Arg::from(&u.id),
                                Arg::Int(expected_version),
                            ],
                        )
                        .await?;
                    if done == 0 {
                        return Err(missing_or_stale(c, "users", &u.id).await);
                    }
                    let families = c
                        .query_all(
                            "SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL",
                            &[Arg::from(&u.id)],
                            |row| row.text(0),
                        )
                        .await?;
                    c.exec(
                        "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                        &[Arg::Int(micros(u.updated_at)), Arg::from(&u.id)],
                    )
                    .await?;
                    append_change(c, event, audit).await?;
                    Ok(families)
                })
            })
            .await;
        match written {
            Ok(families) => {
                self.users_cache.written(user);
                for family in &families {
                    self.sessions.record(family, true);
                }
                Ok(())
            }
            Err(e) => {
                self.users_cache.forget(&user.id);
                Err(e)
            }
        }
    }

    async fn delete(&self, user: &User, event: &NewEvent, audit: &AuditRecord) -> DomainResult<()> {
        let deleted_posts = self
            .write_events((user.id.clone(), event.clone(), audit.clone()), move |(id, event, audit), c| {
                Box::pin(async move {
                    let sql = format!("SELECT {} FROM posts WHERE author_id = $1 ORDER BY id", super::posts::COLUMNS);
                    let posts = c.query_all(&sql, &[Arg::from(id)], super::posts::to_post).await?;
                    for post in &posts {
                        let cascade = NewEvent::post(EventType::PostDeleted, post, event.occurred_at)
                            .traced(event.trace_id.as_deref());
                        append_event(c, &cascade).await?;
                    }
                    for table in [
                        "post_tags WHERE post_id IN (SELECT id FROM posts WHERE author_id = $1)",
                        "posts WHERE author_id = $1",
                        "api_keys WHERE user_id = $1",
                        "refresh_tokens WHERE user_id = $1",
                    ] {
                        c.exec(&format!("DELETE FROM {table}"), &[Arg::from(id)]).await?;
                    }
                    if c.exec("DELETE FROM users WHERE id = $1", &[Arg::from(id)]).await? == 0 {
                        return Err(DomainError::not_found("user"));
                    }
                    append_change(c, event, audit).await?;
                    Ok(posts.into_iter().map(|p| p.id).collect::<Vec<_>>())
                })
            })
            .await?;
        self.users_cache.deleted(&user.id);
        for id in &deleted_posts {
            self.posts_cache.deleted(id);
        }
        Ok(())
    }

    async fn list(&self, page: &PageRequest) -> DomainResult<Vec<User>> {
        let fetch = i64::from(page.limit) + 1;
        match &page.after {
            Some(after) => self.db.fetch_all(PAGE_AFTER, &[Arg::from(after), Arg::Int(fetch)], to_user).await,
            None => self.db.fetch_all(FIRST_PAGE, &[Arg::Int(fetch)], to_user).await,
        }
    }

    async fn get_many(&self, ids: &[String]) -> DomainResult<Vec<User>> {
        let mut found = Vec::with_capacity(ids.len());
        let mut missing: Vec<&str> = Vec::new();
        for id in ids.iter().filter(|id| !id.contains('\0')) {
            match self.users_cache.get(id) {
                Cached::Hit(user) => found.push(user),
                Cached::Deleted => {}
                Cached::Miss => missing.push(id),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id IN ({})", super::sql::placeholders(missing.len()));
        let args: Vec<Arg<'_>> = missing.iter().map(|id| Arg::Text(id)).collect();
        for user in self.db.fetch_all(&sql, &args, to_user).await? {
            self.users_cache.offer(&user);
            found.push(user);
        }
        Ok(found)
    }
}

/// After an update touched no row: NOT_FOUND if the row is gone, else a version mismatch.
pub(super) async fn missing_or_stale(c: &mut Conn<'_>, table: &str, id: &str) -> DomainError {
    let exists = c.query_opt(&format!("SELECT 1 FROM {table} WHERE id = $1"), &[Arg::Text(id)], |_| Ok(())).await;
    match exists {
        Ok(Some(())) => DomainError::version_mismatch(),
        Ok(None) => DomainError::not_found(table.trim_end_matches('s')),
        Err(e) => e,
    }
}
