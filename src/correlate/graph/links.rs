//! Links: the weight two reports share, which reports may link, and what cuts a link
//! when a value's weight decays; suppression as the analyst sees it.

use super::*;

pub(super) fn intersect(a: &[u32], b: &[u32], mut f: impl FnMut(u32)) {
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

impl Engine {
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

    pub(super) fn kind(&self, o: u32) -> ObservableKind {
        ObservableKind::ALL[self.obs[o as usize].kind as usize]
    }

    pub(super) fn weight_now(&self, o: u32) -> u32 {
        let ob = &self.obs[o as usize];
        if ob.listed {
            return 0;
        }
        self.rules.link.weight(self.kind(o), ob.count as usize)
    }

    /// The summed weight `a` and `b` share at the current counts.
    pub(super) fn shared(&self, a: u32, b: u32) -> u32 {
        let (ra, rb) = (&self.reps[a as usize], &self.reps[b as usize]);
        let mut sum = 0;
        intersect(ra.obs(&self.rep_values), rb.obs(&self.rep_values), |o| {
            sum += self.weight_now(o)
        });
        intersect(&ra.contained, rb.obs(&self.rep_values), |o| {
            sum += self.weight_now(o)
        });
        intersect(ra.obs(&self.rep_values), &rb.contained, |o| {
            sum += self.weight_now(o)
        });
        sum
    }

    /// Reports `r` links to, among those `keep` accepts, through the postings of its values.
    pub(super) fn candidates(&self, r: u32, keep: impl Fn(u32) -> bool) -> Vec<u32> {
        self.candidates_with(r, keep, &mut Vec::new())
    }

    /// [`Engine::candidates`] with a scratch buffer the caller keeps between calls.
    pub(super) fn candidates_with(
        &self,
        r: u32,
        keep: impl Fn(u32) -> bool,
        acc: &mut Vec<(u32, u32)>,
    ) -> Vec<u32> {
        let rep = &self.reps[r as usize];
        acc.clear();
        for &o in rep.obs(&self.rep_values).iter() {
            let w = self.weight_now(o);
            if w == 0 {
                continue;
            }
            for &p in self.postings.get(o) {
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
            for &p in self.postings.get(c) {
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
    pub(super) fn cut_off(&self, a: u32, b: u32) -> Option<Vec<u32>> {
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
                for &y in self.adj.get(x).iter().chain(pins) {
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

    pub(super) fn unlink(&mut self, a: u32, b: u32) {
        self.adj.retain(a, |x| x != b);
        self.adj.retain(b, |x| x != a);
    }

    /// Test builds check after every add that the links are exactly the pairs sharing
    /// enough weight, and that every campaign is one connected group.
    #[cfg(test)]
    pub(super) fn check_links(&self) {
        let t = self.rules.link.threshold;
        for a in 0..self.reps.len() as u32 {
            for b in 0..a {
                let linked = self.adj.get(a).contains(&b);
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
                for &y in self.adj.get(x).iter().chain(pins) {
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
            assert_eq!(
                c.first_at,
                self.first_at_of(&c.members),
                "first report time of slot {i}"
            );
            assert!(
                c.members.len() <= TALLY_MIN || c.tally.is_some(),
                "slot {i} has no tally"
            );
        }
    }
}
