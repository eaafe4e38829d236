//! Full correlation: building the engine from every report at once (in parallel), and
//! re-correlating after the rules or the pins change.

use super::*;

impl Engine {
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
        reports.retain(|r| self.report_of(r.seq).is_none());
        let metas: Vec<(Seq, DateTime<Utc>, Source)> = reports
            .iter()
            .map(|r| (r.seq, r.at, r.source.clone()))
            .collect();
        let expanded: Vec<Vec<(u64, Observable)>> = reports
            .into_par_iter()
            .map(|r| expand(r.observables))
            .collect();
        phases.lap("expand");
        let numbered = self.intern_batch(expanded);
        self.reps.reserve(metas.len());
        for ((seq, at, source), ids) in metas.into_iter().zip(numbered) {
            let source = self.source_id(source);
            self.max_seq = self.max_seq.max(seq);
            let span = self.push_rep_values(&ids);
            self.reps.push(Rep {
                seq,
                at,
                source,
                label: 0,
                obs: span,
                contained: Box::default(),
            });
            self.index_last_report();
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

    /// Re-correlates everything with new rules (SIGHUP). Campaign ids are kept by overlap.
    pub fn recorrelate(&mut self, rules: Arc<Rules>) -> Vec<CampaignEvent> {
        self.rules = rules;
        self.correlate_all()
    }

    /// Full correlation from the stored reports with the current rules and pins.
    pub(super) fn correlate_all(&mut self) -> Vec<CampaignEvent> {
        let mut phases = Phases::new();
        let rules = self.rules.clone();
        // Suppression and counts from scratch.
        let listed: Vec<bool> = self
            .values
            .par_iter()
            .map(|v| rules.warninglists.suppresses(v))
            .collect();
        for (ob, l) in self.obs.iter_mut().zip(listed) {
            ob.listed = l;
            ob.direct_cidr = false;
            ob.count = 0;
            ob.feeds = 0;
        }
        // Freed before the counts: the new postings are laid out from them.
        self.postings = Runs::default();
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
                self.ips.insert(ip, id as u32);
            }
        }
        // Direct counts and reported networks. Each thread takes a range of values and
        // scans every report for them (the counts of one value are one thread's): the
        // reports are read once per thread, the scattered writes are shared out.
        let span = self
            .obs
            .len()
            .div_ceil(rayon::current_num_threads() * 2)
            .max(1);
        let reps = &self.reps;
        let mut first_cidr: Vec<(u32, u32)> = self
            .obs
            .par_chunks_mut(span)
            .enumerate()
            .flat_map_iter(|(c, chunk)| {
                let lo = (c * span) as u32;
                let hi = lo + chunk.len() as u32;
                let mut first = Vec::new();
                for (r, rep) in reps.iter().enumerate() {
                    for &o in rep
                        .obs(&self.rep_values)
                        .iter()
                        .filter(|&&o| lo <= o && o < hi)
                    {
                        let ob = &mut chunk[(o - lo) as usize];
                        if ob.count == 0 && ob.kind == cidr {
                            first.push((r as u32, o));
                        }
                        ob.count += 1;
                    }
                }
                first
            })
            .collect();
        // Reported networks in the order a pass over the reports meets them (a later
        // network of the same key wins, as it always did).
        first_cidr.sort_unstable();
        for (_, o) in first_cidr {
            if let Ok(net) = self.values[o as usize].value().parse::<IpNet>() {
                self.obs[o as usize].direct_cidr = true;
                match net {
                    IpNet::V4(_) => self.v4_lens.insert(net.prefix_len()),
                    IpNet::V6(_) => self.v6_lens.insert(net.prefix_len()),
                };
                self.nets.insert(cidr_key(&net), o);
            }
        }
        phases.lap("networks");
        let contained: Vec<Vec<u32>> = self
            .reps
            .par_iter()
            .map(|rep| self.contained_of(rep.obs(&self.rep_values)))
            .collect();
        for (rep, c) in self.reps.iter_mut().zip(contained) {
            for &c in &c {
                self.obs[c as usize].count += 1;
            }
            rep.contained = c.into_boxed_slice();
        }
        // A value's count is the length of its postings (its reports, directly or through an
        // address inside it).
        self.postings.lay_out(self.obs.iter().map(|ob| ob.count));
        // Postings in report order, each thread filling a range of values (as the counts).
        let span = self
            .obs
            .len()
            .div_ceil(rayon::current_num_threads() * 2)
            .max(1);
        let (reps, sources) = (&self.reps, &self.sources);
        self.obs
            .par_chunks_mut(span)
            .zip(self.postings.chunks_mut(span))
            .for_each(|(chunk, mut postings)| {
                let (lo, hi) = (postings.lo(), postings.hi());
                for (r, rep) in reps.iter().enumerate() {
                    let is_feed = matches!(sources[rep.source as usize], Source::Feed { .. });
                    for &o in rep
                        .obs(&self.rep_values)
                        .iter()
                        .filter(|&&o| lo <= o && o < hi)
                    {
                        postings.push(o, r as u32);
                        if is_feed {
                            chunk[(o - lo) as usize].feeds += 1;
                        }
                    }
                    for &o in rep.contained.iter().filter(|&&o| lo <= o && o < hi) {
                        postings.push(o, r as u32 | CONTAINED);
                    }
                }
            });
        phases.lap("postings");
        self.over = (0..self.obs.len() as u32)
            .filter(|&o| {
                let ob = &self.obs[o as usize];
                !ob.listed
                    && ob.count as usize > rules.link.cap
                    && rules.link.weight_of(self.kind(o)) > 0
            })
            .collect();
        // Links, each pair once from its later report, as runs of one vector per range of
        // reports (a `Vec` per report was a million small blocks beside the adjacency).
        self.adj = Runs::default();
        let span = self
            .reps
            .len()
            .div_ceil(rayon::current_num_threads() * 8)
            .max(1);
        let lower: Vec<(Vec<u32>, Vec<u32>)> = (0..self.reps.len().div_ceil(span))
            .into_par_iter()
            .map_init(Vec::new, |acc, c| {
                let (mut lens, mut flat) = (Vec::new(), Vec::new());
                let hi = ((c + 1) * span).min(self.reps.len());
                for r in (c * span) as u32..hi as u32 {
                    let ps = self.candidates_with(r, |p| p < r, acc);
                    lens.push(ps.len() as u32);
                    flat.extend_from_slice(&ps);
                }
                (lens, flat)
            })
            .collect();
        phases.lap("links");
        let mut degree = vec![0u32; self.reps.len()];
        let mut r = 0;
        for (lens, flat) in &lower {
            let mut at = 0;
            for &l in lens {
                degree[r] += l;
                for &p in &flat[at..at + l as usize] {
                    degree[p as usize] += 1;
                }
                at += l as usize;
                r += 1;
            }
        }
        let mut adj = Runs::default();
        adj.lay_out(degree.into_iter());
        let mut r = 0u32;
        for (lens, flat) in lower {
            let mut at = 0;
            for l in lens {
                for &p in &flat[at..at + l as usize] {
                    adj.push(r, p);
                    adj.push(p, r);
                }
                at += l as usize;
                r += 1;
            }
        }
        self.adj = adj;
        self.pin_adj.clear();
        for &(a, b) in &self.pin_pairs {
            if let (Some(ia), Some(ib)) = (self.report_of(a), self.report_of(b)) {
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
            for &b in self.adj.get(a as u32).iter().chain(pins) {
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
        let snap = self.snap.get_mut().unwrap_or_else(|e| e.into_inner());
        snap.gone.extend(self.slot_of_id.keys().cloned());
        self.camps.clear();
        self.feed_names
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.snap_mut().live.clear();
        self.free.clear();
        self.slot_of_id.clear();
        self.snap_mut().dirty.clear();
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
        let snap = self.snap.get_mut().unwrap_or_else(|e| e.into_inner());
        snap.dirty.extend(self.slot_of_id.values().copied());
        events
    }
}
