//! Incremental correlation: one more report, and the links that its values' new counts
//! break.

use super::*;

impl Engine {
    /// Adds one report (the incremental fast path) and returns what changed for the store.
    pub fn add(&mut self, facts: ReportFacts) -> Vec<CampaignEvent> {
        if self.report_of(facts.seq).is_some() {
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
        self.max_seq = self.max_seq.max(facts.seq);
        let span = self.push_rep_values(&obs);
        self.reps.push(Rep {
            seq: facts.seq,
            at: facts.at,
            source,
            label,
            obs: span,
            contained: Box::default(),
        });
        self.index_last_report();
        self.adj.push_list();
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
                let (family, lo) = ip_key(net.network());
                let (_, hi) = ip_key(net.broadcast());
                let inside: Vec<u32> = self.ips.range(family, lo, hi);
                for ip in inside {
                    let holders: Vec<u32> = self.postings.get(ip).to_vec();
                    for p in holders {
                        let p = p & !CONTAINED;
                        let rep = &mut self.reps[p as usize];
                        if rep.obs(&self.rep_values).binary_search(&o).is_ok() {
                            continue;
                        }
                        if let Err(at) = rep.contained.binary_search(&o) {
                            let mut contained = std::mem::take(&mut rep.contained).into_vec();
                            contained.insert(at, o);
                            rep.contained = contained.into_boxed_slice();
                            touched.entry(o).or_insert_with(|| {
                                (self.weight_now(o), self.obs[o as usize].count)
                            });
                            self.obs[o as usize].count += 1;
                            self.postings.push(o, p | CONTAINED);
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
            self.postings.push(o, r);
            let ob = &mut self.obs[o as usize];
            ob.count += 1;
            if is_feed {
                ob.feeds += 1;
                if ob.feeds == 1 {
                    self.live_known(o);
                }
                if self.obs[o as usize].feeds == 1 {
                    self.forget_feed_names(o);
                    self.first_fed(o);
                } else if self.names_new_feed(o) {
                    self.forget_feed_names(o);
                    self.dirty_known_holders(o);
                }
            }
        }
        for &c in &contained {
            touched
                .entry(c)
                .or_insert_with(|| (self.weight_now(c), self.obs[c as usize].count));
            self.obs[c as usize].count += 1;
            self.postings.push(c, r | CONTAINED);
        }
        self.reps[r as usize].contained = contained.into_boxed_slice();

        // Values whose weight fell: re-check the links that rest on them.
        let mut broken: Vec<(u32, u32)> = Vec::new();
        let mut weakened: Vec<u32> = Vec::new();
        let mut over = Vec::new();
        for (&o, &(before, count_before)) in &touched {
            let after = self.weight_now(o);
            let ob = &self.obs[o as usize];
            let cap = self.rules.link.cap;
            if !ob.listed
                && count_before as usize <= cap
                && ob.count as usize > cap
                && self.rules.link.weight_of(self.kind(o)) > 0
            {
                over.push(o);
            }
            if after < before {
                weakened.push(o);
            }
        }
        weakened.sort_unstable();
        let threshold = self.rules.link.threshold;
        for o in weakened {
            // Only links between two holders of `o` rest on it.
            let holders: FxHashSet<u32> = self
                .postings
                .get(o)
                .iter()
                .map(|&p| p & !CONTAINED)
                .filter(|&p| p != r)
                .collect();
            let mut cut = Vec::new();
            for &p in &holders {
                for &q in self.adj.get(p) {
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

        // A value over the cap no longer links the campaigns holding it: they list their
        // linking values again. (Nothing else of a campaign's view depends on other
        // campaigns' reports: explanations are computed on request.)
        over.sort_unstable();
        for &o in &over {
            self.dirty_linked_by(o);
        }
        self.over.extend(over);

        // The new report's links.
        let links = self.candidates(r, |_| true);
        for &p in &links {
            self.adj.push(r, p);
            self.adj.push(p, r);
        }
        let mut slots: Vec<u32> = links.iter().map(|&p| self.camp_of[p as usize]).collect();
        slots.sort_unstable();
        slots.dedup();
        events.extend(self.join(r, slots));
        #[cfg(test)]
        self.check_links();
        events
    }

    pub(super) fn mark_dirty_report(&mut self, p: u32) {
        let slot = self.camp_of[p as usize];
        if slot != u32::MAX {
            self.snap_mut().dirty.insert(slot);
        }
    }

    /// A feed now carries `o`: the live views of the campaigns holding it as a member
    /// value count it as known.
    fn live_known(&mut self, o: u32) {
        if !self.member_value(o) {
            return;
        }
        self.for_live_views_counting(o, |live, (_, from_members), values| {
            if from_members > 0 {
                live.members_mut().became_known(values, o);
            }
        });
    }

    /// Whether the feed report just posted last on `o` adds a name to the feeds that the
    /// evidence of the campaigns holding `o` may show ([`Engine::feeds_of`]).
    fn names_new_feed(&self, o: u32) -> bool {
        let postings = self.postings.get(o);
        let Some((&last, before)) = postings.split_last() else {
            return false;
        };
        if before.len() >= FEED_NAMES_FROM {
            return false;
        }
        let Source::Feed { feed: name } = &self.sources[self.reps[last as usize].source as usize]
        else {
            return false;
        };
        let mut named = 0;
        for &p in before.iter().filter(|p| *p & CONTAINED == 0) {
            if let Source::Feed { feed } = &self.sources[self.reps[p as usize].source as usize] {
                if feed == name {
                    return false;
                }
                named += 1;
                if named == FEED_NAMES_MAX {
                    return false;
                }
            }
        }
        true
    }

    /// The feed names kept for `o` are out of date.
    fn forget_feed_names(&mut self, o: u32) {
        self.feed_names
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&o);
    }

    /// The slots of the campaigns whose reports carry `o` themselves, with how many do.
    /// Calls `f` with the live view of each campaign whose running tally counts `o`, with
    /// `o`'s counts there (reports, member reports): what live views follow when something
    /// about `o` changes (a first feed, a sighting).
    pub(super) fn for_live_views_counting(
        &mut self,
        o: u32,
        mut f: impl FnMut(&mut super::live::Live, (u32, u32), &[Observable]),
    ) {
        if self.snap_mut().live.is_empty() {
            return;
        }
        let slots = self.slots_carrying(o);
        let snap = self.snap.get_mut().unwrap_or_else(|e| e.into_inner());
        for slot in slots {
            let counts = self.camps[slot as usize]
                .tally
                .as_ref()
                .and_then(|t| t.get(&o))
                .copied();
            if let (Some(live), Some(counts)) = (snap.live.get_mut(&slot), counts) {
                f(live, counts, &self.values);
            }
        }
    }

    /// The campaigns holding a report that carries `o`, directly or through an address
    /// inside it, each once.
    fn slots_carrying(&self, o: u32) -> Vec<u32> {
        let mut slots: Vec<u32> = self
            .postings
            .get(o)
            .iter()
            .map(|&p| self.camp_of[(p & !CONTAINED) as usize])
            .filter(|&s| s != u32::MAX)
            .collect();
        slots.sort_unstable();
        slots.dedup();
        slots
    }

    fn holder_slots(&self, o: u32) -> Vec<(u32, u32)> {
        let mut slots: Vec<u32> = self
            .postings
            .get(o)
            .iter()
            .filter(|&&p| p & CONTAINED == 0)
            .map(|&p| self.camp_of[p as usize])
            .filter(|&s| s != u32::MAX)
            .collect();
        slots.sort_unstable();
        let mut counted: Vec<(u32, u32)> = Vec::new();
        for s in slots {
            match counted.last_mut() {
                Some((last, n)) if *last == s => *n += 1,
                _ => counted.push((s, 1)),
            }
        }
        counted
    }

    /// `o` stopped linking (over the cap): only campaigns in which two reports carry it
    /// could list it as linking them.
    fn dirty_linked_by(&mut self, o: u32) {
        for (slot, n) in self.holder_slots(o) {
            if n >= 2 {
                self.snap_mut().dirty.insert(slot);
            }
        }
    }

    /// A feed name was added to those of `o`: only campaigns whose last snapshot raised
    /// `known` show feed names (one that does not is rebuilt anyway by whatever raises it);
    /// of those only the ones that do not name it yet; and of those counted afresh, only the
    /// ones where `o` is a member value among the first known ones by number, whose feeds
    /// the evidence names (most campaigns holding a popular value were rebuilt to show
    /// exactly what they showed).
    fn dirty_known_holders(&mut self, o: u32) {
        let member_value = self.member_value(o);
        let mut slots: Vec<(u32, bool)> = self
            .postings
            .get(o)
            .iter()
            .filter(|&&p| p & CONTAINED == 0)
            .map(|&p| (self.camp_of[p as usize], self.is_member_report(p)))
            .filter(|&(s, _)| s != u32::MAX)
            .collect();
        slots.sort_unstable();
        slots.dedup();
        // The name added (`names_new_feed`: the source of the last posting). A campaign
        // whose evidence names it already shows the same (names only accumulate).
        let name = self.postings.get(o).last().and_then(|&p| {
            match &self.sources[self.reps[p as usize].source as usize] {
                Source::Feed { feed } => Some(feed.as_str()),
                Source::Member { .. } => None,
            }
        });
        let snap = self.snap.get_mut().unwrap_or_else(|e| e.into_inner());
        for (slot, from_member) in slots {
            let id = self.camps[slot as usize].id;
            let shows_feeds = snap
                .set
                .get(id)
                .and_then(|c| c.flag(crate::correlate::FlagKind::Known))
                .is_some_and(|f| {
                    name.is_none_or(|n| {
                        f.evidence
                            .feeds
                            .binary_search_by(|x| x.as_str().cmp(n))
                            .is_err()
                    })
                });
            // A live view keeps no such counts: rebuilt as before.
            let named = snap.live.contains_key(&slot)
                || from_member
                    && member_value
                    && snap
                        .member_counts
                        .get(slot as usize)
                        .is_none_or(|c| c.may_show_feeds_of(o));
            if shows_feeds && named {
                snap.dirty.insert(slot);
            }
        }
    }

    /// A feed carries `o` for the first time. Of a campaign's view, only its count of known
    /// member values (and the flags and evidence on it) depend on that, and only where a
    /// member report carries `o` itself: campaigns with a live view are rebuilt, small
    /// ones noted for `Engine::settle_known` (which rebuilds them when their flags may
    /// change).
    fn first_fed(&mut self, o: u32) {
        let member_value = self.member_value(o);
        let snap = self.snap.get_mut().unwrap_or_else(|e| e.into_inner());
        for &p in self.postings.get(o) {
            let slot = self.camp_of[(p & !CONTAINED) as usize];
            if slot == u32::MAX {
                continue;
            }
            if snap.live.contains_key(&slot) {
                snap.dirty.insert(slot);
            } else if member_value
                && p & CONTAINED == 0
                && matches!(
                    self.sources[self.reps[p as usize].source as usize],
                    Source::Member { .. }
                )
            {
                snap.became_known.entry(slot).or_default().push(o);
            }
        }
    }

    pub(super) fn dirty_postings(&mut self, o: u32) {
        for i in 0..self.postings.get(o).len() {
            let p = self.postings.get(o)[i];
            self.mark_dirty_report(p & !CONTAINED);
        }
    }
}
