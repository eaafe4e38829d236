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
pub mod evidence;
pub mod explain;
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

pub use evidence::FlagEvidence;
pub use explain::{Explainer, Explanation, Grouping, NotCounted, Related, RelatedReason};
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

/// Reports per chunk of [`ReportMap`].
const CHUNK: u64 = 256;

/// The campaign of each report, in chunks of consecutive seqs shared between snapshots:
/// taking a snapshot copies one pointer per chunk, and a change copies only the chunks it
/// touches (a plain map of a million reports cost 15 ms to copy per snapshot).
#[derive(Debug, Clone, Default)]
pub struct ReportMap {
    chunks: HashMap<u64, Arc<[Option<CampaignId>; CHUNK as usize]>>,
    len: usize,
}

impl ReportMap {
    fn at(seq: Seq) -> (u64, usize) {
        (seq.0 / CHUNK, (seq.0 % CHUNK) as usize)
    }

    pub fn get(&self, seq: &Seq) -> Option<&CampaignId> {
        let (c, i) = Self::at(*seq);
        self.chunks.get(&c)?[i].as_ref()
    }

    pub fn contains_key(&self, seq: &Seq) -> bool {
        self.get(seq).is_some()
    }

    /// Sets the campaign of `seq`; returns the one it had.
    pub fn insert(&mut self, seq: Seq, id: CampaignId) -> Option<CampaignId> {
        let (c, i) = Self::at(seq);
        let chunk = self
            .chunks
            .entry(c)
            .or_insert_with(|| Arc::new([None; CHUNK as usize]));
        if chunk[i] == Some(id) {
            return Some(id);
        }
        let old = Arc::make_mut(chunk)[i].replace(id);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn remove(&mut self, seq: &Seq) -> Option<CampaignId> {
        let (c, i) = Self::at(*seq);
        let chunk = self.chunks.get_mut(&c)?;
        chunk[i]?;
        let old = Arc::make_mut(chunk)[i].take();
        self.len -= 1;
        if chunk.iter().all(Option::is_none) {
            self.chunks.remove(&c);
        }
        old
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every report with its campaign, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Seq, CampaignId)> + '_ {
        self.chunks.iter().flat_map(|(&c, chunk)| {
            chunk
                .iter()
                .enumerate()
                .filter_map(move |(i, id)| id.map(|id| (Seq(c * CHUNK + i as u64), id)))
        })
    }
}

/// Items per chunk of a [`SharedList`]. A snapshot copies one pointer per chunk and a
/// change copies the chunk it touches: with `n` items and `d` of them changed per
/// snapshot, the copy costs about `n / CHUNK + d × CHUNK` pointer clones (each an atomic
/// increment on memory of its own). At 233k campaigns and ~800 changed, 16 is near the
/// least of both.
const LIST_CHUNK: usize = 16;

/// A list shared between snapshots in chunks (copy on write): what `Vec<Arc<_>>` was,
/// without cloning every element's pointer for each snapshot (233k campaign pointers cost
/// ~7.5 ms per snapshot at 1M reports). Every chunk but the last is full, so positions
/// are stable and indexing is a division.
#[derive(Debug)]
pub struct SharedList<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for SharedList<T> {
    fn default() -> SharedList<T> {
        SharedList {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Clone for SharedList<T> {
    fn clone(&self) -> SharedList<T> {
        SharedList {
            chunks: self.chunks.clone(),
            len: self.len,
        }
    }
}

impl<T: Clone> SharedList<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / LIST_CHUNK)?.get(i % LIST_CHUNK)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    pub fn push(&mut self, item: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < LIST_CHUNK => Arc::make_mut(last).push(item),
            _ => {
                let mut chunk = Vec::with_capacity(LIST_CHUNK);
                chunk.push(item);
                self.chunks.push(Arc::new(chunk));
            }
        }
        self.len += 1;
    }

    /// Replaces the item at `i` (copies its chunk if a snapshot shares it).
    pub fn set(&mut self, i: usize, item: T) {
        assert!(i < self.len, "index {i} out of a list of {}", self.len);
        Arc::make_mut(&mut self.chunks[i / LIST_CHUNK])[i % LIST_CHUNK] = item;
    }

    /// Takes the last item out.
    pub fn pop(&mut self) -> Option<T> {
        let last = self.chunks.last_mut()?;
        let item = Arc::make_mut(last).pop();
        if last.is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        item
    }

    /// Takes the item at `i` out and puts the last one in its place (as `Vec::swap_remove`).
    pub fn swap_remove(&mut self, i: usize) -> T {
        assert!(i < self.len, "index {i} out of a list of {}", self.len);
        let last = self.pop().expect("not empty");
        if i == self.len {
            return last;
        }
        std::mem::replace(
            &mut Arc::make_mut(&mut self.chunks[i / LIST_CHUNK])[i % LIST_CHUNK],
            last,
        )
    }
}

impl<T> std::ops::Index<usize> for SharedList<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.chunks[i / LIST_CHUNK][i % LIST_CHUNK]
    }
}

impl<'a, T: Clone> IntoIterator for &'a SharedList<T> {
    type Item = &'a T;
    type IntoIter = std::iter::FlatMap<
        std::slice::Iter<'a, Arc<Vec<T>>>,
        &'a Vec<T>,
        fn(&'a Arc<Vec<T>>) -> &'a Vec<T>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.chunks.iter().flat_map(|c| &**c)
    }
}

/// Numbers per chunk of an [`IdMap`].
const ID_CHUNK: u32 = 256;

/// Absent from an [`IdMap`] chunk.
const NO_INDEX: usize = usize::MAX;

/// A position per campaign id, in chunks of consecutive numbers shared between snapshots
/// (as [`ReportMap`]): a `HashMap` of 233k ids cost a 4.5 MB copy per snapshot, and only
/// campaigns that appear, go or move change it.
#[derive(Debug, Clone, Default)]
pub struct IdMap {
    chunks: HashMap<(u16, u32), Arc<[usize; ID_CHUNK as usize]>>,
    len: usize,
}

impl IdMap {
    fn at(id: CampaignId) -> ((u16, u32), usize) {
        (
            (id.year, id.number / ID_CHUNK),
            (id.number % ID_CHUNK) as usize,
        )
    }

    pub fn get(&self, id: &CampaignId) -> Option<&usize> {
        let (c, i) = Self::at(*id);
        let at = &self.chunks.get(&c)?[i];
        (*at != NO_INDEX).then_some(at)
    }

    pub fn contains_key(&self, id: &CampaignId) -> bool {
        self.get(id).is_some()
    }

    /// Sets the position of `id`; returns the one it had.
    pub fn insert(&mut self, id: CampaignId, index: usize) -> Option<usize> {
        assert_ne!(index, NO_INDEX, "a position in a list");
        let (c, i) = Self::at(id);
        let chunk = self
            .chunks
            .entry(c)
            .or_insert_with(|| Arc::new([NO_INDEX; ID_CHUNK as usize]));
        if chunk[i] == index {
            return Some(index);
        }
        let old = std::mem::replace(&mut Arc::make_mut(chunk)[i], index);
        if old == NO_INDEX {
            self.len += 1;
            return None;
        }
        Some(old)
    }

    pub fn remove(&mut self, id: &CampaignId) -> Option<usize> {
        let (c, i) = Self::at(*id);
        let chunk = self.chunks.get_mut(&c)?;
        if chunk[i] == NO_INDEX {
            return None;
        }
        let old = std::mem::replace(&mut Arc::make_mut(chunk)[i], NO_INDEX);
        self.len -= 1;
        if chunk.iter().all(|&p| p == NO_INDEX) {
            self.chunks.remove(&c);
        }
        Some(old)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
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

    fn id(number: u32) -> CampaignId {
        CampaignId { year: 2026, number }
    }

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

        /// A shared list and an id map follow a `Vec` and a `HashMap` under pushes, sets
        /// and swap-removes, and a copy taken before the changes keeps what it held: the
        /// chunks a change touches are copied, not written through.
        #[test]
        fn shared_lists_copy_what_they_change(
            ops in prop::collection::vec((0u8..3, 0usize..200, any::<u32>()), 1..400),
            copy_at in 0usize..400,
        ) {
            let (mut list, mut want) = (SharedList::default(), Vec::new());
            let (mut ids, mut want_ids) = (IdMap::default(), HashMap::new());
            let mut copies = None;
            for (n, (op, i, v)) in ops.into_iter().enumerate() {
                if n == copy_at {
                    copies = Some((list.clone(), want.clone(), ids.clone(), want_ids.clone()));
                }
                match op {
                    0 => {
                        list.push(v);
                        want.push(v);
                        let at = want.len() - 1;
                        prop_assert_eq!(ids.insert(id(v % 1000), at), want_ids.insert(id(v % 1000), at));
                    }
                    1 if !want.is_empty() => {
                        let i = i % want.len();
                        list.set(i, v);
                        want[i] = v;
                    }
                    _ if !want.is_empty() => {
                        let i = i % want.len();
                        prop_assert_eq!(list.swap_remove(i), want.swap_remove(i));
                        prop_assert_eq!(ids.remove(&id(v % 1000)), want_ids.remove(&id(v % 1000)));
                    }
                    _ => {}
                }
                prop_assert_eq!(list.len(), want.len());
                prop_assert_eq!(list.iter().copied().collect::<Vec<_>>(), want.clone());
                prop_assert_eq!(ids.len(), want_ids.len());
            }
            for (k, v) in &want_ids {
                prop_assert_eq!(ids.get(k), Some(v));
            }
            if let Some((list, want, ids, want_ids)) = copies {
                prop_assert_eq!(list.iter().copied().collect::<Vec<_>>(), want.clone());
                for (i, v) in want.iter().enumerate() {
                    prop_assert_eq!(&list[i], v);
                }
                prop_assert_eq!(ids.len(), want_ids.len());
                for n in 0..1000 {
                    prop_assert_eq!(ids.get(&id(n)), want_ids.get(&id(n)));
                }
            }
        }
    }
}
