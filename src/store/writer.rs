//! The single writer: group commit with acknowledgement after fsync.
//!
//! All writes go through one thread that owns the only read-write connection. Jobs queue in
//! a bounded channel; the thread takes every job waiting (up to [`MAX_GROUP`]), runs each in
//! its own savepoint inside one transaction, commits once with `synchronous=FULL`, and only
//! then answers each caller. A job that fails is rolled back alone; the others commit.
//! Many submissions thus share one fsync, which is what makes durable acknowledgement fast.
//!
//! On PostgreSQL the writer works the same way on one session of its own, and each group
//! first takes a transaction-level advisory lock ([`LOG_LOCK`]): the writers of every node
//! commit one group at a time, so report sequence numbers are given in commit order and a
//! projection reading "everything after seq N" never passes a number still uncommitted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, watch};

use super::db::{Conn, DbError, PgTx};
use super::error::{Result, StoreError};
use super::pg::PgSession;
use crate::model::Seq;

/// The advisory lock every PostgreSQL writer holds for the length of a group's transaction.
pub const LOG_LOCK: i64 = 0x6d75_7375_6269_0001;

/// How many jobs may wait for the writer before callers are made to wait (back-pressure).
pub const QUEUE_CAPACITY: usize = 4096;
/// The most jobs committed in one transaction.
pub const MAX_GROUP: usize = 1024;

type Completion = Box<dyn FnOnce(Result<()>) + Send>;
type Job = Box<dyn FnOnce(&Conn) -> (bool, Completion) + Send>;

/// A typed write, built by the engine module that owns the tables it touches (council
/// commands, sources). Code outside `crate::engine` can queue an `Op` with
/// [`StoreWriter::run`] but never holds a connection, so it cannot read around the
/// council's read path.
pub struct Op<T>(Box<OpFn<T>>);

/// The work of an [`Op`]: run on the writer's connection inside the group's transaction.
type OpFn<T> = dyn FnOnce(&Conn) -> Result<T> + Send;

impl<T> Op<T> {
    pub(in crate::engine) fn new(f: impl FnOnce(&Conn) -> Result<T> + Send + 'static) -> Op<T> {
        Op(Box::new(f))
    }
}

/// A handle to the writer thread. Cheap to clone; the thread stops when every handle is
/// dropped, after finishing what was queued.
#[derive(Clone)]
pub struct StoreWriter {
    jobs: mpsc::Sender<Job>,
    committed: watch::Receiver<Seq>,
}

impl StoreWriter {
    /// Starts the writer thread on `session` (already migrated).
    /// `head` is shared with whatever else raises the log head (on PostgreSQL, the follower
    /// of other nodes' commits); the writer makes one if it is the only source.
    pub(crate) fn spawn(
        mut session: Session,
        head: Option<Arc<watch::Sender<Seq>>>,
    ) -> Result<(StoreWriter, JoinHandle<()>)> {
        let start = session.last_seq()?;
        let (jobs_tx, jobs_rx) = mpsc::channel(QUEUE_CAPACITY);
        let seq_tx = head.unwrap_or_else(|| Arc::new(watch::channel(start).0));
        seq_tx.send_modify(|now| *now = (*now).max(start));
        let seq_rx = seq_tx.subscribe();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(session, jobs_rx, seq_tx))
            .map_err(|e| StoreError::Corrupt(format!("cannot start writer thread: {e}")))?;
        Ok((
            StoreWriter {
                jobs: jobs_tx,
                committed: seq_rx,
            },
            handle,
        ))
    }

    /// The sequence number of the last report made durable; changes after every commit.
    pub fn committed(&self) -> watch::Receiver<Seq> {
        self.committed.clone()
    }

    /// Runs `f` in the next group commit and returns its result once it is durable.
    pub(in crate::engine) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn) -> Result<T> + Send + 'static,
    {
        let (job, rx) = make_job(f);
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Queues `f` for the next group commit without waiting for it (callers outside the
    /// async runtime). Wait on the returned [`Pending`] for its result once durable. A bulk
    /// import keeps a few files queued so that the writer commits them in one group.
    pub(in crate::engine) fn enqueue_blocking<T, F>(&self, f: F) -> Result<Pending<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Conn) -> Result<T> + Send + 'static,
    {
        let (job, rx) = make_job(f);
        self.jobs
            .blocking_send(job)
            .map_err(|_| StoreError::WriterGone)?;
        Ok(Pending(rx))
    }

    /// Runs a typed write in the next group commit; returns once it is durable.
    pub async fn run<T: Send + 'static>(&self, op: Op<T>) -> Result<T> {
        self.write(op.0).await
    }

    /// [`StoreWriter::run`] for callers outside the async runtime (the CLI).
    pub fn run_blocking<T: Send + 'static>(&self, op: Op<T>) -> Result<T> {
        self.write_blocking(op.0)
    }

    /// [`StoreWriter::write`] for callers outside the async runtime (the CLI).
    pub(in crate::engine) fn write_blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn) -> Result<T> + Send + 'static,
    {
        self.enqueue_blocking(f)?.wait()
    }
}

/// A write queued with [`StoreWriter::enqueue_blocking`].
pub struct Pending<T>(oneshot::Receiver<Result<T>>);

impl<T> Pending<T> {
    /// Blocks until the write is durable (or failed).
    pub fn wait(self) -> Result<T> {
        self.0.blocking_recv().map_err(|_| StoreError::WriterGone)?
    }
}

fn make_job<T, F>(f: F) -> (Job, oneshot::Receiver<Result<T>>)
where
    T: Send + 'static,
    F: FnOnce(&Conn) -> Result<T> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move |conn| match f(conn) {
        Ok(value) => (
            true,
            Box::new(move |committed: Result<()>| {
                let _ = tx.send(committed.map(|()| value));
            }),
        ),
        Err(e) => (
            false,
            Box::new(move |committed: Result<()>| {
                // A storage failure of the whole group is the more useful answer.
                let _ = tx.send(Err(committed.err().unwrap_or(e)));
            }),
        ),
    });
    (job, rx)
}

/// The writer's own connection: a SQLite read-write connection or a PostgreSQL session.
pub(crate) enum Session {
    Sqlite(Connection),
    Postgres(Box<PgSession>),
}

impl Session {
    fn last_seq(&mut self) -> Result<Seq> {
        match self {
            Session::Sqlite(conn) => super::reports::last_seq(&Conn::sqlite(conn)),
            Session::Postgres(pg) => pg.read(super::reports::last_seq),
        }
    }
}

fn run(mut session: Session, mut jobs: mpsc::Receiver<Job>, committed: Arc<watch::Sender<Seq>>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let completions = match &mut session {
            Session::Sqlite(conn) => commit_sqlite(conn, &mut batch),
            Session::Postgres(pg) => commit_postgres(pg, &mut batch),
        };
        match completions {
            Ok(done) => {
                if let Ok(seq) = session.last_seq() {
                    super::pg::committed(&committed, seq);
                }
                for complete in done {
                    complete(Ok(()));
                }
            }
            Err((e, done)) => {
                let read_only = match &session {
                    Session::Sqlite(conn) => read_only_dir(conn, &e),
                    Session::Postgres(_) => None,
                };
                tracing::error!(error = %e, read_only = read_only.is_some(), jobs = done.len(), "Group commit failed; nothing of it was acknowledged.");
                for complete in done {
                    complete(Err(match &read_only {
                        Some(path) => StoreError::ReadOnly { path: path.clone() },
                        None => storage_error(&e),
                    }));
                }
            }
        }
    }
    tracing::debug!("Store writer stopped.");
}

type Done = Vec<Completion>;

/// The completions of jobs that will not run: each is told the commit failed.
fn unrun(batch: &mut Vec<Job>) -> Done {
    batch
        .drain(..)
        .map(|job| fail_without_running(job).1)
        .collect()
}

/// Every job of a group that cannot start fails with the storage error, untouched.
fn fail_all(batch: &mut Vec<Job>, e: DbError) -> std::result::Result<Done, (DbError, Done)> {
    Err((e, unrun(batch)))
}

fn commit_sqlite(
    conn: &mut Connection,
    batch: &mut Vec<Job>,
) -> std::result::Result<Done, (DbError, Done)> {
    let mut done: Done = Vec::with_capacity(batch.len());
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(batch, e.into()),
    };
    // A job alone in its group needs no savepoint: the transaction is all-or-nothing for
    // it already. And a savepoint makes a big job cost the square of its size: each of its
    // statements releases a statement savepoint by truncating SQLite's in-memory
    // sub-journal from its start, and inside a savepoint that sub-journal holds every page
    // the job touched so far (a leader recording a million campaign assignments at its
    // first start is such a job).
    if batch.len() == 1 {
        let job = batch.pop().expect("one job");
        let (ok, complete) = job(&Conn::sqlite(&tx));
        if !ok {
            let _ = tx.rollback();
            return Ok(vec![complete]);
        }
        return match tx.commit() {
            Ok(()) => Ok(vec![complete]),
            Err(e) => Err((e.into(), vec![complete])),
        };
    }
    for job in batch.drain(..) {
        let sp = match tx.savepoint() {
            Ok(sp) => sp,
            Err(e) => {
                let (_, complete) = fail_without_running(job);
                complete(Err(storage_error(&e.into())));
                continue;
            }
        };
        let (ok, complete) = job(&Conn::sqlite(&sp));
        if ok {
            if let Err(e) = sp.commit() {
                tracing::warn!(error = %e, "Savepoint release failed.");
            }
        } else {
            let mut sp = sp;
            let _ = sp.rollback();
        }
        done.push(complete);
    }
    match tx.commit() {
        Ok(()) => Ok(done),
        Err(e) => Err((e.into(), done)),
    }
}

fn commit_postgres(
    pg: &mut PgSession,
    batch: &mut Vec<Job>,
) -> std::result::Result<Done, (DbError, Done)> {
    // A session lost with the server (restart, network) is opened again here, once per
    // group: while the server is down every group fails at once and nothing is acknowledged.
    if let Err(e) = pg.ensure_connected() {
        return fail_all(batch, e);
    }
    let (client, cache) = pg.parts();
    let tx = match client.transaction() {
        Ok(tx) => tx,
        Err(e) => return fail_all(batch, e.into()),
    };
    let mut tx = PgTx { tx, cache };
    if let Err(e) = tx
        .tx
        .execute("SELECT pg_advisory_xact_lock($1)", &[&LOG_LOCK])
    {
        return fail_all(batch, e.into());
    }
    let mut done: Done = Vec::with_capacity(batch.len());
    let mut jobs = std::mem::take(batch).into_iter();
    while let Some(job) = jobs.next() {
        let mut sp = match tx.savepoint() {
            Ok(sp) => sp,
            Err(e) => {
                // The transaction itself is broken: this job and the rest fail with it.
                done.push(fail_without_running(job).1);
                done.extend(jobs.map(|job| fail_without_running(job).1));
                return Err((e, done));
            }
        };
        let (ok, complete) = job(&Conn::postgres(&mut sp));
        let ended = if ok { sp.tx.commit() } else { sp.tx.rollback() };
        done.push(complete);
        if let Err(e) = ended {
            done.extend(jobs.map(|job| fail_without_running(job).1));
            return Err((e.into(), done));
        }
    }
    // Other nodes wake on this (delivered only if the transaction commits).
    if let Err(e) = tx
        .tx
        .batch_execute(&format!("NOTIFY {}", super::pg::CHANNEL))
    {
        return Err((e.into(), done));
    }
    match tx.tx.commit() {
        Ok(()) => Ok(done),
        Err(e) => Err((e.into(), done)),
    }
}

/// A job that cannot run (the transaction did not start) is completed with an error without
/// touching the database: we run it against nothing by giving it a closed-over failure.
fn fail_without_running(job: Job) -> (bool, Completion) {
    // Jobs are opaque closures; running them is the only way to get their completion. An
    // in-memory connection gives them a harmless place to run; the result is discarded and
    // the caller is told the commit failed.
    match Connection::open_in_memory() {
        Ok(scratch) => {
            let (_, complete) = job(&Conn::sqlite(&scratch));
            (false, complete)
        }
        Err(_) => (false, Box::new(|_| {})),
    }
}

/// The data directory, when a commit failed because it is read-only (mounted read-only, or
/// remounted read-only by the kernel after a disk error). SQLite reports EROFS on a write
/// as a generic I/O error, so the database file is probed: opening it for writing fails
/// with EROFS exactly when its file system is read-only.
fn read_only_dir(conn: &Connection, e: &DbError) -> Option<PathBuf> {
    use rusqlite::ErrorCode::{CannotOpen, ReadOnly, SystemIoFailure};
    let DbError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) = e else {
        return None;
    };
    if !matches!(failure.code, ReadOnly | SystemIoFailure | CannotOpen) {
        return None;
    }
    let db = PathBuf::from(conn.path().filter(|p| !p.is_empty())?);
    let dir = db.parent().map(Path::to_path_buf).unwrap_or_default();
    match std::fs::OpenOptions::new().write(true).open(&db) {
        Err(io) if io.kind() == std::io::ErrorKind::ReadOnlyFilesystem => Some(dir),
        _ if failure.code == ReadOnly => Some(dir),
        _ => None,
    }
}

/// A copy of a commit failure for each caller of the group.
fn storage_error(e: &DbError) -> StoreError {
    match e {
        DbError::Sqlite(rusqlite::Error::SqliteFailure(code, msg)) => StoreError::Db(
            DbError::Sqlite(rusqlite::Error::SqliteFailure(*code, msg.clone())),
        ),
        DbError::Postgres(_) => StoreError::Unavailable(e.to_string()),
        other => StoreError::Corrupt(format!("commit failed: {other}")),
    }
}

/// Opens the read-write connection the writer will own.
pub(crate) fn open_write_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    super::configure(&conn)?;
    // 64 MiB of page cache instead of SQLite's 2 MiB: the observable index is inserted into
    // in value order, not seq order, and a bulk import touches its pages all over.
    conn.pragma_update(None, "cache_size", -64 * 1024)?;
    // Each job runs in a savepoint, whose journal is a temporary file by default: a bulk
    // import would write every page it touches twice more. Keep it in memory.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Enough cached statements for every insert path the writer runs in one group.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::super::{Store, StoreError, reports};
    use crate::model::{Origin, ReportDraft, Tlp};

    /// Inserts one report titled `title`, then fails if `fail`.
    fn insert(store: &Store, title: &str, fail: bool) -> super::Pending<()> {
        let title = title.to_string();
        store
            .writer()
            .enqueue_blocking(move |conn| {
                let origin = Origin::FeedItem { feed: "f".into() };
                let draft = ReportDraft::new(title, Tlp::Green);
                reports::insert(conn, &origin, &draft, chrono::Utc::now())?;
                if fail {
                    return Err(StoreError::Corrupt("the job fails after writing".into()));
                }
                Ok(())
            })
            .unwrap()
    }

    fn stored(store: &Store) -> i64 {
        store
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT count(*) FROM reports",
                    super::super::db::params![],
                    |r| r.get(0),
                )?)
            })
            .unwrap()
    }

    /// A job that fails leaves nothing behind, whether it is alone in its group (no
    /// savepoint: the transaction is rolled back) or shares it (its savepoint is).
    #[test]
    fn a_failing_job_leaves_nothing_alone_or_in_a_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(insert(&store, "alone", true).wait().is_err());
        assert_eq!(stored(&store), 0);

        // Hold the writer so that the next three queue up and commit as one group.
        let (hold, release) = std::sync::mpsc::channel::<()>();
        let held = store
            .writer()
            .enqueue_blocking(move |_| {
                let _ = release.recv();
                Ok(())
            })
            .unwrap();
        let group = [
            insert(&store, "a", false),
            insert(&store, "b", true),
            insert(&store, "c", false),
        ];
        hold.send(()).unwrap();
        held.wait().unwrap();
        let outcomes: Vec<bool> = group.into_iter().map(|p| p.wait().is_ok()).collect();
        assert_eq!(outcomes, [true, false, true]);
        assert_eq!(stored(&store), 2);
    }
}
