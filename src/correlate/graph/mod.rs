//! The correlation engine: reports linked pairwise by the weight of what they share.
//!
//! Two reports are linked when the observables they share weigh at least the threshold
//! (see `rules/correlation.toml`). Weights are per kind, halve each time a value's report
//! count doubles past `decay_after`, and drop to 0 past the over-correlation `cap` or when a
//! warning list names the value. A URL also carries its host; an address inside a network
//! that another report carries matches that network (an address and an address do not match
//! through a network neither reported). Campaigns are the connected groups of linked reports.
//!
//! Linking is pairwise on purpose: a link needs two *specific* reports sharing enough, so a
//! single weak value shared across two large campaigns never glues them together, and a
//! popular value loses its power to link on its own as it spreads.
//!
//! # Incremental and full correlation agree
//! The link relation is defined on the final state: `a ~ b` iff the weights at the current
//! report counts sum to the threshold over what `a` and `b` share. [`Engine::build`]
//! computes exactly that (in parallel). [`Engine::add`] keeps it: counts only grow, so
//! weights only fall — except through the new report itself — and a weight only changes when
//! a count crosses `decay_after × 2^k` or the cap. When it does, `add` re-checks the links
//! that rest on that value and splits campaigns that fall apart. A property test checks
//! that both paths give the same partition on random inputs. Pins are applied the same way
//! on both paths.
//!
//! # Layout
//! One [`Engine`] holds the graph; its methods live beside the concept they serve:
//! - `interning`: dense numbers for distinct values;
//! - `networks`: addresses matching reported networks;
//! - `links`: shared weight, link candidates, suppression, and the cut of a decayed link;
//! - `partition`: campaigns as slots of reports, joined and split, with running tallies;
//! - `add`: one more report (incremental correlation);
//! - `build`: every report at once (full correlation, re-correlation);
//! - `pins`: the analysts' merges and splits;
//! - `sightings`: members' sightings for the flags;
//! - `adopt`: ids recorded by another node (a follower's groups take the leader's ids);
//! - `snapshot`: the campaigns as readers see them.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde::{Deserialize, Serialize};

use super::flags::{self, View};
use super::ids::{CampaignEvent, IdBook, is_advisory_key};
use super::rules::{Rules, kind_index};
use super::suppress::Suppression;
use super::{
    Advisory, Campaign, CampaignSet, Group, LINKING_MAX, ReportFacts, SightingFacts, Source,
};
use crate::model::{CampaignId, Observable, ObservableKind, Seq, SightingKind, SightingTarget};

mod add;
mod adopt;
mod build;
mod explain;
mod interning;
mod links;
mod live;
mod networks;
mod partition;
mod pins;
mod runs;
mod sightings;
mod snapshot;
#[cfg(test)]
mod tests;

use interning::{expand, hash_of};
use live::Live;
pub(crate) use live::merge_sorted;
use networks::{Addresses, cidr_key, ip_key};
use runs::Runs;

/// An analyst's decision that overrides linking. Pins are a plain input list (the store
/// keeps them); [`Engine::set_pins`] applies them with a full re-correlation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pin {
    /// The reports of these two campaigns (as recorded when the pins are set) stay together.
    Merge(CampaignId, CampaignId),
    /// These reports form a group of their own: no link between them and any other report
    /// (also for reports that arrive later). `campaign` is where they were split from.
    Split {
        campaign: CampaignId,
        reports: Vec<Seq>,
    },
}

/// Postings of a value in which the evidence of the `known` flag looks for feed names.
const FEED_NAMES_FROM: usize = 256;
/// Feed names the evidence of the `known` flag takes per value.
const FEED_NAMES_MAX: usize = 16;
/// Values with at least this many postings keep their feed names (`Engine::feed_names`).
/// (Tiny in test builds, so that the property tests exercise what is kept.)
const FEED_NAMES_KEPT: usize = if cfg!(test) { 2 } else { 32 };

/// Marks a posting that holds its network through an address inside it.
const CONTAINED: u32 = 1 << 31;

#[derive(Debug)]
struct Rep {
    seq: Seq,
    at: DateTime<Utc>,
    source: u32,
    /// Split-pin label: reports link only within the same label.
    label: u32,
    /// Observables carried (as submitted, plus URL hosts), sorted ids: where they are in
    /// `Engine::rep_values` (see [`Rep::obs`]).
    obs: Span,
    /// Networks carried through an address inside them, sorted ids (a boxed slice: most
    /// reports have none, and the few changes rebuild it).
    contained: Box<[u32]>,
}

/// A run of [`Engine::rep_values`].
#[derive(Debug, Clone, Copy)]
struct Span {
    at: u32,
    len: u32,
}

impl Rep {
    /// The values the report carries (`rep_values` is the engine's).
    #[inline]
    fn obs<'a>(&self, rep_values: &'a [u32]) -> &'a [u32] {
        &rep_values[self.obs.at as usize..(self.obs.at + self.obs.len) as usize]
    }
}

#[derive(Debug, Clone)]
struct Obs {
    kind: u8,
    listed: bool,
    /// Some report carries this network itself.
    direct_cidr: bool,
    /// Reports carrying the value (directly, through a URL or through an address inside).
    count: u32,
    /// Feed reports carrying the value.
    feeds: u32,
}

#[derive(Debug)]
struct Camp {
    members: Vec<u32>,
    /// When its first report arrived, kept as reports join and leave: related campaigns are
    /// judged by it, and scanning a large campaign's reports for it once per campaign that
    /// names it as related was most of a first snapshot's time.
    first_at: DateTime<Utc>,
    id: CampaignId,
    /// Kept only for big campaigns (see [`TALLY_MIN`]).
    tally: Option<Box<Tally>>,
}

/// Campaigns with more reports than this keep a running [`Tally`] and a live view
/// ([`Live`]); smaller ones count afresh at each snapshot, which is cheaper than keeping a
/// map for each of them. At 2,000, the few hundred campaigns of 200–2,000 reports that a
/// batch of 1,000 adds touches were counted afresh at every snapshot (40 ms at 1M reports).
/// (Tiny in test builds, so that the property tests exercise the running tallies.)
const TALLY_MIN: usize = if cfg!(test) { 2 } else { 200 };

/// Per observable of a campaign: how many of its reports carry it, and how many of those
/// come from members. Kept up to date as reports join and leave, so the snapshot of a
/// campaign of half a million reports costs its distinct values, not a recount of every
/// report's values each time one more report joins.
type Tally = FxHashMap<u32, (u32, u32)>;

#[derive(Debug, Clone, Copy)]
struct Sight {
    at: DateTime<Utc>,
    sector: Option<crate::model::Sector>,
}

/// The correlation graph and its campaigns.
#[derive(Debug)]
pub struct Engine {
    rules: Arc<Rules>,
    ids: IdBook,
    pins: Vec<Pin>,
    split_label: FxHashMap<Seq, u32>,
    pin_pairs: Vec<(Seq, Seq)>,
    pin_adj: FxHashMap<u32, Vec<u32>>,

    reps: Vec<Rep>,
    /// Every report's values end to end, in report order (a boxed slice per report was a
    /// million small heap blocks at 1M reports; a report's values never change).
    rep_values: Vec<u32>,
    max_seq: Seq,
    /// Report numbers by `Seq` (a table of numbers only: the key is the report's own `seq`).
    index_of: hashbrown::HashTable<u32>,
    sources: Vec<Source>,
    source_ids: FxHashMap<Source, u32>,

    values: Vec<Observable>,
    /// Value numbers by hash, in [`interning::SHARDS`] maps (see `interning`).
    /// (A table of numbers and 32 bits of their hash, see `interning::hash_key`: values
    /// sharing a hash are told apart by comparing them.)
    by_hash: Vec<hashbrown::HashTable<(u32, u32)>>,
    /// Email values per mail domain (lower case): registrant patterns of related campaigns.
    mail_domains: FxHashMap<Box<str>, Vec<u32>>,
    obs: Vec<Obs>,
    /// The reports carrying each value, in the order they came (`| CONTAINED` when through
    /// an address inside the network): one list per value, numbered as `obs`.
    postings: Runs,
    v4_lens: BTreeSet<u8>,
    v6_lens: BTreeSet<u8>,
    ips: Addresses,
    over: Vec<u32>,

    /// Networks some report carries itself, by (family, network, prefix length): an address
    /// finds the networks that contain it with one lookup per reported prefix length.
    nets: FxHashMap<(u8, u128, u8), u32>,

    /// Links (symmetric).
    adj: Runs,
    camp_of: Vec<u32>,
    /// Position of each report in its campaign's `members` (removal in O(1) on a split).
    pos: Vec<u32>,
    camps: Vec<Camp>,
    free: Vec<u32>,
    slot_of_id: FxHashMap<CampaignId, u32>,

    sightings: Vec<Sight>,
    sight_by_obs: FxHashMap<u32, Vec<u32>>,
    sight_by_camp: FxHashMap<CampaignId, Vec<u32>>,

    /// Following another node's ids (see `adopt`): the ids it has recorded, and the keys
    /// of groups it has recorded no id for, which snapshots leave out. Both empty on a
    /// leader.
    recorded: FxHashSet<CampaignId>,
    provisional: FxHashSet<CampaignId>,

    /// The feed sources `feeds_of` names for values with long postings, until a feed
    /// report adds a name (behind a lock: snapshots fill it from several threads).
    feed_names: Mutex<FxHashMap<u32, Box<[u32]>>>,

    /// Snapshot state behind a lock so that [`Engine::snapshot`] takes `&self`.
    snap: Mutex<Snap>,
}

/// What the next snapshot must rebuild, and the last one.
#[derive(Debug, Default)]
struct Snap {
    set: CampaignSet,
    /// Slots whose campaign changed.
    dirty: FxHashSet<u32>,
    /// Ids that may no longer exist.
    gone: FxHashSet<CampaignId>,
    /// When each campaign's clock-dependent flags may change.
    expiry: BTreeSet<(DateTime<Utc>, CampaignId)>,
    expiry_of: FxHashMap<CampaignId, DateTime<Utc>>,
    last_now: Option<DateTime<Utc>>,
    /// Live views of big campaigns by slot (see `live`).
    live: FxHashMap<u32, Box<Live>>,
    /// Values fed for the first time since the last snapshot, by the slot of a campaign
    /// whose member reports carry them (see `Engine::settle_known`).
    became_known: FxHashMap<u32, Vec<u32>>,
    /// Per slot, the member values its last snapshot counted afresh.
    member_counts: Vec<snapshot::MemberCounts>,
}

/// Logs how long each phase of a full correlation took (`RUST_LOG=musubi::correlate=debug`).
struct Phases {
    start: std::time::Instant,
    last: std::time::Instant,
}

impl Phases {
    fn new() -> Phases {
        let now = std::time::Instant::now();
        Phases {
            start: now,
            last: now,
        }
    }

    fn lap(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        tracing::debug!(
            phase,
            ms = (now - self.last).as_secs_f64() * 1e3,
            total_ms = (now - self.start).as_secs_f64() * 1e3,
            "correlation phase"
        );
        self.last = now;
    }
}

impl Engine {
    /// The snapshot state, for a write that needs nothing else of the engine (`&mut self`:
    /// no lock is taken).
    fn snap_mut(&mut self) -> &mut Snap {
        self.snap.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// An empty engine with the shipped rules that will keep the ids already in `ids`.
    pub fn new(ids: IdBook) -> Engine {
        Engine::with_rules(Rules::shipped(), ids)
    }

    /// An empty engine with `rules`.
    pub fn with_rules(rules: Arc<Rules>, ids: IdBook) -> Engine {
        Engine {
            rules,
            ids,
            pins: Vec::new(),
            split_label: FxHashMap::default(),
            pin_pairs: Vec::new(),
            pin_adj: FxHashMap::default(),
            reps: Vec::new(),
            rep_values: Vec::new(),
            max_seq: Seq::default(),
            index_of: hashbrown::HashTable::new(),
            sources: Vec::new(),
            source_ids: FxHashMap::default(),
            values: Vec::new(),
            by_hash: (0..interning::SHARDS)
                .map(|_| hashbrown::HashTable::new())
                .collect(),
            mail_domains: FxHashMap::default(),
            obs: Vec::new(),
            postings: Runs::default(),
            v4_lens: BTreeSet::new(),
            v6_lens: BTreeSet::new(),
            ips: Addresses::default(),
            over: Vec::new(),
            nets: FxHashMap::default(),
            adj: Runs::default(),
            camp_of: Vec::new(),
            pos: Vec::new(),
            camps: Vec::new(),
            free: Vec::new(),
            slot_of_id: FxHashMap::default(),
            sightings: Vec::new(),
            sight_by_obs: FxHashMap::default(),
            sight_by_camp: FxHashMap::default(),
            recorded: FxHashSet::default(),
            provisional: FxHashSet::default(),
            feed_names: Mutex::new(FxHashMap::default()),
            snap: Mutex::new(Snap::default()),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// The id book, to persist or inspect.
    pub fn ids(&self) -> &IdBook {
        &self.ids
    }

    /// Number of reports in the graph.
    pub fn len(&self) -> usize {
        self.reps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reps.is_empty()
    }

    /// Number of campaigns.
    pub fn campaign_count(&self) -> usize {
        self.slot_of_id.len()
    }

    /// Number of links between reports.
    pub fn link_count(&self) -> usize {
        self.adj.total() / 2
    }

    /// The pins in force.
    pub fn pins(&self) -> &[Pin] {
        &self.pins
    }

    /// The number of the report `seq`, if the graph holds it.
    fn report_of(&self, seq: Seq) -> Option<u32> {
        self.index_of
            .find(seq_hash(seq), |&r| self.reps[r as usize].seq == seq)
            .copied()
    }

    /// Records the report just pushed last in `reps` under its `seq`.
    fn index_last_report(&mut self) {
        let r = self.reps.len() as u32 - 1;
        let reps = &self.reps;
        self.index_of
            .insert_unique(seq_hash(reps[r as usize].seq), r, |&x| {
                seq_hash(reps[x as usize].seq)
            });
    }

    /// Appends a report's values to `rep_values`.
    fn push_rep_values(&mut self, values: &[u32]) -> Span {
        let at = u32::try_from(self.rep_values.len())
            .ok()
            .filter(|at| at.checked_add(values.len() as u32).is_some())
            .expect("the correlation graph holds fewer than 2^32 report values");
        self.rep_values.extend_from_slice(values);
        Span {
            at,
            len: values.len() as u32,
        }
    }
}

fn seq_hash(seq: Seq) -> u64 {
    let mut h = FxHasher::default();
    seq.hash(&mut h);
    h.finish()
}
