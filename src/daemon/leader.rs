//! Which node of a council holds the leader duties: polling feeds, sending digests, alerts
//! and webhooks, and recording campaign ids. Every node serves everything; exactly one at a
//! time does these, so that nothing is polled, sent or numbered twice.
//!
//! A node alone on its store (SQLite) is always leader ([`Leadership::solo`]). Nodes that
//! share a PostgreSQL store contend for a session-level advisory lock
//! ([`Leadership::pg_advisory_lock`]): the holder leads for as long as its session lives.
//! A killed leader's session ends with its process, PostgreSQL releases the lock, and the
//! next node that tries (each tries every second) takes over.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

pub use crate::model::Role;

/// The advisory lock key of the leader duties ("musubiLD"): one lock per database.
pub const LEADER_LOCK_KEY: i64 = 0x6d75_7375_6269_4c44;

/// How often a follower tries the lock and a leader checks its session.
pub const TRY_EVERY: Duration = Duration::from_secs(1);

/// How long a leader's session check may take before the node steps down. Longer than a
/// round trip under load, short enough that a node that cannot reach the database stops its
/// duties well before another node could take the lock over.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// This node's role as it changes: a `watch`, so that every duty sees the latest role, never
/// a backlog. Dropping it ends the lock's session (releasing the lock): drop it after the
/// duties have stopped.
pub struct Leadership {
    role: watch::Receiver<Role>,
    /// Solo: the sender, kept so that receivers never see the channel closed.
    _solo: Option<watch::Sender<Role>>,
    /// PostgreSQL: dropping the sender ends the session thread.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Leadership {
    /// Always leader: one node on its own store.
    pub fn solo() -> Leadership {
        let (tx, role) = watch::channel(Role::Leader);
        Leadership {
            role,
            _solo: Some(tx),
            stop: None,
            thread: None,
        }
    }

    /// Leader while this node holds the advisory lock `key` on a session of its own to the
    /// database `config` names. The session runs on its own thread (the `postgres` client
    /// is synchronous); the node starts as follower.
    ///
    /// While follower, the thread tries `pg_try_advisory_lock` every [`TRY_EVERY`]; while
    /// leader, it checks the session as often. Any error (the database restarted, the
    /// network is gone, the session was terminated) makes the node follower at once; the
    /// thread then reconnects and tries again.
    pub fn pg_advisory_lock(config: postgres::Config, key: i64) -> Leadership {
        let (tx, role) = watch::channel(Role::Follower);
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("musubi-leader".into())
            .spawn(move || hold_lock(config, key, tx, stopped))
            .expect("the leader thread starts");
        Leadership {
            role,
            _solo: None,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A receiver of the role (each duty takes its own).
    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// The role now.
    pub fn current(&self) -> Role {
        *self.role.borrow()
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits `d`; true if the node is stopping (the sender was dropped).
fn stopping(stop: &mpsc::Receiver<()>, d: Duration) -> bool {
    !matches!(stop.recv_timeout(d), Err(mpsc::RecvTimeoutError::Timeout))
}

fn set(tx: &watch::Sender<Role>, role: Role) {
    tx.send_if_modified(|r| std::mem::replace(r, role) != role);
}

/// The session thread of [`Leadership::pg_advisory_lock`].
fn hold_lock(
    mut config: postgres::Config,
    key: i64,
    tx: watch::Sender<Role>,
    stop: mpsc::Receiver<()>,
) {
    config.connect_timeout(CHECK_TIMEOUT * 2);
    config.application_name("musubi-leader");
    // A half-open connection is noticed by the kernel, not only by the next check.
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(5));
    // ... and by the server: if this node's machine dies (not only its process), the server
    // must end the session, and so release the lock, within seconds rather than after the
    // kernel's default keepalive (two hours). These are the server's settings for this
    // session alone.
    config.options(
        "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3 -c tcp_user_timeout=10000",
    );
    loop {
        let mut client = match config.connect(postgres::NoTls) {
            Ok(c) => c,
            Err(e) => {
                set(&tx, Role::Follower);
                tracing::warn!(error = %e, "Cannot reach the database for the leader lock; retrying.");
                if stopping(&stop, TRY_EVERY) {
                    return;
                }
                continue;
            }
        };
        loop {
            let leading = tx.borrow().is_leader();
            let outcome = if leading {
                client.is_valid(CHECK_TIMEOUT).map(|()| true)
            } else {
                client
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                    .map(|row| row.get::<_, bool>(0))
            };
            match outcome {
                Ok(true) if !leading => {
                    tracing::info!(
                        "This node is now the leader: it polls feeds, sends mail and records campaign ids."
                    );
                    set(&tx, Role::Leader);
                }
                Ok(_) => {}
                Err(e) => {
                    if leading {
                        tracing::warn!(error = %e, "Lost the leader session; stepping down at once.");
                    } else {
                        tracing::warn!(error = %e, "The leader lock session failed; reconnecting.");
                    }
                    set(&tx, Role::Follower);
                    break;
                }
            }
            if stopping(&stop, TRY_EVERY) {
                // The duties have stopped; closing the session releases the lock.
                set(&tx, Role::Follower);
                return;
            }
        }
        if stopping(&stop, TRY_EVERY) {
            return;
        }
    }
}
