//! Why a campaign holds together, and what it resembles without being linked to it.
//!
//! Computed by the engine on request, for the one campaign asked about (it alone knows the
//! links and the values' report counts), bounded so that a giant campaign costs no more
//! than a small one. It is not part of a snapshot: precomputing it for every changed
//! campaign made the first snapshot at a million reports take two minutes and 9 GB, for
//! explanations the secretariat opens a few times a day. What a viewer is shown of it is
//! decided by the council's views: it names reports and values, so it is the secretariat's.

use std::sync::{Arc, RwLock};

use serde::Serialize;

use super::{Engine, Suppression};
use crate::model::{CampaignId, Observable, Seq};

/// Why one campaign is a group, and the earlier campaigns it resembles, as the engine sees
/// it at the moment of the request.
#[derive(Debug, Clone, Default)]
pub struct Explanation {
    pub why: Grouping,
    pub related: Vec<Related>,
}

/// A handle on the live engine that explains one campaign at a time. Snapshots taken by a
/// correlator carry it ([`super::CampaignSet::explain`]), so whoever holds a snapshot can
/// ask; the answer reflects the engine now, which may be a round ahead of the snapshot (a
/// campaign merged since is no longer explained).
#[derive(Clone)]
pub struct Explainer(pub(super) Arc<RwLock<Engine>>);

impl Explainer {
    /// The explanation of campaign `id`, `None` if the engine holds no such campaign.
    /// Blocks while the correlator applies a batch: call it from blocking code.
    pub fn explain(&self, id: CampaignId) -> Option<Explanation> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).explain(id)
    }

    /// Only the related earlier campaigns of [`Explainer::explain`].
    pub fn related(&self, id: CampaignId) -> Option<Vec<Related>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .related_campaigns(id)
    }
}

impl std::fmt::Debug for Explainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Explainer")
    }
}

/// Most links, suppressed values and near-links an explanation lists.
pub const EXPLAIN_MAX: usize = 200;
/// Most related earlier campaigns listed per campaign.
pub const RELATED_MAX: usize = 10;

/// Why the reports of a campaign are one group.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Grouping {
    /// The weight two reports must share to be linked.
    pub threshold: u32,
    /// Links between the campaign's reports (at most [`EXPLAIN_MAX`], heaviest first).
    pub links: Vec<LinkWhy>,
    /// How many links the campaign has in all.
    pub links_total: usize,
    /// Values carried by two or more of the campaign's reports that did not count (or
    /// counted less) in linking, and why.
    pub suppressed: Vec<SuppressedValue>,
    /// Pairs of reports (one of them in the campaign) that share weight below the threshold:
    /// the links that almost were.
    pub near: Vec<NearLink>,
}

/// One link: two reports and the values whose weights reached the threshold.
#[derive(Debug, Clone, Serialize)]
pub struct LinkWhy {
    pub a: Seq,
    pub b: Seq,
    /// The summed weight (at least the threshold).
    pub weight: u32,
    pub shared: Vec<SharedValue>,
}

/// A value two reports share, with the weight it carries now.
#[derive(Debug, Clone, Serialize)]
pub struct SharedValue {
    pub value: Observable,
    /// Weight at the value's current report count (after decay).
    pub weight: u32,
    /// The weight of its kind before decay.
    pub full_weight: u32,
    /// Reports (all sources) that carry it.
    pub reports: usize,
    /// An address that matched a network the other report carries.
    pub through_network: bool,
}

/// A value shared inside the campaign that did not link at full weight.
#[derive(Debug, Clone, Serialize)]
pub struct SuppressedValue {
    pub value: Observable,
    /// Reports of the campaign that carry it.
    pub in_campaign: usize,
    pub why: NotCounted,
}

/// Why a value did not count (or counted less).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum NotCounted {
    /// On a warning list (`list` the file stem, `name` its title).
    Warninglist { list: String, name: String },
    /// In more reports than the over-correlation cap.
    OverCorrelating { reports: usize, cap: usize },
    /// Its weight halved as its report count grew past `decay_after`.
    Decayed {
        reports: usize,
        weight: u32,
        full_weight: u32,
        decay_after: usize,
    },
    /// Its kind carries no weight (CVE, ATT&CK technique, malware family: public context,
    /// shared by unrelated attacks).
    KindWithoutWeight,
}

impl From<Suppression> for NotCounted {
    fn from(s: Suppression) -> NotCounted {
        match s {
            Suppression::Warninglist { list, name } => NotCounted::Warninglist { list, name },
            Suppression::OverCorrelating { reports, cap } => {
                NotCounted::OverCorrelating { reports, cap }
            }
        }
    }
}

/// Two reports sharing some weight, but less than the threshold.
#[derive(Debug, Clone, Serialize)]
pub struct NearLink {
    /// The campaign's report.
    pub a: Seq,
    /// The other report (in this campaign, another, or a feed item).
    pub b: Seq,
    /// The campaign `b` belongs to, when it is not this one (None for this campaign or an
    /// advisory).
    pub b_campaign: Option<CampaignId>,
    pub weight: u32,
    pub threshold: u32,
    pub shared: Vec<SharedValue>,
}

/// An earlier campaign that resembles this one below the linking threshold. Never merged
/// automatically: an analyst decides (a merge pin).
#[derive(Debug, Clone, Serialize)]
pub struct Related {
    pub id: CampaignId,
    /// 0 to 1: how much the reasons weigh together.
    pub score: f64,
    pub reasons: Vec<RelatedReason>,
}

/// What an earlier campaign shares with this one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum RelatedReason {
    /// Addresses in the same /24 (IPv4) or /48 (IPv6) network.
    SharedNetwork { network: String },
    /// Registrant or sender addresses at the same mail domain.
    Registrant { domain: String },
    /// The same malware family named.
    MalwareFamily { name: String },
    /// ATT&CK techniques in common (`similarity` is the Jaccard index of the two sets).
    Techniques {
        shared: Vec<String>,
        similarity: f64,
    },
}
