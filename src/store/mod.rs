//! The store: the only truth, on SQLite (one server) or PostgreSQL (several nodes).
//!
//! Everything musubi knows is here; the index and the correlation graph are projections
//! that can be rebuilt from it. Writes go through the single [`StoreWriter`] (group commit,
//! acknowledged after fsync); reads use a small pool of read-only connections, which WAL lets
//! run beside the writer. Every module writes its SQL once against [`db::Conn`], which both
//! engines run.

pub mod alerts;
pub mod bulk;
pub mod campaigns;
pub mod db;
mod error;
pub mod feeds;
pub mod inquiries;
pub mod mail;
pub mod members;
mod pg;
pub mod pg_copy;
pub mod pins;
pub mod releases;
pub mod reports;
mod schema;
pub mod schema_pg;
pub mod sessions;
pub mod sightings;
pub mod taxii;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::model::Seq;

use rusqlite::Connection;
use tokio::sync::watch;

pub use db::{Backend, Conn};
pub use error::{Result, StoreError};
pub use pg::config as postgres_config;
use writer::Session;
pub use writer::{LOG_LOCK, MAX_GROUP, Op, Pending, QUEUE_CAPACITY, StoreWriter};

/// The database file inside the data directory.
pub const DB_FILE: &str = "musubi.sqlite3";

/// Connection settings shared by the writer and the readers.
fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk before the writer acknowledges it.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// An open store: the writer handle and a pool of readers.
#[derive(Clone)]
pub struct Store {
    readers: Arc<Readers>,
    writer: StoreWriter,
    writer_thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// Where readers get their connections.
enum Readers {
    Sqlite {
        path: PathBuf,
        pool: Mutex<Vec<Connection>>,
    },
    Postgres {
        config: Box<postgres::Config>,
        pool: Mutex<Vec<pg::PgSession>>,
    },
}

/// Readers kept open between reads.
const READER_POOL: usize = 8;

impl Store {
    /// Opens (creating if needed) the SQLite store in `data_dir` and brings its schema up to
    /// date.
    pub fn open(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let mut conn = writer::open_write_connection(&path)?;
        migrate(&mut conn, &path)?;
        let id_secret = id_secret(&Conn::sqlite(&conn))?;
        // The first store a process opens is its council (`council::read::ids`).
        let _ = PROCESS_ID_SECRET.set(id_secret);
        let (writer, handle) = StoreWriter::spawn(Session::Sqlite(conn), None)?;
        Ok(Store {
            readers: Arc::new(Readers::Sqlite {
                path,
                pool: Mutex::new(Vec::new()),
            }),
            writer,
            writer_thread: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// Opens the PostgreSQL store shared by every node of a council, bringing its schema up
    /// to date (one node at a time), and follows the commits of the other nodes.
    pub fn open_postgres(config: &postgres::Config) -> Result<Store> {
        let mut session = pg::PgSession::connect(config)?;
        pg::migrate(&mut session)?;
        let id_secret = session.read(id_secret)?;
        let _ = PROCESS_ID_SECRET.set(id_secret);
        let head = Arc::new(watch::channel(Seq(0)).0);
        let (writer, handle) =
            StoreWriter::spawn(Session::Postgres(Box::new(session)), Some(head.clone()))?;
        let head_tx = head;
        let follow = config.clone();
        std::thread::Builder::new()
            .name("store-follow".into())
            .spawn(move || pg::follow_head(follow, head_tx))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the commit follower: {e}")))?;
        Ok(Store {
            readers: Arc::new(Readers::Postgres {
                config: Box::new(config.clone()),
                pool: Mutex::new(Vec::new()),
            }),
            writer,
            writer_thread: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// Which engine this store runs on.
    pub fn backend(&self) -> Backend {
        match *self.readers {
            Readers::Sqlite { .. } => Backend::Sqlite,
            Readers::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The SQLite database file (None on PostgreSQL).
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &*self.readers {
            Readers::Sqlite { path, .. } => Some(path),
            Readers::Postgres { .. } => None,
        }
    }

    pub fn writer(&self) -> &StoreWriter {
        &self.writer
    }

    /// Runs `f` on a read-only connection from the pool (blocking; use
    /// [`Store::read_async`] from async code).
    pub(in crate::engine) fn read<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        match &*self.readers {
            Readers::Sqlite { path, pool } => {
                let conn = pool.lock().expect("reader pool poisoned").pop();
                let conn = match conn {
                    Some(c) => c,
                    None => {
                        let c = Connection::open_with_flags(
                            path,
                            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                        )?;
                        c.busy_timeout(std::time::Duration::from_secs(10))?;
                        c
                    }
                };
                let out = f(&Conn::sqlite(&conn));
                let mut pool = pool.lock().expect("reader pool poisoned");
                if pool.len() < READER_POOL {
                    pool.push(conn);
                }
                out
            }
            Readers::Postgres { config, pool } => {
                // The blocking client runs a small runtime of its own, which must not start
                // on a thread driving async tasks: leave the worker first if on one.
                let run = || {
                    let session = pool.lock().expect("reader pool poisoned").pop();
                    let mut session = match session {
                        Some(s) => s,
                        None => pg::PgSession::connect(config)
                            .map_err(|e| StoreError::Unavailable(e.to_string()))?,
                    };
                    let out = session.read(f).map_err(unavailable);
                    if !session.is_closed() {
                        let mut pool = pool.lock().expect("reader pool poisoned");
                        if pool.len() < READER_POOL {
                            pool.push(session);
                        }
                    }
                    out
                };
                match tokio::runtime::Handle::try_current() {
                    Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                        tokio::task::block_in_place(run)
                    }
                    _ => run(),
                }
            }
        }
    }

    /// [`Store::read`] on the blocking thread pool.
    pub(in crate::engine) async fn read_async<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read(f))
            .await
            .map_err(|e| StoreError::Corrupt(format!("reader task failed: {e}")))?
    }

    /// Stops the writer after it has committed everything queued. Other clones of the
    /// store must be dropped first for the thread to end; this waits for it.
    pub fn close(self) {
        // Only the last handle can wait for the thread: the others still hold writers.
        let handle = if Arc::strong_count(&self.writer_thread) == 1 {
            self.writer_thread.lock().expect("poisoned").take()
        } else {
            None
        };
        drop(self.writer);
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// A connection-level failure of PostgreSQL is "unavailable" (503), as a full disk is.
fn unavailable(e: StoreError) -> StoreError {
    match e {
        StoreError::Db(db) if db.is_unavailable() => StoreError::Unavailable(db.to_string()),
        other => other,
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = schema::MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known,
        });
    }
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if i + 1 == schema::TAXII_LOG_VERSION {
            taxii::backfill(&Conn::sqlite(&tx))?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "Applied store migration.");
    }
    bulk::ensure_sqlite(conn)
}

static PROCESS_ID_SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();

/// The id secret of the first store this process opened: the key of member-facing ids for
/// every view built in the process, whether or not it runs a read path (CLI exports, digests).
pub(in crate::engine) fn process_id_secret() -> Option<[u8; 32]> {
    PROCESS_ID_SECRET.get().copied()
}

/// Reads the id secret (migration 7).
pub(in crate::engine) fn id_secret(conn: &Conn) -> Result<[u8; 32]> {
    let hex_value: String = conn.query_row(
        "SELECT value FROM meta WHERE key = 'id_secret'",
        db::params![],
        |r| r.get(0),
    )?;
    let bytes = hex::decode(hex_value.trim())
        .map_err(|e| StoreError::Corrupt(format!("id secret: {e}")))?;
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("id secret: not 32 bytes".into()))
}

/// Time stamps are stored as RFC 3339 text in UTC, which sorts correctly as text.
pub(crate) fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) fn parse_ts(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad time stamp {s:?}: {e}")))
}

/// [`ts`] for modules outside the store that keep their own tables (council).
pub fn ts_string(t: chrono::DateTime<chrono::Utc>) -> String {
    ts(t)
}

/// [`parse_ts`] for modules outside the store.
pub fn parse_ts_string(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    parse_ts(s)
}

/// An in-memory database with every migration applied, for tests of modules that keep
/// tables in the store.
#[cfg(test)]
pub(in crate::engine) fn open_in_memory() -> Result<Conn<'static>> {
    let mut conn = Connection::open_in_memory()?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn, Path::new(":memory:"))?;
    Ok(Conn::sqlite_owned(conn))
}
