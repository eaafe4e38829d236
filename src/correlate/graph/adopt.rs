//! Ids recorded by another node: when several nodes share one store, only the leader gives
//! campaign ids; every other node (a follower) correlates the same reports itself but shows
//! its groups under the ids the leader recorded, and leaves out a group the leader has not
//! recorded yet. When a follower becomes leader it takes the recorded ids over and records
//! from there.

use super::*;

impl Engine {
    /// Follower: takes the assignments the leader recorded since the last call (`changed`),
    /// and gives each group that changed — here (the reports applied since, pins) or in the
    /// store — the recorded id it shares the most reports with (ties to the older id). A
    /// group with no recorded id of its own kind left is kept under a private key that
    /// snapshots leave out, until the leader records it. With `everything`, every group is
    /// matched (the first build, a leader stepping down).
    ///
    /// Nothing is allocated that a reader sees, and nothing is returned to record.
    pub fn adopt(&mut self, changed: &[(Seq, CampaignId)], everything: bool) {
        let mut slots: FxHashSet<u32> = if everything {
            self.slot_of_id.values().copied().collect()
        } else {
            self.snap_mut().dirty.clone()
        };
        for &(seq, id) in changed {
            self.ids.set(seq, id);
            self.ids.reserve(id);
            self.recorded.insert(id);
            if let Some(r) = self.report_of(seq) {
                slots.insert(self.camp_of[r as usize]);
            }
        }
        let mut slots: Vec<u32> = slots
            .into_iter()
            .filter(|&s| !self.camps[s as usize].members.is_empty())
            .collect();
        slots.sort_unstable();
        let inside: FxHashSet<u32> = slots.iter().copied().collect();

        // Overlap of each group with each recorded id it may take: of its own kind, and not
        // held by a group outside the ones being matched.
        let mut candidates: Vec<(usize, CampaignId, u32)> = Vec::new();
        for &slot in &slots {
            let members = &self.camps[slot as usize].members;
            let campaign = members.iter().any(|&m| self.is_member_report(m));
            let mut overlap: FxHashMap<CampaignId, usize> = FxHashMap::default();
            for &m in members {
                if let Some(id) = self.ids.of(self.reps[m as usize].seq)
                    && self.recorded.contains(&id)
                {
                    *overlap.entry(id).or_default() += 1;
                }
            }
            for (id, n) in overlap {
                let held_outside = self
                    .slot_of_id
                    .get(&id)
                    .is_some_and(|s| !inside.contains(s));
                if is_advisory_key(id) != campaign && !held_outside {
                    candidates.push((n, id, slot));
                }
            }
        }
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut chosen: FxHashMap<u32, CampaignId> = FxHashMap::default();
        let mut taken: FxHashSet<CampaignId> = FxHashSet::default();
        for (_, id, slot) in candidates {
            if !chosen.contains_key(&slot) && !taken.contains(&id) {
                chosen.insert(slot, id);
                taken.insert(id);
            }
        }
        // The others keep their key if no matched group took it, else get a fresh one;
        // either way it is private until the leader records the group.
        let mut keys: Vec<(u32, CampaignId)> = Vec::with_capacity(slots.len());
        for &slot in &slots {
            let id = match chosen.get(&slot) {
                Some(&id) => {
                    self.provisional.remove(&id);
                    id
                }
                None => {
                    let current = self.camps[slot as usize].id;
                    let id = if taken.contains(&current) {
                        self.fresh_key(slot, &taken)
                    } else {
                        current
                    };
                    taken.insert(id);
                    self.provisional.insert(id);
                    id
                }
            };
            keys.push((slot, id));
        }
        self.rekey(&keys, false);
    }

    /// Promotion: this node becomes the one that records. `book` holds every recorded
    /// assignment and every id ever given; each group takes its id by overlap as after a
    /// full correlation (new groups get the next free numbers), and what differs from the
    /// store is returned to record.
    pub fn take_over(&mut self, book: IdBook) -> Vec<CampaignEvent> {
        self.ids = book;
        self.recorded.clear();
        self.provisional.clear();
        let mut slots: Vec<u32> = self
            .slot_of_id
            .values()
            .copied()
            .filter(|&s| !self.camps[s as usize].members.is_empty())
            .collect();
        slots.sort_unstable();
        let mut seqs = Vec::with_capacity(slots.len());
        let mut starts = Vec::with_capacity(slots.len());
        let mut campaign = Vec::with_capacity(slots.len());
        for &slot in &slots {
            let members = &self.camps[slot as usize].members;
            let mut s: Vec<Seq> = members.iter().map(|&m| self.reps[m as usize].seq).collect();
            s.sort_unstable();
            seqs.push(s);
            starts.push(
                members
                    .iter()
                    .map(|&m| self.reps[m as usize].at)
                    .min()
                    .expect("a group has a report"),
            );
            campaign.push(members.iter().any(|&m| self.is_member_report(m)));
        }
        let (ids, events) = self.ids.assign(&seqs, &starts, &campaign);
        let keys: Vec<(u32, CampaignId)> = slots.into_iter().zip(ids).collect();
        self.rekey(&keys, true);
        events
    }

    /// Groups left out of snapshots because the leader has not recorded them.
    pub fn unrecorded_groups(&self) -> usize {
        self.provisional
            .iter()
            .filter(|id| self.slot_of_id.contains_key(id))
            .count()
    }

    /// A private key no group holds or is about to take.
    fn fresh_key(&mut self, slot: u32, taken: &FxHashSet<CampaignId>) -> CampaignId {
        let members = &self.camps[slot as usize].members;
        let first = members
            .iter()
            .map(|&m| self.reps[m as usize].at)
            .min()
            .expect("a group has a report");
        let campaign = members.iter().any(|&m| self.is_member_report(m));
        loop {
            let id = self.ids.allocate_for(first, campaign);
            if !taken.contains(&id) && !self.slot_of_id.contains_key(&id) {
                return id;
            }
        }
    }

    /// Puts each slot under its new key (keys are distinct); with `book`, the id book
    /// follows (the reports of each group are recorded under its key).
    fn rekey(&mut self, keys: &[(u32, CampaignId)], book: bool) {
        let snap = self.snap.get_mut().unwrap_or_else(|e| e.into_inner());
        for &(slot, id) in keys {
            let old = self.camps[slot as usize].id;
            if old != id && self.slot_of_id.get(&old) == Some(&slot) {
                self.slot_of_id.remove(&old);
                snap.gone.insert(old);
            }
        }
        for &(slot, id) in keys {
            let old = self.camps[slot as usize].id;
            if old != id {
                // Sightings of the campaign follow its id: its live view starts again.
                snap.live.remove(&slot);
            }
            self.camps[slot as usize].id = id;
            self.slot_of_id.insert(id, slot);
            snap.gone.remove(&id);
            if old != id {
                // The snapshot keeps groups by key: the old key's entry must go (unless
                // another group now holds it).
                snap.gone.insert(old);
            }
            snap.dirty.insert(slot);
        }
        // A key that moved to another slot is not gone.
        snap.gone.retain(|g| !self.slot_of_id.contains_key(g));
        if book {
            for &(slot, id) in keys {
                for &m in &self.camps[slot as usize].members {
                    self.ids.set(self.reps[m as usize].seq, id);
                }
            }
        }
    }
}
