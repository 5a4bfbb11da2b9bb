//! A small SQLite pool for a service's own database file.
//!
//! SQLite allows one writer at a time, so writes share one connection behind an async lock
//! (callers queue on the lock instead of on SQLite's busy handler), and reads use a pool of
//! connections whose size is a runtime setting. WAL mode lets readers run beside the writer;
//! `synchronous=NORMAL` in WAL mode survives a process kill -9 without losing a committed
//! transaction (only a power loss can drop the last ones).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::Semaphore;

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

struct Inner {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    write_turn: tokio::sync::Mutex<()>,
    readers: Arc<Mutex<Vec<Connection>>>,
    read_permits: Arc<Semaphore>,
    read_pool_size: AtomicUsize,
}

impl Db {
    /// Opens (creating if needed) the database file and applies `schema` (idempotent DDL).
    pub fn open(path: &Path, pool_size: usize, schema: &str) -> Result<Db, DbError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| DbError::Task(format!("cannot create {}: {e}", dir.display())))?;
        }
        let writer = open_connection(path)?;
        writer.execute_batch(schema)?;
        let pool_size = pool_size.max(1);
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Arc::new(Mutex::new(writer)),
                write_turn: tokio::sync::Mutex::new(()),
                readers: Arc::new(Mutex::new(Vec::new())),
                read_permits: Arc::new(Semaphore::new(pool_size)),
                read_pool_size: AtomicUsize::new(pool_size),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in one IMMEDIATE transaction: committed if `f` returns Ok, rolled back otherwise.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let _turn = self.inner.write_turn.lock().await;
        let writer = self.inner.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| E::from(DbError::classify(e)))?;
            let value = f(&tx)?;
            tx.commit().map_err(|e| E::from(DbError::classify(e)))?;
            Ok(value)
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// Runs `f` on a pooled read connection (at most `pool_size` at once).
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let permit = self.inner.read_permits.clone().acquire_owned().await.map_err(|e| E::from(DbError::Task(e.to_string())))?;
        let readers = self.inner.readers.clone();
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_connection(&path).map_err(E::from)?,
            };
            let result = f(&conn);
            readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
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
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(DbError::from)).await
    }
}

fn open_connection(path: &Path) -> Result<Connection, DbError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
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
