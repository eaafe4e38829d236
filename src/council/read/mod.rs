//! The one read path: the only code that turns what the store holds into what a viewer
//! receives.
//!
//! Every output — API response, search hit, console page, digest, alert, webhook, TAXII
//! object, export, statistics, health — asks a [`ReadPath`] for *views* computed for one
//! [`Viewer`], and never sees a store row. The store's readers are visible only inside
//! `crate::engine` (see `lib.rs`), which holds the store, the projections and the
//! council; `outputs`, `http` and the CLI live outside it, so reading around this module
//! is a compile error, not a convention.
//!
//! Rules every function here keeps (the leak harness in `tests/it/leak_harness.rs`
//! checks them from outside):
//! - visibility is decided per report by [`crate::council::policy::decide`], *before*
//!   ordering, limits and counts, so no answer depends on what the viewer cannot see;
//! - "not found" is the same for hidden and absent;
//! - a provider is named to the secretariat only.
//!
//! One file per kind of output, each adding its methods to [`ReadPath`].
//! Every campaign view is built from what `load` reads: one loader, batch queries for
//! many campaigns at once.

mod advisories;
mod alerts;
mod auth;
mod campaigns;
mod console;
mod council;
mod exports;
mod feeds;
mod health;
pub mod ids;
mod inquiries;
mod ledger;
mod load;
mod mail;
mod reports;
mod search;
mod secretariat;
mod stats;
mod taxii;

use std::sync::Arc;

use tokio::sync::watch;

pub use super::policy::Viewer;
use crate::correlate::CampaignSet;
use crate::index::ReportIndex;
use crate::store::{self, Store};
pub use advisories::{AdvisoryQuery, AdvisoryView};
pub use alerts::{
    AlertOutbox, AlertPass, AlertWatch, Batch, ClaimedAlerts, Reason, Trigger, gather,
};
pub use auth::{Credential, Principal};
pub use campaigns::Page;
pub use console::{CampaignPage, CampaignReview, QueueRow};
pub(in crate::engine) use council::sees_campaign;
pub use council::{OpenRequest, Refused, RequestWithProgress};
pub use exports::CampaignExport;
pub use feeds::FeedView;
pub use health::{Backlog, Progress};
pub use ids::{ShownCampaignId, ShownReportId, ShownSightingId};
pub use ledger::{LedgerView, ShareOverview, WAITING_LISTED, WaitingCampaign};
pub use mail::{AlertBatch, DigestView, DigestWindow, MailFailureView, MailMember, MailRecipient};
pub use search::{SearchError, SearchHit, visibility_depends_on_release, visibility_filter};
pub use taxii::{TaxiiObject, TaxiiQuery};

/// What a read failed on. Visibility never produces an error: what the viewer may not see
/// is "not found" (`Ok(None)`), exactly as what does not exist.
pub type Result<T> = std::result::Result<T, store::StoreError>;

/// The read side of the council: the store's readers, the latest campaign snapshot and the
/// search index, reachable only through methods that take a [`Viewer`]. Cheap to clone.
#[derive(Clone)]
pub struct ReadPath {
    store: Store,
    campaigns: watch::Receiver<Arc<CampaignSet>>,
    index: Option<Arc<ReportIndex>>,
}

impl ReadPath {
    /// The read path of a running daemon: the correlator's snapshots and the index.
    pub fn new(
        store: Store,
        campaigns: watch::Receiver<Arc<CampaignSet>>,
        index: Option<Arc<ReportIndex>>,
    ) -> ReadPath {
        ReadPath {
            store,
            campaigns,
            index,
        }
    }

    /// The read path over one campaign snapshot (CLI commands, which run no correlator).
    pub fn snapshot(store: Store, set: Arc<CampaignSet>, index: Option<Arc<ReportIndex>>) -> Self {
        let (_tx, rx) = watch::channel(set);
        ReadPath::new(store, rx, index)
    }

    /// The latest campaign snapshot.
    pub(in crate::engine) fn campaign_set(&self) -> Arc<CampaignSet> {
        self.campaigns.borrow().clone()
    }

    /// Runs `f` on a store reader on the blocking pool.
    pub(in crate::engine) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&crate::store::db::Conn) -> Result<T> + Send + 'static,
    {
        self.store.read_async(f).await
    }
}
