//! What every handler shares.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use super::metrics::Metrics;
use crate::config::Config;
use crate::correlate::CampaignSet;
use crate::index::ReportIndex;
use crate::model::Seq;
use crate::store::Store;

/// Shared state of the HTTP server. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The one read path: every handler that shows data asks it for views.
    pub read: crate::council::ReadPath,
    pub store: Store,
    pub index: Arc<ReportIndex>,
    /// The latest campaign snapshot, swapped whole by the correlator.
    pub campaigns: watch::Receiver<Arc<CampaignSet>>,
    /// The last store sequence number the index has committed.
    pub indexed: watch::Receiver<Seq>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    pub started: Instant,
    /// Per-member request budgets.
    pub limiter: Arc<super::limit::RateLimiter>,
}

impl AppState {
    pub fn campaigns(&self) -> Arc<CampaignSet> {
        self.campaigns.borrow().clone()
    }
}
