//! SQL storage for SQLite and PostgreSQL behind the core's ports, over sqlx's `Any` driver.
//!
//! Both dialects share every query (ids are text, timestamps integer microseconds, `$n`
//! placeholders in ascending order); only the migrations and the event-log lock differ.
//! sqlx errors become `DomainError`s here and never travel further.

mod cache;
mod credentials;
mod events;
mod idempotency;
mod posts;
mod users;
pub mod wakeups;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::domain::error::{DomainError, DomainResult, ErrorCode};
use crate::domain::events::{NewEvent, StoredEvent, Subject};
use crate::domain::post::Post;
use crate::domain::user::User;
pub(crate) use cache::Cached;
use cache::VersionedCache;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("schema/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("schema/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// The store: a read pool and a write pool (one connection on SQLite, which has one writer).
#[derive(Clone)]
pub struct SqlStore {
    dialect: Dialect,
    read: AnyPool,
    write: AnyPool,
    /// Signalled after every commit that appended events, so the bus wakes at once.
    appended: std::sync::Arc<tokio::sync::Notify>,
    posts_cache: std::sync::Arc<VersionedCache<Post>>,
    users_cache: std::sync::Arc<VersionedCache<User>>,
    sessions: std::sync::Arc<credentials::SessionStates>,
}

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolSettings {
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
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite: or postgres:");
        };
        let store = match dialect {
            Dialect::Sqlite => {
                let url = prepare_sqlite_url(url)?;
                let write = sqlite_pool(&url, 1, settings).await?;
                let store = SqlStore::new(dialect, write.clone(), write, settings);
                store.migrate().await?;
                let read = sqlite_pool(&url, settings.max_connections.max(2), settings).await?;
                SqlStore { read, ..store }
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(settings.max_connections)
                    .acquire_timeout(settings.acquire_timeout)
                    .connect(url)
                    .await
                    .context("connecting to PostgreSQL")?;
                let store = SqlStore::new(dialect, pool.clone(), pool, settings);
                store.migrate().await?;
                store
            }
        };
        Ok(store)
    }

    fn new(dialect: Dialect, read: AnyPool, write: AnyPool, settings: &PoolSettings) -> Self {
        let budget = if settings.cache_ttl.is_zero() { 0 } else { settings.cache_bytes };
        SqlStore {
            dialect,
            read,
            write,
            appended: Default::default(),
            posts_cache: std::sync::Arc::new(VersionedCache::new(settings.cache_ttl, budget)),
            users_cache: std::sync::Arc::new(VersionedCache::new(settings.cache_ttl, budget)),
            sessions: std::sync::Arc::new(credentials::SessionStates::new(settings.cache_ttl)),
        }
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

    async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.write).await.context("applying migrations")
    }

    /// Notified after each commit that appended events (in this process).
    pub fn appended_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.appended.clone()
    }

    /// Commits a transaction that appended events and wakes the event bus.
    async fn commit_events(&self, tx: sqlx::Transaction<'_, sqlx::Any>) -> DomainResult<()> {
        tx.commit().await.map_err(db_error)?;
        self.appended.notify_one();
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes both pools, waiting for checked-out connections to come back.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// Appends an event inside the caller's transaction. On PostgreSQL a transaction-scoped
    /// advisory lock makes ids commit in order, so readers never see a later id before an
    /// earlier one, and a NOTIFY (sent at commit) wakes the other instances' tailers.
    async fn append_event(&self, tx: &mut sqlx::AnyConnection, event: &NewEvent) -> DomainResult<()> {
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7413), pg_notify($1, '')")
                .bind(wakeups::CHANNEL)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        let payload = serde_json::to_string(&event.subject).map_err(DomainError::internal)?;
        sqlx::query(
            "INSERT INTO events (event_type, topic, subject_id, occurred_at, payload) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(event.event_type.as_str())
        .bind(event.topic())
        .bind(event.subject.id())
        .bind(micros(event.occurred_at))
        .bind(payload)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let file = path.split('?').next().unwrap_or_default();
    if file.is_empty() || file == ":memory:" {
        anyhow::bail!("an in-memory SQLite database cannot be shared between pools; give a file path");
    }
    if let Some(dir) = std::path::Path::new(file).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(if url.contains("mode=") { url.to_string() } else { format!("{url}{sep}mode=rwc") })
}

async fn sqlite_pool(url: &str, max: u32, settings: &PoolSettings) -> anyhow::Result<AnyPool> {
    sqlx::any::AnyConnectOptions::from_str(url).context("parsing DATABASE_URL")?;
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(settings.acquire_timeout)
        .after_connect(|conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .context("opening the SQLite database")
}

/// Microseconds since the epoch, the storage form of every timestamp.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(v: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(v).single().unwrap_or_default()
}

fn opt_time(row: &AnyRow, col: &str) -> DomainResult<Option<DateTime<Utc>>> {
    Ok(row.try_get::<Option<i64>, _>(col).map_err(db_error)?.map(from_micros))
}

fn time(row: &AnyRow, col: &str) -> DomainResult<DateTime<Utc>> {
    Ok(from_micros(row.try_get::<i64, _>(col).map_err(db_error)?))
}

fn text(row: &AnyRow, col: &str) -> DomainResult<String> {
    row.try_get::<String, _>(col).map_err(db_error)
}

/// Maps a driver error: lost connectivity is UNAVAILABLE, the rest INTERNAL (cause logged).
pub(crate) fn db_error(err: sqlx::Error) -> DomainError {
    if unreachable(&err) {
        let mut e = DomainError::unavailable("the store is unavailable; retry shortly");
        e.source = Some(err.into());
        return e;
    }
    DomainError::internal(err)
}

/// True when the store could not be reached or dropped the connection: no pool connection,
/// an I/O or protocol failure, a crashed worker, or PostgreSQL's connection-exception and
/// shutdown states (SQLSTATE class 08, 57P01-57P03).
fn unreachable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|c| c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

/// Maps a unique violation to CONFLICT on `field`; anything else as `db_error`.
fn unique_or(err: sqlx::Error, field: &str, message: &str) -> DomainError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            DomainError::new(ErrorCode::Conflict, message).with_detail(field, "taken")
        }
        _ => db_error(err),
    }
}

#[async_trait::async_trait]
impl crate::domain::ports::Health for SqlStore {
    async fn ping(&self) -> DomainResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await.map_err(db_error)?;
        Ok(())
    }
}
