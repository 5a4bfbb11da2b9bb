//! A small SQLite pool for a service's own database file.
//!
//! SQLite allows one writer at a time, so all writes go to one dedicated writer thread that
//! owns the write connection. It group-commits: the units of work waiting in its queue run in
//! one transaction, a unit that fails leaves no trace (see [`run_batch`]), and every caller
//! learns its result only after the COMMIT (nothing is acknowledged before it is durable).
//!
//! Durable means surviving a power loss, not only a process kill: the database runs in WAL
//! mode with `synchronous=FULL`, so every COMMIT fsyncs the WAL before it returns. That fsync
//! is the price of an acknowledgement; the group commit pays it once per batch, not per unit.
//!
//! Reads use a pool of connections whose size is a runtime setting. [`Db::read`] runs on the
//! calling task's thread: a request's reads are indexed lookups of a few rows, far cheaper
//! than handing them to another thread and back. [`Db::scan`], for reads whose cost grows with
//! the data (counts, reports), runs on a blocking thread so it cannot stall the async workers.
//! Statements are compiled once per connection (`prepare_cached`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Semaphore, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database is busy")]
    Busy,
    #[error("database task failed: {0}")]
    Task(String),
}

impl DbError {
    fn classify(e: rusqlite::Error) -> DbError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => DbError::Busy,
            _ => DbError::Sqlite(e),
        }
    }
}

#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

/// A unit of work for the writer thread. It may run more than once (see [`run_batch`]): only
/// its last run counts, and `deliver` hands the caller that result once the batch's fate is
/// known.
trait WriteJob: Send {
    /// Runs the unit; false if it failed (returned Err or panicked).
    fn run(&mut self, conn: &Connection) -> bool;
    /// True once a run failed: the unit is left out of every later run of its batch.
    fn failed(&self) -> bool;
    fn deliver(self: Box<Self>, commit_error: Option<&DbError>);
}

enum Outcome<T, E> {
    NotRun,
    Returned(Result<T, E>),
    Panicked,
}

struct Job<T, E, F> {
    work: F,
    outcome: Outcome<T, E>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> WriteJob for Job<T, E, F>
where
    T: Send,
    E: From<DbError> + Send,
    F: FnMut(&Connection) -> Result<T, E> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        // A panicking unit counts as failed; the thread and the other units carry on.
        let work = &mut self.work;
        self.outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn))) {
            Ok(result) => Outcome::Returned(result),
            Err(_) => Outcome::Panicked,
        };
        !self.failed()
    }

    fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Returned(Err(_)) | Outcome::Panicked)
    }

    fn deliver(self: Box<Self>, commit_error: Option<&DbError>) {
        let result = match (commit_error, self.outcome) {
            (Some(e), Outcome::Returned(Ok(_))) => Err(E::from(DbError::Task(format!("commit failed: {e}")))),
            (_, Outcome::Returned(result)) => result,
            (_, Outcome::Panicked) => Err(E::from(DbError::Task("write job panicked".into()))),
            (_, Outcome::NotRun) => Err(E::from(DbError::Task("write job did not run".into()))),
        };
        let _ = self.reply.send(result);
    }
}

/// At most this many units of work share one commit.
const MAX_BATCH: usize = 256;
/// The writer checkpoints the WAL after this many group commits (about a thousand pages at full
/// load, SQLite's own default). SQLite's automatic checkpoint would run inside the COMMIT that
/// crosses its threshold, so that batch's callers would wait for it; this one runs after they
/// have their answers.
const CHECKPOINT_AFTER_BATCHES: usize = 64;
/// Compiled statements kept per connection.
const STATEMENT_CACHE: usize = 128;

struct Inner {
    path: PathBuf,
    jobs: std::sync::mpsc::Sender<Box<dyn WriteJob>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    read_permits: Arc<Semaphore>,
    read_pool_size: AtomicUsize,
}

impl Db {
    /// Opens (creating if needed) the database file and brings it to `schema` (idempotent DDL;
    /// tables whose declared layout changed are rebuilt with their rows, see [`crate::schema`]).
    pub fn open(path: &Path, pool_size: usize, schema: &str) -> Result<Db, DbError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| DbError::Task(format!("cannot create {}: {e}", dir.display())))?;
        }
        let writer = open_connection(path)?;
        // The writer checkpoints itself, after answering its callers (see `write_loop`).
        writer.execute_batch("PRAGMA wal_autocheckpoint=0;")?;
        crate::schema::apply(&writer, schema)?;
        let (jobs, queue) = std::sync::mpsc::channel::<Box<dyn WriteJob>>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(writer, queue))
            .map_err(|e| DbError::Task(format!("cannot start the writer thread: {e}")))?;
        let pool_size = pool_size.max(1);
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                jobs,
                readers: Arc::new(Mutex::new(Vec::new())),
                read_permits: Arc::new(Semaphore::new(pool_size)),
                read_pool_size: AtomicUsize::new(pool_size),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` atomically: all its changes are committed if it returns Ok, none if it
    /// returns Err. The answer comes after the commit. `f` may be run again if another unit
    /// of its group commit fails, so it must act only through `conn` (whose changes are
    /// rolled back before it runs again) and return what it found there.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnMut(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn WriteJob> = Box::new(Job { work: f, outcome: Outcome::NotRun, reply });
        self.inner.jobs.send(job).map_err(|_| E::from(DbError::Task("the writer thread has stopped".into())))?;
        answer.await.map_err(|_| E::from(DbError::Task("the writer thread dropped a job".into())))?
    }

    /// Runs `f` on a pooled read connection, on the calling thread (at most `pool_size` at
    /// once). For bounded reads only — lookups by key and index ranges with a LIMIT — since
    /// the async worker waits for it; in WAL mode a reader never waits for the writer.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<DbError>,
        F: FnOnce(&Connection) -> Result<T, E>,
    {
        let permit = self.inner.read_permits.acquire().await.map_err(|e| E::from(DbError::Task(e.to_string())))?;
        let result = with_reader(&self.inner.readers, &self.inner.path, f);
        drop(permit);
        result
    }

    /// Like [`Db::read`], but on a blocking thread: for reads whose cost grows with the data.
    pub async fn scan<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let permit = self.inner.read_permits.clone().acquire_owned().await.map_err(|e| E::from(DbError::Task(e.to_string())))?;
        let readers = self.inner.readers.clone();
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || {
            let result = with_reader(&readers, &path, f);
            drop(permit);
            result
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// Applies a new read-pool size from reloaded settings, without a restart.
    pub fn resize_read_pool(&self, new_size: usize) {
        let new_size = new_size.max(1);
        let old = self.inner.read_pool_size.swap(new_size, Ordering::SeqCst);
        if new_size > old {
            self.inner.read_permits.add_permits(new_size - old);
        } else if new_size < old {
            // Permits in use are forgotten as they come back; idle connections beyond the
            // new size are closed now.
            let forgotten = self.inner.read_permits.forget_permits(old - new_size);
            let missing = old - new_size - forgotten;
            if missing > 0 {
                let permits = self.inner.read_permits.clone();
                tokio::spawn(async move {
                    if let Ok(p) = permits.acquire_many_owned(missing as u32).await {
                        p.forget();
                    }
                });
            }
            let mut idle = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            idle.truncate(new_size);
        }
    }

    pub fn read_pool_size(&self) -> usize {
        self.inner.read_pool_size.load(Ordering::SeqCst)
    }

    /// For /readyz: can we run a query at all?
    pub async fn ping(&self) -> Result<(), DbError> {
        self.read(|c| c.prepare_cached("SELECT 1")?.query_row([], |_| Ok(())).map_err(DbError::from)).await
    }
}

/// Runs `f` on an idle pooled connection (opening one if none is idle) and returns it to the pool.
fn with_reader<T, E, F>(readers: &Mutex<Vec<Connection>>, path: &Path, f: F) -> Result<T, E>
where
    E: From<DbError>,
    F: FnOnce(&Connection) -> Result<T, E>,
{
    let pooled = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let conn = match pooled {
        Some(c) => c,
        None => open_connection(path).map_err(E::from)?,
    };
    let result = f(&conn);
    readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
    result
}

/// The writer thread: takes what is queued (up to MAX_BATCH), runs the units in one IMMEDIATE
/// transaction, commits, then answers every caller. Checkpoints only after
/// the answers are out (see [`CHECKPOINT_AFTER_BATCHES`]). Ends when every `Db` handle is gone.
fn write_loop(conn: Connection, queue: std::sync::mpsc::Receiver<Box<dyn WriteJob>>) {
    let mut waiting = None;
    let mut batches_since_checkpoint = 0;
    loop {
        let first = match waiting.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = run_batch(&conn, &mut batch);
        if outcome.is_err() {
            let _ = exec(&conn, "ROLLBACK");
        }
        let error = outcome.err();
        for job in batch {
            job.deliver(error.as_ref());
        }
        batches_since_checkpoint += 1;
        if batches_since_checkpoint >= CHECKPOINT_AFTER_BATCHES {
            // While callers wait, commit first; but never put it off for long, so the WAL
            // stays bounded even when the queue is never empty.
            if let Ok(job) = queue.try_recv() {
                waiting = Some(job);
                if batches_since_checkpoint < 4 * CHECKPOINT_AFTER_BATCHES {
                    continue;
                }
            }
            checkpoint(&conn);
            batches_since_checkpoint = 0;
        }
    }
}

/// Copies committed WAL frames into the database file. PASSIVE: it never waits for readers,
/// copying what they no longer need. What it copies is already durable in the WAL, so this is
/// housekeeping, not part of any commit.
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries");
    }
}

/// One statement, compiled once per connection: the writer runs these for every unit.
fn exec(conn: &Connection, sql: &str) -> Result<(), DbError> {
    conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map(|_| ()).map_err(DbError::classify)
}

/// Runs a batch in one transaction and commits it; a unit that fails leaves no trace.
///
/// Optimistically first: the units run back to back, without savepoints. A savepoint copies
/// every page its unit is the first to change into a journal, about a tenth of the writer's
/// time, and units rarely fail (a refusal is an answer, not an error). When one does fail, the
/// transaction is rolled back at once and the batch runs again without it, each unit in its own
/// savepoint now, so a second failure costs only its own rollback. Either way what commits is
/// what running the units one after another, dropping the failed ones, would have left.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn WriteJob>]) -> Result<(), DbError> {
    exec(conn, "BEGIN IMMEDIATE")?;
    if batch.iter_mut().all(|job| job.run(conn)) {
        // With synchronous=FULL this fsyncs the WAL: the batch is on disk when callers hear of it.
        return exec(conn, "COMMIT");
    }
    // Some errors (a full disk, an I/O error) end the transaction themselves.
    if !conn.is_autocommit() {
        exec(conn, "ROLLBACK")?;
    }
    exec(conn, "BEGIN IMMEDIATE")?;
    for job in batch.iter_mut().filter(|job| !job.failed()) {
        exec(conn, "SAVEPOINT unit")?;
        if !job.run(conn) {
            exec(conn, "ROLLBACK TO unit")?;
        }
        exec(conn, "RELEASE unit")?;
    }
    exec(conn, "COMMIT")
}

fn open_connection(path: &Path) -> Result<Connection, DbError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // FULL, not NORMAL: in WAL mode NORMAL skips the fsync at COMMIT, so a power loss or kernel
    // crash could drop acknowledged orders. See the module comment for what this costs.
    // temp_store=MEMORY keeps each unit's savepoint journal in memory: by default it spills
    // to a temp file once it outgrows 64 KiB, and a batch's units did, so every group commit
    // created, wrote and deleted temp files. That journal only serves to roll back a unit
    // inside the open transaction, so memory is enough; durability is the WAL's business.
    // mmap_size: pages of the database file are read through a memory map, not with a pread
    // into the connection's cache. In WAL mode a connection drops its whole page cache at the
    // start of any read transaction that follows another connection's commit, so under load
    // every request's reads fetched their pages again (about six preads per order). Up to
    // 1 GiB of address space; only the pages touched become resident, and they are the OS's
    // page cache, shared by all connections.
    // journal_size_limit: under constant load a PASSIVE checkpoint cannot restart the log while
    // readers hold older snapshots, so the WAL can grow (55 MB in one benchmark run); when it
    // does restart, SQLite truncates the file back to 64 MiB rather than keep the high mark.
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; PRAGMA mmap_size=1073741824;
         PRAGMA journal_size_limit=67108864;",
    )?;
    // Room for every statement the stores and the messaging tables use (the default is 16).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_commit_or_roll_back_as_a_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), 2, "CREATE TABLE IF NOT EXISTS t (v INTEGER NOT NULL);").unwrap();
        db.write(|tx| tx.execute("INSERT INTO t VALUES (1)", []).map_err(DbError::from)).await.unwrap();
        let failed: Result<(), DbError> = db
            .write(|tx| {
                tx.execute("INSERT INTO t VALUES (2)", [])?;
                Err(DbError::Task("abort".into()))
            })
            .await;
        assert!(failed.is_err());
        let rows: i64 = db.read(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).map_err(DbError::from)).await.unwrap();
        assert_eq!(rows, 1, "the failed transaction left nothing behind");
    }

    #[tokio::test]
    async fn concurrent_writes_share_commits_but_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), 2, "CREATE TABLE IF NOT EXISTS t (v INTEGER PRIMARY KEY);").unwrap();
        // 200 writers at once; every third one fails after writing, and must leave no trace.
        let results = futures::future::join_all((0..200i64).map(|v| {
            let db = db.clone();
            async move {
                db.write(move |c| {
                    c.execute("INSERT INTO t VALUES (?1)", [v])?;
                    if v % 3 == 0 { Err(DbError::Task("refused".into())) } else { Ok(v) }
                })
                .await
            }
        }))
        .await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 133);
        let rows: i64 =
            db.read(|c| c.query_row("SELECT count(*) FROM t WHERE v % 3 = 0", [], |r| r.get(0)).map_err(DbError::from)).await.unwrap();
        assert_eq!(rows, 0, "failed units were rolled back");
        let all: i64 = db.read(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).map_err(DbError::from)).await.unwrap();
        assert_eq!(all, 133);
    }

    /// A unit that fails after writing leaves nothing a later unit of the same commit can see.
    #[tokio::test]
    async fn a_failed_unit_is_invisible_to_the_units_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), 2, "CREATE TABLE IF NOT EXISTS t (v INTEGER NOT NULL);").unwrap();
        // Many rounds, so that some of them share a commit.
        for round in 0..50i64 {
            let failing = db.write(move |c| {
                c.execute("INSERT INTO t VALUES (?1)", [-1 - round])?;
                Err::<(), _>(DbError::Task("refused".into()))
            });
            let seen = db.write(move |c| {
                let failed_rows: i64 = c.query_row("SELECT count(*) FROM t WHERE v < 0", [], |r| r.get(0))?;
                c.execute("INSERT INTO t VALUES (?1)", [round])?;
                Ok::<_, DbError>(failed_rows)
            });
            let (failing, seen) = tokio::join!(failing, seen);
            assert!(failing.is_err());
            assert_eq!(seen.unwrap(), 0, "round {round}: a later unit saw a failed unit's row");
        }
        let rows: i64 = db.read(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).map_err(DbError::from)).await.unwrap();
        assert_eq!(rows, 50, "every successful unit committed, no failed one did");
    }

    /// An acknowledged write must survive a power loss: the writer's own connection (the one
    /// that COMMITs) runs WAL with synchronous=FULL, so each COMMIT fsyncs the log.
    #[tokio::test]
    async fn the_writer_commits_durably() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), 2, "").unwrap();
        let (journal, synchronous): (String, i64) = db
            .write(|c| {
                let journal = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                let synchronous = c.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
                Ok::<_, DbError>((journal, synchronous))
            })
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        assert_eq!(synchronous, 2, "PRAGMA synchronous is FULL (2) on the writer connection");
    }

    #[tokio::test]
    async fn reads_inline_and_on_blocking_threads_see_committed_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), 1, "CREATE TABLE IF NOT EXISTS t (v INTEGER NOT NULL);").unwrap();
        for v in 0..3 {
            db.write(move |c| c.prepare_cached("INSERT INTO t VALUES (?1)")?.execute([v]).map_err(DbError::from)).await.unwrap();
        }
        let count =
            |c: &Connection| c.prepare_cached("SELECT count(*) FROM t")?.query_row([], |r| r.get::<_, i64>(0)).map_err(DbError::from);
        assert_eq!(db.read(count).await.unwrap(), 3);
        assert_eq!(db.scan(count).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn read_pool_resizes_at_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), 4, "").unwrap();
        db.resize_read_pool(1);
        assert_eq!(db.read_pool_size(), 1);
        db.resize_read_pool(8);
        assert_eq!(db.read_pool_size(), 8);
        db.ping().await.unwrap();
    }
}
