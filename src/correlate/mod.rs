//! The correlation projection: reports linked through shared observables form campaigns.
//!
//! The engine is a projection of the store: it is built from the reports in the store at
//! start-up and kept current by the correlator task, one report at a time. The only thing it
//! hands back to the store is the campaign id of each report, because analysts' decisions
//! hang on those ids and they must outlive any re-correlation.
//!
//! - [`rules`]: weights, threshold, frequency decay and cap, flag thresholds, warning lists.
//! - [`suppress`]: MISP warning lists and why a value does not link.
//! - [`graph`]: the engine: pairwise weighted linking, campaigns, pins, snapshots.
//! - [`flags`]: machine findings on campaigns, each with its evidence.
//! - [`ids`]: stable `C-YYYY-NNNN` ids, matched to groups by overlap.
//! - [`synth`]: a synthetic report generator for benchmarks and load tests.

pub mod catchup;
pub mod flags;
pub mod graph;
pub mod ids;
pub mod rules;
pub mod suppress;
pub mod synth;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{
    CampaignId, Disposition, MemberId, Observable, Sector, Seq, SightingKind, SightingTarget,
};

pub use flags::{Evidence, Flag, FlagKind};
pub use graph::{Engine, Pin};
pub use ids::{CampaignEvent, IdBook};
pub use rules::{Rules, RulesError};
pub use suppress::Suppression;

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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    Member {
        member: MemberId,
        sector: Option<Sector>,
    },
    Feed {
        feed: String,
    },
}

/// What correlation needs to know about a sighting. Only true-positive sightings
/// ([`SightingKind::Seen`]) change flags: they count as activity (stale) and as a sector that
/// saw the campaign (cross-sector).
#[derive(Debug, Clone, PartialEq)]
pub struct SightingFacts {
    pub at: DateTime<Utc>,
    pub member: MemberId,
    pub sector: Option<Sector>,
    pub target: SightingTarget,
    pub kind: SightingKind,
}

/// Most linking observables a campaign lists.
pub const LINKING_MAX: usize = 1_000;

/// One campaign as readers see it: an immutable part of a [`CampaignSet`].
#[derive(Debug, Clone, Serialize)]
pub struct Campaign {
    pub id: CampaignId,
    /// The reports of the campaign, in store order.
    pub reports: Vec<Seq>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Observables that appear in at least two of the campaign's reports and may link
    /// (not suppressed, kind weight above 0): what ties it. At most [`LINKING_MAX`], those
    /// carried by the most reports, in value order: a campaign of a hundred thousand
    /// reports has more than anyone reads, and copying them all into every snapshot is
    /// what would cost.
    pub linking: Vec<Observable>,
    /// Distinct sectors among the members that reported (secretariat-only evidence).
    #[serde(skip)]
    pub sectors: BTreeSet<Sector>,
    /// Machine findings at the time of the snapshot, each with its evidence.
    pub flags: Vec<Flag>,
}

impl Campaign {
    /// The kinds of the campaign's flags, in the order they were raised.
    pub fn flag_kinds(&self) -> Vec<FlagKind> {
        self.flags.iter().map(|f| f.kind).collect()
    }

    pub fn has_flag(&self, kind: FlagKind) -> bool {
        self.flags.iter().any(|f| f.kind == kind)
    }

    pub fn flag(&self, kind: FlagKind) -> Option<&Flag> {
        self.flags.iter().find(|f| f.kind == kind)
    }

    /// The first disposition a flag suggests, if any.
    pub fn suggested(&self) -> Option<Disposition> {
        self.flags.iter().find_map(|f| f.suggested)
    }
}

/// An immutable snapshot of all campaigns, swapped whole behind an `Arc` so that readers
/// never see a half-applied update. Campaigns are shared (`Arc`) between snapshots: taking
/// a snapshot only rebuilds the campaigns that changed.
#[derive(Debug, Clone)]
pub struct CampaignSet {
    /// In no particular order.
    pub campaigns: Vec<Arc<Campaign>>,
    /// Campaign id per report.
    pub by_report: HashMap<Seq, CampaignId>,
    /// Index into `campaigns` per id.
    pub by_id: HashMap<CampaignId, usize>,
    /// The last report applied.
    pub applied: Seq,
    /// The clock the flags were computed at.
    pub at: DateTime<Utc>,
}

impl Default for CampaignSet {
    fn default() -> CampaignSet {
        CampaignSet {
            campaigns: Vec::new(),
            by_report: HashMap::new(),
            by_id: HashMap::new(),
            applied: Seq::default(),
            at: DateTime::<Utc>::MIN_UTC,
        }
    }
}

impl CampaignSet {
    pub fn get(&self, id: CampaignId) -> Option<&Campaign> {
        self.by_id.get(&id).map(|&i| self.campaigns[i].as_ref())
    }

    pub fn of_report(&self, seq: Seq) -> Option<&Campaign> {
        self.by_report.get(&seq).and_then(|id| self.get(*id))
    }

    pub fn len(&self) -> usize {
        self.campaigns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.campaigns.is_empty()
    }

    /// Puts `campaign` in, replacing the one with its id.
    fn upsert(&mut self, campaign: Arc<Campaign>) {
        match self.by_id.get(&campaign.id) {
            Some(&i) => self.campaigns[i] = campaign,
            None => {
                self.by_id.insert(campaign.id, self.campaigns.len());
                self.campaigns.push(campaign);
            }
        }
    }

    /// Takes a campaign out (its reports' entries are overwritten by whoever holds them now).
    fn remove(&mut self, id: CampaignId) {
        if let Some(i) = self.by_id.remove(&id) {
            self.campaigns.swap_remove(i);
            if let Some(moved) = self.campaigns.get(i) {
                self.by_id.insert(moved.id, i);
            }
        }
    }
}
