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
use super::ids::{CampaignEvent, IdBook};
use super::rules::{Rules, kind_index};
use super::suppress::Suppression;
use super::{Campaign, CampaignSet, LINKING_MAX, ReportFacts, SightingFacts, Source};
use crate::model::{CampaignId, Observable, ObservableKind, Seq, SightingKind, SightingTarget};

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

/// Marks a posting that holds its network through an address inside it.
const CONTAINED: u32 = 1 << 31;

#[derive(Debug)]
struct Rep {
    seq: Seq,
    at: DateTime<Utc>,
    source: u32,
    /// Split-pin label: reports link only within the same label.
    label: u32,
    /// Observables carried (as submitted, plus URL hosts), sorted ids.
    obs: Box<[u32]>,
    /// Networks carried through an address inside them, sorted ids.
    contained: Vec<u32>,
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
    postings: Vec<u32>,
}

#[derive(Debug)]
struct Camp {
    members: Vec<u32>,
    id: CampaignId,
    /// Kept only for big campaigns (see [`TALLY_MIN`]).
    tally: Option<Box<Tally>>,
}

/// Campaigns with more reports than this keep a running [`Tally`]; smaller ones count
/// afresh at each snapshot, which is cheaper than keeping a map for each of them. (Tiny in
/// test builds, so that the property tests exercise the running tallies.)
const TALLY_MIN: usize = if cfg!(test) { 2 } else { 2_000 };

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
    max_seq: Seq,
    index_of: FxHashMap<Seq, u32>,
    sources: Vec<Source>,
    source_ids: FxHashMap<Source, u32>,

    values: Vec<Observable>,
    by_hash: FxHashMap<u64, u32>,
    collisions: FxHashMap<Observable, u32>,
    obs: Vec<Obs>,
    v4_lens: BTreeSet<u8>,
    v6_lens: BTreeSet<u8>,
    ips: BTreeMap<(u8, u128), u32>,
    over: Vec<u32>,

    /// Networks some report carries itself, by (family, network, prefix length): an address
    /// finds the networks that contain it with one lookup per reported prefix length.
    nets: FxHashMap<(u8, u128, u8), u32>,

    /// Links (symmetric).
    adj: Vec<Vec<u32>>,
    camp_of: Vec<u32>,
    /// Position of each report in its campaign's `members` (removal in O(1) on a split).
    pos: Vec<u32>,
    camps: Vec<Camp>,
    free: Vec<u32>,
    slot_of_id: FxHashMap<CampaignId, u32>,

    sightings: Vec<Sight>,
    sight_by_obs: FxHashMap<u32, Vec<u32>>,
    sight_by_camp: FxHashMap<CampaignId, Vec<u32>>,

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

fn hash_of(o: &Observable) -> u64 {
    let mut h = FxHasher::default();
    o.hash(&mut h);
    h.finish()
}

fn ip_key(ip: IpAddr) -> (u8, u128) {
    match ip {
        IpAddr::V4(v4) => (4, u32::from(v4) as u128),
        IpAddr::V6(v6) => (6, u128::from(v6)),
    }
}

/// The key of the network of `len` bits that contains `ip` (None past the address width).
fn net_key(ip: IpAddr, len: u8) -> Option<(u8, u128, u8)> {
    match ip {
        IpAddr::V4(v4) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            Some((4, u128::from(u32::from(v4) & mask), len))
        }
        IpAddr::V6(v6) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            Some((6, u128::from(v6) & mask, len))
        }
        _ => None,
    }
}

/// The key of a reported network.
fn cidr_key(net: &IpNet) -> (u8, u128, u8) {
    let (family, addr) = ip_key(net.network());
    (family, addr, net.prefix_len())
}

fn intersect(a: &[u32], b: &[u32], mut f: impl FnMut(u32)) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                f(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
}

/// A report's observables with URL hosts added, each with its hash (computed off the
/// engine, in parallel during a build).
fn expand(observables: Vec<Observable>) -> Vec<(u64, Observable)> {
    let mut out = Vec::with_capacity(observables.len() + 2);
    for o in observables {
        if let Some(host) = o.url_host() {
            out.push((hash_of(&host), host));
        }
        out.push((hash_of(&o), o));
    }
    out
}

impl Engine {
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
            max_seq: Seq::default(),
            index_of: FxHashMap::default(),
            sources: Vec::new(),
            source_ids: FxHashMap::default(),
            values: Vec::new(),
            by_hash: FxHashMap::default(),
            collisions: FxHashMap::default(),
            obs: Vec::new(),
            v4_lens: BTreeSet::new(),
            v6_lens: BTreeSet::new(),
            ips: BTreeMap::new(),
            over: Vec::new(),
            nets: FxHashMap::default(),
            adj: Vec::new(),
            camp_of: Vec::new(),
            pos: Vec::new(),
            camps: Vec::new(),
            free: Vec::new(),
            slot_of_id: FxHashMap::default(),
            sightings: Vec::new(),
            sight_by_obs: FxHashMap::default(),
            sight_by_camp: FxHashMap::default(),
            snap: Mutex::new(Snap::default()),
        }
    }

    /// Builds the engine over many reports at once with the shipped rules.
    pub fn build(ids: IdBook, reports: Vec<ReportFacts>) -> (Engine, Vec<CampaignEvent>) {
        Engine::build_with(Rules::shipped(), ids, reports)
    }

    /// Builds the engine over many reports at once (linking runs on rayon) and assigns ids
    /// by overlap with the ids already recorded. Returns the engine and what changed for
    /// the store.
    pub fn build_with(
        rules: Arc<Rules>,
        ids: IdBook,
        reports: Vec<ReportFacts>,
    ) -> (Engine, Vec<CampaignEvent>) {
        Engine::build_pinned(rules, ids, Vec::new(), reports)
    }

    /// [`Engine::build_with`] with the analysts' pins applied (pins name campaign ids, so
    /// they are resolved against `ids`).
    pub fn build_pinned(
        rules: Arc<Rules>,
        ids: IdBook,
        pins: Vec<Pin>,
        reports: Vec<ReportFacts>,
    ) -> (Engine, Vec<CampaignEvent>) {
        let mut engine = Engine::with_rules(rules, ids);
        engine.load(reports);
        let events = engine.finish_load(pins);
        (engine, events)
    }

    /// Takes a batch of reports into an engine being built (start with
    /// [`Engine::with_rules`], end with [`Engine::finish_load`]); nothing is linked yet.
    /// Start-up reads the store a batch at a time, so the raw observables of one batch are
    /// freed as soon as they are interned: the peak is the engine, not the engine plus a
    /// copy of every stored value. Reports already taken are skipped.
    pub fn load(&mut self, mut reports: Vec<ReportFacts>) {
        let mut phases = Phases::new();
        reports.sort_by_key(|r| r.seq);
        reports.dedup_by_key(|r| r.seq);
        reports.retain(|r| !self.index_of.contains_key(&r.seq));
        let metas: Vec<(Seq, DateTime<Utc>, Source)> = reports
            .iter()
            .map(|r| (r.seq, r.at, r.source.clone()))
            .collect();
        let expanded: Vec<Vec<(u64, Observable)>> = reports
            .into_par_iter()
            .map(|r| expand(r.observables))
            .collect();
        phases.lap("expand");
        let mut fresh = Vec::new();
        self.reps.reserve(metas.len());
        for ((seq, at, source), obs) in metas.into_iter().zip(expanded) {
            let mut ids: Vec<u32> = obs
                .into_iter()
                .map(|(h, o)| self.intern_hashed(h, o, &mut fresh))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let source = self.source_id(source);
            self.index_of.insert(seq, self.reps.len() as u32);
            self.max_seq = self.max_seq.max(seq);
            self.reps.push(Rep {
                seq,
                at,
                source,
                label: 0,
                obs: ids.into_boxed_slice(),
                contained: Vec::new(),
            });
        }
        phases.lap("intern");
    }

    /// Links everything [`Engine::load`] took, with the analysts' `pins` (resolved against
    /// the ids the engine was given): the full correlation. Returns what changed for the
    /// store.
    pub fn finish_load(&mut self, pins: Vec<Pin>) -> Vec<CampaignEvent> {
        self.pins = pins;
        self.resolve_pins();
        self.correlate_all()
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
        self.adj.iter().map(Vec::len).sum::<usize>() / 2
    }

    /// The pins in force.
    pub fn pins(&self) -> &[Pin] {
        &self.pins
    }

    /// Re-correlates everything with new rules (SIGHUP). Campaign ids are kept by overlap.
    pub fn recorrelate(&mut self, rules: Arc<Rules>) -> Vec<CampaignEvent> {
        self.rules = rules;
        self.correlate_all()
    }

    /// Replaces the pins and re-correlates. Merge pins are resolved against the ids recorded
    /// now; split pins hold by report, also for reports that arrive later.
    pub fn set_pins(&mut self, pins: Vec<Pin>) -> Vec<CampaignEvent> {
        self.pins = pins;
        self.resolve_pins();
        self.correlate_all()
    }

    /// Adds one pin and re-correlates.
    pub fn pin(&mut self, pin: Pin) -> Vec<CampaignEvent> {
        let mut pins = self.pins.clone();
        pins.push(pin);
        self.set_pins(pins)
    }

    /// Values that stopped linking because they are in more reports than the cap, with
    /// their report counts, most frequent first (values on warning lists are not listed).
    pub fn over_correlating(&self) -> Vec<(Observable, usize)> {
        let mut out: Vec<(Observable, usize)> = self
            .over
            .iter()
            .map(|&o| {
                (
                    self.values[o as usize].clone(),
                    self.obs[o as usize].count as usize,
                )
            })
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Why `o` does not link, if it is suppressed.
    pub fn suppressed(&self, o: &Observable) -> Option<Suppression> {
        match self.lookup(o) {
            Some(id) => {
                let ob = &self.obs[id as usize];
                if ob.listed {
                    self.rules.warninglists.check(o)
                } else if ob.count as usize > self.rules.link.cap {
                    Some(Suppression::OverCorrelating {
                        reports: ob.count as usize,
                        cap: self.rules.link.cap,
                    })
                } else {
                    None
                }
            }
            None => self.rules.warninglists.check(o),
        }
    }

    /// Records a sighting. Only true-positive sightings change flags; others are ignored.
    pub fn add_sighting(&mut self, s: SightingFacts) {
        if s.kind != SightingKind::Seen {
            return;
        }
        let idx = self.sightings.len() as u32;
        self.sightings.push(Sight {
            at: s.at,
            sector: s.sector,
        });
        match s.target {
            SightingTarget::Observable(o) => {
                let mut fresh = Vec::new();
                let id = self.intern_hashed(hash_of(&o), o, &mut fresh);
                self.check_fresh(&fresh);
                self.sight_by_obs.entry(id).or_default().push(idx);
                self.dirty_postings(id);
            }
            SightingTarget::Campaign(cid) => {
                self.sight_by_camp.entry(cid).or_default().push(idx);
                if let Some(&slot) = self.slot_of_id.get(&cid) {
                    self.snap
                        .get_mut()
                        .unwrap_or_else(|e| e.into_inner())
                        .dirty
                        .insert(slot);
                }
            }
        }
    }

    /// Adds one report (the incremental fast path) and returns what changed for the store.
    pub fn add(&mut self, facts: ReportFacts) -> Vec<CampaignEvent> {
        if self.index_of.contains_key(&facts.seq) {
            return Vec::new();
        }
        let r = self.reps.len() as u32;
        let is_feed = matches!(facts.source, Source::Feed { .. });
        let mut fresh = Vec::new();
        let mut obs: Vec<u32> = expand(facts.observables)
            .into_iter()
            .map(|(h, o)| self.intern_hashed(h, o, &mut fresh))
            .collect();
        obs.sort_unstable();
        obs.dedup();
        self.check_fresh(&fresh);
        let source = self.source_id(facts.source);
        let label = self.split_label.get(&facts.seq).copied().unwrap_or(0);
        self.index_of.insert(facts.seq, r);
        self.max_seq = self.max_seq.max(facts.seq);
        self.reps.push(Rep {
            seq: facts.seq,
            at: facts.at,
            source,
            label,
            obs: obs.clone().into_boxed_slice(),
            contained: Vec::new(),
        });
        self.adj.push(Vec::new());
        self.camp_of.push(u32::MAX);
        self.pos.push(0);

        // Counts change; remember the weights before.
        let mut touched: FxHashMap<u32, (u32, u32)> = FxHashMap::default();
        // Networks reported for the first time pick up the addresses reported before.
        for &o in &obs {
            let v = &self.values[o as usize];
            if v.kind() == ObservableKind::Cidr && !self.obs[o as usize].direct_cidr {
                self.obs[o as usize].direct_cidr = true;
                let Ok(net) = v.value().parse::<IpNet>() else {
                    continue;
                };
                match net {
                    IpNet::V4(_) => self.v4_lens.insert(net.prefix_len()),
                    IpNet::V6(_) => self.v6_lens.insert(net.prefix_len()),
                };
                self.nets.insert(cidr_key(&net), o);
                let lo = ip_key(net.network());
                let hi = ip_key(net.broadcast());
                let inside: Vec<u32> = self.ips.range(lo..=hi).map(|(_, &id)| id).collect();
                for ip in inside {
                    let holders: Vec<u32> = self.obs[ip as usize].postings.clone();
                    for p in holders {
                        let p = p & !CONTAINED;
                        let rep = &mut self.reps[p as usize];
                        if rep.obs.binary_search(&o).is_ok() {
                            continue;
                        }
                        if let Err(at) = rep.contained.binary_search(&o) {
                            rep.contained.insert(at, o);
                            touched.entry(o).or_insert_with(|| {
                                (self.weight_now(o), self.obs[o as usize].count)
                            });
                            let ob = &mut self.obs[o as usize];
                            ob.count += 1;
                            ob.postings.push(p | CONTAINED);
                            self.mark_dirty_report(p);
                        }
                    }
                }
            }
        }
        let contained = self.contained_of(&obs);
        for &o in &obs {
            touched
                .entry(o)
                .or_insert_with(|| (self.weight_now(o), self.obs[o as usize].count));
            let ob = &mut self.obs[o as usize];
            ob.count += 1;
            ob.postings.push(r);
            if is_feed {
                ob.feeds += 1;
                if ob.feeds == 1 {
                    self.dirty_postings(o);
                }
            }
        }
        for &c in &contained {
            touched
                .entry(c)
                .or_insert_with(|| (self.weight_now(c), self.obs[c as usize].count));
            let ob = &mut self.obs[c as usize];
            ob.count += 1;
            ob.postings.push(r | CONTAINED);
        }
        self.reps[r as usize].contained = contained;

        // Values whose weight fell: re-check the links that rest on them.
        let mut broken: Vec<(u32, u32)> = Vec::new();
        let mut weakened: Vec<u32> = Vec::new();
        for (&o, &(before, count_before)) in &touched {
            let after = self.weight_now(o);
            let ob = &self.obs[o as usize];
            let cap = self.rules.link.cap;
            if !ob.listed
                && count_before as usize <= cap
                && ob.count as usize > cap
                && self.rules.link.weight_of(self.kind(o)) > 0
            {
                self.over.push(o);
            }
            if after < before {
                weakened.push(o);
            }
        }
        weakened.sort_unstable();
        let threshold = self.rules.link.threshold;
        for o in weakened {
            // Only links between two holders of `o` rest on it.
            let holders: FxHashSet<u32> = self.obs[o as usize]
                .postings
                .iter()
                .map(|&p| p & !CONTAINED)
                .filter(|&p| p != r)
                .collect();
            let mut cut = Vec::new();
            for &p in &holders {
                for &q in &self.adj[p as usize] {
                    // Each pair once.
                    if q > p && holders.contains(&q) && self.shared(p, q) < threshold {
                        cut.push((p, q));
                    }
                }
            }
            broken.extend(cut);
        }
        broken.sort_unstable();
        broken.dedup();

        // A broken link splits its campaign only when no other path joins its ends; the
        // side found to be cut off becomes a campaign of its own. Links are removed one at
        // a time: a connected campaign losing one link falls into at most two parts, and
        // `cut_off` finds one of them exactly.
        let mut events = Vec::new();
        for &(p, q) in &broken {
            self.mark_dirty_report(p);
            self.unlink(p, q);
            if let Some(side) = self.cut_off(p, q) {
                events.extend(self.split_off(side));
            }
        }

        // The new report's links.
        let links = self.candidates(r, |_| true);
        for &p in &links {
            self.adj[r as usize].push(p);
            self.adj[p as usize].push(r);
        }
        let mut slots: Vec<u32> = links.iter().map(|&p| self.camp_of[p as usize]).collect();
        slots.sort_unstable();
        slots.dedup();
        events.extend(self.join(r, slots));
        #[cfg(test)]
        self.check_links();
        events
    }

    /// Test builds check after every add that the links are exactly the pairs sharing
    /// enough weight, and that every campaign is one connected group.
    #[cfg(test)]
    fn check_links(&self) {
        let t = self.rules.link.threshold;
        for a in 0..self.reps.len() as u32 {
            for b in 0..a {
                let linked = self.adj[a as usize].contains(&b);
                let should = self.shared(a, b) >= t
                    && self.reps[a as usize].label == self.reps[b as usize].label;
                assert_eq!(
                    linked, should,
                    "link {a}-{b} (seqs {:?} {:?})",
                    self.reps[a as usize].seq, self.reps[b as usize].seq
                );
                if linked {
                    assert_eq!(self.camp_of[a as usize], self.camp_of[b as usize]);
                }
            }
            let slot = self.camp_of[a as usize];
            assert_eq!(
                self.camps[slot as usize].members[self.pos[a as usize] as usize], a,
                "pos of {a}"
            );
        }
        for (i, c) in self.camps.iter().enumerate() {
            if c.members.is_empty() {
                continue;
            }
            let mut seen = FxHashSet::from_iter([c.members[0]]);
            let mut q = vec![c.members[0]];
            while let Some(x) = q.pop() {
                let pins = self.pin_adj.get(&x).map(Vec::as_slice).unwrap_or(&[]);
                for &y in self.adj[x as usize].iter().chain(pins) {
                    if seen.insert(y) {
                        q.push(y);
                    }
                }
            }
            assert_eq!(
                seen.len(),
                c.members.len(),
                "slot {i} members {:?} not one component",
                c.members
            );
            if let Some(t) = &c.tally {
                assert_eq!(**t, self.tally_of(&c.members), "running tally of slot {i}");
            }
            assert!(
                c.members.len() <= TALLY_MIN || c.tally.is_some(),
                "slot {i} has no tally"
            );
        }
    }

    /// Takes a snapshot of every campaign with flags as of now.
    pub fn snapshot(&self) -> CampaignSet {
        self.snapshot_at(Utc::now())
    }

    /// Takes a snapshot with flags computed at `now`. Only campaigns that changed, or whose
    /// clock-dependent flags (stale, surge) are due to change, are rebuilt; the others are
    /// shared with the previous snapshot.
    pub fn snapshot_at(&self, now: DateTime<Utc>) -> CampaignSet {
        let mut guard = self.snap.lock().unwrap_or_else(|e| e.into_inner());
        let snap = &mut *guard;
        if snap.last_now.is_some_and(|l| now < l) {
            // The clock went back: every clock-dependent answer may differ.
            snap.dirty.extend(self.slot_of_id.values().copied());
        }
        snap.last_now = Some(now);
        while let Some(&(t, id)) = snap.expiry.first() {
            if t > now {
                break;
            }
            snap.expiry.pop_first();
            snap.expiry_of.remove(&id);
            if let Some(&slot) = self.slot_of_id.get(&id) {
                snap.dirty.insert(slot);
            }
        }
        for id in std::mem::take(&mut snap.gone) {
            if !self.slot_of_id.contains_key(&id) {
                snap.set.remove(id);
                if let Some(t) = snap.expiry_of.remove(&id) {
                    snap.expiry.remove(&(t, id));
                }
            }
        }
        let mut phases = Phases::new();
        let dirty: Vec<u32> = std::mem::take(&mut snap.dirty).into_iter().collect();
        let built: Vec<(Campaign, Option<DateTime<Utc>>)> = dirty
            .par_iter()
            .filter(|&&slot| !self.camps[slot as usize].members.is_empty())
            .map(|&slot| self.campaign_of(slot, now))
            .collect();
        phases.lap("snapshot: campaigns");
        for (campaign, until) in built {
            let id = campaign.id;
            for &seq in &campaign.reports {
                snap.set.by_report.insert(seq, id);
            }
            if let Some(t) = snap.expiry_of.remove(&id) {
                snap.expiry.remove(&(t, id));
            }
            if let Some(t) = until {
                snap.expiry.insert((t, id));
                snap.expiry_of.insert(id, t);
            }
            snap.set.upsert(Arc::new(campaign));
        }
        snap.set.applied = self.max_seq;
        snap.set.at = now;
        phases.lap("snapshot: install");
        let set = snap.set.clone();
        phases.lap("snapshot: copy");
        set
    }

    // ---- internals ----

    fn kind(&self, o: u32) -> ObservableKind {
        ObservableKind::ALL[self.obs[o as usize].kind as usize]
    }

    fn weight_now(&self, o: u32) -> u32 {
        let ob = &self.obs[o as usize];
        if ob.listed {
            return 0;
        }
        self.rules.link.weight(self.kind(o), ob.count as usize)
    }

    fn lookup(&self, o: &Observable) -> Option<u32> {
        let h = hash_of(o);
        match self.by_hash.get(&h) {
            Some(&id) if self.values[id as usize] == *o => Some(id),
            Some(_) => self.collisions.get(o).copied(),
            None => None,
        }
    }

    /// Interns a value; new ids are pushed to `fresh` for a warning-list check.
    fn intern_hashed(&mut self, h: u64, o: Observable, fresh: &mut Vec<u32>) -> u32 {
        match self.by_hash.get(&h) {
            Some(&id) if self.values[id as usize] == o => return id,
            Some(_) => {
                if let Some(&id) = self.collisions.get(&o) {
                    return id;
                }
            }
            None => {}
        }
        let id = self.values.len() as u32;
        let kind = kind_index(o.kind()) as u8;
        if let std::collections::hash_map::Entry::Vacant(e) = self.by_hash.entry(h) {
            e.insert(id);
        } else {
            self.collisions.insert(o.clone(), id);
        }
        self.values.push(o);
        self.obs.push(Obs {
            kind,
            listed: false,
            direct_cidr: false,
            count: 0,
            feeds: 0,
            postings: Vec::new(),
        });
        fresh.push(id);
        id
    }

    /// Checks new values against the warning lists and indexes new addresses.
    fn check_fresh(&mut self, fresh: &[u32]) {
        for &id in fresh {
            let v = &self.values[id as usize];
            let listed = self.rules.warninglists.check(v).is_some();
            self.obs[id as usize].listed = listed;
            if !listed && let Some(ip) = v.ip() {
                self.ips.insert(ip_key(ip), id);
            }
        }
    }

    fn source_id(&mut self, source: Source) -> u32 {
        if let Some(&id) = self.source_ids.get(&source) {
            return id;
        }
        let id = self.sources.len() as u32;
        self.sources.push(source.clone());
        self.source_ids.insert(source, id);
        id
    }

    /// Networks that reports carry and that contain an address of `obs`.
    fn contained_of(&self, obs: &[u32]) -> Vec<u32> {
        let mut out = Vec::new();
        for &o in obs {
            if self.obs[o as usize].listed {
                continue;
            }
            let Some(ip) = self.values[o as usize].ip() else {
                continue;
            };
            let lens = match ip {
                IpAddr::V4(_) => &self.v4_lens,
                IpAddr::V6(_) => &self.v6_lens,
            };
            for &len in lens {
                if let Some(&c) = net_key(ip, len).and_then(|k| self.nets.get(&k))
                    && obs.binary_search(&c).is_err()
                {
                    out.push(c);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The summed weight `a` and `b` share at the current counts.
    fn shared(&self, a: u32, b: u32) -> u32 {
        let (ra, rb) = (&self.reps[a as usize], &self.reps[b as usize]);
        let mut sum = 0;
        intersect(&ra.obs, &rb.obs, |o| sum += self.weight_now(o));
        intersect(&ra.contained, &rb.obs, |o| sum += self.weight_now(o));
        intersect(&ra.obs, &rb.contained, |o| sum += self.weight_now(o));
        sum
    }

    /// Reports `r` links to, among those `keep` accepts, through the postings of its values.
    fn candidates(&self, r: u32, keep: impl Fn(u32) -> bool) -> Vec<u32> {
        self.candidates_with(r, keep, &mut Vec::new())
    }

    /// [`Engine::candidates`] with a scratch buffer the caller keeps between calls.
    fn candidates_with(
        &self,
        r: u32,
        keep: impl Fn(u32) -> bool,
        acc: &mut Vec<(u32, u32)>,
    ) -> Vec<u32> {
        let rep = &self.reps[r as usize];
        acc.clear();
        for &o in rep.obs.iter() {
            let w = self.weight_now(o);
            if w == 0 {
                continue;
            }
            for &p in &self.obs[o as usize].postings {
                let p = p & !CONTAINED;
                if p != r && keep(p) {
                    acc.push((p, w));
                }
            }
        }
        for &c in &rep.contained {
            let w = self.weight_now(c);
            if w == 0 {
                continue;
            }
            for &p in &self.obs[c as usize].postings {
                if p & CONTAINED == 0 && p != r && keep(p) {
                    acc.push((p, w));
                }
            }
        }
        acc.sort_unstable_by_key(|(p, _)| *p);
        let mut out = Vec::new();
        let mut i = 0;
        while i < acc.len() {
            let p = acc[i].0;
            let mut sum = 0u32;
            while i < acc.len() && acc[i].0 == p {
                sum = sum.saturating_add(acc[i].1);
                i += 1;
            }
            if sum >= self.rules.link.threshold && self.reps[p as usize].label == rep.label {
                out.push(p);
            }
        }
        out
    }

    /// After the link `a`–`b` broke: `None` while another path (of links and pins) still
    /// joins them, otherwise the reports of the component that was cut off.
    ///
    /// Two breadth-first searches, from `a` and from `b`, advance in turn; the first to run
    /// out of reports has found a whole component, and the first to reach a report the other
    /// has seen proves the campaign whole. Either way the cost is about the smaller side, so
    /// a leaf falling off a campaign of half a million reports costs the leaf, not the giant.
    fn cut_off(&self, a: u32, b: u32) -> Option<Vec<u32>> {
        struct Side {
            seen: FxHashSet<u32>,
            order: Vec<u32>,
            next: usize,
        }
        let start = |x: u32| Side {
            seen: FxHashSet::from_iter([x]),
            order: vec![x],
            next: 0,
        };
        let mut sides = [start(a), start(b)];
        if sides[0].seen.contains(&b) {
            return None;
        }
        loop {
            for i in 0..2 {
                let (this, other) = if i == 0 {
                    let (l, r) = sides.split_at_mut(1);
                    (&mut l[0], &r[0])
                } else {
                    let (l, r) = sides.split_at_mut(1);
                    (&mut r[0], &l[0])
                };
                let Some(&x) = this.order.get(this.next) else {
                    return Some(std::mem::take(&mut this.order));
                };
                this.next += 1;
                let pins = self.pin_adj.get(&x).map(Vec::as_slice).unwrap_or(&[]);
                for &y in self.adj[x as usize].iter().chain(pins) {
                    if other.seen.contains(&y) {
                        return None;
                    }
                    if this.seen.insert(y) {
                        this.order.push(y);
                    }
                }
            }
        }
    }

    fn unlink(&mut self, a: u32, b: u32) {
        self.adj[a as usize].retain(|&x| x != b);
        self.adj[b as usize].retain(|&x| x != a);
    }

    fn mark_dirty_report(&mut self, p: u32) {
        let slot = self.camp_of[p as usize];
        if slot != u32::MAX {
            self.snap
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .dirty
                .insert(slot);
        }
    }

    fn dirty_postings(&mut self, o: u32) {
        let holders = std::mem::take(&mut self.obs[o as usize].postings);
        for &p in &holders {
            self.mark_dirty_report(p & !CONTAINED);
        }
        self.obs[o as usize].postings = holders;
    }

    /// Counts `members`' observables afresh.
    fn tally_of(&self, members: &[u32]) -> Tally {
        let mut tally = Tally::default();
        for &m in members {
            self.tally_report(&mut tally, m, 1);
        }
        tally
    }

    /// Adds (`sign` 1) or removes (`sign` -1) report `m` in `tally`.
    fn tally_report(&self, tally: &mut Tally, m: u32, sign: i32) {
        let rep = &self.reps[m as usize];
        let member = matches!(self.sources[rep.source as usize], Source::Member { .. });
        for &o in rep.obs.iter() {
            if sign > 0 {
                let e = tally.entry(o).or_default();
                e.0 += 1;
                e.1 += u32::from(member);
            } else if let Some(e) = tally.get_mut(&o) {
                e.0 -= 1;
                e.1 -= u32::from(member);
                if e.0 == 0 {
                    tally.remove(&o);
                }
            }
        }
    }

    /// Brings the tally of `slot` in line after `joined` reports joined it: counted in,
    /// or counted from scratch when the campaign has just grown past [`TALLY_MIN`].
    fn tally_joined(&mut self, slot: u32, joined: &[u32]) {
        let mut tally = self.camps[slot as usize].tally.take();
        match &mut tally {
            Some(t) => {
                for &m in joined {
                    self.tally_report(t, m, 1);
                }
            }
            None if self.camps[slot as usize].members.len() > TALLY_MIN => {
                tally = Some(Box::new(self.tally_of(&self.camps[slot as usize].members)));
            }
            None => {}
        }
        self.camps[slot as usize].tally = tally;
    }

    fn new_slot(&mut self, members: Vec<u32>, id: CampaignId) -> u32 {
        let camp = Camp {
            members,
            id,
            tally: None,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.camps[s as usize] = camp;
                s
            }
            None => {
                self.camps.push(camp);
                (self.camps.len() - 1) as u32
            }
        };
        for (i, &m) in self.camps[slot as usize].members.iter().enumerate() {
            self.camp_of[m as usize] = slot;
            self.pos[m as usize] = i as u32;
        }
        self.slot_of_id.insert(id, slot);
        self.snap
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .dirty
            .insert(slot);
        slot
    }

    fn free_slot(&mut self, slot: u32) -> Camp {
        let camp = std::mem::replace(
            &mut self.camps[slot as usize],
            Camp {
                members: Vec::new(),
                id: CampaignId { year: 0, number: 0 },
                tally: None,
            },
        );
        if self.slot_of_id.get(&camp.id) == Some(&slot) {
            self.slot_of_id.remove(&camp.id);
        }
        self.free.push(slot);
        self.snap
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .dirty
            .remove(&slot);
        camp
    }

    /// The fast path: `r` joins the campaigns in `slots` (none: a new campaign). The id is
    /// the one `IdBook::assign` would choose: the largest campaign's, ties to the older id.
    fn join(&mut self, r: u32, slots: Vec<u32>) -> Vec<CampaignEvent> {
        let seq = self.reps[r as usize].seq;
        let mut events = Vec::new();
        if slots.is_empty() {
            let id = self.ids.allocate(self.reps[r as usize].at);
            self.ids.set(seq, id);
            self.new_slot(vec![r], id);
            events.push(CampaignEvent::Created { id });
            events.push(CampaignEvent::Assigned {
                id,
                reports: vec![seq],
            });
            return events;
        }
        let winner = *slots
            .iter()
            .max_by(|&&a, &&b| {
                let (ca, cb) = (&self.camps[a as usize], &self.camps[b as usize]);
                ca.members
                    .len()
                    .cmp(&cb.members.len())
                    .then(cb.id.cmp(&ca.id))
            })
            .expect("not empty");
        let into = self.camps[winner as usize].id;
        let mut from = Vec::new();
        let mut moved = Vec::new();
        let mut joined = vec![r];
        for &s in &slots {
            if s == winner {
                continue;
            }
            let camp = self.free_slot(s);
            from.push(camp.id);
            self.snap
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .gone
                .insert(camp.id);
            let base = self.camps[winner as usize].members.len();
            for (i, &m) in camp.members.iter().enumerate() {
                self.camp_of[m as usize] = winner;
                self.pos[m as usize] = (base + i) as u32;
                let mseq = self.reps[m as usize].seq;
                self.ids.set(mseq, into);
                moved.push(mseq);
            }
            joined.extend_from_slice(&camp.members);
            self.camps[winner as usize].members.extend(camp.members);
        }
        self.pos[r as usize] = self.camps[winner as usize].members.len() as u32;
        self.camps[winner as usize].members.push(r);
        self.camp_of[r as usize] = winner;
        self.tally_joined(winner, &joined);
        self.ids.set(seq, into);
        self.snap
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .dirty
            .insert(winner);
        if !from.is_empty() {
            from.sort();
            events.push(CampaignEvent::Merged { into, from });
        }
        moved.push(seq);
        moved.sort();
        events.push(CampaignEvent::Assigned {
            id: into,
            reports: moved,
        });
        events
    }

    /// Moves `group` (a whole connected component inside one campaign) out of its campaign
    /// into a new one. The rest keeps the id: it is the larger side, as `IdBook::assign`
    /// would decide by overlap.
    fn split_off(&mut self, group: Vec<u32>) -> Vec<CampaignEvent> {
        let slot = self.camp_of[group[0] as usize];
        if group.len() >= self.camps[slot as usize].members.len() {
            // Already a campaign of its own (an earlier break cut it off).
            return Vec::new();
        }
        if let Some(mut tally) = self.camps[slot as usize].tally.take() {
            for &m in &group {
                self.tally_report(&mut tally, m, -1);
            }
            self.camps[slot as usize].tally = Some(tally);
        }
        for &m in &group {
            let members = &mut self.camps[slot as usize].members;
            let i = self.pos[m as usize] as usize;
            members.swap_remove(i);
            if let Some(&moved) = members.get(i) {
                self.pos[moved as usize] = i as u32;
            }
        }
        self.snap
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .dirty
            .insert(slot);
        let from = self.camps[slot as usize].id;
        let first = group
            .iter()
            .map(|&m| self.reps[m as usize].at)
            .min()
            .expect("a group has a report");
        let id = self.ids.allocate(first);
        let mut seqs: Vec<Seq> = group.iter().map(|&m| self.reps[m as usize].seq).collect();
        seqs.sort_unstable();
        for &seq in &seqs {
            self.ids.set(seq, id);
        }
        let new = self.new_slot(group, id);
        self.tally_joined(new, &[]);
        vec![
            CampaignEvent::Created { id },
            CampaignEvent::Split { from, into: id },
            CampaignEvent::Assigned { id, reports: seqs },
        ]
    }

    /// Gives ids to new groups by overlap and installs them as campaigns.
    fn install(&mut self, mut groups: Vec<Vec<u32>>) -> Vec<CampaignEvent> {
        for g in &mut groups {
            g.sort_unstable();
        }
        let seqs: Vec<Vec<Seq>> = groups
            .iter()
            .map(|g| g.iter().map(|&m| self.reps[m as usize].seq).collect())
            .collect();
        let starts: Vec<DateTime<Utc>> = groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|&m| self.reps[m as usize].at)
                    .min()
                    .expect("a group has a report")
            })
            .collect();
        let (assigned, events) = self.ids.assign(&seqs, &starts);
        for (g, id) in groups.into_iter().zip(assigned) {
            self.snap
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .gone
                .remove(&id);
            self.new_slot(g, id);
        }
        events
    }

    fn resolve_pins(&mut self) {
        self.split_label.clear();
        self.pin_pairs.clear();
        for (i, pin) in self.pins.iter().enumerate() {
            match pin {
                Pin::Split { reports, .. } => {
                    for &s in reports {
                        self.split_label.insert(s, i as u32 + 1);
                    }
                }
                Pin::Merge(a, b) => {
                    let mut anchors = self.ids.reports_of(*a);
                    anchors.extend(self.ids.reports_of(*b));
                    if let Some((&first, rest)) = anchors.split_first() {
                        for &s in rest {
                            self.pin_pairs.push((first, s));
                        }
                    }
                }
            }
        }
        for rep in &mut self.reps {
            rep.label = self.split_label.get(&rep.seq).copied().unwrap_or(0);
        }
    }

    /// Full correlation from the stored reports with the current rules and pins.
    fn correlate_all(&mut self) -> Vec<CampaignEvent> {
        let mut phases = Phases::new();
        let rules = self.rules.clone();
        // Suppression and counts from scratch.
        let listed: Vec<bool> = self
            .values
            .par_iter()
            .map(|v| rules.warninglists.check(v).is_some())
            .collect();
        for (ob, l) in self.obs.iter_mut().zip(listed) {
            ob.listed = l;
            ob.direct_cidr = false;
            ob.count = 0;
            ob.feeds = 0;
            ob.postings.clear();
        }
        phases.lap("warning lists");
        self.v4_lens.clear();
        self.v6_lens.clear();
        self.ips.clear();
        self.nets.clear();
        let (v4, v6, cidr) = (
            kind_index(ObservableKind::Ipv4) as u8,
            kind_index(ObservableKind::Ipv6) as u8,
            kind_index(ObservableKind::Cidr) as u8,
        );
        for (id, v) in self.values.iter().enumerate() {
            let ob = &self.obs[id];
            if !ob.listed
                && (ob.kind == v4 || ob.kind == v6)
                && let Some(ip) = v.ip()
            {
                self.ips.insert(ip_key(ip), id as u32);
            }
        }
        // Direct counts and reported networks in one pass (postings are sized from the
        // counts below: growing ten million small vectors one push at a time is what costs).
        for rep in &self.reps {
            for &o in rep.obs.iter() {
                let ob = &mut self.obs[o as usize];
                ob.count += 1;
                if ob.kind == cidr
                    && !ob.direct_cidr
                    && let Ok(net) = self.values[o as usize].value().parse::<IpNet>()
                {
                    ob.direct_cidr = true;
                    match net {
                        IpNet::V4(_) => self.v4_lens.insert(net.prefix_len()),
                        IpNet::V6(_) => self.v6_lens.insert(net.prefix_len()),
                    };
                    self.nets.insert(cidr_key(&net), o);
                }
            }
        }
        phases.lap("networks");
        let contained: Vec<Vec<u32>> = self
            .reps
            .par_iter()
            .map(|rep| self.contained_of(&rep.obs))
            .collect();
        for (rep, c) in self.reps.iter_mut().zip(contained) {
            for &c in &c {
                self.obs[c as usize].count += 1;
            }
            rep.contained = c;
        }
        for ob in &mut self.obs {
            ob.postings.reserve_exact(ob.count as usize);
        }
        for (r, rep) in self.reps.iter().enumerate() {
            let is_feed = matches!(self.sources[rep.source as usize], Source::Feed { .. });
            for &o in rep.obs.iter() {
                let ob = &mut self.obs[o as usize];
                ob.postings.push(r as u32);
                if is_feed {
                    ob.feeds += 1;
                }
            }
            for &c in &rep.contained {
                self.obs[c as usize].postings.push(r as u32 | CONTAINED);
            }
        }
        phases.lap("postings");
        self.over = (0..self.obs.len() as u32)
            .filter(|&o| {
                let ob = &self.obs[o as usize];
                !ob.listed
                    && ob.count as usize > rules.link.cap
                    && rules.link.weight_of(self.kind(o)) > 0
            })
            .collect();
        // Links, each pair once from its later report.
        let lower: Vec<Vec<u32>> = (0..self.reps.len() as u32)
            .into_par_iter()
            .map_init(Vec::new, |acc, r| self.candidates_with(r, |p| p < r, acc))
            .collect();
        phases.lap("links");
        let mut degree = vec![0u32; self.reps.len()];
        for (r, ps) in lower.iter().enumerate() {
            degree[r] += ps.len() as u32;
            for &p in ps {
                degree[p as usize] += 1;
            }
        }
        let mut adj: Vec<Vec<u32>> = degree
            .into_iter()
            .map(|d| Vec::with_capacity(d as usize))
            .collect();
        for (r, ps) in lower.into_iter().enumerate() {
            for p in ps {
                adj[r].push(p);
                adj[p as usize].push(r as u32);
            }
        }
        self.adj = adj;
        self.pin_adj.clear();
        for &(a, b) in &self.pin_pairs {
            if let (Some(&ia), Some(&ib)) = (self.index_of.get(&a), self.index_of.get(&b)) {
                self.pin_adj.entry(ia).or_default().push(ib);
                self.pin_adj.entry(ib).or_default().push(ia);
            }
        }
        phases.lap("adjacency");
        // Groups: union–find over links and pins.
        let n = self.reps.len();
        let mut parent: Vec<u32> = (0..n as u32).collect();
        fn find(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                let g = parent[parent[x as usize] as usize];
                parent[x as usize] = g;
                x = g;
            }
            x
        }
        for a in 0..n {
            let pins = self
                .pin_adj
                .get(&(a as u32))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            for &b in self.adj[a].iter().chain(pins) {
                let (ra, rb) = (find(&mut parent, a as u32), find(&mut parent, b));
                if ra != rb {
                    parent[ra.max(rb) as usize] = ra.min(rb);
                }
            }
        }
        let mut by_root: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for a in 0..n as u32 {
            let root = find(&mut parent, a);
            by_root.entry(root).or_default().push(a);
        }
        let mut groups: Vec<Vec<u32>> = by_root.into_values().collect();
        groups.sort_unstable_by_key(|g| g[0]);
        phases.lap("groups");
        // Replace every campaign.
        for id in self.slot_of_id.keys() {
            self.snap
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .gone
                .insert(*id);
        }
        self.camps.clear();
        self.free.clear();
        self.slot_of_id.clear();
        self.snap
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .dirty
            .clear();
        self.camp_of = vec![u32::MAX; n];
        self.pos = vec![0; n];
        let events = self.install(groups);
        phases.lap("ids");
        let tallies: Vec<(usize, Tally)> = self
            .camps
            .par_iter()
            .enumerate()
            .filter(|(_, c)| c.members.len() > TALLY_MIN)
            .map(|(i, c)| (i, self.tally_of(&c.members)))
            .collect();
        for (i, t) in tallies {
            self.camps[i].tally = Some(Box::new(t));
        }
        phases.lap("tallies");
        // Flags depend on rules too: rebuild every campaign at the next snapshot.
        self.snap
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .dirty
            .extend(self.slot_of_id.values().copied());
        events
    }

    /// Builds the reader's view of one campaign at `now`.
    fn campaign_of(&self, slot: u32, now: DateTime<Utc>) -> (Campaign, Option<DateTime<Utc>>) {
        let camp = &self.camps[slot as usize];
        let mut phases = (camp.members.len() > 100_000).then(Phases::new);
        let mut members = camp.members.clone();
        members.sort_unstable();
        let mut reports: Vec<Seq> = members.iter().map(|&m| self.reps[m as usize].seq).collect();
        reports.sort_unstable();
        let mut view = View::default();
        let mut sectors = BTreeSet::new();
        let counted;
        let tally: &Tally = match &camp.tally {
            Some(t) => t,
            None => {
                counted = self.tally_of(&members);
                &counted
            }
        };
        let mut first_seen = self.reps[members[0] as usize].at;
        let mut last_seen = first_seen;
        for &m in &members {
            let rep = &self.reps[m as usize];
            first_seen = first_seen.min(rep.at);
            last_seen = last_seen.max(rep.at);
            view.report_times.push(rep.at);
            if let Source::Member {
                sector: Some(s), ..
            } = &self.sources[rep.source as usize]
            {
                sectors.insert(*s);
                view.sector_times.push((rep.at, *s));
            }
        }
        if let Some(p) = &mut phases {
            p.lap("big campaign: counts");
        }
        let mut seen: FxHashSet<u32> = FxHashSet::default();
        let sight_lists = tally
            .keys()
            .filter_map(|o| self.sight_by_obs.get(o))
            .chain(self.sight_by_camp.get(&camp.id));
        for list in sight_lists {
            for &i in list {
                if seen.insert(i) {
                    let s = self.sightings[i as usize];
                    view.seen_times.push(s.at);
                    if let Some(sector) = s.sector {
                        view.sector_times.push((s.at, sector));
                    }
                }
            }
        }
        let link = &self.rules.link;
        let linkable = |o: u32| {
            let ob = &self.obs[o as usize];
            !ob.listed && link.weight_of(self.kind(o)) > 0 && (ob.count as usize) <= link.cap
        };
        let mut linking: Vec<(u32, u32)> = tally
            .iter()
            .filter(|(o, (n, _))| *n >= 2 && linkable(**o))
            .map(|(&o, &(n, _))| (n, o))
            .collect();
        if linking.len() > LINKING_MAX {
            linking.select_nth_unstable_by(LINKING_MAX, |a, b| b.cmp(a));
            linking.truncate(LINKING_MAX);
        }
        let mut linking: Vec<Observable> = linking
            .into_iter()
            .map(|(_, o)| self.values[o as usize].clone())
            .collect();
        linking.sort();
        let mut member_list: Vec<u32> = tally
            .iter()
            .filter(|(_, (_, from_members))| *from_members > 0)
            .map(|(&o, _)| o)
            .filter(|&o| {
                let ob = &self.obs[o as usize];
                !ob.listed && link.weight_of(self.kind(o)) > 0
            })
            .collect();
        member_list.sort_unstable();
        view.member_obs = member_list
            .iter()
            .scan(0usize, |named, &o| {
                let known = self.obs[o as usize].feeds > 0;
                // Feed names only for the observables the evidence will show.
                let feeds = if known && *named < flags::EVIDENCE_MAX {
                    *named += 1;
                    self.feeds_of(o)
                } else {
                    Vec::new()
                };
                Some((&self.values[o as usize], known, feeds))
            })
            .collect();
        if let Some(p) = &mut phases {
            p.lap("big campaign: views");
        }
        let (flags, until) = flags::compute(&self.rules.flags, &view, now);
        if let Some(p) = &mut phases {
            p.lap("big campaign: flags");
        }
        (
            Campaign {
                id: camp.id,
                reports,
                first_seen,
                last_seen,
                linking,
                sectors,
                flags,
            },
            until,
        )
    }

    /// Names of feeds carrying `o` (looks at a bounded number of reports).
    fn feeds_of(&self, o: u32) -> Vec<String> {
        let ob = &self.obs[o as usize];
        if ob.feeds == 0 {
            return Vec::new();
        }
        // Bounded: a popular value has long postings and the evidence needs only a few.
        let mut names: Vec<String> = ob
            .postings
            .iter()
            .take(256)
            .filter(|p| *p & CONTAINED == 0)
            .filter_map(
                |&p| match &self.sources[self.reps[p as usize].source as usize] {
                    Source::Feed { feed } => Some(feed.clone()),
                    Source::Member { .. } => None,
                },
            )
            .take(16)
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    use super::*;
    use crate::correlate::FlagKind;
    use crate::model::{Disposition, MemberId, Sector};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
    }

    fn o(kind: &str, v: &str) -> Observable {
        Observable::parse_named(kind, v).unwrap()
    }

    fn member(seq: u64, sector: Sector, obs: Vec<Observable>) -> ReportFacts {
        ReportFacts {
            seq: Seq(seq),
            at: t0() + Duration::hours(seq as i64),
            source: Source::Member {
                member: MemberId(format!("m{seq:03}")),
                sector: Some(sector),
            },
            observables: obs,
        }
    }

    fn feed(seq: u64, name: &str, obs: Vec<Observable>) -> ReportFacts {
        ReportFacts {
            seq: Seq(seq),
            at: t0() + Duration::hours(seq as i64),
            source: Source::Feed { feed: name.into() },
            observables: obs,
        }
    }

    fn sha(n: u8) -> Observable {
        o("sha256", &format!("{:02x}", n).repeat(32))
    }

    /// The partition as sets of seqs, independent of ids.
    fn partition(e: &Engine) -> BTreeSet<Vec<u64>> {
        e.snapshot_at(t0())
            .campaigns
            .iter()
            .map(|c| c.reports.iter().map(|s| s.0).collect())
            .collect()
    }

    fn groups(g: &[&[u64]]) -> BTreeSet<Vec<u64>> {
        g.iter().map(|x| x.to_vec()).collect()
    }

    fn incremental(rules: Arc<Rules>, reports: &[ReportFacts]) -> Engine {
        let mut e = Engine::with_rules(rules, IdBook::default());
        for r in reports {
            e.add(r.clone());
        }
        e
    }

    #[test]
    fn weights_decide_what_links() {
        let s = Sector::Finance;
        let reports = vec![
            member(1, s, vec![sha(1), o("cve", "CVE-2024-3400")]),
            member(2, s, vec![sha(1)]),
            member(
                3,
                s,
                vec![o("cve", "CVE-2024-3400"), o("attack-technique", "T1566")],
            ),
            member(4, s, vec![o("ipv4", "45.33.10.5")]),
            member(5, s, vec![o("ipv4", "45.33.10.5")]),
            member(6, s, vec![o("ipv4", "45.33.10.6"), o("ipv4", "45.33.10.7")]),
            member(7, s, vec![o("ipv4", "45.33.10.6"), o("ipv4", "45.33.10.7")]),
            member(8, s, vec![o("url", "http://evil-host.test/a/b")]),
            member(9, s, vec![o("domain", "evil-host.test")]),
        ];
        let want = groups(&[&[1, 2], &[3], &[4], &[5], &[6, 7], &[8, 9]]);
        let e = incremental(Rules::shipped(), &reports);
        assert_eq!(partition(&e), want);
        let (b, _) = Engine::build(IdBook::default(), reports);
        assert_eq!(partition(&b), want);
    }

    #[test]
    fn warning_listed_values_never_link_and_say_why() {
        let s = Sector::Telecom;
        let common = vec![
            o("ipv4", "8.8.8.8"),
            o("ipv4", "1.1.1.1"),
            o("domain", "google.com"),
            o("domain", "login.microsoft.com"),
            o("ipv4", "192.168.1.10"),
            o("md5", "d41d8cd98f00b204e9800998ecf8427e"),
        ];
        let e = incremental(
            Rules::shipped(),
            &[member(1, s, common.clone()), member(2, s, common.clone())],
        );
        assert_eq!(partition(&e), groups(&[&[1], &[2]]));
        match e.suppressed(&o("ipv4", "192.168.1.10")) {
            Some(Suppression::Warninglist { list, .. }) => assert_eq!(list, "rfc1918"),
            other => panic!("{other:?}"),
        }
        // Several lists carry google.com; the first loaded wins.
        match e.suppressed(&o("domain", "google.com")) {
            Some(Suppression::Warninglist { list, .. }) => {
                assert!(["cisco_top1000", "google", "tranco10k"].contains(&list.as_str()))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.suppressed(&sha(9)), None);
    }

    fn custom(f: impl FnOnce(&mut Rules)) -> Arc<Rules> {
        let mut r = Rules::without_warninglists();
        f(&mut r);
        Arc::new(r)
    }

    #[test]
    fn an_address_matches_a_reported_network_in_either_order() {
        let rules = custom(|r| r.link.weights[kind_index(ObservableKind::Cidr)] = 100);
        let s = Sector::Water;
        let net = || o("cidr", "45.33.10.0/24");
        for reports in [
            vec![
                member(1, s, vec![o("ipv4", "45.33.10.5")]),
                member(2, s, vec![o("ipv4", "45.33.10.9")]),
                member(3, s, vec![net()]),
            ],
            vec![
                member(3, s, vec![net()]),
                member(1, s, vec![o("ipv4", "45.33.10.5")]),
                member(2, s, vec![o("ipv4", "45.33.10.9")]),
            ],
        ] {
            let e = incremental(rules.clone(), &reports);
            // 1 and 2 are linked only through 3, which reported the network.
            assert_eq!(partition(&e), groups(&[&[1, 2, 3]]));
            assert_eq!(e.link_count(), 2);
            let (b, _) = Engine::build_with(rules.clone(), IdBook::default(), reports);
            assert_eq!(partition(&b), groups(&[&[1, 2, 3]]));
        }
        // Two addresses in one network nobody reported do not match.
        let e = incremental(
            rules,
            &[
                member(1, s, vec![o("ipv4", "45.33.10.5")]),
                member(2, s, vec![o("ipv4", "45.33.10.9")]),
            ],
        );
        assert_eq!(partition(&e), groups(&[&[1], &[2]]));
    }

    #[test]
    fn a_value_over_the_cap_stops_linking_and_is_listed() {
        let rules = custom(|r| {
            r.link.cap = 3;
            r.link.decay_after = 100;
        });
        let s = Sector::Gas;
        let reports: Vec<ReportFacts> = (1..=5).map(|i| member(i, s, vec![sha(7)])).collect();
        let mut e = Engine::with_rules(rules.clone(), IdBook::default());
        for r in &reports[..3] {
            e.add(r.clone());
        }
        assert_eq!(partition(&e), groups(&[&[1, 2, 3]]));
        let events = e.add(reports[3].clone());
        // The fourth report pushes the hash over the cap: the campaign falls apart.
        assert!(
            events
                .iter()
                .any(|ev| matches!(ev, CampaignEvent::Split { .. })),
            "{events:?}"
        );
        e.add(reports[4].clone());
        assert_eq!(partition(&e), groups(&[&[1], &[2], &[3], &[4], &[5]]));
        assert_eq!(e.over_correlating(), vec![(sha(7), 5)]);
        assert_eq!(
            e.suppressed(&sha(7)),
            Some(Suppression::OverCorrelating { reports: 5, cap: 3 })
        );
        let (b, _) = Engine::build_with(rules, IdBook::default(), reports);
        assert_eq!(partition(&b), partition(&e));
        assert_eq!(b.over_correlating(), vec![(sha(7), 5)]);
    }

    #[test]
    fn one_weak_value_does_not_glue_two_campaigns() {
        let s = Sector::Railway;
        let ip = || o("ipv4", "45.80.1.1");
        let reports = vec![
            member(1, s, vec![sha(1)]),
            member(2, s, vec![sha(1), ip()]),
            member(3, s, vec![sha(2), ip()]),
            member(4, s, vec![sha(2)]),
            // A shared domain links on its own, but decays as it spreads.
            member(5, s, vec![sha(3), o("domain", "cdn-like.test")]),
        ];
        let e = incremental(Rules::shipped(), &reports);
        assert_eq!(partition(&e), groups(&[&[1, 2], &[3, 4], &[5]]));
        let rules = Rules::shipped();
        // 9 reports share a domain: past decay_after (8) it weighs 50 and links nothing alone.
        let spread: Vec<ReportFacts> = (10..19)
            .map(|i| member(i, s, vec![o("domain", "cdn-like.test")]))
            .collect();
        let e = incremental(rules.clone(), &spread);
        assert_eq!(partition(&e).len(), 9);
        let e = incremental(rules, &spread[..8]);
        assert_eq!(partition(&e).len(), 1);
    }

    #[test]
    fn ids_survive_recorrelation_and_pins_hold() {
        let s = Sector::Medical;
        let reports = vec![
            member(1, s, vec![sha(1)]),
            member(2, s, vec![sha(1)]),
            member(3, s, vec![sha(1)]),
            member(4, s, vec![sha(2)]),
            member(5, s, vec![sha(2)]),
        ];
        let (mut e, events) = Engine::build(IdBook::default(), reports.clone());
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, CampaignEvent::Created { .. }))
                .count(),
            2
        );
        let snap = e.snapshot_at(t0());
        let a = snap.of_report(Seq(1)).unwrap().id;
        let b = snap.of_report(Seq(4)).unwrap().id;
        assert!(e.recorrelate(Rules::shipped()).is_empty());

        let events = e.set_pins(vec![Pin::Merge(a, b)]);
        assert!(
            events.contains(&CampaignEvent::Merged {
                into: a,
                from: vec![b]
            }),
            "{events:?}"
        );
        assert_eq!(partition(&e), groups(&[&[1, 2, 3, 4, 5]]));
        // A later report joins through its own links as usual.
        e.add(member(6, s, vec![sha(2)]));
        assert_eq!(partition(&e), groups(&[&[1, 2, 3, 4, 5, 6]]));

        let events = e.set_pins(vec![Pin::Split {
            campaign: a,
            reports: vec![Seq(3), Seq(7)],
        }]);
        assert!(
            events
                .iter()
                .any(|ev| matches!(ev, CampaignEvent::Split { .. })),
            "{events:?}"
        );
        assert_eq!(partition(&e), groups(&[&[1, 2], &[3], &[4, 5, 6]]));
        // Report 7 arrives later: it is on the split side and links only there.
        e.add(member(7, s, vec![sha(1)]));
        assert_eq!(partition(&e), groups(&[&[1, 2], &[3, 7], &[4, 5, 6]]));
        let snap = e.snapshot_at(t0());
        assert_eq!(
            snap.of_report(Seq(4)).unwrap().id,
            a,
            "the largest part keeps the id"
        );

        let rebuilt_ids = IdBook::from_assignments(snap.by_report.iter().map(|(s, i)| (*s, *i)));
        let all: Vec<ReportFacts> = (1..=7)
            .map(|i| member(i, s, vec![if i <= 3 || i == 7 { sha(1) } else { sha(2) }]))
            .collect();
        let (b, _) = Engine::build_pinned(Rules::shipped(), rebuilt_ids, e.pins().to_vec(), all);
        assert_eq!(partition(&b), groups(&[&[1, 2], &[3, 7], &[4, 5, 6]]));
    }

    #[test]
    fn flags_carry_their_evidence() {
        let shared = sha(1);
        let reports = vec![
            member(1, Sector::Finance, vec![shared.clone(), sha(2)]),
            member(2, Sector::Electricity, vec![shared.clone(), sha(3)]),
            feed(3, "kev", vec![sha(2), sha(3)]),
        ];
        let mut e = incremental(Rules::shipped(), &reports);
        let now = t0() + Duration::hours(4);
        let snap = e.snapshot_at(now);
        assert_eq!(snap.len(), 1);
        let c = &snap.campaigns[0];
        let cs = c.flag(FlagKind::CrossSector).expect("two sectors");
        assert_eq!(
            cs.evidence.sectors,
            vec![Sector::Finance, Sector::Electricity]
        );
        let known = c
            .flag(FlagKind::Known)
            .expect("2 of 3 member hashes in a feed");
        assert_eq!(known.evidence.feeds, vec!["kev".to_string()]);
        assert_eq!(known.evidence.observables, vec![sha(2), sha(3)]);
        assert!((known.evidence.score - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!(known.suggested, Some(Disposition::LowNeedKnown));
        assert!(!c.has_flag(FlagKind::Novel) && !c.has_flag(FlagKind::Stale));
        assert!(!c.has_flag(FlagKind::Surge));

        // A novel campaign with a surge: five reports in a day, nothing in feeds.
        let base = 100;
        for i in 0..5 {
            e.add(ReportFacts {
                seq: Seq(base + i),
                at: now + Duration::hours(i as i64),
                source: Source::Member {
                    member: MemberId("m010".into()),
                    sector: Some(Sector::Gas),
                },
                observables: vec![sha(50)],
            });
        }
        let later = now + Duration::hours(5);
        let snap = e.snapshot_at(later);
        let c = snap.of_report(Seq(base)).unwrap();
        assert!(c.has_flag(FlagKind::Novel));
        assert_eq!(
            c.flag(FlagKind::Novel).unwrap().evidence.observables,
            vec![sha(50)]
        );
        let surge = c.flag(FlagKind::Surge).unwrap();
        assert_eq!(surge.evidence.score, 5.0);
        assert!(!c.has_flag(FlagKind::CrossSector), "one sector only");
        let first = snap.of_report(Seq(1)).unwrap().id;
        let unchanged = snap.get(first).unwrap() as *const Campaign;

        // A day later the surge is over (recomputed because its time came), while the
        // untouched campaign is shared with the previous snapshot.
        let snap2 = e.snapshot_at(later + Duration::hours(24));
        assert!(
            !snap2
                .of_report(Seq(base))
                .unwrap()
                .has_flag(FlagKind::Surge)
        );
        assert!(std::ptr::eq(snap2.get(first).unwrap(), unchanged));

        // A true-positive sighting from another sector makes it cross-sector and keeps it
        // from going stale.
        e.add_sighting(SightingFacts {
            at: later + Duration::days(20),
            member: MemberId("m200".into()),
            sector: Some(Sector::Aviation),
            target: SightingTarget::Observable(sha(50)),
            kind: SightingKind::Seen,
        });
        let snap3 = e.snapshot_at(later + Duration::days(21));
        let c = snap3.of_report(Seq(base)).unwrap();
        assert!(c.has_flag(FlagKind::CrossSector));
        assert!(!c.has_flag(FlagKind::Stale));
        // The first campaign, quiet since hour 3, is stale after 63 days (score < 30).
        let snap4 = e.snapshot_at(t0() + Duration::days(64));
        let c = snap4.of_report(Seq(1)).unwrap();
        let stale = c.flag(FlagKind::Stale).expect("quiet for 64 days");
        assert!(stale.evidence.score < 30.0, "{}", stale.evidence.score);
        assert_eq!(stale.evidence.times, vec![t0() + Duration::hours(3)]);
        assert_eq!(stale.suggested, Some(Disposition::LowNeedTransient));
        assert!(
            !snap4
                .of_report(Seq(base))
                .unwrap()
                .has_flag(FlagKind::Stale)
        );
    }

    fn small_rules() -> Arc<Rules> {
        custom(|r| {
            r.link.cap = 5;
            r.link.decay_after = 2;
            r.link.weights[kind_index(ObservableKind::Cidr)] = 100;
        })
    }

    fn arb_observable() -> impl Strategy<Value = Observable> {
        prop_oneof![
            (0u8..6).prop_map(sha),
            (0u8..8).prop_map(|n| o("ipv4", &format!("45.1.{}.{}", n / 4, n))),
            (0u8..3).prop_map(|n| o("cidr", &format!("45.1.{n}.0/24"))),
            (0u8..4).prop_map(|n| o("domain", &format!("d{n}.test"))),
            (0u8..4).prop_map(|n| o("url", &format!("http://d{}.test/{n}", n % 2))),
            (0u8..2).prop_map(|n| o("cve", &format!("CVE-2024-000{n}"))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Incremental adds, in any arrival order, give the partition of a full build.
        #[test]
        fn add_and_build_agree(
            reports in prop::collection::vec(prop::collection::vec(arb_observable(), 1..5), 1..30),
            order_seed in any::<u64>(),
            split in prop::collection::vec(1u64..30, 0..4),
        ) {
            let rules = small_rules();
            let facts: Vec<ReportFacts> = reports
                .into_iter()
                .enumerate()
                .map(|(i, obs)| member(i as u64 + 1, Sector::ALL[i % 3], obs))
                .collect();
            let mut shuffled = facts.clone();
            let mut x = order_seed;
            for i in (1..shuffled.len()).rev() {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (x >> 33) as usize % (i + 1));
            }
            let pins = if split.is_empty() {
                Vec::new()
            } else {
                vec![Pin::Split {
                    campaign: CampaignId { year: 2026, number: 1 },
                    reports: split.into_iter().map(Seq).collect(),
                }]
            };
            let (built, _) =
                Engine::build_pinned(rules.clone(), IdBook::default(), pins.clone(), facts);
            let mut inc = Engine::with_rules(rules, IdBook::default());
            inc.set_pins(pins);
            for r in shuffled {
                inc.add(r);
            }
            prop_assert_eq!(partition(&inc), partition(&built));
            prop_assert_eq!(inc.link_count(), built.link_count());
            prop_assert_eq!(inc.over_correlating(), built.over_correlating());
        }
    }
}
