//! One way to speak SQL to both stores: arguments, rows read by column index, errors, and the
//! connection a repository runs its statements on. Repositories are written once against
//! `Conn`; `sqlite` and `postgres` supply what differs.

use crate::domain::error::{DomainError, DomainResult, ErrorCode};

/// A statement argument. Nulls are typed, because PostgreSQL types every parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Blob(&'a [u8]),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::OptText(v)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Blob(v)
    }
}

/// A result row, read by column index (the order of the statement's SELECT list).
pub(crate) trait Row {
    fn int(&self, i: usize) -> DomainResult<i64>;
    fn opt_int(&self, i: usize) -> DomainResult<Option<i64>>;
    fn text(&self, i: usize) -> DomainResult<String>;
    fn opt_text(&self, i: usize) -> DomainResult<Option<String>>;
    fn opt_blob(&self, i: usize) -> DomainResult<Option<Vec<u8>>>;
}

/// `$1, $2, … $n`: the placeholders of an `IN (…)` list of `n` values bound first.
pub(crate) fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// What kind of failure a statement met, for the few callers that answer differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    UniqueViolation,
    ForeignKeyViolation,
    /// The store could not be reached, is busy beyond its timeout, or dropped the connection.
    Unreachable,
    Other,
}

/// A failed statement: its kind and the driver's error (logged, never sent to clients).
#[derive(Debug)]
pub(crate) struct DbError {
    pub kind: Failure,
    pub source: anyhow::Error,
}

impl DbError {
    pub fn new(kind: Failure, source: impl Into<anyhow::Error>) -> Self {
        Self { kind, source: source.into() }
    }

    /// A unique violation becomes CONFLICT on `field`; anything else maps as usual.
    pub fn unique_or(self, field: &str, message: &str) -> DomainError {
        match self.kind {
            Failure::UniqueViolation => DomainError::new(ErrorCode::Conflict, message).with_detail(field, "taken"),
            _ => self.into(),
        }
    }

    /// A foreign-key violation (the referenced user is gone) becomes UNAUTHENTICATED: the
    /// credential that asked is no longer any good.
    pub fn user_gone_or(self, message: &str) -> DomainError {
        match self.kind {
            Failure::ForeignKeyViolation => DomainError::unauthenticated(message),
            _ => self.into(),
        }
    }
}

/// Lost connectivity is UNAVAILABLE; the rest INTERNAL (the cause is logged, never sent).
impl From<DbError> for DomainError {
    fn from(e: DbError) -> Self {
        if e.kind == Failure::Unreachable {
            let mut err = DomainError::unavailable("the store is unavailable; retry shortly");
            err.source = Some(e.source);
            return err;
        }
        DomainError::internal(e.source)
    }
}

/// A connection inside a transaction (writes) or a read connection: the one surface every
/// repository statement goes through.
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut rusqlite::Connection),
    Postgres(&'c mut sqlx::PgConnection),
}

impl Conn<'_> {
    /// Runs a statement; the number of rows it changed.
    pub async fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        match self {
            Conn::Sqlite(c) => super::sqlite::exec(c, sql, args),
            Conn::Postgres(c) => super::postgres::exec(c, sql, args).await,
        }
    }

    /// The first row, mapped, if there is one.
    pub async fn query_opt<T>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Row) -> DomainResult<T> + Sync,
    ) -> DomainResult<Option<T>> {
        match self {
            Conn::Sqlite(c) => super::sqlite::query(c, sql, args, 1, &map).map(|mut v| v.pop()),
            Conn::Postgres(c) => super::postgres::query_opt(c, sql, args, &map).await,
        }
    }

    /// Every row, mapped.
    pub async fn query_all<T>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Row) -> DomainResult<T> + Sync,
    ) -> DomainResult<Vec<T>> {
        match self {
            Conn::Sqlite(c) => super::sqlite::query(c, sql, args, usize::MAX, &map),
            Conn::Postgres(c) => super::postgres::query_all(c, sql, args, &map).await,
        }
    }

    /// The one integer a statement answers (`SELECT COUNT(*) ...`, `SELECT COALESCE(MAX(id), 0) ...`).
    /// Runs an `INSERT` into a table with an integer `id` key; the id it assigned. SQLite
    /// reads it back with `last_insert_rowid()`: a `RETURNING` clause there builds and drops an
    /// ephemeral table on every insert. PostgreSQL gets the `returning` form (`sql` followed
    /// by ` RETURNING id`, given whole so nothing is formatted per call).
    pub async fn insert_id(&mut self, sql: &str, returning: &str, args: &[Arg<'_>]) -> DomainResult<i64> {
        debug_assert!(returning.starts_with(sql) && returning[sql.len()..].trim() == "RETURNING id");
        match self {
            Conn::Sqlite(c) => {
                super::sqlite::exec(c, sql, args)?;
                Ok(c.last_insert_rowid())
            }
            Conn::Postgres(_) => self.query_int(returning, args).await,
        }
    }

    pub async fn query_int(&mut self, sql: &str, args: &[Arg<'_>]) -> DomainResult<i64> {
        self.query_opt(sql, args, |r| r.int(0))
            .await?
            .ok_or_else(|| DomainError::internal(anyhow::anyhow!("no row from {sql}")))
    }
}

/// A boxed future borrowing the connection, what a write job returns.
pub(crate) type JobFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = DomainResult<T>> + Send + 'a>>;
