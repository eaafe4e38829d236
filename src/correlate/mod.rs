//! The correlation projection: reports linked through shared observables form campaigns.
//!
//! The engine is a projection of the store: it is built from the reports in the store at
//! start-up and kept current by the correlator task, one report at a time. The only thing it
//! hands back to the store is the campaign id of each report, because analysts' decisions
//! hang on those ids and they must outlive any re-correlation.
//!
//! - [`graph`]: reports and observables, linking and grouping.
//! - [`ids`]: stable `C-YYYY-NNNN` ids, matched to groups by overlap.

pub mod catchup;
pub mod graph;
pub mod ids;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{CampaignId, MemberId, Observable, Sector, Seq};

pub use graph::Engine;
pub use ids::{CampaignEvent, IdBook};

/// What correlation needs to know about a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFacts {
    pub seq: Seq,
    /// When the report was received (the clock of flags and campaign years).
    pub at: DateTime<Utc>,
    pub source: Source,
    pub observables: Vec<Observable>,
}

/// Who provided a report, as correlation sees it. Sectors feed the cross-sector flag;
/// the council policy decides what of this any output may show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Member {
        member: MemberId,
        sector: Option<Sector>,
    },
    Feed {
        feed: String,
    },
}

/// One campaign as readers see it: an immutable part of a [`CampaignSet`].
#[derive(Debug, Clone, Serialize)]
pub struct Campaign {
    pub id: CampaignId,
    /// The reports of the campaign, in store order.
    pub reports: Vec<Seq>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Observables that appear in at least two of the campaign's reports: what ties it.
    pub linking: Vec<Observable>,
    /// Distinct sectors among the members that reported (secretariat-only evidence).
    #[serde(skip)]
    pub sectors: BTreeSet<Sector>,
}

/// An immutable snapshot of all campaigns, swapped whole behind an `Arc` so that readers
/// never see a half-applied update.
#[derive(Debug, Clone, Default)]
pub struct CampaignSet {
    pub campaigns: Vec<Campaign>,
    /// Index into `campaigns` per report.
    pub by_report: std::collections::HashMap<Seq, usize>,
    /// Index into `campaigns` per id.
    pub by_id: std::collections::HashMap<CampaignId, usize>,
    /// The last report applied.
    pub applied: Seq,
}

impl Campaign {
    /// The names of the campaign's flags (none yet: the flag rules come with the
    /// correlation rules).
    pub fn flag_names(&self) -> Vec<String> {
        Vec::new()
    }
}

impl CampaignSet {
    pub fn get(&self, id: CampaignId) -> Option<&Campaign> {
        self.by_id.get(&id).map(|&i| &self.campaigns[i])
    }

    pub fn of_report(&self, seq: Seq) -> Option<&Campaign> {
        self.by_report.get(&seq).map(|&i| &self.campaigns[i])
    }
}
