//! Public feeds' health as one viewer may see it.
//!
//! Feed items are public, but a feed's *health* is the operators' business: the last
//! error can carry a URL with credentials or an internal host name, and failure counts and
//! validators say how the council's servers are set up. The secretariat sees everything,
//! including what the last poll kept, normalised and skipped; a member sees which public
//! feeds exist and when each last succeeded.
//!
//! A member's own feed (a `misp-api` feed pulling its MISP as its submissions) is another
//! matter: its name ("misp-m079") and its timing point at a provider. For anyone but the
//! secretariat it does not exist — left out, not redacted, so no list or count changes.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ReadPath, Result, Viewer};
use crate::store;
use crate::store::feeds::FeedState;

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
            .filter(|(_, state)| full || state.member.is_none())
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
