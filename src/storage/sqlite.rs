//! Native SQLite (rusqlite), built for one process on a few cores:
//! - reads run on the calling thread, on a connection from a small pool (a point read costs
//!   microseconds; handing it to another thread cost more than the read); a reader keeps its
//!   read transaction (snapshot) across reads until this process commits a write or
//!   `SNAPSHOT_FOR` has passed, so point reads do not each take and give back WAL read locks
//!   (two `fcntl` calls per statement otherwise) and a read after an acknowledged write always
//!   sees it; another process's writes are seen within `SNAPSHOT_FOR`;
//! - writes are jobs queued for one drain task that runs every job queued meanwhile in ONE
//!   transaction (group commit) and answers each job only after the commit, so an acknowledged
//!   write is durable (WAL, `synchronous = NORMAL`). Jobs run back to back with no savepoint of
//!   their own (a savepoint copies every page a job touches into a statement journal, most of
//!   the cost of a small write); a job that fails after changing rows has the whole attempt
//!   rolled back and the batch run again, each job in its own savepoint, which is why a job is
//!   its data plus a function that can run more than once;
//! - a checkpointer thread moves the WAL into the database, off the request threads; when the
//!   WAL has grown past `WAL_RESTART_FRAMES` (writes kept coming while it ran, so it never
//!   caught up), the writer finishes the checkpoint itself between two batches, so the next
//!   batch starts the WAL over from its beginning and the file is cut back to
//!   `WAL_SIZE_LIMIT`; and once the file has grown past that limit anyway (writes faster than
//!   the checkpointer's passes, or readers holding old snapshots), the writer copies all of it
//!   before its next batch, waiting for those readers: the WAL stays bounded under any
//!   sustained write load, whatever its rate.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rusqlite::{Connection, ErrorCode as SqliteCode, OpenFlags};

use super::sql::{Arg, Conn, DbError, Failure, JobFuture, Row};
use crate::domain::error::{DomainError, DomainResult};

/// Every connection's settings. `busy_timeout` covers another process holding the write lock.
/// `temp_store = MEMORY` keeps the statement journal of each job's savepoint in memory: on
/// disk (the default) it cost a `pwrite` for every page a job touched, most of a create's
/// system time.
const PRAGMAS: &str =
    "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA temp_store = MEMORY;";
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;
/// The longest a reader keeps one snapshot: the bound on how late this process sees another
/// process's write (an operator command, say). Its own writes end every snapshot at once.
const SNAPSHOT_FOR: Duration = Duration::from_millis(20);
/// How often the checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// WAL frames (pages) past which the writer completes a checkpoint itself before its next batch.
const WAL_RESTART_FRAMES: i64 = 2048;
/// The size the WAL file is cut back to when it starts over (`journal_size_limit`): half again
/// what `WAL_RESTART_FRAMES` of 4 KiB pages take, so the file only grows past it when the WAL
/// could not start over in time (the writer then forces it, see `commit_batch`).
const WAL_SIZE_LIMIT: i64 = WAL_RESTART_FRAMES * 4096 * 3 / 2;

/// A write job: its statements, then its answer once the batch's commit is known.
trait Job: Send {
    /// Runs the job's statements (again, when its batch is run a second time); true when it
    /// succeeded.
    fn run(&mut self, conn: &mut Connection) -> bool;
    /// Answers the caller: the job's own result, or the commit's failure.
    fn finish(self: Box<Self>, commit_failed: bool);
}

struct Typed<D, T, F> {
    data: D,
    work: F,
    result: Option<DomainResult<T>>,
    reply: tokio::sync::oneshot::Sender<DomainResult<T>>,
}

impl<D, T, F> Job for Typed<D, T, F>
where
    D: Send + 'static,
    T: Send + 'static,
    F: for<'a, 'b> Fn(&'a D, &'a mut Conn<'b>) -> JobFuture<'a, T> + Send + 'static,
{
    fn run(&mut self, conn: &mut Connection) -> bool {
        let mut c = Conn::Sqlite(conn);
        let result = poll_once((self.work)(&self.data, &mut c));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit_failed: bool) {
        let result = match (self.result, commit_failed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), false) => Ok(value),
            (_, true) => Err(DomainError::unavailable("the store could not commit; retry shortly")),
            (None, false) => Err(DomainError::internal(anyhow::anyhow!("a write job panicked"))),
        };
        let _ = self.reply.send(result);
    }
}

/// Runs a job's future to completion right here: SQLite statements never wait, so one poll
/// finishes it. A job that awaits anything else is a bug, answered INTERNAL.
fn poll_once<T>(mut future: JobFuture<'_, T>) -> DomainResult<T> {
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => {
            Err(DomainError::internal(anyhow::anyhow!("a SQLite job awaited something other than SQLite")))
        }
    }
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Box<dyn Job>>,
    draining: bool,
    closed: bool,
}

/// A read connection and the snapshot its open read transaction holds: the write generation it
/// began at, and when.
struct Reader {
    conn: Connection,
    snapshot: Option<(u64, Instant)>,
}

impl Reader {
    /// Ends the read transaction, if one is open (lets the checkpointer move past it).
    fn end_snapshot(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = exec(&self.conn, "COMMIT", &[]);
        }
        self.snapshot = None;
    }
}

/// The SQLite store's connections.
pub(crate) struct Sqlite {
    path: PathBuf,
    readers: Mutex<Vec<Reader>>,
    /// Bumped by every committed write batch, before its jobs are answered.
    generation: AtomicU64,
    max_idle_readers: usize,
    writer: Mutex<Option<Connection>>,
    queue: Mutex<Queue>,
    /// Dropped on close, which ends the checkpointer.
    checkpointer: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    /// Frames the WAL held at the checkpointer's last pass (0 once the writer has seen to it).
    wal_behind: Arc<AtomicI64>,
    /// The WAL file, whose size the writer checks before each batch.
    wal_path: PathBuf,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sqlite {
    /// Opens (creating it if needed) the database at `path` and applies `migrations`.
    pub fn open(
        path: &Path,
        max_idle_readers: usize,
        migrations: &sqlx::migrate::Migrator,
    ) -> anyhow::Result<Arc<Self>> {
        configure_library();
        let mut writer = open_connection(path, OpenFlags::default()).context("opening the SQLite database")?;
        writer.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
        ))?;
        migrate(&mut writer, migrations).context("applying migrations")?;
        let store = Arc::new(Sqlite {
            path: path.to_path_buf(),
            readers: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            max_idle_readers: max_idle_readers.max(1),
            writer: Mutex::new(Some(writer)),
            queue: Mutex::new(Queue::default()),
            checkpointer: Mutex::new(None),
            wal_behind: Arc::new(AtomicI64::new(0)),
            wal_path: {
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                wal.into()
            },
        });
        store.start_checkpointer()?;
        Ok(store)
    }

    fn start_checkpointer(&self) -> anyhow::Result<()> {
        let conn = open_connection(&self.path, OpenFlags::default())?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let behind = self.wal_behind.clone();
        std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                match checkpoint(&conn) {
                    // Writes go on while it runs: the count is the WAL it found, caught up or not.
                    Ok((frames, _)) => behind.store(frames, Ordering::Relaxed),
                    Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed; retrying"),
                }
            }
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        })?;
        *lock(&self.checkpointer) = Some(stop);
        Ok(())
    }

    /// Runs `f` on a read connection, on this thread, in a snapshot no older than this
    /// process's last committed write (and than `SNAPSHOT_FOR`).
    pub fn read<T>(&self, f: impl FnOnce(&mut Connection) -> DomainResult<T>) -> DomainResult<T> {
        let idle = lock(&self.readers).pop();
        let mut reader = match idle {
            Some(reader) => reader,
            None => Reader {
                conn: open_connection(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .map_err(|e| DomainError::from(classify(e)))?,
                snapshot: None,
            },
        };
        let generation = self.generation.load(Ordering::Acquire);
        let current = matches!(reader.snapshot, Some((g, at)) if g == generation && at.elapsed() < SNAPSHOT_FOR);
        if !current {
            reader.end_snapshot();
            // Deferred: the snapshot is taken by the first statement, after `generation` was read.
            exec(&reader.conn, "BEGIN", &[]).map_err(DomainError::from)?;
            reader.snapshot = Some((generation, Instant::now()));
        }
        let out = f(&mut reader.conn);
        if reader.conn.is_autocommit() {
            reader.snapshot = None;
        }
        let mut idle = lock(&self.readers);
        if idle.len() < self.max_idle_readers {
            idle.push(reader);
        }
        out
    }

    /// Runs a read job (the same shape as a write job) on a read connection, on this thread.
    pub fn read_job<T>(&self, work: impl for<'a, 'b> FnOnce(&'a mut Conn<'b>) -> JobFuture<'a, T>) -> DomainResult<T> {
        self.read(|conn| poll_once(work(&mut Conn::Sqlite(conn))))
    }

    /// Queues a write job (`work` on `data`) and waits for its answer, given after the commit
    /// of its batch. `work` may run twice: its effects must be its statements alone.
    pub async fn write<D, T, F>(self: &Arc<Self>, data: D, work: F) -> DomainResult<T>
    where
        D: Send + 'static,
        T: Send + 'static,
        F: for<'a, 'b> Fn(&'a D, &'a mut Conn<'b>) -> JobFuture<'a, T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let start_drain = {
            let mut queue = lock(&self.queue);
            if queue.closed {
                return Err(DomainError::unavailable("the store is closed"));
            }
            queue.jobs.push(Box::new(Typed { data, work, result: None, reply }));
            !std::mem::replace(&mut queue.draining, true)
        };
        if start_drain {
            let me = self.clone();
            tokio::spawn(async move { me.drain().await });
        }
        answer.await.unwrap_or_else(|_| Err(DomainError::unavailable("the store is closed")))
    }

    /// Commits batches until the queue is empty. Yields first, so every request already running
    /// queues its write and joins the batch.
    async fn drain(self: Arc<Self>) {
        loop {
            tokio::task::yield_now().await;
            let batch = {
                let mut queue = lock(&self.queue);
                if queue.jobs.is_empty() {
                    queue.draining = false;
                    return;
                }
                std::mem::take(&mut queue.jobs)
            };
            self.commit_batch(batch);
        }
    }

    /// True when the WAL file is past `WAL_SIZE_LIMIT`: it only grows beyond that while it is
    /// not starting over (one `stat` per batch).
    fn wal_outgrown(&self) -> bool {
        std::fs::metadata(&self.wal_path).is_ok_and(|m| m.len() > WAL_SIZE_LIMIT as u64)
    }

    fn commit_batch(&self, mut batch: Vec<Box<dyn Job>>) {
        let mut writer = lock(&self.writer);
        let Some(conn) = writer.as_mut() else {
            batch.into_iter().for_each(|job| job.finish(true));
            return;
        };
        // Idle readers give back their WAL read locks first: a write transaction can restart the
        // WAL from its beginning only while no reader holds one (else the WAL grows under load).
        lock(&self.readers).iter_mut().for_each(Reader::end_snapshot);
        if self.wal_outgrown() {
            // The WAL kept growing past its size limit (writes outpaced the checkpointer's
            // passes, or readers kept it from starting over): this copies all of it, waiting
            // for readers of older snapshots to finish, so this batch starts it over.
            // Its first column is 1 when a reader still held an old snapshot after the busy
            // timeout: then the next batch tries again.
            match conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0)) {
                Ok(0) => self.wal_behind.store(0, Ordering::Relaxed),
                Ok(_) => tracing::debug!("the WAL could not start over yet: a reader holds an old snapshot"),
                Err(e) => tracing::warn!(error = %e, "SQLite checkpoint by the writer failed"),
            }
        } else if self.wal_behind.load(Ordering::Relaxed) > WAL_RESTART_FRAMES {
            // No write can append meanwhile (this holds the writer), so unless a reader on
            // another thread still holds an old snapshot this copies the rest of the WAL, and
            // this batch's first write starts it over (else the next batch tries again).
            match checkpoint(conn) {
                Ok((frames, copied)) if copied >= frames => self.wal_behind.store(0, Ordering::Relaxed),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "SQLite checkpoint by the writer failed"),
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "SQLite could not begin a write transaction");
            batch.into_iter().for_each(|job| job.finish(true));
            return;
        }
        let mut lost = match run_jobs(conn, &mut batch, false) {
            Ran::Partly => {
                // A job failed half-way, and only a savepoint could have undone its half: the
                // batch starts over with one per job.
                tracing::debug!(jobs = batch.len(), "a write failed half-way; its batch runs again with savepoints");
                let again = conn.execute_batch("ROLLBACK").and_then(|()| conn.execute_batch("BEGIN IMMEDIATE"));
                match again {
                    Ok(()) => run_jobs(conn, &mut batch, true) == Ran::Lost,
                    Err(e) => {
                        tracing::error!(error = %e, "SQLite could not begin a write transaction again");
                        if !conn.is_autocommit() {
                            let _ = conn.execute_batch("ROLLBACK");
                        }
                        true
                    }
                }
            }
            ran => ran == Ran::Lost,
        };
        lost |= conn.is_autocommit();
        let failed = lost
            || match conn.execute_batch("COMMIT") {
                Ok(()) => false,
                Err(e) => {
                    tracing::error!(error = %e, "SQLite could not commit a write transaction");
                    let _ = conn.execute_batch("ROLLBACK");
                    true
                }
            };
        drop(writer);
        if !failed {
            // Before any job is answered: a read after an acknowledged write takes a new snapshot.
            self.generation.fetch_add(1, Ordering::AcqRel);
            lock(&self.readers).iter_mut().for_each(Reader::end_snapshot);
        }
        batch.into_iter().for_each(|job| job.finish(failed));
    }

    /// Refuses new writes, answers the queued ones, stops the checkpointer and closes every
    /// connection (a final checkpoint truncates the WAL).
    pub fn close(&self) {
        let pending = {
            let mut queue = lock(&self.queue);
            queue.closed = true;
            std::mem::take(&mut queue.jobs)
        };
        if !pending.is_empty() {
            self.commit_batch(pending);
        }
        lock(&self.writer).take();
        lock(&self.readers).clear();
        lock(&self.checkpointer).take();
    }
}

/// Process-wide settings, made before the library's first use: no memory statistics (each of
/// SQLite's allocations otherwise takes a global mutex to count itself; nothing reads them).
fn configure_library() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config with an int argument, before any connection of this process
        // (else it answers SQLITE_MISUSE and changes nothing).
        let rc = unsafe { rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int) };
        if rc != rusqlite::ffi::SQLITE_OK {
            tracing::debug!(rc, "SQLite memory statistics stay on (the library was in use already)");
        }
    });
}

/// How a batch's jobs ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    /// Each job succeeded, or failed without changing anything.
    Whole,
    /// A job failed after changing rows (only without savepoints): the transaction holds half
    /// of it.
    Partly,
    /// SQLite ended the transaction (I/O error, disk full): nothing of it will be committed.
    Lost,
}

/// Runs every job of a batch inside the open transaction; with `savepoints`, each in its own,
/// undone when the job fails. Without, a failed job that changed no row leaves nothing to undo
/// (SQLite undoes a failed statement itself), and one that did stops the run as `Partly`. The
/// changes counted are the statements' own rows: the schema's triggers only refuse, never write
/// (`sqlite_triggers_only_refuse_and_never_write` holds the schema to that).
fn run_jobs(conn: &mut Connection, batch: &mut [Box<dyn Job>], savepoints: bool) -> Ran {
    for job in batch.iter_mut() {
        if savepoints {
            let _ = exec(conn, "SAVEPOINT job", &[]);
        }
        let before = conn.total_changes();
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(conn))).unwrap_or(false);
        if conn.is_autocommit() {
            return Ran::Lost;
        }
        if savepoints {
            if !ok {
                let _ = exec(conn, "ROLLBACK TO job", &[]);
            }
            let _ = exec(conn, "RELEASE job", &[]);
        } else if !ok && conn.total_changes() != before {
            return Ran::Partly;
        }
    }
    Ran::Whole
}

/// A passive checkpoint: the frames in the WAL and how many of them are in the database now.
fn checkpoint(conn: &Connection) -> Result<(i64, i64), rusqlite::Error> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(1)?, r.get(2)?)))
}

fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch(PRAGMAS)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Applies the migrations not yet applied, each in its own transaction, recorded in the table
/// sqlx's migrator keeps (so databases created by earlier versions carry on).
fn migrate(conn: &mut Connection, migrator: &sqlx::migrate::Migrator) -> anyhow::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, \
         execution_time BIGINT NOT NULL);",
    )?;
    for migration in migrator.iter().filter(|m| m.migration_type.is_up_migration()) {
        let applied: Option<Vec<u8>> = conn
            .query_row(
                "SELECT checksum FROM _sqlx_migrations WHERE version = ?1 AND success",
                [migration.version],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })?;
        match applied {
            Some(checksum) if checksum == *migration.checksum => continue,
            Some(_) => anyhow::bail!("migration {} was changed after it was applied", migration.version),
            None => {}
        }
        let started = std::time::Instant::now();
        let tx = conn.transaction()?;
        tx.execute_batch(&migration.sql).with_context(|| format!("migration {}", migration.version))?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (?1, ?2, TRUE, ?3, ?4)",
            rusqlite::params![
                migration.version,
                migration.description.as_ref(),
                migration.checksum.as_ref(),
                started.elapsed().as_nanos() as i64
            ],
        )?;
        tx.commit()?;
    }
    Ok(())
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, args: &[Arg<'_>]) -> Result<(), rusqlite::Error> {
    for (i, arg) in args.iter().enumerate() {
        let i = i + 1;
        match *arg {
            Arg::Int(v) => stmt.raw_bind_parameter(i, v),
            Arg::OptInt(v) => stmt.raw_bind_parameter(i, v),
            Arg::Text(v) => stmt.raw_bind_parameter(i, v),
            Arg::OptText(v) => stmt.raw_bind_parameter(i, v),
            Arg::Blob(v) => stmt.raw_bind_parameter(i, v),
        }?;
    }
    Ok(())
}

/// Runs a statement (`$n` placeholders, numbered in order of first use); rows changed.
pub(super) fn exec(conn: &Connection, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError> {
    let mut stmt = conn.prepare_cached(sql).map_err(classify)?;
    bind(&mut stmt, args).map_err(classify)?;
    stmt.raw_execute().map(|n| n as u64).map_err(classify)
}

/// Runs a query and maps at most `limit` rows.
pub(super) fn query<T>(
    conn: &Connection,
    sql: &str,
    args: &[Arg<'_>],
    limit: usize,
    map: &dyn Fn(&dyn Row) -> DomainResult<T>,
) -> DomainResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(classify)?;
    bind(&mut stmt, args).map_err(classify)?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while out.len() < limit {
        match rows.next().map_err(classify)? {
            Some(row) => out.push(map(row)?),
            None => break,
        }
    }
    Ok(out)
}

fn column<T: rusqlite::types::FromSql>(row: &rusqlite::Row<'_>, i: usize) -> DomainResult<T> {
    row.get(i).map_err(|e| DomainError::internal(anyhow::anyhow!("reading column {i}: {e}")))
}

impl Row for rusqlite::Row<'_> {
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

fn classify(e: rusqlite::Error) -> DbError {
    let kind = match &e {
        rusqlite::Error::SqliteFailure(f, _) => match (f.code, f.extended_code) {
            (SqliteCode::ConstraintViolation, rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
            | (SqliteCode::ConstraintViolation, rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
                Failure::UniqueViolation
            }
            (SqliteCode::ConstraintViolation, rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
                Failure::ForeignKeyViolation
            }
            (
                SqliteCode::DatabaseBusy
                | SqliteCode::DatabaseLocked
                | SqliteCode::CannotOpen
                | SqliteCode::SystemIoFailure
                | SqliteCode::DiskFull,
                _,
            ) => Failure::Unreachable,
            _ => Failure::Other,
        },
        _ => Failure::Other,
    };
    DbError::new(kind, e)
}
