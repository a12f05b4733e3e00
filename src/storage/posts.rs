//! `PostRepo` on SQL: posts, their tag index, and filtered keyset lists.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::users::missing_or_stale;
use super::{Cached, SqlStore, db_error, micros, opt_time, text, time};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::events::NewEvent;
use crate::domain::page::PageRequest;
use crate::domain::ports::{PostRepo, PostVisibility};
use crate::domain::post::{Post, PostFilter, PostStatus};

pub(super) const COLUMNS: &str =
    "id, author_id, title, body, status, tags, published_at, created_at, updated_at, version";

pub(super) fn to_post(row: &AnyRow) -> DomainResult<Post> {
    let status = text(row, "status")?;
    let tags: Vec<String> = serde_json::from_str(&text(row, "tags")?).map_err(DomainError::internal)?;
    Ok(Post {
        id: text(row, "id")?,
        author_id: text(row, "author_id")?,
        title: text(row, "title")?,
        body: text(row, "body")?,
        status: PostStatus::parse(&status)
            .map_err(|e| DomainError::internal(anyhow::anyhow!("stored status {status:?}: {e}")))?,
        tags,
        published_at: opt_time(row, "published_at")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        version: row.try_get("version").map_err(db_error)?,
    })
}

fn tags_json(post: &Post) -> String {
    serde_json::to_string(&post.tags).unwrap_or_else(|_| "[]".into())
}

async fn write_tags(tx: &mut sqlx::AnyConnection, post: &Post) -> DomainResult<()> {
    sqlx::query("DELETE FROM post_tags WHERE post_id = $1").bind(&post.id).execute(&mut *tx).await.map_err(db_error)?;
    for tag in &post.tags {
        sqlx::query("INSERT INTO post_tags (post_id, tag) VALUES ($1, $2)")
            .bind(&post.id)
            .bind(tag)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

#[async_trait]
impl PostRepo for SqlStore {
    async fn insert(&self, post: &Post, event: &NewEvent) -> DomainResult<()> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO posts (id, author_id, title, body, status, tags, published_at, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&post.id)
        .bind(&post.author_id)
        .bind(&post.title)
        .bind(&post.body)
        .bind(post.status.as_str())
        .bind(tags_json(post))
        .bind(post.published_at.map(micros))
        .bind(micros(post.created_at))
        .bind(micros(post.updated_at))
        .bind(post.version)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => DomainError::unauthenticated("the author no longer exists"),
            _ => db_error(e),
        })?;
        if !post.tags.is_empty() {
            write_tags(&mut tx, post).await?;
        }
        self.append_event(&mut tx, event).await?;
        self.commit_events(tx).await?;
        self.posts_cache.written(post);
        Ok(())
    }

    async fn get(&self, id: &str) -> DomainResult<Option<Post>> {
        if id.contains('\0') {
            return Ok(None);
        }
        match self.posts_cache.get(id) {
            Cached::Hit(post) => return Ok(Some(post)),
            Cached::Deleted => return Ok(None),
            Cached::Miss => {}
        }
        self.get_current(id).await
    }

    async fn get_current(&self, id: &str) -> DomainResult<Option<Post>> {
        if id.contains('\0') {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM posts WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        let post = row.as_ref().map(to_post).transpose()?;
        if let Some(p) = &post {
            self.posts_cache.offer(p);
        }
        Ok(post)
    }

    async fn update(&self, post: &Post, expected_version: i64, event: &NewEvent) -> DomainResult<()> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let done = sqlx::query(
            "UPDATE posts SET title = $1, body = $2, status = $3, tags = $4, published_at = $5, updated_at = $6, version = $7 \
             WHERE id = $8 AND version = $9",
        )
        .bind(&post.title)
        .bind(&post.body)
        .bind(post.status.as_str())
        .bind(tags_json(post))
        .bind(post.published_at.map(micros))
        .bind(micros(post.updated_at))
        .bind(post.version)
        .bind(&post.id)
        .bind(expected_version)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 0 {
            self.posts_cache.forget(&post.id);
            return Err(missing_or_stale(&mut tx, "posts", &post.id).await);
        }
        write_tags(&mut tx, post).await?;
        self.append_event(&mut tx, event).await?;
        self.commit_events(tx).await?;
        self.posts_cache.written(post);
        Ok(())
    }

    async fn delete(&self, post: &Post, event: &NewEvent) -> DomainResult<()> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        sqlx::query("DELETE FROM post_tags WHERE post_id = $1")
            .bind(&post.id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let done =
            sqlx::query("DELETE FROM posts WHERE id = $1").bind(&post.id).execute(&mut *tx).await.map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(DomainError::not_found("post"));
        }
        self.append_event(&mut tx, event).await?;
        self.commit_events(tx).await?;
        self.posts_cache.deleted(&post.id);
        Ok(())
    }

    async fn list(
        &self,
        filter: &PostFilter,
        visibility: &PostVisibility,
        page: &PageRequest,
    ) -> DomainResult<Vec<Post>> {
        let mut q = Conditions::new(visibility, filter, page);
        if let Some(author) = &filter.author_id {
            q.push(" AND author_id = $?", author.clone());
        }
        let sql = format!("SELECT {COLUMNS} FROM posts WHERE {} ORDER BY id DESC LIMIT {}", q.sql, page.limit + 1);
        q.fetch(&self.read, &sql).await
    }

    async fn list_by_authors(
        &self,
        authors: &[String],
        filter: &PostFilter,
        visibility: &PostVisibility,
        page: &PageRequest,
    ) -> DomainResult<Vec<Post>> {
        if authors.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Conditions::new(visibility, filter, page);
        q.sql.push_str(" AND author_id IN (");
        for (i, author) in authors.iter().enumerate() {
            q.push(if i == 0 { "$?" } else { ", $?" }, author.clone());
        }
        q.sql.push(')');
        // Top-N per author: window functions exist in SQLite >= 3.25 and PostgreSQL alike.
        let sql = format!(
            "SELECT {COLUMNS} FROM (SELECT {COLUMNS}, ROW_NUMBER() OVER (PARTITION BY author_id ORDER BY id DESC) AS rn \
             FROM posts WHERE {}) ranked WHERE rn <= {} ORDER BY author_id, id DESC",
            q.sql,
            page.limit + 1
        );
        q.fetch(&self.read, &sql).await
    }
}

/// The WHERE clause shared by post lists: visibility, status, tag and keyset position, with
/// its `$n` arguments (the author condition differs per list and is pushed by the caller).
struct Conditions {
    sql: String,
    args: Vec<String>,
}

impl Conditions {
    fn new(visibility: &PostVisibility, filter: &PostFilter, page: &PageRequest) -> Self {
        let mut q = Conditions { sql: "1 = 1".into(), args: Vec::new() };
        match visibility {
            PostVisibility::All => {}
            PostVisibility::PublishedOr { author_id: Some(me) } => {
                q.push(" AND (status = 'published' OR author_id = $?)", me.clone())
            }
            PostVisibility::PublishedOr { author_id: None } => q.sql.push_str(" AND status = 'published'"),
        }
        if let Some(status) = filter.status {
            q.push(" AND status = $?", status.as_str().to_string());
        }
        if let Some(tag) = &filter.tag {
            q.push(" AND id IN (SELECT post_id FROM post_tags WHERE tag = $?)", tag.clone());
        }
        if let Some(after) = &page.after {
            q.push(" AND id < $?", after.clone());
        }
        q
    }

    /// Appends `clause` with its `$?` numbered as the next argument.
    fn push(&mut self, clause: &str, value: String) {
        self.args.push(value);
        self.sql.push_str(&clause.replace("$?", &format!("${}", self.args.len())));
    }

    async fn fetch(&self, pool: &sqlx::AnyPool, sql: &str) -> DomainResult<Vec<Post>> {
        let mut query = sqlx::query(sql);
        for value in &self.args {
            query = query.bind(value);
        }
        let rows = query.fetch_all(pool).await.map_err(db_error)?;
        rows.iter().map(to_post).collect()
    }
}
