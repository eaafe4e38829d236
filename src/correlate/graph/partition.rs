//! The partition: campaigns as slots of reports, joined and split as links come and go,
//! with their running tallies.

use super::*;

impl Engine {
    /// The tally of the campaign in `slot` (whose reports are `members`): its running one
    /// if it is big enough to keep one, else counted now.
    pub(super) fn tally_for(&self, slot: u32, members: &[u32]) -> std::borrow::Cow<'_, Tally> {
        match &self.camps[slot as usize].tally {
            Some(t) => std::borrow::Cow::Borrowed(t),
            None => std::borrow::Cow::Owned(self.tally_of(members)),
        }
    }

    /// Counts `members`' observables afresh.
    pub(super) fn tally_of(&self, members: &[u32]) -> Tally {
        let mut tally = Tally::default();
        for &m in members {
            self.tally_report(&mut tally, None, m, 1);
        }
        tally
    }

    /// Adds (`sign` 1) or removes (`sign` -1) report `m` in `tally`, and in the campaign's
    /// live view if it keeps one.
    pub(super) fn tally_report(
        &self,
        tally: &mut Tally,
        mut live: Option<&mut Live>,
        m: u32,
        sign: i32,
    ) {
        let rep = &self.reps[m as usize];
        let member = matches!(self.sources[rep.source as usize], Source::Member { .. });
        if let Some(live) = live.as_deref_mut() {
            live.report(m, sign, member);
        }
        for &o in rep.obs(&self.rep_values).iter() {
            let (n, from_members) = if sign > 0 {
                let e = tally.entry(o).or_default();
                e.0 += 1;
                e.1 += u32::from(member);
                *e
            } else if let Some(e) = tally.get_mut(&o) {
                e.0 -= 1;
                e.1 -= u32::from(member);
                let now = *e;
                if e.0 == 0 {
                    tally.remove(&o);
                }
                now
            } else {
                continue;
            };
            let Some(live) = live.as_deref_mut() else {
                continue;
            };
            live.linking_mut().update(o, n, self.linkable(o));
            if member && self.member_value(o) {
                let known = self.obs[o as usize].feeds > 0;
                if sign > 0 && from_members == 1 {
                    live.members_mut().enter(&self.values, o, known);
                } else if sign < 0 && from_members == 0 {
                    live.members_mut().leave(&self.values, o, known);
                }
            }
            // The value's sightings count while the campaign carries it.
            if (sign > 0 && n == 1) || (sign < 0 && n == 0) {
                for &i in self.sight_by_obs.get(&o).into_iter().flatten() {
                    live.sighting(i, sign);
                }
            }
        }
    }

    /// Counts `reports` in (`sign` 1) or out (-1) of the running tally of `slot`, if it
    /// keeps one, and of its live view.
    fn tally_reports(&mut self, slot: u32, reports: &[u32], sign: i32) {
        let Some(mut tally) = self.camps[slot as usize].tally.take() else {
            return;
        };
        let mut live = self
            .snap
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .live
            .remove(&slot);
        for &m in reports {
            self.tally_report(&mut tally, live.as_deref_mut(), m, sign);
        }
        self.camps[slot as usize].tally = Some(tally);
        if let Some(live) = live {
            self.snap_mut().live.insert(slot, live);
        }
    }

    /// Brings the tally of `slot` in line after `joined` reports joined it: counted in,
    /// or counted from scratch when the campaign has just grown past [`TALLY_MIN`].
    pub(super) fn tally_joined(&mut self, slot: u32, joined: &[u32]) {
        if self.camps[slot as usize].tally.is_some() {
            self.tally_reports(slot, joined, 1);
        } else if self.camps[slot as usize].members.len() > TALLY_MIN {
            let tally = self.tally_of(&self.camps[slot as usize].members);
            self.camps[slot as usize].tally = Some(Box::new(tally));
        }
    }

    /// Drops the live view of `slot` (its campaign is made afresh or changes its id).
    pub(super) fn drop_live(&mut self, slot: u32) {
        self.snap_mut().live.remove(&slot);
    }

    /// Whether report `m` came from a member (not a feed).
    pub(super) fn is_member_report(&self, m: u32) -> bool {
        matches!(
            self.sources[self.reps[m as usize].source as usize],
            Source::Member { .. }
        )
    }

    /// When the first of `members` arrived (`MAX_UTC` for none).
    pub(super) fn first_at_of(&self, members: &[u32]) -> DateTime<Utc> {
        members
            .iter()
            .map(|&m| self.reps[m as usize].at)
            .min()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    pub(super) fn new_slot(&mut self, members: Vec<u32>, id: CampaignId) -> u32 {
        let first_at = self.first_at_of(&members);
        let camp = Camp {
            members,
            first_at,
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
        self.drop_live(slot);
        self.snap_mut().dirty.insert(slot);
        slot
    }

    pub(super) fn free_slot(&mut self, slot: u32) -> Camp {
        let camp = std::mem::replace(
            &mut self.camps[slot as usize],
            Camp {
                members: Vec::new(),
                first_at: DateTime::<Utc>::MAX_UTC,
                id: CampaignId { year: 0, number: 0 },
                tally: None,
            },
        );
        if self.slot_of_id.get(&camp.id) == Some(&slot) {
            self.slot_of_id.remove(&camp.id);
        }
        self.free.push(slot);
        self.snap_mut().dirty.remove(&slot);
        self.drop_live(slot);
        camp
    }

    /// The fast path: `r` joins the campaigns in `slots` (none: a new campaign). The id is
    /// the one `IdBook::assign` would choose: the largest campaign's, ties to the older id.
    pub(super) fn join(&mut self, r: u32, slots: Vec<u32>) -> Vec<CampaignEvent> {
        let seq = self.reps[r as usize].seq;
        let mut events = Vec::new();
        let member = self.is_member_report(r);
        if slots.is_empty() {
            let id = self.ids.allocate_for(self.reps[r as usize].at, member);
            self.ids.set(seq, id);
            self.new_slot(vec![r], id);
            events.push(CampaignEvent::Created { id });
            events.push(CampaignEvent::Assigned {
                id,
                reports: vec![seq],
            });
            return events;
        }
        // The joined group is an attack activity if the new report or any joined group
        // holds a member report (groups under a campaign id do, advisories do not); then
        // only a campaign id may carry it on.
        let campaign = member
            || slots
                .iter()
                .any(|&s| !is_advisory_key(self.camps[s as usize].id));
        let winner = *slots
            .iter()
            .max_by(|&&a, &&b| {
                let (ca, cb) = (&self.camps[a as usize], &self.camps[b as usize]);
                let fits = |c: &Camp| is_advisory_key(c.id) != campaign;
                fits(ca)
                    .cmp(&fits(cb))
                    .then(ca.members.len().cmp(&cb.members.len()))
                    .then(cb.id.cmp(&ca.id))
            })
            .expect("not empty");
        let mut from = Vec::new();
        if campaign && is_advisory_key(self.camps[winner as usize].id) {
            // A member report answers an advisory: the group becomes a campaign now, and
            // takes its campaign number now (advisories never hold one).
            let old = self.camps[winner as usize].id;
            let first = self.camps[winner as usize]
                .members
                .iter()
                .map(|&m| self.reps[m as usize].at)
                .chain([self.reps[r as usize].at])
                .min()
                .expect("a group has a report");
            let id = self.ids.allocate(first);
            events.push(CampaignEvent::Created { id });
            self.camps[winner as usize].id = id;
            self.drop_live(winner);
            self.slot_of_id.remove(&old);
            self.slot_of_id.insert(id, winner);
            let snap = self.snap.get_mut().unwrap_or_else(|e| e.into_inner());
            snap.gone.insert(old);
            snap.gone.remove(&id);
            from.push(old);
        }
        let into = self.camps[winner as usize].id;
        let mut moved = Vec::new();
        if !from.is_empty() {
            for &m in &self.camps[winner as usize].members {
                let mseq = self.reps[m as usize].seq;
                self.ids.set(mseq, into);
                moved.push(mseq);
            }
        }
        let mut joined = vec![r];
        for &s in &slots {
            if s == winner {
                continue;
            }
            let camp = self.free_slot(s);
            from.push(camp.id);
            self.snap_mut().gone.insert(camp.id);
            let base = self.camps[winner as usize].members.len();
            for (i, &m) in camp.members.iter().enumerate() {
                self.camp_of[m as usize] = winner;
                self.pos[m as usize] = (base + i) as u32;
                let mseq = self.reps[m as usize].seq;
                self.ids.set(mseq, into);
                moved.push(mseq);
            }
            joined.extend_from_slice(&camp.members);
            let w = &mut self.camps[winner as usize];
            w.first_at = w.first_at.min(camp.first_at);
            w.members.extend(camp.members);
        }
        self.pos[r as usize] = self.camps[winner as usize].members.len() as u32;
        let at = self.reps[r as usize].at;
        let w = &mut self.camps[winner as usize];
        w.first_at = w.first_at.min(at);
        w.members.push(r);
        self.camp_of[r as usize] = winner;
        self.tally_joined(winner, &joined);
        self.ids.set(seq, into);
        self.snap_mut().dirty.insert(winner);
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
    pub(super) fn split_off(&mut self, group: Vec<u32>) -> Vec<CampaignEvent> {
        let slot = self.camp_of[group[0] as usize];
        if group.len() >= self.camps[slot as usize].members.len() {
            // Already a campaign of its own (an earlier break cut it off).
            return Vec::new();
        }
        self.tally_reports(slot, &group, -1);
        for &m in &group {
            let members = &mut self.camps[slot as usize].members;
            let i = self.pos[m as usize] as usize;
            members.swap_remove(i);
            if let Some(&moved) = members.get(i) {
                self.pos[moved as usize] = i as u32;
            }
        }
        self.snap_mut().dirty.insert(slot);
        let from = self.camps[slot as usize].id;
        let first = group
            .iter()
            .map(|&m| self.reps[m as usize].at)
            .min()
            .expect("a group has a report");
        if first <= self.camps[slot as usize].first_at {
            // The first report may have left: the rest's first is counted again.
            let rest = self.first_at_of(&self.camps[slot as usize].members);
            self.camps[slot as usize].first_at = rest;
        }
        let campaign = group.iter().any(|&m| self.is_member_report(m));
        let id = self.ids.allocate_for(first, campaign);
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
    pub(super) fn install(&mut self, mut groups: Vec<Vec<u32>>) -> Vec<CampaignEvent> {
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
        let campaign: Vec<bool> = groups
            .iter()
            .map(|g| g.iter().any(|&m| self.is_member_report(m)))
            .collect();
        let (assigned, events) = self.ids.assign(&seqs, &starts, &campaign);
        for (g, id) in groups.into_iter().zip(assigned) {
            self.snap_mut().gone.remove(&id);
            self.new_slot(g, id);
        }
        events
    }
}
