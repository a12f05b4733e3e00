//! `PostRepo` on SQL: posts, their tag index, and filtered keyset lists.

use async_trait::async_trait;

use super::sql::{Arg, Conn, Row};
use super::users::missing_or_stale;
use super::{Cached, SqlStore, append_change, micros, opt_time, time};
use crate::domain::audit::AuditRecord;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::events::NewEvent;
use crate::domain::page::PageRequest;
use crate::domain::ports::{PostRepo, PostVisibility};
use crate::domain::post::{Post, PostFilter, PostStatus};

macro_rules! columns {
    () => {
        "id, author_id, title, body, status, tags, published_at, created_at, updated_at, version"
    };
}
pub(super) const COLUMNS: &str = columns!();
const BY_ID: &str = concat!("SELECT ", columns!(), " FROM posts WHERE id = $1");

pub(super) fn to_post(row: &dyn Row) -> DomainResult<Post> {
    let status = row.text(4)?;
    let tags: Vec<String> = serde_json::from_str(&row.text(5)?).map_err(DomainError::internal)?;
    Ok(Post {
        id: row.text(0)?,
        author_id: row.text(1)?,
        title: row.text(2)?,
        body: row.text(3)?,
        status: PostStatus::parse(&status)
            .map_err(|e| DomainError::internal(anyhow::anyhow!("stored status {status:?}: {e}")))?,
        tags,
        published_at: opt_time(row, 6)?,
        created_at: time(row, 7)?,
        updated_at: time(row, 8)?,
        version: row.int(9)?,
    })
}

fn tags_json(post: &Post) -> String {
    serde_json::to_string(&post.tags).unwrap_or_else(|_| "[]".into())
}

async fn write_tags(c: &mut Conn<'_>, post: &Post, replace: bool) -> DomainResult<()> {
    if replace {
        c.exec("DELETE FROM post_tags WHERE post_id = $1", &[Arg::from(&post.id)]).await?;
    }
    for tag in &post.tags {
        c.exec("INSERT INTO post_tags (post_id, tag) VALUES ($1, $2)", &[Arg::from(&post.id), Arg::from(tag)]).await?;
    }
    Ok(())
}

#[async_trait]
impl PostRepo for SqlStore {
    async fn insert(&self, post: &Post, event: &NewEvent, audit: &AuditRecord) -> DomainResult<()> {
        self.write_events((post.clone(), event.clone(), audit.clone()), |(p, event, audit), c| {
            Box::pin(async move {
                c.exec(
                    "INSERT INTO posts (id, author_id, title, body, status, tags, published_at, created_at, updated_at, version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[
                        Arg::from(&p.id),
                        Arg::from(&p.author_id),
                        Arg::from(&p.title),
                        Arg::from(&p.body),
                        Arg::Text(p.status.as_str()),
                        Arg::Text(&tags_json(p)),
                        Arg::OptInt(p.published_at.map(micros)),
                        Arg::Int(micros(p.created_at)),
                        Arg::Int(micros(p.updated_at)),
                        Arg::Int(p.version),
                    ],
                )
                .await
                .map_err(|e| e.user_gone_or("the author no longer exists"))?;
                write_tags(c, p, false).await?;
                append_change(c, event, audit).await
            })
        })
        .await?;
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
        let post = self.db.fetch_opt(BY_ID, &[Arg::Text(id)], to_post).await?;
        if let Some(p) = &post {
            self.posts_cache.offer(p);
        }
        Ok(post)
    }

    async fn update(
        &self,
        post: &Post,
        expected_version: i64,
        event: &NewEvent,
        audit: &AuditRecord,
    ) -> DomainResult<()> {
        let written = self
            .write_events((post.clone(), expected_version, event.clone(), audit.clone()), |(p, expected_version, event, audit), c| {
                Box::pin(async move {
                    let done = c
                        .exec(
                            "UPDATE posts SET title = $1, body = $2, status = $3, tags = $4, published_at = $5, updated_at = $6, \
                             version = $7 WHERE id = $8 AND version = $9",
                            &[
                                Arg::from(&p.title),
                                Arg::from(&p.body),
                                Arg::Text(p.status.as_str()),
                                Arg::Text(&tags_json(p)),
                                Arg::OptInt(p.published_at.map(micros)),
                                Arg::Int(micros(p.updated_at)),
                                Arg::Int(p.version),
                                Arg::from(&p.id),
                                Arg::Int(*expected_version),
                            ],
                        )
                        .await?;
                    if done == 0 {
                        return Err(missing_or_stale(c, "posts", &p.id).await);
                    }
                    write_tags(c, p, true).await?;
                    append_change(c, event, audit).await
                })
            })
            .await;
        match written {
            Ok(()) => self.posts_cache.written(post),
            Err(_) => self.posts_cache.forget(&post.id),
        }
        written
    }

    async fn delete(&self, post: &Post, event: &NewEvent, audit: &AuditRecord) -> DomainResult<()> {
        self.write_events((post.id.clone(), event.clone(), audit.clone()), |(id, event, audit), c| {
            Box::pin(async move {
                c.exec("DELETE FROM post_tags WHERE post_id = $1", &[Arg::from(id)]).await?;
                if c.exec("DELETE FROM posts WHERE id = $1", &[Arg::from(id)]).await? == 0 {
                    return Err(DomainError::not_found("post"));
                }
                append_change(c, event, audit).await
            })
        })
        .await?;
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
            q.push(" AND author_id = $?", author);
        }
        let sql = format!("SELECT {COLUMNS} FROM posts WHERE {} ORDER BY id DESC LIMIT {}", q.sql, page.limit + 1);
        q.fetch(self, &sql).await
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
            q.push(if i == 0 { "$?" } else { ", $?" }, author);
        }
        q.sql.push(')');
        // Top-N per author: window functions exist in SQLite >= 3.25 and PostgreSQL alike.
        let sql = format!(
            "SELECT {COLUMNS} FROM (SELECT {COLUMNS}, ROW_NUMBER() OVER (PARTITION BY author_id ORDER BY id DESC) AS rn \
             FROM posts WHERE {}) ranked WHERE rn <= {} ORDER BY author_id, id DESC",
            q.sql,
            page.limit + 1
        );
        q.fetch(self, &sql).await
    }
}

/// The WHERE clause shared by post lists: visibility, status, tag and keyset position, with
/// its `$n` arguments (the author condition differs per list and is pushed by the caller).
struct Conditions<'a> {
    sql: String,
    args: Vec<Arg<'a>>,
}

impl<'a> Conditions<'a> {
    fn new(visibility: &'a PostVisibility, filter: &'a PostFilter, page: &'a PageRequest) -> Self {
        let mut q = Conditions { sql: "1 = 1".into(), args: Vec::new() };
        match visibility {
            PostVisibility::All => {}
            PostVisibility::PublishedOr { author_id: Some(me) } => {
                q.push(" AND (status = 'published' OR author_id = $?)", me)
            }
            PostVisibility::PublishedOr { author_id: None } => q.sql.push_str(" AND status = 'published'"),
        }
        if let Some(status) = filter.status {
            q.push(" AND status = $?", status.as_str());
        }
        if let Some(tag) = &filter.tag {
            q.push(" AND id IN (SELECT post_id FROM post_tags WHERE tag = $?)", tag);
        }
        if let Some(after) = &page.after {
            q.push(" AND id < $?", after);
        }
        q
    }

    /// Appends `clause` with its `$?` numbered as the next argument.
    fn push(&mut self, clause: &str, value: &'a str) {
        self.args.push(Arg::Text(value));
        self.sql.push_str(&clause.replace("$?", &format!("${}", self.args.len())));
    }

    async fn fetch(&self, store: &SqlStore, sql: &str) -> DomainResult<Vec<Post>> {
        store.db.fetch_all(sql, &self.args, to_post).await
    }
}
