//! SQL storage for SQLite and PostgreSQL behind the core's ports.
//!
//! Repositories are written once against `sql::Conn`; both dialects share every query (ids are
//! text, timestamps integer microseconds, `$n` placeholders numbered in order of first use).
//! SQLite is native (`sqlite`: reads on the calling thread, group-committed writes);
//! PostgreSQL goes through sqlx (`postgres`). Driver errors become `DomainError`s here and
//! never travel further.

mod audit;
mod cache;
mod credentials;
mod events;
mod idempotency;
mod jobs;
mod postgres;
mod posts;
mod sql;
mod sqlite;
mod users;
pub mod wakeups;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::events::{NewEvent, StoredEvent, Subject};
use crate::domain::post::Post;
use crate::domain::user::User;
pub(crate) use cache::Cached;
use cache::VersionedCache;
use sql::{Arg, Conn, JobFuture, Row};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("schema/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("schema/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Where statements run.
#[derive(Clone)]
enum Db {
    Sqlite(Arc<sqlite::Sqlite>),
    Postgres(sqlx::PgPool),
}

impl Db {
    /// Runs `work` on `data` in a transaction (SQLite: part of a group commit), answered after
    /// the commit. `work` may run more than once (SQLite runs a batch again when one of its
    /// jobs failed half-way), so its only effects are its statements.
    async fn write<D, T, F>(&self, data: D, work: F) -> DomainResult<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
        F: for<'a, 'b> Fn(&'a D, &'a mut Conn<'b>) -> JobFuture<'a, T> + Send + 'static,
    {
        match self {
            Db::Sqlite(s) => s.write(data, work).await,
            Db::Postgres(pool) => postgres::write(pool, data, work).await,
        }
    }

    /// Runs read statements on a read connection (SQLite: on this thread).
    async fn read<T>(&self, work: impl for<'a, 'b> FnOnce(&'a mut Conn<'b>) -> JobFuture<'a, T>) -> DomainResult<T> {
        match self {
            Db::Sqlite(s) => s.read_job(work),
            Db::Postgres(pool) => postgres::read(pool, work).await,
        }
    }

    /// The first row of a query, mapped.
    async fn fetch_opt<T: Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Row) -> DomainResult<T> + Sync,
    ) -> DomainResult<Option<T>> {
        match self {
            Db::Sqlite(s) => s.read(|c| sqlite::query(c, sql, args, 1, &map).map(|mut v| v.pop())),
            Db::Postgres(pool) => {
                let mut conn = pool.acquire().await.map_err(postgres::classify)?;
                postgres::query_opt(&mut conn, sql, args, &map).await
            }
        }
    }

    /// Every row of a query, mapped.
    async fn fetch_all<T: Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Row) -> DomainResult<T> + Sync,
    ) -> DomainResult<Vec<T>> {
        match self {
            Db::Sqlite(s) => s.read(|c| sqlite::query(c, sql, args, usize::MAX, &map)),
            Db::Postgres(pool) => {
                let mut conn = pool.acquire().await.map_err(postgres::classify)?;
                postgres::query_all(&mut conn, sql, args, &map).await
            }
        }
    }
}

/// The store: statements, the caches of single users and posts, and session states.
#[derive(Clone)]
pub struct SqlStore {
    dialect: Dialect,
    db: Db,
    /// Signalled after every commit that appended events, so the bus wakes at once.
    appended: Arc<tokio::sync::Notify>,
    /// Signalled after a commit that queued jobs, so this instance's workers wake at once.
    jobs_enqueued: Arc<tokio::sync::Notify>,
    posts_cache: Arc<VersionedCache<Post>>,
    users_cache: Arc<VersionedCache<User>>,
    sessions: Arc<credentials::SessionStates>,
}

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// PostgreSQL's pool size; SQLite's idle read connections.
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// How long a cached user or post may be served without news of it (0 turns caching off).
    pub cache_ttl: Duration,
    /// Memory budget of each cache, in bytes.
    pub cache_bytes: usize,
}

impl SqlStore {
    /// Connects, creating the SQLite file and its directory if needed, and applies migrations.
    pub async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let (dialect, db) = if url.starts_with("sqlite:") {
            let path = sqlite_path(url)?;
            let idle = settings.max_connections.max(2) as usize;
            let store = tokio::task::spawn_blocking(move || sqlite::Sqlite::open(&path, idle, &SQLITE_MIGRATIONS))
                .await
                .context("opening the SQLite database")??;
            (Dialect::Sqlite, Db::Sqlite(store))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = postgres::connect(url, settings).await?;
            POSTGRES_MIGRATIONS.run(&pool).await.context("applying migrations")?;
            (Dialect::Postgres, Db::Postgres(pool))
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite: or postgres:");
        };
        let budget = if settings.cache_ttl.is_zero() { 0 } else { settings.cache_bytes };
        Ok(SqlStore {
            dialect,
            db,
            appended: Default::default(),
            jobs_enqueued: Default::default(),
            posts_cache: Arc::new(VersionedCache::new(settings.cache_ttl, budget)),
            users_cache: Arc::new(VersionedCache::new(settings.cache_ttl, budget)),
            sessions: Arc::new(credentials::SessionStates::new(settings.cache_ttl)),
        })
    }

    /// Applies an event from the shared log (possibly written by another instance) to the caches.
    pub fn observe(&self, event: &StoredEvent) {
        match &event.subject {
            Subject::Post(p) if event.event_type.is_deletion() => self.posts_cache.deleted(&p.id),
            Subject::Post(p) => self.posts_cache.written(p),
            Subject::User(u) if event.event_type.is_deletion() => self.users_cache.deleted(&u.id),
            // Event snapshots leave out the password hash: only drop older copies.
            Subject::User(u) => self.users_cache.outdated(&u.id, u.version),
        }
    }

    /// Notified after each commit that appended events (in this process).
    pub fn appended_signal(&self) -> Arc<tokio::sync::Notify> {
        self.appended.clone()
    }

    /// Notified after each commit that may have queued jobs (in this process).
    pub fn jobs_signal(&self) -> Arc<tokio::sync::Notify> {
        self.jobs_enqueued.clone()
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes the store: SQLite answers queued writes and closes its files; PostgreSQL's pool
    /// waits for checked-out connections to come back.
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(s) => {
                let s = s.clone();
                let _ = tokio::task::spawn_blocking(move || s.close()).await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }

    /// Runs a write that appended events, then wakes the event bus (and the job queue when the
    /// write queued a webhook fan-out).
    async fn write_events<D, T, F>(&self, data: D, work: F) -> DomainResult<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
        F: for<'a, 'b> Fn(&'a D, &'a mut Conn<'b>) -> JobFuture<'a, T> + Send + 'static,
    {
        let queued = jobs::fanouts_queued();
        let out = self.db.write(data, work).await?;
        self.appended.notify_one();
        if jobs::fanouts_queued() != queued {
            self.jobs_enqueued.notify_one();
        }
        Ok(out)
    }
}

macro_rules! insert_event {
    () => {
        "INSERT INTO events (event_type, topic, subject_id, occurred_at, payload, trace_id) \
         VALUES ($1, $2, $3, $4, $5, $6)"
    };
}
const INSERT_EVENT: &str = insert_event!();

/// Appends an event inside the caller's transaction. On PostgreSQL a transaction-scoped
/// advisory lock makes ids commit in order, so readers never see a later id before an earlier
/// one, and a NOTIFY (sent at commit) wakes the other instances' tailers. (SQLite has one
/// writer, so ids commit in order there anyway.)
async fn append_event(c: &mut Conn<'_>, event: &NewEvent) -> DomainResult<()> {
    if matches!(c, Conn::Postgres(_)) {
        c.exec("SELECT pg_advisory_xact_lock(7413), pg_notify($1, '')", &[Arg::Text(wakeups::CHANNEL)]).await?;
    }
    let payload = serde_json::to_string(&event.subject).map_err(DomainError::internal)?;
    let id = c
        .insert_id(
            INSERT_EVENT,
            concat!(insert_event!(), " RETURNING id"),
            &[
                Arg::Text(event.event_type.as_str()),
                Arg::Text(&event.topic()),
                Arg::Text(event.subject.id()),
                Arg::Int(micros(event.occurred_at)),
                Arg::Text(&payload),
                Arg::OptText(event.trace_id.as_deref()),
            ],
        )
        .await?;
    // The outbox: the webhook fan-out job commits (or not) with the event itself, and carries
    // the event's trace id so its deliveries continue the same trace.
    jobs::enqueue_fanout(c, id, &event.subject.topics(), event.occurred_at, event.trace_id.as_deref()).await
}

/// Appends a change's event and its audit record inside the caller's transaction.
async fn append_change(
    c: &mut Conn<'_>,
    event: &NewEvent,
    audit: &crate::domain::audit::AuditRecord,
) -> DomainResult<()> {
    append_event(c, event).await?;
    audit::append_audit(c, audit).await
}

/// The file a `sqlite://path[?options]` URL names; None for any other URL, and for an empty
/// path or `:memory:` (no file).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let file = path.split('?').next().unwrap_or_default();
    (!file.is_empty() && file != ":memory:").then(|| std::path::PathBuf::from(file))
}

/// The file of a `sqlite://path[?options]` URL, its directory created if needed.
fn sqlite_path(url: &str) -> anyhow::Result<std::path::PathBuf> {
    let Some(file) = sqlite_file(url) else {
        anyhow::bail!("an in-memory SQLite database cannot be shared between connections; give a file path");
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(file)
}

/// Microseconds since the epoch, the storage form of every timestamp.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(v: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(v).single().unwrap_or_default()
}

fn time(row: &dyn Row, i: usize) -> DomainResult<DateTime<Utc>> {
    Ok(from_micros(row.int(i)?))
}

fn opt_time(row: &dyn Row, i: usize) -> DomainResult<Option<DateTime<Utc>>> {
    Ok(row.opt_int(i)?.map(from_micros))
}

/// Rows of a chunked purge: large deletes run as several small write jobs, so none holds the
/// writer for long.
const PURGE_CHUNK: i64 = 5000;

#[async_trait::async_trait]
impl crate::domain::ports::Health for SqlStore {
    async fn ping(&self) -> DomainResult<()> {
        self.db.fetch_opt("SELECT 1", &[], |_| Ok(())).await?;
        Ok(())
    }
}
