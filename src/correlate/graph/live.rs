//! The reader's view of a big campaign, kept up to date as reports join and leave.
//!
//! A snapshot of a campaign of half a million reports used to recount its view from its
//! members and its tally every time a few reports joined it: sort its reports, gather their
//! times and sectors, pick the values that link it among millions, list its member values
//! for the known/novel flags (329 ms per snapshot at 1M reports). A [`Live`] view keeps all
//! of that as it changes instead, so that the snapshot after a batch of adds costs what the
//! batch changed:
//! - the reports, their times and sector times, and the times of sightings, as sorted lists
//!   that the reports and sightings waiting since the last snapshot are merged into;
//! - the linking values as the [`TopCounts`] of the campaign's tally;
//! - the member values as counts (how many, how many known) and the few that evidence shows
//!   ([`Least`]).
//!
//! Campaigns with a running tally (more than `TALLY_MIN` reports) keep one, created at
//! the first snapshot that shows them. Where a campaign is made afresh (a full correlation,
//! a new id) the view is dropped and built again from scratch; `Engine::campaign_of` stays
//! the reference that both must agree with (tests).

use super::snapshot::Built;
use super::*;
use crate::correlate::Reports;
use crate::model::Sector;

/// Candidates kept for each bounded list, as a multiple of what it shows: values leave a
/// list (over the cap, out of the campaign, known at last) without a scan of the campaign's
/// values to refill it until this reserve is used up.
const RESERVE: usize = 4;

/// The `k` largest `(count, value)` pairs of a campaign's tally among values that may link,
/// kept under count changes.
///
/// Holds up to `RESERVE × k` candidates. Invariant: unless `exhaustive` (every eligible
/// pair is in `set`), every eligible pair outside `set` is below the smallest in `set`.
/// Values that stop linking (over the cap: for good, until a full correlation) are dropped
/// when they are met at the top.
#[derive(Debug)]
pub(super) struct TopCounts {
    k: usize,
    set: BTreeSet<(u32, u32)>,
    count_of: FxHashMap<u32, u32>,
    exhaustive: bool,
}

impl TopCounts {
    pub(super) fn new(k: usize) -> TopCounts {
        TopCounts {
            k,
            set: BTreeSet::new(),
            count_of: FxHashMap::default(),
            exhaustive: true,
        }
    }

    fn cap(&self) -> usize {
        self.k * RESERVE
    }

    /// Value `o` is now counted `n` times; `eligible`: it may link now.
    pub(super) fn update(&mut self, o: u32, n: u32, eligible: bool) {
        if let Some(old) = self.count_of.remove(&o) {
            self.set.remove(&(old, o));
        }
        if !eligible || n < 2 {
            return;
        }
        let key = (n, o);
        if self.exhaustive || self.set.first().is_some_and(|min| key > *min) {
            self.set.insert(key);
            self.count_of.insert(o, n);
            if self.set.len() > self.cap() {
                let (_, gone) = self.set.pop_first().expect("over the cap");
                self.count_of.remove(&gone);
                self.exhaustive = false;
            }
        }
    }

    /// Starts again from every `(count, value)` pair that may link.
    pub(super) fn rebuild(&mut self, mut pairs: Vec<(u32, u32)>) {
        self.exhaustive = pairs.len() <= self.cap();
        if !self.exhaustive {
            let cap = self.cap();
            pairs.select_nth_unstable_by(cap, |a, b| b.cmp(a));
            pairs.truncate(cap);
        }
        self.count_of = pairs.iter().map(|&(n, o)| (o, n)).collect();
        self.set = pairs.into_iter().collect();
    }

    /// The `k` largest pairs whose value still may link (`eligible`), largest first, or
    /// `None` when the candidates no longer hold them (then [`TopCounts::rebuild`]).
    pub(super) fn top(&mut self, eligible: impl Fn(u32) -> bool) -> Option<Vec<u32>> {
        let mut top = Vec::with_capacity(self.k.min(self.set.len()));
        let mut dead = Vec::new();
        for &(n, o) in self.set.iter().rev() {
            if top.len() == self.k {
                break;
            }
            if eligible(o) {
                top.push(o);
            } else {
                dead.push((n, o));
            }
        }
        for (n, o) in dead {
            self.set.remove(&(n, o));
            self.count_of.remove(&o);
        }
        (top.len() == self.k || self.exhaustive).then_some(top)
    }
}

/// The `k` least keys of a set, kept as keys come and go.
///
/// Holds up to `RESERVE × k` candidates. Invariant: unless `exhaustive` (the whole set is
/// held), every key of the set outside `held` is above the largest held.
#[derive(Debug)]
pub(super) struct Least<K: Ord> {
    k: usize,
    held: BTreeSet<K>,
    exhaustive: bool,
}

impl<K: Ord> Least<K> {
    pub(super) fn new(k: usize) -> Least<K> {
        Least {
            k,
            held: BTreeSet::new(),
            exhaustive: true,
        }
    }

    /// Whether a key for which `below(largest held)` says it is smaller must be held (the
    /// caller builds the key only then).
    fn admits(&self, below: impl FnOnce(&K) -> bool) -> bool {
        self.exhaustive || self.held.last().is_some_and(below)
    }

    fn insert(&mut self, key: K) {
        self.held.insert(key);
        if self.held.len() > self.k * RESERVE {
            self.held.pop_last();
            self.exhaustive = false;
        }
    }

    /// Whether a key for which `above(largest held)` says it is larger can be held at all.
    fn may_hold(&self, above: impl FnOnce(&K) -> bool) -> bool {
        self.held.last().is_some_and(|l| !above(l))
    }

    fn remove(&mut self, key: &K) {
        self.held.remove(key);
    }

    /// The `k` least keys, in order, or `None` when the candidates no longer hold them.
    pub(super) fn first(&self) -> Option<impl Iterator<Item = &K>> {
        (self.exhaustive || self.held.len() >= self.k).then(|| self.held.iter().take(self.k))
    }

    /// Starts again from the whole set.
    pub(super) fn rebuild(&mut self, mut keys: Vec<K>) {
        let cap = self.k * RESERVE;
        self.exhaustive = keys.len() <= cap;
        if !self.exhaustive {
            keys.select_nth_unstable(cap);
            keys.truncate(cap);
        }
        self.held = keys.into_iter().collect();
    }
}

/// A value in value order (values are distinct, the number only makes the key its own).
type ByValue = (Observable, u32);

/// The member-submitted values of a campaign that may link: what the known/novel flags and
/// their evidence need.
#[derive(Debug)]
pub(super) struct MemberValues {
    total: usize,
    known: usize,
    known_by_value: Least<ByValue>,
    known_by_number: Least<u32>,
    novel_by_value: Least<ByValue>,
}

impl MemberValues {
    fn new() -> MemberValues {
        MemberValues {
            total: 0,
            known: 0,
            known_by_value: Least::new(flags::EVIDENCE_MAX),
            known_by_number: Least::new(flags::EVIDENCE_MAX),
            novel_by_value: Least::new(flags::EVIDENCE_MAX),
        }
    }

    fn hold(least: &mut Least<ByValue>, values: &[Observable], o: u32) {
        let v = &values[o as usize];
        if least.admits(|(max, _)| v < max) {
            least.insert((v.clone(), o));
        }
    }

    fn unhold(least: &mut Least<ByValue>, values: &[Observable], o: u32) {
        let v = &values[o as usize];
        if least.may_hold(|(max, _)| v > max) {
            least.remove(&(v.clone(), o));
        }
    }

    fn add_known(&mut self, values: &[Observable], o: u32) {
        self.known += 1;
        Self::hold(&mut self.known_by_value, values, o);
        if self.known_by_number.admits(|max| o < *max) {
            self.known_by_number.insert(o);
        }
    }

    /// `o` (known when `known`) became one of the campaign's member values.
    pub(super) fn enter(&mut self, values: &[Observable], o: u32, known: bool) {
        self.total += 1;
        if known {
            self.add_known(values, o);
        } else {
            Self::hold(&mut self.novel_by_value, values, o);
        }
    }

    /// `o` (known when `known`) is no longer one of them.
    pub(super) fn leave(&mut self, values: &[Observable], o: u32, known: bool) {
        self.total -= 1;
        if known {
            self.known -= 1;
            Self::unhold(&mut self.known_by_value, values, o);
            self.known_by_number.remove(&o);
        } else {
            Self::unhold(&mut self.novel_by_value, values, o);
        }
    }

    /// A feed now carries `o`, one of them.
    pub(super) fn became_known(&mut self, values: &[Observable], o: u32) {
        Self::unhold(&mut self.novel_by_value, values, o);
        self.add_known(values, o);
    }
}

/// Reports or sightings counted in (`1`) or out (`-1`) since the last snapshot, net.
type Pending = FxHashMap<u32, i32>;

/// The live view of one campaign (see the module).
#[derive(Debug)]
pub(super) struct Live {
    reports_waiting: Pending,
    /// Every report that joined since the last snapshot (also those that left again): the
    /// snapshot maps them to the campaign (`None` before the first snapshot of the view).
    joined: Option<Vec<u32>>,
    sightings_waiting: Pending,
    /// Reports from members (none left: the group is an advisory).
    member_reports: usize,
    /// In chunks shared with the campaigns it published (see [`Reports`]).
    reports: Reports,
    report_times: Vec<DateTime<Utc>>,
    /// Member reports with a sector and sightings with a sector.
    sector_times: Vec<(DateTime<Utc>, Sector)>,
    seen_times: Vec<DateTime<Utc>>,
    /// Member reports per sector (the campaign's sectors).
    sectors: [u32; Sector::ALL.len()],
    linking: TopCounts,
    members: MemberValues,
}

/// Merges `add` into and takes `remove` out of the sorted multiset `v` (`remove` holds
/// only elements of `v`).
pub(crate) fn merge_sorted<T: Ord + Copy>(v: &mut Vec<T>, mut add: Vec<T>, mut remove: Vec<T>) {
    if add.is_empty() && remove.is_empty() {
        return;
    }
    add.sort_unstable();
    if remove.is_empty() && v.last().is_none_or(|l| add[0] >= *l) {
        v.extend(add);
        return;
    }
    if remove.is_empty() {
        // In place, from the back: each run of old elements moves once, as one block (a
        // small campaign merged into a giant one moves its tail, not every element).
        let mut end = v.len();
        v.resize(end + add.len(), add[0]);
        for (j, a) in add.iter().enumerate().rev() {
            let at = v[..end].partition_point(|x| x <= a);
            v.copy_within(at..end, at + j + 1);
            v[at + j] = *a;
            end = at;
        }
        return;
    }
    remove.sort_unstable();
    let old = std::mem::take(v);
    let mut out = Vec::with_capacity(old.len() + add.len());
    let mut add = add.into_iter().peekable();
    let mut remove = remove.into_iter().peekable();
    for x in old {
        if remove.next_if_eq(&x).is_some() {
            continue;
        }
        while let Some(a) = add.next_if(|a| *a < x) {
            out.push(a);
        }
        out.push(x);
    }
    debug_assert!(remove.next().is_none(), "removed only what is there");
    out.extend(add);
    *v = out;
}

impl Live {
    /// Roughly what the view holds in memory (for the debug log of snapshots).
    pub(super) fn bytes(&self) -> usize {
        use std::mem::size_of;
        let by_value = |l: &Least<ByValue>| {
            l.held
                .iter()
                .map(|(v, _)| size_of::<ByValue>() + v.value().len())
                .sum::<usize>()
        };
        self.reports.len() * size_of::<Seq>()
            + self.report_times.capacity() * size_of::<DateTime<Utc>>()
            + self.sector_times.capacity() * size_of::<(DateTime<Utc>, Sector)>()
            + self.seen_times.capacity() * size_of::<DateTime<Utc>>()
            + self.linking.set.len() * 3 * size_of::<(u32, u32)>()
            + by_value(&self.members.known_by_value)
            + by_value(&self.members.novel_by_value)
            + self.members.known_by_number.held.len() * size_of::<u32>()
    }

    /// Report `m` joins (`sign` 1) or leaves (-1) the campaign.
    pub(super) fn report(&mut self, m: u32, sign: i32, member: bool) {
        *self.reports_waiting.entry(m).or_default() += sign;
        if sign > 0
            && let Some(joined) = &mut self.joined
        {
            joined.push(m);
        }
        if member {
            self.member_reports = (self.member_reports as i64 + i64::from(sign)) as usize;
        }
    }

    /// Sighting `i` now counts for the campaign (`sign` 1) or no longer (-1).
    pub(super) fn sighting(&mut self, i: u32, sign: i32) {
        *self.sightings_waiting.entry(i).or_default() += sign;
    }

    pub(super) fn linking_mut(&mut self) -> &mut TopCounts {
        &mut self.linking
    }

    pub(super) fn members_mut(&mut self) -> &mut MemberValues {
        &mut self.members
    }
}

impl Engine {
    /// Whether `o` counts among a campaign's member values when a member carries it.
    pub(super) fn member_value(&self, o: u32) -> bool {
        !self.obs[o as usize].listed && self.rules.link.weight_of(self.kind(o)) > 0
    }

    /// Whether `o` may be listed as linking a campaign now.
    pub(super) fn linkable(&self, o: u32) -> bool {
        self.member_value(o) && self.obs[o as usize].count as usize <= self.rules.link.cap
    }

    /// The sightings that count for a campaign with id `id` and this tally (each once).
    pub(super) fn sightings_of(&self, id: CampaignId, tally: &Tally) -> Vec<u32> {
        // Walk whichever side is smaller (a giant campaign holds millions of values, and
        // few of them are ever sighted).
        let by_value: Vec<&Vec<u32>> = if self.sight_by_obs.len() < tally.len() {
            self.sight_by_obs
                .iter()
                .filter(|(o, _)| tally.contains_key(o))
                .map(|(_, l)| l)
                .collect()
        } else {
            tally
                .keys()
                .filter_map(|o| self.sight_by_obs.get(o))
                .collect()
        };
        let mut seen: FxHashSet<u32> = FxHashSet::default();
        by_value
            .into_iter()
            .chain(self.sight_by_camp.get(&id))
            .flatten()
            .copied()
            .filter(|&i| seen.insert(i))
            .collect()
    }

    /// The linking values of a tally, from scratch: every value that may link and is
    /// carried by two of the campaign's reports, with its count.
    fn linking_pairs(&self, tally: &Tally) -> Vec<(u32, u32)> {
        tally
            .iter()
            .filter(|(o, (n, _))| *n >= 2 && self.linkable(**o))
            .map(|(&o, &(n, _))| (n, o))
            .collect()
    }

    /// The member values of a tally, from scratch.
    fn count_members(&self, tally: &Tally) -> MemberValues {
        let mut m = MemberValues::new();
        let (mut known_v, mut known_n, mut novel_v) = (Vec::new(), Vec::new(), Vec::new());
        for (&o, &(_, from_members)) in tally {
            if from_members == 0 || !self.member_value(o) {
                continue;
            }
            m.total += 1;
            let v = &self.values[o as usize];
            if self.obs[o as usize].feeds > 0 {
                m.known += 1;
                known_v.push((v, o));
                known_n.push(o);
            } else {
                novel_v.push((v, o));
            }
        }
        // Only the candidates are cloned.
        let owned = |mut refs: Vec<(&Observable, u32)>| -> Vec<ByValue> {
            let cap = flags::EVIDENCE_MAX * RESERVE;
            if refs.len() > cap + 1 {
                refs.select_nth_unstable(cap + 1);
                refs.truncate(cap + 1);
            }
            refs.into_iter().map(|(v, o)| (v.clone(), o)).collect()
        };
        let (known_total, novel_total) = (known_v.len(), novel_v.len());
        m.known_by_value.rebuild(owned(known_v));
        m.known_by_number.rebuild(known_n);
        m.novel_by_value.rebuild(owned(novel_v));
        // The lists were cut before `rebuild`: say whether they were whole.
        m.known_by_value.exhaustive = known_total <= flags::EVIDENCE_MAX * RESERVE;
        m.novel_by_value.exhaustive = novel_total <= flags::EVIDENCE_MAX * RESERVE;
        m
    }

    /// A live view of the campaign in `slot` from scratch (it keeps a running tally).
    pub(super) fn live_of(&self, slot: u32) -> Box<Live> {
        let camp = &self.camps[slot as usize];
        let tally = camp
            .tally
            .as_deref()
            .expect("a live view needs a running tally");
        let mut live = Box::new(Live {
            reports_waiting: Pending::default(),
            joined: None,
            sightings_waiting: Pending::default(),
            member_reports: 0,
            reports: Reports::default(),
            report_times: Vec::with_capacity(camp.members.len()),
            sector_times: Vec::new(),
            seen_times: Vec::new(),
            sectors: [0; Sector::ALL.len()],
            linking: TopCounts::new(LINKING_MAX),
            members: self.count_members(tally),
        });
        let mut reports = Vec::with_capacity(camp.members.len());
        for &m in &camp.members {
            let rep = &self.reps[m as usize];
            reports.push(rep.seq);
            live.report_times.push(rep.at);
            if let Source::Member { sector, .. } = &self.sources[rep.source as usize] {
                live.member_reports += 1;
                if let Some(s) = sector {
                    live.sectors[*s as usize] += 1;
                    live.sector_times.push((rep.at, *s));
                }
            }
        }
        for i in self.sightings_of(camp.id, tally) {
            let s = self.sightings[i as usize];
            live.seen_times.push(s.at);
            if let Some(sector) = s.sector {
                live.sector_times.push((s.at, sector));
            }
        }
        reports.sort_unstable();
        live.reports = Reports::chunked(reports);
        live.report_times.sort_unstable();
        live.sector_times.sort_unstable();
        live.seen_times.sort_unstable();
        live.linking.rebuild(self.linking_pairs(tally));
        live
    }

    /// The campaign in `slot` at `now` from its live view, after counting in what waited;
    /// `None` when the group holds no member report any more (an advisory: the caller
    /// drops the view and builds the group afresh).
    pub(super) fn render_live(
        &self,
        slot: u32,
        live: &mut Live,
        now: DateTime<Utc>,
    ) -> Option<Built> {
        let camp = &self.camps[slot as usize];
        let tally = camp
            .tally
            .as_deref()
            .expect("a live view needs a running tally");
        // Reports and sightings counted in and out since the last snapshot.
        let (mut seqs, mut times, mut sector_times) = (
            (Vec::new(), Vec::new()),
            (Vec::new(), Vec::new()),
            (Vec::new(), Vec::new()),
        );
        for (m, d) in live.reports_waiting.drain() {
            let rep = &self.reps[m as usize];
            let sector = match &self.sources[rep.source as usize] {
                Source::Member { sector, .. } => *sector,
                Source::Feed { .. } => None,
            };
            let (seqs, times, sector_times) = match d {
                1 => (&mut seqs.0, &mut times.0, &mut sector_times.0),
                -1 => (&mut seqs.1, &mut times.1, &mut sector_times.1),
                0 => continue,
                _ => unreachable!("a report joins or leaves once at a time"),
            };
            seqs.push(rep.seq);
            times.push(rep.at);
            if let Some(s) = sector {
                sector_times.push((rep.at, s));
                live.sectors[s as usize] = (live.sectors[s as usize] as i64 + i64::from(d)) as u32;
            }
        }
        let mut seen = (Vec::new(), Vec::new());
        for (i, d) in live.sightings_waiting.drain() {
            let s = self.sightings[i as usize];
            let (seen, sector_times) = match d {
                1 => (&mut seen.0, &mut sector_times.0),
                -1 => (&mut seen.1, &mut sector_times.1),
                0 => continue,
                _ => unreachable!("a sighting counts once at a time"),
            };
            seen.push(s.at);
            if let Some(sector) = s.sector {
                sector_times.push((s.at, sector));
            }
        }
        let (mut add, mut remove) = seqs;
        add.sort_unstable();
        remove.sort_unstable();
        live.reports.merge(&add, &remove);
        merge_sorted(&mut live.report_times, times.0, times.1);
        merge_sorted(&mut live.sector_times, sector_times.0, sector_times.1);
        merge_sorted(&mut live.seen_times, seen.0, seen.1);
        if live.member_reports == 0 {
            return None;
        }
        let joined = live.joined.replace(Vec::new()).map(|joined| {
            let mut seqs: Vec<Seq> = joined
                .into_iter()
                .filter(|&m| self.camp_of[m as usize] == slot)
                .map(|m| self.reps[m as usize].seq)
                .collect();
            seqs.sort_unstable();
            seqs.dedup();
            seqs
        });

        let top = match live.linking.top(|o| self.linkable(o)) {
            Some(top) => top,
            None => {
                tracing::debug!(
                    reports = live.reports.len(),
                    "live view: linking values recounted"
                );
                live.linking.rebuild(self.linking_pairs(tally));
                live.linking
                    .top(|o| self.linkable(o))
                    .expect("a rebuilt list holds its top")
            }
        };
        let mut linking: Vec<Observable> = top
            .into_iter()
            .map(|o| self.values[o as usize].clone())
            .collect();
        linking.sort();

        let whole = |m: &MemberValues| {
            m.known_by_value.first().is_some()
                && m.known_by_number.first().is_some()
                && m.novel_by_value.first().is_some()
        };
        if !whole(&live.members) {
            tracing::debug!(
                reports = live.reports.len(),
                "live view: member values recounted"
            );
            live.members = self.count_members(tally);
        }
        let m = &live.members;
        let firsts = |l: &Least<ByValue>| -> Vec<Observable> {
            l.first().expect("whole").map(|(v, _)| v.clone()).collect()
        };
        let mut members = flags::MemberObs {
            total: m.total,
            known: m.known,
            ..flags::MemberObs::default()
        };
        let (known_raised, novel_raised) = flags::member_flags(&self.rules.flags, m.total, m.known);
        if known_raised {
            members.known_first = firsts(&m.known_by_value);
            members.known_feeds = self.feeds_of(m.known_by_number.first().expect("whole").copied());
        }
        if novel_raised {
            members.novel_first = firsts(&m.novel_by_value);
        }
        let view = View {
            report_times: &live.report_times,
            sector_times: &live.sector_times,
            seen_times: &live.seen_times,
            members: &members,
        };
        let (flags, until) = flags::compute(&self.rules.flags, &view, now);
        let sectors = Sector::ALL
            .iter()
            .copied()
            .filter(|&s| live.sectors[s as usize] > 0)
            .collect();
        Some((
            Group::Campaign(Campaign {
                id: camp.id,
                reports: live.reports.clone(),
                first_seen: live.report_times[0],
                last_seen: *live.report_times.last().expect("a group has a report"),
                linking,
                sectors,
                flags,
            }),
            until,
            joined,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// The top pairs kept under count changes and values that stop linking are the
        /// top of a recount, also once the candidates no longer hold every pair.
        #[test]
        fn top_counts_follow_a_recount(
            k in 1usize..4,
            ops in prop::collection::vec((0u32..24, 0u32..6, prop::bool::weighted(0.1)), 1..200),
        ) {
            let mut top = TopCounts::new(k);
            let mut counts: BTreeMap<u32, u32> = BTreeMap::new();
            let mut dead: BTreeSet<u32> = BTreeSet::new();
            for (o, n, dies) in ops {
                if dies {
                    dead.insert(o);
                }
                counts.insert(o, n);
                top.update(o, n, !dead.contains(&o));
                let eligible = |o: u32| !dead.contains(&o);
                let mut want: Vec<(u32, u32)> = counts
                    .iter()
                    .filter(|(o, n)| **n >= 2 && eligible(**o))
                    .map(|(&o, &n)| (n, o))
                    .collect();
                want.sort_unstable_by(|a, b| b.cmp(a));
                want.truncate(k);
                let want: Vec<u32> = want.into_iter().map(|(_, o)| o).collect();
                let got = match top.top(eligible) {
                    Some(got) => got,
                    None => {
                        top.rebuild(
                            counts
                                .iter()
                                .filter(|(o, n)| **n >= 2 && eligible(**o))
                                .map(|(&o, &n)| (n, o))
                                .collect(),
                        );
                        top.top(eligible).unwrap()
                    }
                };
                prop_assert_eq!(got, want);
            }
        }

        /// Merging into a sorted list gives the sorted whole.
        #[test]
        fn merging_keeps_the_list_sorted(
            old in prop::collection::vec(0u8..50, 0..40),
            add in prop::collection::vec(0u8..50, 0..10),
            cut in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        ) {
            let mut v = old.clone();
            v.sort_unstable();
            let mut remove: Vec<u8> = cut.iter().filter(|_| !v.is_empty()).map(|i| v[i.index(v.len())]).collect();
            remove.sort_unstable();
            remove.dedup();
            let mut want: Vec<u8> = v.iter().chain(&add).copied().collect();
            for r in &remove {
                let i = want.iter().position(|x| x == r).unwrap();
                want.remove(i);
            }
            want.sort_unstable();
            merge_sorted(&mut v, add, remove);
            prop_assert_eq!(v, want);
        }

        /// The least keys kept as keys come and go are the least of the set.
        #[test]
        fn least_keys_follow_the_set(
            k in 1usize..4,
            ops in prop::collection::vec((0u32..40, any::<bool>()), 1..200),
        ) {
            let mut least = Least::new(k);
            let mut set: BTreeSet<u32> = BTreeSet::new();
            for (key, enter) in ops {
                if enter && set.insert(key) {
                    if least.admits(|max| key < *max) {
                        least.insert(key);
                    }
                } else if !enter && set.remove(&key) {
                    least.remove(&key);
                }
                let want: Vec<u32> = set.iter().take(k).copied().collect();
                if least.first().is_none() {
                    least.rebuild(set.iter().copied().collect());
                }
                let got: Vec<u32> = least.first().unwrap().copied().collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
