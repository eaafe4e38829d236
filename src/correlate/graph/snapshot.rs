//! Snapshots: the campaigns as readers see them, rebuilt only where something changed.

use super::*;

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
        let built: Vec<(Group, Option<DateTime<Utc>>)> = dirty
            .par_iter()
            .filter(|&&slot| !self.camps[slot as usize].members.is_empty())
            .map(|&slot| self.campaign_of(slot, now))
            .collect();
        phases.lap("snapshot: campaigns");
        for (group, until) in built {
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
            snap.set.upsert_group(group);
        }
        snap.set.applied = self.max_seq;
        snap.set.at = now;
        phases.lap("snapshot: install");
        let set = snap.set.clone();
        phases.lap("snapshot: copy");
        set
    }

    // ---- internals ----

    /// Builds the reader's view of one group at `now`: a campaign if a member submitted to
    /// it, an advisory (no flags, no campaign id) if it holds feed items only.
    pub(super) fn campaign_of(
        &self,
        slot: u32,
        now: DateTime<Utc>,
    ) -> (Group, Option<DateTime<Utc>>) {
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
            return (Group::Advisory(advisory), None);
        }
        let mut phases = (camp.members.len() > 100_000).then(Phases::new);
        let mut members = camp.members.clone();
        members.sort_unstable();
        let mut reports: Vec<Seq> = members.iter().map(|&m| self.reps[m as usize].seq).collect();
        reports.sort_unstable();
        let mut view = View::default();
        let mut sectors = BTreeSet::new();
        let tally = self.tally_for(slot, &members);
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
        // Sightings of the campaign's values: walk whichever side is smaller (a giant
        // campaign holds millions of values, and few of them are ever sighted).
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
        let sight_lists = by_value.into_iter().chain(self.sight_by_camp.get(&camp.id));
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
            Group::Campaign(Campaign {
                id: camp.id,
                reports,
                first_seen,
                last_seen,
                linking,
                sectors,
                flags,
            }),
            until,
        )
    }

    /// Names of feeds carrying `o` (looks at a bounded number of reports).
    pub(super) fn feeds_of(&self, o: u32) -> Vec<String> {
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
