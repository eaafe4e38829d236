//! Snapshots: the campaigns as readers see them, rebuilt only where something changed.

use super::*;

/// A group rebuilt for a snapshot, when its flags may change without new input, and the
/// reports that joined it since the last snapshot when they are known (else all of its
/// reports are looked at for new ones).
pub(super) type Built = (Group, Option<DateTime<Utc>>, Option<Vec<Seq>>);

/// A campaign's member values as its last snapshot counted them afresh: what decides
/// whether a change in other campaigns' values (one turning known, a feed name added)
/// changes what it shows ([`NOT_COUNTED`] where the last snapshot did not count them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MemberCounts {
    total: u32,
    known: u32,
    /// The known values whose feed names the `known` evidence shows are those numbered up
    /// to this one (`u32::MAX`: all of them).
    feeds_upto: u32,
}

pub(super) const NOT_COUNTED: MemberCounts = MemberCounts {
    total: u32::MAX,
    known: u32::MAX,
    feeds_upto: u32::MAX,
};

impl MemberCounts {
    /// Whether the `known` evidence of the campaign counted so may name the feeds of
    /// the known member value `o` (always when it was not counted).
    pub(super) fn may_show_feeds_of(&self, o: u32) -> bool {
        *self == NOT_COUNTED || o <= self.feeds_upto
    }
}

impl Engine {
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
                snap.set.remove_group(id);
                if let Some(t) = snap.expiry_of.remove(&id) {
                    snap.expiry.remove(&(t, id));
                }
            }
        }
        let mut phases = Phases::new();
        let skipped = self.settle_known(snap);
        let mut dirty: Vec<u32> = std::mem::take(&mut snap.dirty).into_iter().collect();
        // A follower shows no group under an id the leader has not recorded (`adopt`).
        dirty.retain(|&slot| {
            let id = self.camps[slot as usize].id;
            let hidden = self.provisional.contains(&id);
            if hidden {
                snap.set.remove_group(id);
                for &m in &self.camps[slot as usize].members {
                    snap.set.by_report.remove(&self.reps[m as usize].seq);
                }
                if let Some(t) = snap.expiry_of.remove(&id) {
                    snap.expiry.remove(&(t, id));
                }
            }
            !hidden
        });
        // Big campaigns are rendered from their live views (taken out for the while).
        let mut work: Vec<(u32, Option<Box<Live>>)> = dirty
            .into_iter()
            .filter(|&slot| !self.camps[slot as usize].members.is_empty())
            .map(|slot| (slot, snap.live.remove(&slot)))
            .collect();
        tracing::debug!(
            rebuilt = work.len(),
            live = work.iter().filter(|(_, l)| l.is_some()).count(),
            known_only = skipped,
            reports_afresh = work
                .iter()
                .filter(|(_, l)| l.is_none())
                .map(|(s, _)| self.camps[*s as usize].members.len())
                .sum::<usize>(),
            "snapshot: campaigns to rebuild"
        );
        let built: Vec<(Built, MemberCounts)> = work
            .par_iter_mut()
            .map(|(slot, live)| self.build_group(*slot, live, now))
            .collect();
        let slots = snap.member_counts.len().max(self.camps.len());
        snap.member_counts.resize(slots, NOT_COUNTED);
        let built: Vec<Built> = work
            .into_iter()
            .zip(built)
            .map(|((slot, live), (built, counts))| {
                if let Some(live) = live {
                    snap.live.insert(slot, live);
                }
                snap.member_counts[slot as usize] = counts;
                built
            })
            .collect();
        phases.lap("snapshot: campaigns");
        tracing::debug!(
            views = snap.live.len(),
            bytes = snap.live.values().map(|l| l.bytes()).sum::<usize>(),
            tallied = self.camps.iter().filter(|c| c.tally.is_some()).count(),
            "snapshot: live views"
        );
        if tracing::enabled!(tracing::Level::TRACE) {
            // What the rebuilt campaigns changed: those rebuilt with the same view were
            // marked for nothing (at trace level: comparing costs the install phase ~1 ms).
            let (mut new, mut reports, mut view, mut same) = (0, 0, 0, 0);
            for (group, _, _) in &built {
                let Group::Campaign(c) = group else { continue };
                match snap.set.get(c.id) {
                    None => new += 1,
                    Some(p) if p.reports != c.reports => reports += 1,
                    Some(p)
                        if p.first_seen != c.first_seen
                            || p.last_seen != c.last_seen
                            || p.linking != c.linking
                            || p.sectors != c.sectors
                            || p.flags != c.flags =>
                    {
                        view += 1
                    }
                    Some(_) => same += 1,
                }
            }
            tracing::trace!(new, reports, view, same, "snapshot: rebuilt campaigns");
        }
        for (group, until, joined) in built {
            let id = match &group {
                Group::Campaign(c) => c.id,
                Group::Advisory(a) => a.key,
            };
            if let Some(t) = snap.expiry_of.remove(&id) {
                snap.expiry.remove(&(t, id));
            }
            if let Some(t) = until {
                snap.expiry.insert((t, id));
                snap.expiry_of.insert(id, t);
            }
            snap.set.upsert_group(group, joined.as_deref());
        }
        snap.set.applied = self.max_seq;
        snap.set.at = now;
        phases.lap("snapshot: install");
        let set = snap.set.clone();
        phases.lap("snapshot: copy");
        set
    }

    // ---- internals ----

    /// The group in `slot` at `now`: from its live view when it is a campaign big enough to
    /// keep one (made now if it has none yet), else afresh.
    fn build_group(
        &self,
        slot: u32,
        live: &mut Option<Box<Live>>,
        now: DateTime<Utc>,
    ) -> (Built, MemberCounts) {
        let camp = &self.camps[slot as usize];
        if live.is_none()
            && camp.tally.is_some()
            && camp.members.len() > TALLY_MIN
            && camp.members.iter().any(|&m| self.is_member_report(m))
        {
            *live = Some(self.live_of(slot));
        }
        if let Some(view) = live {
            let mut phases = (camp.members.len() > 100_000).then(Phases::new);
            let rendered = self.render_live(slot, view, now);
            if let Some(p) = &mut phases {
                p.lap("big campaign: live view");
            }
            match rendered {
                Some(built) => return (built, NOT_COUNTED),
                None => *live = None,
            }
        }
        let (group, until, counts) = self.campaign_counted(slot, now);
        ((group, until, None), counts)
    }

    /// Settles the values that became known since the last snapshot (first fed) in the
    /// small campaigns that carry them (`Snap::became_known`): a campaign showing neither
    /// `known` nor `novel` before or after one more known value shows exactly the same, so
    /// its count is moved on and it is not rebuilt (a batch of 1,000 adds with a hundred
    /// feed reports marked hundreds of campaigns dirty for this alone). Any other campaign
    /// is rebuilt. Returns how many were settled without a rebuild.
    fn settle_known(&self, snap: &mut Snap) -> usize {
        let mut settled = 0;
        for (slot, mut os) in std::mem::take(&mut snap.became_known) {
            if snap.dirty.contains(&slot) {
                continue;
            }
            let counted = snap
                .member_counts
                .get(slot as usize)
                .copied()
                .filter(|&c| c != NOT_COUNTED);
            let live = snap.live.contains_key(&slot);
            let exists = self
                .camps
                .get(slot as usize)
                .is_some_and(|c| !c.members.is_empty());
            if let (Some(MemberCounts { total, known, .. }), false, true) = (counted, live, exists)
            {
                os.sort_unstable();
                os.dedup();
                let after = known + os.len() as u32;
                let quiet = |known: u32| {
                    flags::member_flags(&self.rules.flags, total as usize, known as usize)
                        == (false, false)
                };
                if after <= total && quiet(known) && quiet(after) {
                    snap.member_counts[slot as usize].known = after;
                    settled += 1;
                    continue;
                }
            }
            snap.dirty.insert(slot);
        }
        settled
    }

    /// Builds the reader's view of one group at `now`: a campaign if a member submitted to
    /// it, an advisory (no flags, no campaign id) if it holds feed items only.
    #[cfg(test)]
    pub(super) fn campaign_of(
        &self,
        slot: u32,
        now: DateTime<Utc>,
    ) -> (Group, Option<DateTime<Utc>>) {
        let (group, until, _) = self.campaign_counted(slot, now);
        (group, until)
    }

    /// [`Engine::campaign_of`], with the member values it counted.
    fn campaign_counted(
        &self,
        slot: u32,
        now: DateTime<Utc>,
    ) -> (Group, Option<DateTime<Utc>>, MemberCounts) {
        let camp = &self.camps[slot as usize];
        let from_member = |m: &u32| {
            matches!(
                self.sources[self.reps[*m as usize].source as usize],
                Source::Member { .. }
            )
        };
        if !camp.members.iter().any(from_member) {
            let mut reports: Vec<Seq> = camp
                .members
                .iter()
                .map(|&m| self.reps[m as usize].seq)
                .collect();
            reports.sort_unstable();
            let times = camp.members.iter().map(|&m| self.reps[m as usize].at);
            let first_seen = times.clone().min().expect("a group has a report");
            let last_seen = times.max().expect("a group has a report");
            let mut feeds: Vec<String> = camp
                .members
                .iter()
                .filter_map(
                    |&m| match &self.sources[self.reps[m as usize].source as usize] {
                        Source::Feed { feed } => Some(feed.clone()),
                        Source::Member { .. } => None,
                    },
                )
                .collect();
            feeds.sort();
            feeds.dedup();
            let advisory = Advisory {
                key: camp.id,
                reports,
                first_seen,
                last_seen,
                feeds,
            };
            return (Group::Advisory(advisory), None, NOT_COUNTED);
        }
        let mut members = camp.members.clone();
        members.sort_unstable();
        let mut reports: Vec<Seq> = members.iter().map(|&m| self.reps[m as usize].seq).collect();
        reports.sort_unstable();
        let mut report_times = Vec::with_capacity(members.len());
        let mut sector_times = Vec::new();
        let mut seen_times = Vec::new();
        let mut sectors = BTreeSet::new();
        let tally = self.tally_for(slot, &members);
        for &m in &members {
            let rep = &self.reps[m as usize];
            report_times.push(rep.at);
            if let Source::Member {
                sector: Some(s), ..
            } = &self.sources[rep.source as usize]
            {
                sectors.insert(*s);
                sector_times.push((rep.at, *s));
            }
        }
        for i in self.sightings_of(camp.id, &tally) {
            let s = self.sightings[i as usize];
            seen_times.push(s.at);
            if let Some(sector) = s.sector {
                sector_times.push((s.at, sector));
            }
        }
        report_times.sort_unstable();
        sector_times.sort_unstable();
        seen_times.sort_unstable();
        let first_seen = report_times[0];
        let last_seen = *report_times.last().expect("a group has a report");
        let mut linking: Vec<(u32, u32)> = tally
            .iter()
            .filter(|(o, (n, _))| *n >= 2 && self.linkable(**o))
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
            .filter(|&o| self.member_value(o))
            .collect();
        member_list.sort_unstable();
        let known = |o: &u32| self.obs[*o as usize].feeds > 0;
        let value = |o: &u32| &self.values[*o as usize];
        let mut members = flags::MemberObs {
            total: member_list.len(),
            known: member_list.iter().filter(|o| known(o)).count(),
            ..flags::MemberObs::default()
        };
        // Evidence only for the flags raised (feed names cost a look at postings).
        let (known_raised, novel_raised) =
            flags::member_flags(&self.rules.flags, members.total, members.known);
        let mut feeds_upto = u32::MAX;
        if known_raised {
            members.known_first =
                flags::first_sorted(member_list.iter().filter(|o| known(o)).map(value).collect());
            // Feed names only for the first known observables by number.
            let named: Vec<u32> = member_list
                .iter()
                .filter(|o| known(o))
                .take(flags::EVIDENCE_MAX)
                .copied()
                .collect();
            if named.len() == flags::EVIDENCE_MAX {
                feeds_upto = *named.last().expect("not empty");
            }
            members.known_feeds = self.feeds_of(named.into_iter());
        }
        if novel_raised {
            members.novel_first = flags::first_sorted(
                member_list
                    .iter()
                    .filter(|o| !known(o))
                    .map(value)
                    .collect(),
            );
        }
        let view = View {
            report_times: &report_times,
            sector_times: &sector_times,
            seen_times: &seen_times,
            members: &members,
        };
        let (flags, until) = flags::compute(&self.rules.flags, &view, now);
        let counts = MemberCounts {
            total: members.total as u32,
            known: members.known as u32,
            feeds_upto,
        };
        (
            Group::Campaign(Campaign {
                id: camp.id,
                reports: reports.into(),
                first_seen,
                last_seen,
                linking,
                sectors,
                flags,
            }),
            until,
            counts,
        )
    }

    /// The feeds carrying the values `os` (looks at a bounded number of reports per value),
    /// by name. A value with long postings keeps its feeds (see `Engine::feed_names`): the
    /// evidence of every small campaign holding a popular value asked again at each
    /// snapshot, and each answer was a walk over hundreds of reports scattered in memory.
    pub(super) fn feeds_of(&self, os: impl Iterator<Item = u32>) -> BTreeSet<String> {
        let mut found: FxHashSet<u32> = FxHashSet::default();
        for o in os {
            let ob = &self.obs[o as usize];
            if ob.feeds == 0 {
                continue;
            }
            let postings = self.postings.get(o);
            let kept = postings.len() >= FEED_NAMES_KEPT;
            let cache = || self.feed_names.lock().unwrap_or_else(|e| e.into_inner());
            if kept && let Some(sources) = cache().get(&o) {
                found.extend(sources.iter().copied());
                continue;
            }
            // Bounded: a popular value has long postings and the evidence needs only a few.
            let mut sources: Vec<u32> = postings
                .iter()
                .take(FEED_NAMES_FROM)
                .filter(|p| *p & CONTAINED == 0)
                .map(|&p| self.reps[p as usize].source)
                .filter(|&s| matches!(self.sources[s as usize], Source::Feed { .. }))
                .take(FEED_NAMES_MAX)
                .collect();
            sources.sort_unstable();
            sources.dedup();
            found.extend(sources.iter().copied());
            if kept {
                cache().insert(o, sources.into_boxed_slice());
            }
        }
        // One source per feed name: distinct sources, distinct names.
        found
            .into_iter()
            .filter_map(|s| match &self.sources[s as usize] {
                Source::Feed { feed } => Some(feed.clone()),
                Source::Member { .. } => None,
            })
            .collect()
    }
}
