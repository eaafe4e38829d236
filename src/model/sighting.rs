//! Sightings: a member's feedback on an observable or a campaign.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::campaign::CampaignId;
use super::observable::Observable;

/// What the member saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SightingKind {
    Seen,
    NotSeen,
    FalsePositive,
}

/// What a sighting is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SightingTarget {
    Observable(Observable),
    Campaign(CampaignId),
}

/// A sighting before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SightingDraft {
    pub target: SightingTarget,
    pub kind: SightingKind,
    #[serde(default = "one")]
    pub count: u32,
    pub seen_at: DateTime<Utc>,
}

fn one() -> u32 {
    1
}
