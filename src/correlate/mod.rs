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
//! - [`shared`]: the copy-on-write containers that consecutive snapshots share.
//! - [`synth`]: a synthetic report generator for benchmarks and load tests.

pub mod catchup;
pub mod evidence;
pub mod explain;
pub mod flags;
pub mod graph;
pub mod ids;
pub mod rules;
pub mod shared;
pub mod suppress;
pub mod synth;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{
    CampaignId, Disposition, MemberId, Observable, Sector, Seq, SightingKind, SightingTarget,
};

pub use evidence::FlagEvidence;
pub use explain::{Explainer, Explanation, Grouping, NotCounted, Related, RelatedReason};
pub use flags::{Evidence, Flag, FlagKind};
pub use graph::{Engine, Pin};
pub use ids::{CampaignEvent, IdBook};
pub use rules::{Rules, RulesError};
pub use shared::{IdMap, ReportMap, SharedList};
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

/// Report numbers per chunk of a big campaign's [`Reports`]: a snapshot of a campaign of
/// 463k reports copies ~113 pointers, and the reports that join it copy the chunk they
/// land in (32 KiB). (Tiny in test builds, so that the tests cross chunks.)
const REPORTS_CHUNK: usize = if cfg!(test) { 4 } else { 4096 };

/// The reports of a campaign, in store order. A campaign made afresh holds them in one
/// block; a big campaign's live view keeps them in chunks that its snapshots share, so
/// that publishing the campaign after a few reports joined it does not copy half a
/// million numbers (copy on write: a published list never changes).
#[derive(Clone)]
pub struct Reports(ReportsRepr);

#[derive(Clone)]
enum ReportsRepr {
    Flat(Box<[Seq]>),
    /// Behind one more `Arc`, so that a `Campaign` is no bigger than with a `Vec` (233k
    /// of them per snapshot) and publishing one copies one pointer.
    Chunked(Arc<Chunks>),
}

#[derive(Clone)]
struct Chunks {
    /// Sorted, none empty, each at most `2 × REPORTS_CHUNK` long.
    chunks: Vec<Arc<[Seq]>>,
    len: usize,
}

/// The iterator of [`Reports::iter`].
pub type ReportsIter<'a> = std::iter::FlatMap<
    std::slice::Iter<'a, Arc<[Seq]>>,
    &'a [Seq],
    fn(&'a Arc<[Seq]>) -> &'a [Seq],
>;

impl Default for Reports {
    fn default() -> Reports {
        Reports(ReportsRepr::Flat(Box::default()))
    }
}

impl From<Vec<Seq>> for Reports {
    /// `seqs` must be sorted.
    fn from(seqs: Vec<Seq>) -> Reports {
        debug_assert!(seqs.is_sorted(), "reports in store order");
        Reports(ReportsRepr::Flat(seqs.into_boxed_slice()))
    }
}

impl Reports {
    pub fn len(&self) -> usize {
        match &self.0 {
            ReportsRepr::Flat(s) => s.len(),
            ReportsRepr::Chunked(c) => c.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The blocks the reports are kept in, in order.
    fn blocks(&self) -> &[Arc<[Seq]>] {
        match &self.0 {
            ReportsRepr::Flat(_) => &[],
            ReportsRepr::Chunked(c) => &c.chunks,
        }
    }

    /// The reports in store order.
    pub fn iter(&self) -> <&Reports as IntoIterator>::IntoIter {
        self.into_iter()
    }

    pub fn first(&self) -> Option<&Seq> {
        self.iter().next()
    }

    pub fn last(&self) -> Option<&Seq> {
        self.iter().next_back()
    }

    pub fn contains(&self, seq: &Seq) -> bool {
        match &self.0 {
            ReportsRepr::Flat(s) => s.binary_search(seq).is_ok(),
            ReportsRepr::Chunked(c) => {
                let chunks = &c.chunks;
                let i = chunks.partition_point(|c| c.last().is_some_and(|l| l < seq));
                chunks.get(i).is_some_and(|c| c.binary_search(seq).is_ok())
            }
        }
    }

    pub fn to_vec(&self) -> Vec<Seq> {
        self.iter().copied().collect()
    }

    /// The same reports in shared chunks (what a live view keeps).
    pub(crate) fn chunked(seqs: Vec<Seq>) -> Reports {
        debug_assert!(seqs.is_sorted(), "reports in store order");
        let len = seqs.len();
        let chunks = seqs.chunks(REPORTS_CHUNK).map(Arc::from).collect();
        Reports(ReportsRepr::Chunked(Arc::new(Chunks { chunks, len })))
    }

    /// Merges the sorted `add` in and takes the sorted `remove` (reports it holds) out,
    /// copying only the chunks they touch. Reports that join in store order land in the
    /// last chunk.
    pub(crate) fn merge(&mut self, add: &[Seq], remove: &[Seq]) {
        if add.is_empty() && remove.is_empty() {
            return;
        }
        let ReportsRepr::Chunked(shared) = &mut self.0 else {
            let mut all = self.to_vec();
            graph::merge_sorted(&mut all, add.to_vec(), remove.to_vec());
            *self = Reports::from(all);
            return;
        };
        // Copies the chunk pointers only when a published campaign shares them.
        let Chunks { chunks, len } = Arc::make_mut(shared);
        if chunks.is_empty() {
            chunks.push(Arc::from(Vec::new()));
        }
        let old = std::mem::take(chunks);
        let last = old.len() - 1;
        // Each chunk takes the seqs up to its last one; the last chunk takes the rest.
        let (mut add, mut remove) = (add, remove);
        let mut out: Vec<Arc<[Seq]>> = Vec::with_capacity(old.len() + 1);
        for (i, chunk) in old.into_iter().enumerate() {
            let upto = |s: &[Seq]| match (i == last, chunk.last()) {
                (false, Some(l)) => s.partition_point(|x| x <= l),
                _ => s.len(),
            };
            let (a, r) = (upto(add), upto(remove));
            if a == 0 && r == 0 {
                out.push(chunk);
                continue;
            }
            let mut v = chunk.to_vec();
            graph::merge_sorted(&mut v, add[..a].to_vec(), remove[..r].to_vec());
            (add, remove) = (&add[a..], &remove[r..]);
            if v.len() > 2 * REPORTS_CHUNK {
                out.extend(v.chunks(REPORTS_CHUNK).map(Arc::from));
            } else if !v.is_empty() {
                out.push(Arc::from(v));
            }
        }
        *len = out.iter().map(|c| c.len()).sum();
        // Removals may leave many small chunks: chunk again when they are more than twice
        // what the length needs.
        if out.len() > 2 * len.div_ceil(REPORTS_CHUNK) + 1 {
            let all: Vec<Seq> = out.iter().flat_map(|c| c.iter().copied()).collect();
            out = all.chunks(REPORTS_CHUNK).map(Arc::from).collect();
        }
        *chunks = out;
    }
}

impl std::ops::Index<usize> for Reports {
    type Output = Seq;

    fn index(&self, mut i: usize) -> &Seq {
        match &self.0 {
            ReportsRepr::Flat(s) => &s[i],
            ReportsRepr::Chunked(all) => {
                let len = all.len;
                for c in &all.chunks {
                    if i < c.len() {
                        return &c[i];
                    }
                    i -= c.len();
                }
                panic!("report {i} out of a campaign of {len}")
            }
        }
    }
}

impl<'a> IntoIterator for &'a Reports {
    type Item = &'a Seq;
    type IntoIter = std::iter::Chain<std::slice::Iter<'a, Seq>, ReportsIter<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        let flat: &[Seq] = match &self.0 {
            ReportsRepr::Flat(s) => s,
            ReportsRepr::Chunked(_) => &[],
        };
        let chunks: ReportsIter<'a> = self.blocks().iter().flat_map(|c| &**c);
        flat.iter().chain(chunks)
    }
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Reports {
    fn eq(&self, other: &Reports) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Reports {}

impl PartialEq<Vec<Seq>> for Reports {
    fn eq(&self, other: &Vec<Seq>) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Serialize for Reports {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// One campaign as readers see it: an immutable part of a [`CampaignSet`].
#[derive(Debug, Clone, Serialize)]
pub struct Campaign {
    pub id: CampaignId,
    /// The reports of the campaign, in store order.
    pub reports: Reports,
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

/// A group of reports with no member submission: public context (an *advisory*), not an
/// attack activity. It has no campaign id readers can reach: the engine's key for the group
/// is private to correlation, so nothing outside it can show a `C-` id for an advisory,
/// count it as a campaign, queue it for review or mail it as one. The council lists
/// advisories on their own and shows them as context of the campaigns that share their
/// values.
#[derive(Debug, Clone, Serialize)]
pub struct Advisory {
    /// The engine's key of the group (never shown; becomes the campaign id if a member
    /// report joins the group).
    #[serde(skip)]
    key: CampaignId,
    /// The feed items of the group, in store order.
    pub reports: Vec<Seq>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Names of the feeds the items come from.
    pub feeds: Vec<String>,
}

impl Advisory {
    /// The first feed item: what readers identify the advisory by (shown through the same
    /// opaque report ids as any report).
    pub fn first_report(&self) -> Seq {
        self.reports[0]
    }
}

/// What the engine makes of one connected group: an attack activity if any member
/// submitted to it, public context otherwise. The distinction is made once, here.
#[derive(Debug, Clone)]
pub enum Group {
    Campaign(Campaign),
    Advisory(Advisory),
}

/// An immutable snapshot of all campaigns, swapped whole behind an `Arc` so that readers
/// never see a half-applied update. Campaigns are shared (`Arc`) between snapshots: taking
/// a snapshot only rebuilds the campaigns that changed.
#[derive(Debug, Clone)]
pub struct CampaignSet {
    /// Groups with at least one member report, in no particular order.
    pub campaigns: SharedList<Arc<Campaign>>,
    /// Groups of feed items only (public context), in no particular order.
    pub advisories: SharedList<Arc<Advisory>>,
    /// Index into `advisories` per engine key.
    advisory_at: IdMap,
    /// Campaign id per report of a campaign (feed items of advisories have none).
    pub by_report: ReportMap,
    /// Index into `campaigns` per id.
    pub by_id: IdMap,
    /// The last report applied.
    pub applied: Seq,
    /// The clock the flags were computed at.
    pub at: DateTime<Utc>,
    /// The engine the snapshot came from, when a correlator took it: explanations are
    /// computed on request ([`CampaignSet::explain`]), not kept in the snapshot.
    explainer: Option<Explainer>,
}

impl Default for CampaignSet {
    fn default() -> CampaignSet {
        CampaignSet {
            campaigns: SharedList::default(),
            advisories: SharedList::default(),
            advisory_at: IdMap::default(),
            by_report: ReportMap::default(),
            by_id: IdMap::default(),
            applied: Seq::default(),
            at: DateTime::<Utc>::MIN_UTC,
            explainer: None,
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

    /// Why campaign `id` is one group and what it resembles, computed now by the engine
    /// the snapshot came from. `None` when the campaign is not in this snapshot or the
    /// snapshot has no engine behind it (one built by hand). Blocks while the correlator
    /// applies a batch: call it from blocking code, and for the secretariat only (see
    /// `council::explain`).
    pub fn explain(&self, id: CampaignId) -> Option<Explanation> {
        self.get(id)?;
        self.explainer.as_ref()?.explain(id)
    }

    /// Only the related earlier campaigns of [`CampaignSet::explain`] (same rules).
    pub fn related(&self, id: CampaignId) -> Option<Vec<Related>> {
        self.get(id)?;
        self.explainer.as_ref()?.related(id)
    }

    /// The same snapshot, able to explain its campaigns through `explainer`.
    pub fn explained_by(mut self, explainer: Explainer) -> CampaignSet {
        self.explainer = Some(explainer);
        self
    }

    /// Puts a rebuilt group in, replacing what its key held (a group turns from advisory
    /// into campaign when a member report joins it, and back when a split leaves it none).
    /// `joined`: the reports that joined the campaign since the last snapshot, when known.
    fn upsert_group(&mut self, group: Group, joined: Option<&[Seq]>) {
        match group {
            Group::Campaign(c) if joined.is_some() && self.by_id.contains_key(&c.id) => {
                for &seq in joined.into_iter().flatten() {
                    self.by_report.insert(seq, c.id);
                }
                self.upsert(Arc::new(c));
            }
            Group::Campaign(c) => {
                self.remove_advisory(c.id);
                // Only the reports new to the campaign: a giant campaign that gained a few
                // would otherwise rewrite half a million entries per snapshot. Reports that
                // left it are overwritten by the group that holds them now.
                let before = self.by_id.get(&c.id).map(|&i| self.campaigns[i].clone());
                let mut had = before.iter().flat_map(|p| p.reports.iter()).peekable();
                for &seq in &c.reports {
                    while had.next_if(|&&s| s < seq).is_some() {}
                    if had.next_if_eq(&&seq).is_none() {
                        self.by_report.insert(seq, c.id);
                    }
                }
                self.upsert(Arc::new(c));
            }
            Group::Advisory(a) => {
                self.remove(a.key);
                for seq in &a.reports {
                    self.by_report.remove(seq);
                }
                match self.advisory_at.get(&a.key) {
                    Some(&i) => self.advisories.set(i, Arc::new(a)),
                    None => {
                        self.advisory_at.insert(a.key, self.advisories.len());
                        self.advisories.push(Arc::new(a));
                    }
                }
            }
        }
    }

    /// Takes a group out, whichever it was.
    fn remove_group(&mut self, key: CampaignId) {
        self.remove(key);
        self.remove_advisory(key);
    }

    fn remove_advisory(&mut self, key: CampaignId) {
        if let Some(i) = self.advisory_at.remove(&key) {
            self.advisories.swap_remove(i);
            if let Some(moved) = self.advisories.get(i) {
                self.advisory_at.insert(moved.key, i);
            }
        }
    }

    /// Puts `campaign` in, replacing the one with its id.
    fn upsert(&mut self, campaign: Arc<Campaign>) {
        match self.by_id.get(&campaign.id) {
            Some(&i) => self.campaigns.set(i, campaign),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A campaign's report list takes no more room than the `Vec` it replaced: a snapshot
    /// holds 233k of them at 1M reports.
    #[test]
    fn a_report_list_is_no_bigger_than_a_vec() {
        assert!(std::mem::size_of::<Reports>() <= std::mem::size_of::<Vec<Seq>>());
    }

    proptest! {
        /// Reports merged into shared chunks are the sorted whole, and a copy published
        /// before the merge (what a snapshot holds) keeps its reports.
        #[test]
        fn chunked_reports_copy_what_they_change(
            start in prop::collection::btree_set(0u64..300, 0..60),
            steps in prop::collection::vec(
                (prop::collection::btree_set(0u64..300, 0..20), prop::collection::vec(any::<prop::sample::Index>(), 0..12)),
                1..12,
            ),
        ) {
            let mut want: BTreeSet<u64> = start.clone();
            let mut reports = Reports::chunked(start.iter().map(|&s| Seq(s)).collect());
            for (add, cut) in steps {
                let published = reports.clone();
                let before: Vec<Seq> = want.iter().map(|&s| Seq(s)).collect();
                let add: Vec<Seq> = add.difference(&want).map(|&s| Seq(s)).collect();
                let mut remove: Vec<Seq> = if before.is_empty() {
                    Vec::new()
                } else {
                    cut.iter().map(|i| before[i.index(before.len())]).collect()
                };
                remove.sort_unstable();
                remove.dedup();
                reports.merge(&add, &remove);
                want.extend(add.iter().map(|s| s.0));
                for r in &remove {
                    want.remove(&r.0);
                }
                let want_seqs: Vec<Seq> = want.iter().map(|&s| Seq(s)).collect();
                prop_assert_eq!(&reports, &want_seqs);
                prop_assert_eq!(&published, &before);
                prop_assert_eq!(reports.first(), want_seqs.first());
                prop_assert_eq!(reports.last(), want_seqs.last());
                for (i, s) in want_seqs.iter().enumerate() {
                    prop_assert_eq!(&reports[i], s);
                }
                for s in 0..300 {
                    prop_assert_eq!(reports.contains(&Seq(s)), want.contains(&s));
                }
            }
        }
    }
}
