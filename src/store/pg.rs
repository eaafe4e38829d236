//! The PostgreSQL side of the store: sessions that reconnect by themselves, read-only
//! snapshots for readers, and the listener that tells this node when another node committed.
//!
//! The sync `postgres` crate (the blocking face of `tokio-postgres`) fits the store's shape:
//! the writer is a thread that owns one session, and readers run on the blocking pool. It
//! links no SQLite of its own (sqlx would, beside rusqlite's), and its statements are cached
//! per session by the SQLite-dialect text the store's modules write ([`super::db`]).

use std::time::Duration;

use tokio::sync::watch;

use super::db::{Conn, DbError, PgTx, StatementCache};
use super::error::{Result, StoreError};
use crate::model::Seq;

/// The channel a writer notifies on commit and every node listens to.
pub const CHANNEL: &str = "musubi_log";

/// How often a node looks at the log head when no notification came (the fallback when
/// `LISTEN` is lost, and the bound on how stale a follower can be).
pub const POLL: Duration = Duration::from_secs(1);

/// How long a connection attempt may take before the store says the database is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One PostgreSQL session with its prepared statements; reconnects when the server went
/// away (a restart, a failover of the database), dropping statements prepared on the old one.
pub(crate) struct PgSession {
    config: postgres::Config,
    client: Option<postgres::Client>,
    cache: StatementCache,
}

impl PgSession {
    pub(crate) fn connect(config: &postgres::Config) -> std::result::Result<PgSession, DbError> {
        let mut session = PgSession {
            config: with_timeout(config),
            client: None,
            cache: StatementCache::default(),
        };
        session.ensure_connected()?;
        Ok(session)
    }

    /// Opens the session again if it was closed.
    pub(crate) fn ensure_connected(&mut self) -> std::result::Result<(), DbError> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        self.client = None;
        self.cache = StatementCache::default();
        self.client = Some(self.config.connect(postgres::NoTls)?);
        Ok(())
    }

    /// The client and the statement cache, borrowed apart (a transaction holds the first).
    pub(crate) fn parts(&mut self) -> (&mut postgres::Client, &mut StatementCache) {
        (
            self.client.as_mut().expect("session connected before use"),
            &mut self.cache,
        )
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(|c| c.is_closed())
    }

    /// Runs `f` in a read-only snapshot: every query of `f` sees the same committed state, as
    /// a SQLite reader in WAL mode does.
    pub(crate) fn read<T>(&mut self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        self.ensure_connected()?;
        let (client, cache) = self.parts();
        let tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let mut tx = PgTx { tx, cache };
        let out = f(&Conn::postgres(&mut tx));
        match &out {
            Ok(_) => tx.tx.commit()?,
            Err(_) => {
                let _ = tx.tx.rollback();
            }
        }
        out
    }
}

fn with_timeout(config: &postgres::Config) -> postgres::Config {
    let mut config = config.clone();
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name("musubi");
    config
}

/// Reads `musubi.toml`'s `[store] url` with the password given apart (never in the file).
pub fn config(url: &str, password: Option<&str>) -> Result<postgres::Config> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Conflict(format!("store url {url:?}: {e}")))?;
    if let Some(p) = password {
        config.password(p);
    }
    Ok(config)
}

/// After a commit: raises the log head to `seq` if it is higher (a node's own commit and
/// another node's notification may arrive in either order) and wakes every projection even
/// when it is not. A commit without a new report — a pin, a sighting, a release — changes
/// what the projections show too.
pub(crate) fn committed(head: &watch::Sender<Seq>, seq: Seq) {
    head.send_modify(|now| *now = (*now).max(seq));
}

/// Raises the log head to `seq` if it is higher, waking projections only then (a poll that
/// found nothing new).
fn raise(head: &watch::Sender<Seq>, seq: Seq) {
    head.send_if_modified(|now| {
        let newer = seq > *now;
        if newer {
            *now = seq;
        }
        newer
    });
}

/// Migrates the shared database (one node at a time: `schema_pg` serialises the entries
/// with an advisory lock).
pub(crate) fn migrate(session: &mut PgSession) -> Result<()> {
    use super::schema_pg::{self, PgSchemaError};
    session.ensure_connected()?;
    let database = session
        .config
        .get_dbname()
        .unwrap_or("the PostgreSQL database")
        .to_string();
    let (client, _) = session.parts();
    schema_pg::migrate_pg(client).map(|_| ()).map_err(|e| match e {
        PgSchemaError::TooNew { found, known } => StoreError::TooNew {
            path: format!("{database} (PostgreSQL)").into(),
            found,
            known,
        },
        PgSchemaError::Postgres(e) => e.into(),
        PgSchemaError::Migration { version, error } => {
            tracing::error!(version, error = %schema_pg::pg_message(&error), "A PostgreSQL migration failed.");
            error.into()
        }
    })
}

/// Follows the log head of the shared database: wakes on `NOTIFY` from any node's writer
/// and looks every [`POLL`] in any case, raising `head` to the highest committed seq. Runs
/// on a thread of its own until `head` has no receivers left.
pub(crate) fn follow_head(config: postgres::Config, head: std::sync::Arc<watch::Sender<Seq>>) {
    let config = with_timeout(&config);
    while !head.is_closed() {
        match config.connect(postgres::NoTls) {
            Ok(mut client) => {
                if let Err(e) = listen(&mut client, &head) {
                    tracing::warn!(error = %e, "Lost the database's commit notifications; reconnecting.");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot reach the database to follow commits; retrying.");
            }
        }
        std::thread::sleep(POLL);
    }
}

fn listen(client: &mut postgres::Client, head: &watch::Sender<Seq>) -> Result<()> {
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    // The first look after (re)connecting wakes the projections: commits may have been
    // missed while the connection was down.
    let mut notified = true;
    loop {
        let row = client.query_one(
            "SELECT CAST(coalesce(max(seq), 0) AS BIGINT) FROM reports",
            &[],
        )?;
        let seq = Seq(row.get::<_, i64>(0).max(0) as u64);
        if notified {
            committed(head, seq);
        } else {
            raise(head, seq);
        }
        if head.is_closed() {
            return Ok(());
        }
        // Wait for a notification (or the poll interval), then drain the others queued.
        use postgres::fallible_iterator::FallibleIterator;
        notified = client.notifications().timeout_iter(POLL).next()?.is_some();
        if notified {
            while client.notifications().iter().next()?.is_some() {}
        }
    }
}
