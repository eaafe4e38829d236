//! Indexing beside a bulk writer: `musubi import` stores on one thread (SQLite's single
//! writer) while this follows the store's head on another, so that the index is current
//! when the import ends instead of being caught up by the next daemon start.
//!
//! Why: after an import of a million reports the daemon's first start used to spend most of
//! its time indexing them (one core), then building the graph; the import's writer thread
//! keeps one core busy and left the other idle. Indexing what is committed while the rest
//! is stored uses that core. Nothing else changes: the index still records the last sequence
//! number in each commit, so a follower that stops early (an error, Ctrl-C, a killed
//! process) leaves an index that the daemon catches up from where it stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{IndexError, Indexer, ReportIndex};
use crate::store::Store;

/// How long the follower waits when it found nothing new (the writer's groups commit
/// every few milliseconds under an import; waiting longer only delays the last batch).
const IDLE: Duration = Duration::from_millis(50);

/// A thread indexing what the store commits until [`Alongside::finish`].
pub struct Alongside {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<usize, IndexError>>,
}

impl Alongside {
    /// Starts following `store` into `index`, or `None` when another process (a running
    /// daemon) holds the index's writer: that process indexes the import itself.
    pub fn start(index: &ReportIndex, store: Store) -> Result<Option<Alongside>, IndexError> {
        let mut indexer = match index.indexer() {
            Ok(indexer) => indexer,
            Err(IndexError::Locked) => return Ok(None),
            Err(e) => return Err(e),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("index-alongside".into())
            .spawn(move || follow(&mut indexer, &store, &stopping))
            .map_err(IndexError::Thread)?;
        Ok(Some(Alongside { stop, thread }))
    }

    /// Tells the follower that everything is stored: it indexes what is left and commits
    /// while the caller goes on. A bulk import calls this before it builds the store's
    /// indexes again, so that the index's last commit (0.4 s after 2,000 reports of 100
    /// values) and that build (0.25 s) share the two cores instead of following each other.
    pub fn stored_all(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Indexes what is left (the caller has stored everything), commits, and returns how
    /// many reports this follower indexed.
    pub fn finish(self) -> Result<usize, IndexError> {
        self.stored_all();
        self.thread
            .join()
            .unwrap_or_else(|_| Err(IndexError::Store("the indexing thread panicked".into())))
    }
}

/// Adds what the store holds beyond the indexer, committing as [`super::catch_up_with`]
/// does, until told to stop; then adds the rest and commits.
fn follow(indexer: &mut Indexer, store: &Store, stop: &AtomicBool) -> Result<usize, IndexError> {
    let mut added = 0;
    let mut since_commit = 0;
    loop {
        // Read the flag before the store: a stop seen here means everything was stored
        // before this read began, so one more empty read is the end.
        let last_round = stop.load(Ordering::Acquire);
        let n = super::add_after(indexer, store)?;
        added += n;
        since_commit += n;
        if since_commit >= super::CATCH_UP_COMMIT_EVERY {
            indexer.commit()?;
            since_commit = 0;
        }
        if n == 0 {
            if last_round {
                break;
            }
            std::thread::sleep(IDLE);
        }
    }
    indexer.commit()?;
    Ok(added)
}
