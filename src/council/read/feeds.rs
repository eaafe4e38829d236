//! Public feeds' health as one viewer may see it.
//!
//! Feed items are public, but a feed's *health* is the operators' business: the last
//! error can carry a URL with credentials or an internal host name, and failure counts and
//! validators say how the council's servers are set up. The secretariat sees everything;
//! a member sees which feeds exist and when each last succeeded.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ReadPath, Result, Viewer};
use crate::sources::feeds::FeedState;
use crate::store;

/// One feed as a viewer sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum FeedView {
    /// The secretariat: the full state (validators, failures, the last error).
    Full {
        name: String,
        #[serde(flatten)]
        state: FeedState,
    },
    /// A member: the name and the last success.
    Summary {
        name: String,
        last_success: Option<DateTime<Utc>>,
    },
}

impl ReadPath {
    /// Every feed with a saved state, by name.
    pub async fn feeds(&self, viewer: &Viewer) -> Result<Vec<FeedView>> {
        let full = viewer.is_secretariat();
        let states = self.read(store::feeds::all_states).await?;
        Ok(states
            .into_iter()
            .map(|(name, state)| {
                if full {
                    FeedView::Full { name, state }
                } else {
                    FeedView::Summary {
                        name,
                        last_success: state.last_success,
                    }
                }
            })
            .collect())
    }
}
