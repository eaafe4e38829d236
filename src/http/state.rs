//! What every handler shares.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::config::Config;
use crate::council::{Store, StoreError};
use crate::metrics::Metrics;
use crate::model::Seq;

/// Shared state of the HTTP server. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The one read path: every handler that shows data asks it for views.
    pub read: crate::council::ReadPath,
    /// What viewers do about what they see (sightings, feedback, pins), each checked
    /// against their visibility as it is written.
    pub acts: crate::council::Acts,
    /// The store, for its writer: handlers queue typed operations (`store::Op`) built by
    /// the engine; they cannot read through it (its readers are engine-only).
    pub store: Store,
    /// The last store sequence number the index has committed.
    pub indexed: watch::Receiver<Seq>,
    /// Whether this node holds the leader duties (shown by `/healthz` and `/metrics`).
    pub role: watch::Receiver<crate::model::Role>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    pub started: Instant,
    /// Per-member request budgets.
    pub limiter: Arc<super::limit::RateLimiter>,
}

impl AppState {
    /// Stores a member's submission (each draft all-or-nothing, acknowledged once durable)
    /// and counts it: the one submission path of the API and TAXII.
    pub async fn submit(
        &self,
        member: &crate::model::MemberId,
        drafts: Vec<crate::model::ReportDraft>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::model::ReportId>, StoreError> {
        use std::sync::atomic::Ordering::Relaxed;
        let count = drafts.len() as u64;
        let ids = crate::sources::submission::store(&self.store, member, drafts, at)
            .await
            .inspect_err(|e| {
                if e.is_storage_unavailable() {
                    Metrics::inc(&self.metrics.store_unavailable);
                }
            })?;
        Metrics::inc(&self.metrics.submissions_accepted);
        self.metrics.reports_stored.fetch_add(count, Relaxed);
        Ok(ids)
    }
}
