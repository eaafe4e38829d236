//! What every handler shares.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::Seq;
use crate::store::Store;

/// Shared state of the HTTP server. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The one read path: every handler that shows data asks it for views.
    pub read: crate::council::ReadPath,
    /// The store, for its writer: handlers queue typed operations (`store::Op`) built by
    /// the engine; they cannot read through it (its readers are engine-only).
    pub store: Store,
    /// The last store sequence number the index has committed.
    pub indexed: watch::Receiver<Seq>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    pub started: Instant,
    /// Per-member request budgets.
    pub limiter: Arc<super::limit::RateLimiter>,
}
