//! The daemon's progress as a viewer may learn it.
//!
//! The store's sequence number and the number of campaigns count every report, hidden
//! ones included: they are operators' figures, for the secretariat only. Anyone else may
//! learn one bit — whether the daemon has caught up with what it held when it started —
//! which does not move with anything stored later.

use crate::model::Seq;

use super::{ReadPath, Viewer};

/// Where the store and the correlation snapshot stand (secretariat only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The last report made durable.
    pub committed_seq: u64,
    /// The last report applied to the correlation graph.
    pub correlated_seq: u64,
    /// Campaigns in the current snapshot.
    pub campaigns: u64,
}

/// The store's position when the daemon started serving: the backlog to catch up with
/// before it is ready. Opaque, so that it cannot be shown to anyone.
#[derive(Debug, Clone, Copy)]
pub struct Backlog(Seq);

impl ReadPath {
    /// The operators' figures, for the secretariat; `None` for anyone else.
    pub fn progress(&self, viewer: &Viewer) -> Option<Progress> {
        viewer.is_secretariat().then(|| self.progress_unchecked())
    }

    fn progress_unchecked(&self) -> Progress {
        let set = self.campaign_set();
        Progress {
            committed_seq: self.store.writer().committed().borrow().0,
            correlated_seq: set.applied.0,
            campaigns: set.campaigns.len() as u64,
        }
    }

    /// The last report the store itself holds, read now (secretariat only). On PostgreSQL
    /// other nodes commit too: how far this node's [`Progress::committed_seq`] is behind it
    /// is the node's store lag (at most about a second when commit notifications flow).
    pub async fn store_head(&self, viewer: &Viewer) -> super::Result<Option<u64>> {
        if !viewer.is_secretariat() {
            return Ok(None);
        }
        let seq = self
            .store
            .read_async(crate::store::reports::last_seq)
            .await?;
        Ok(Some(seq.0))
    }

    /// The backlog as of now (call once, when the daemon starts serving).
    pub fn backlog(&self) -> Backlog {
        Backlog(*self.store.writer().committed().borrow())
    }

    /// Whether the correlation graph, and the index at `indexed`, have caught up with the
    /// backlog.
    pub fn caught_up(&self, backlog: &Backlog, indexed: Seq) -> bool {
        indexed >= backlog.0 && self.campaign_set().applied >= backlog.0
    }
}
