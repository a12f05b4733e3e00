//! PostgreSQL through sqlx's native driver: a pool, a transaction per write, statements
//! prepared once per connection.

use sqlx::postgres::{PgArguments, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{Connection, PgConnection, PgPool, Postgres};

use super::sql::{Arg, Conn, DbError, Failure, JobFuture, Row};
use crate::domain::error::{DomainError, DomainResult};

pub(super) async fn connect(url: &str, settings: &super::PoolSettings) -> anyhow::Result<PgPool> {
    use anyhow::Context;
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect(url)
        .await
        .context("connecting to PostgreSQL")
}

/// Runs a write job in its own transaction, committed when the job succeeds.
pub(super) async fn write<D, T>(
    pool: &PgPool,
    data: D,
    work: impl for<'a, 'b> Fn(&'a D, &'a mut Conn<'b>) -> JobFuture<'a, T>,
) -> DomainResult<T> {
    let mut conn = pool.acquire().await.map_err(classify)?;
    let mut tx = conn.begin().await.map_err(classify)?;
    let result = {
        let mut c = Conn::Postgres(&mut tx);
        work(&data, &mut c).await
    };
    match result {
        Ok(value) => {
            tx.commit().await.map_err(classify)?;
            Ok(value)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// Runs a read job on a pool connection.
pub(super) async fn read<T>(
    pool: &PgPool,
    work: impl for<'a, 'b> FnOnce(&'a mut Conn<'b>) -> JobFuture<'a, T>,
) -> DomainResult<T> {
    let mut conn = pool.acquire().await.map_err(classify)?;
    let mut c = Conn::Postgres(&mut conn);
    work(&mut c).await
}

fn bind<'q>(sql: &'q str, args: &'q [Arg<'q>]) -> Query<'q, Postgres, PgArguments> {
    let mut query = sqlx::query(sql);
    for arg in args {
        query = match *arg {
            Arg::Int(v) => query.bind(v),
            Arg::OptInt(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::OptText(v) => query.bind(v),
            Arg::Blob(v) => query.bind(v),
        };
    }
    query
}

pub(super) async fn exec(conn: &mut PgConnection, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError> {
    let done = bind(sql, args).execute(conn).await.map_err(classify)?;
    Ok(done.rows_affected())
}

pub(super) async fn query_opt<T>(
    conn: &mut PgConnection,
    sql: &str,
    args: &[Arg<'_>],
    map: &(dyn Fn(&dyn Row) -> DomainResult<T> + Sync),
) -> DomainResult<Option<T>> {
    let row = bind(sql, args).fetch_optional(conn).await.map_err(classify)?;
    row.as_ref().map(|r| map(r)).transpose()
}

pub(super) async fn query_all<T>(
    conn: &mut PgConnection,
    sql: &str,
    args: &[Arg<'_>],
    map: &(dyn Fn(&dyn Row) -> DomainResult<T> + Sync),
) -> DomainResult<Vec<T>> {
    let rows = bind(sql, args).fetch_all(conn).await.map_err(classify)?;
    rows.iter().map(|r| map(r)).collect()
}

fn column<'r, T>(row: &'r PgRow, i: usize) -> DomainResult<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    use sqlx::Row as _;
    row.try_get(i).map_err(|e| DomainError::internal(anyhow::anyhow!("reading column {i}: {e}")))
}

impl Row for PgRow {
    fn int(&self, i: usize) -> DomainResult<i64> {
        column(self, i)
    }
    fn opt_int(&self, i: usize) -> DomainResult<Option<i64>> {
        column(self, i)
    }
    fn text(&self, i: usize) -> DomainResult<String> {
        column(self, i)
    }
    fn opt_text(&self, i: usize) -> DomainResult<Option<String>> {
        column(self, i)
    }
    fn opt_blob(&self, i: usize) -> DomainResult<Option<Vec<u8>>> {
        column(self, i)
    }
}

/// Lost connectivity (no pool connection, I/O, protocol, a crashed worker, SQLSTATE class 08
/// and 57P01-57P03) is `Unreachable`; constraint violations are told apart.
pub(super) fn classify(err: sqlx::Error) -> DbError {
    let kind = match &err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => Failure::Unreachable,
        sqlx::Error::Database(db) if db.is_unique_violation() => Failure::UniqueViolation,
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => Failure::ForeignKeyViolation,
        sqlx::Error::Database(db)
            if db.code().is_some_and(|c| c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")) =>
        {
            Failure::Unreachable
        }
        _ => Failure::Other,
    };
    DbError::new(kind, err)
}
