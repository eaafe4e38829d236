//! Why a campaign holds together (its links, the values that did not count, the near-links)
//! and which earlier campaigns it resembles below the threshold. Bounded: a campaign of any
//! size costs at most a few hundred links and postings here.

use super::super::explain::{
    EXPLAIN_MAX, Explanation, Grouping, LinkWhy, NearLink, NotCounted, RELATED_MAX, Related,
    RelatedReason, SharedValue, SuppressedValue,
};
use super::*;

/// Reports of a campaign whose neighbours are searched for near-links.
const NEAR_REPORTS: usize = 200;
/// Postings of one value looked at for near-links and related campaigns.
const POSTINGS_MAX: usize = 512;
/// Minimum Jaccard similarity of technique sets (with two techniques in common) that
/// relates two campaigns.
const TECHNIQUES_MIN: f64 = 0.5;

impl Engine {
    /// Why campaign `id` is one group and which earlier campaigns it resembles: computed
    /// now, for this campaign only. `None` for an id the engine does not hold, an advisory
    /// key, or (on a follower) a group the leader has not recorded yet.
    pub fn explain(&self, id: CampaignId) -> Option<Explanation> {
        let (slot, members) = self.explained(id)?;
        let camp = &self.camps[slot as usize];
        let tally = self.tally_for(slot, &members);
        Some(Explanation {
            why: self.grouping(slot, &members, &tally),
            related: self.related(slot, &members, camp.first_at),
        })
    }

    /// Only the related earlier campaigns of [`Engine::explain`] (what a campaign page
    /// shows beside the reports).
    pub fn related_campaigns(&self, id: CampaignId) -> Option<Vec<Related>> {
        let (slot, members) = self.explained(id)?;
        Some(self.related(slot, &members, self.camps[slot as usize].first_at))
    }

    /// The slot and sorted reports of a campaign that may be explained.
    fn explained(&self, id: CampaignId) -> Option<(u32, Vec<u32>)> {
        if self.provisional.contains(&id) || is_advisory_key(id) {
            return None;
        }
        let &slot = self.slot_of_id.get(&id)?;
        let mut members = self.camps[slot as usize].members.clone();
        if members.is_empty() {
            return None;
        }
        members.sort_unstable();
        Some((slot, members))
    }

    /// The values `a` and `b` share, with their weights now (weight-0 values left out).
    fn shared_values(&self, a: u32, b: u32) -> Vec<SharedValue> {
        let (ra, rb) = (&self.reps[a as usize], &self.reps[b as usize]);
        let mut out = Vec::new();
        let mut push = |o: u32, through_network: bool| {
            let weight = self.weight_now(o);
            if weight > 0 {
                out.push(SharedValue {
                    value: self.values[o as usize].clone(),
                    weight,
                    full_weight: self.rules.link.weight_of(self.kind(o)),
                    reports: self.obs[o as usize].count as usize,
                    through_network,
                });
            }
        };
        super::links::intersect(ra.obs(&self.rep_values), rb.obs(&self.rep_values), |o| {
            push(o, false)
        });
        super::links::intersect(&ra.contained, rb.obs(&self.rep_values), |o| push(o, true));
        super::links::intersect(ra.obs(&self.rep_values), &rb.contained, |o| push(o, true));
        out.sort_by(|x, y| y.weight.cmp(&x.weight).then_with(|| x.value.cmp(&y.value)));
        out
    }

    /// Why the campaign of `members` (sorted) with `tally` is one group.
    fn grouping(&self, slot: u32, members: &[u32], tally: &Tally) -> Grouping {
        let threshold = self.rules.link.threshold;
        let link = &self.rules.link;
        // Every link of a report stays inside its campaign, so the campaign's links are half
        // the sum of its members' degrees (a count in O(reports), not O(links)); only the
        // first few are looked at.
        let links_total = members
            .iter()
            .map(|&m| self.adj.get(m).len())
            .sum::<usize>()
            / 2;
        let mut links = Vec::new();
        'first: for &m in members {
            for &q in self.adj.get(m) {
                if q <= m {
                    continue;
                }
                if links.len() >= EXPLAIN_MAX * 4 {
                    break 'first;
                }
                links.push((m, q));
            }
        }
        let mut links: Vec<LinkWhy> = links
            .into_iter()
            .map(|(m, q)| {
                let shared = self.shared_values(m, q);
                LinkWhy {
                    a: self.reps[m as usize].seq,
                    b: self.reps[q as usize].seq,
                    weight: shared.iter().map(|s| s.weight).sum(),
                    shared,
                }
            })
            .collect();
        links.sort_by(|x, y| {
            y.weight
                .cmp(&x.weight)
                .then(x.a.cmp(&y.a))
                .then(x.b.cmp(&y.b))
        });
        links.truncate(EXPLAIN_MAX);

        // Which shared values do not count, by cheap tests first; the reason (a warning-list
        // lookup, a copy of the value) only for the few shown.
        let mut suppressed: Vec<(u32, u32)> = tally
            .iter()
            .filter(|(_, (n, _))| *n >= 2)
            .filter(|(o, _)| {
                let ob = &self.obs[**o as usize];
                let full = link.weight_of(self.kind(**o));
                ob.listed
                    || full == 0
                    || ob.count as usize > link.cap
                    || self.weight_now(**o) < full
            })
            .map(|(&o, &(n, _))| (n, o))
            .collect();
        let order = |x: &(u32, u32), y: &(u32, u32)| {
            y.0.cmp(&x.0)
                .then_with(|| self.values[x.1 as usize].cmp(&self.values[y.1 as usize]))
        };
        if suppressed.len() > EXPLAIN_MAX {
            suppressed.select_nth_unstable_by(EXPLAIN_MAX, order);
            suppressed.truncate(EXPLAIN_MAX);
        }
        suppressed.sort_by(order);
        let suppressed: Vec<SuppressedValue> = suppressed
            .into_iter()
            .filter_map(|(n, o)| {
                let ob = &self.obs[o as usize];
                let value = &self.values[o as usize];
                let full = link.weight_of(self.kind(o));
                let why = if ob.listed {
                    NotCounted::from(self.rules.warninglists.check(value)?)
                } else if full == 0 {
                    NotCounted::KindWithoutWeight
                } else if ob.count as usize > link.cap {
                    NotCounted::OverCorrelating {
                        reports: ob.count as usize,
                        cap: link.cap,
                    }
                } else {
                    NotCounted::Decayed {
                        reports: ob.count as usize,
                        weight: self.weight_now(o),
                        full_weight: full,
                        decay_after: link.decay_after,
                    }
                };
                Some(SuppressedValue {
                    value: value.clone(),
                    in_campaign: n as usize,
                    why,
                })
            })
            .collect();

        // Near-links: reports sharing weight with one of ours, below the threshold.
        let mut near: Vec<NearLink> = Vec::new();
        let mut sums: FxHashMap<u32, u32> = FxHashMap::default();
        for &m in members.iter().take(NEAR_REPORTS) {
            sums.clear();
            let rep = &self.reps[m as usize];
            for &o in rep.obs(&self.rep_values).iter().chain(rep.contained.iter()) {
                let w = self.weight_now(o);
                if w == 0 {
                    continue;
                }
                for &p in self.postings.get(o).iter().take(POSTINGS_MAX) {
                    let p = p & !CONTAINED;
                    if p != m {
                        *sums.entry(p).or_default() += w;
                    }
                }
            }
            for (&p, &w) in &sums {
                if w >= threshold || (self.camp_of[p as usize] == slot && p < m) {
                    continue;
                }
                if self.adj.get(m).contains(&p) {
                    continue;
                }
                let other = self.camp_of[p as usize];
                let b_campaign = (other != slot)
                    .then(|| self.camps[other as usize].id)
                    .filter(|id| !is_advisory_key(*id));
                near.push(NearLink {
                    a: rep.seq,
                    b: self.reps[p as usize].seq,
                    b_campaign,
                    weight: w,
                    threshold,
                    shared: Vec::new(),
                });
            }
        }
        near.sort_by(|x, y| {
            y.weight
                .cmp(&x.weight)
                .then(x.a.cmp(&y.a))
                .then(x.b.cmp(&y.b))
        });
        near.truncate(EXPLAIN_MAX / 4);
        for n in &mut near {
            let (a, b) = (
                self.report_of(n.a)
                    .expect("a near pair is of reports in the graph"),
                self.report_of(n.b)
                    .expect("a near pair is of reports in the graph"),
            );
            n.shared = self.shared_values(a, b);
        }
        Grouping {
            threshold,
            links,
            links_total,
            suppressed,
            near,
        }
    }

    /// Earlier campaigns (first seen before this one) that share infrastructure or
    /// techniques with it below the linking threshold, with reasons and a score.
    fn related(&self, slot: u32, members: &[u32], first_seen: DateTime<Utc>) -> Vec<Related> {
        let mut reasons: FxHashMap<u32, Vec<RelatedReason>> = FxHashMap::default();
        let mut techniques_of_mine: BTreeSet<u32> = BTreeSet::new();
        let mut seen_net: FxHashSet<(u8, u128)> = FxHashSet::default();
        let mut seen_o: FxHashSet<u32> = FxHashSet::default();
        let other_slots = |o: u32| -> Vec<u32> {
            let mut slots: Vec<u32> = self
                .postings
                .get(o)
                .iter()
                .take(POSTINGS_MAX)
                .map(|&p| self.camp_of[(p & !CONTAINED) as usize])
                .filter(|&s| s != slot && s != u32::MAX)
                .collect();
            slots.sort_unstable();
            slots.dedup();
            slots
        };
        for &m in members.iter().take(NEAR_REPORTS) {
            for &o in self.reps[m as usize].obs(&self.rep_values).iter() {
                if !seen_o.insert(o) || self.obs[o as usize].listed {
                    continue;
                }
                let value = &self.values[o as usize];
                match value.kind() {
                    ObservableKind::MalwareFamily => {
                        for s in other_slots(o) {
                            reasons
                                .entry(s)
                                .or_default()
                                .push(RelatedReason::MalwareFamily {
                                    name: value.value().to_string(),
                                });
                        }
                    }
                    ObservableKind::AttackTechnique => {
                        techniques_of_mine.insert(o);
                    }
                    ObservableKind::Ipv4 | ObservableKind::Ipv6 => {
                        let Some(ip) = value.ip() else { continue };
                        let (family, key) = ip_key(ip);
                        let bits = if family == 4 { 8 } else { 80 };
                        let lo = (key >> bits) << bits;
                        let hi = lo | ((1u128 << bits) - 1);
                        if !seen_net.insert((family, lo)) {
                            continue;
                        }
                        let network = match ip {
                            IpAddr::V4(_) => {
                                format!("{}/24", std::net::Ipv4Addr::from(lo as u32))
                            }
                            IpAddr::V6(_) => format!("{}/48", std::net::Ipv6Addr::from(lo)),
                        };
                        let mut slots: Vec<u32> = self
                            .ips
                            .range(family, lo, hi)
                            .into_iter()
                            .filter(|&id| !self.obs[id as usize].listed)
                            .flat_map(other_slots)
                            .collect();
                        slots.sort_unstable();
                        slots.dedup();
                        for s in slots {
                            reasons
                                .entry(s)
                                .or_default()
                                .push(RelatedReason::SharedNetwork {
                                    network: network.clone(),
                                });
                        }
                    }
                    _ => {}
                }
            }
        }
        // Registrant pattern: sender or registrant addresses at the same mail domain
        // (the values themselves differ, or they would have linked).
        let domains: BTreeSet<String> = seen_o
            .iter()
            .filter(|&&o| self.values[o as usize].kind() == ObservableKind::Email)
            .filter_map(|&o| {
                let v = self.values[o as usize].value();
                v.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())
            })
            .collect();
        for domain in &domains {
            let Some(holders) = self.mail_domains.get(domain.as_str()) else {
                continue;
            };
            for &e in holders.iter().take(POSTINGS_MAX) {
                if seen_o.contains(&e) || self.obs[e as usize].listed {
                    continue;
                }
                for s in other_slots(e) {
                    let r = RelatedReason::Registrant {
                        domain: domain.clone(),
                    };
                    let list = reasons.entry(s).or_default();
                    if !list.contains(&r) {
                        list.push(r);
                    }
                }
            }
        }
        // Techniques: campaigns naming at least two of ours, by Jaccard similarity.
        if techniques_of_mine.len() >= 2 {
            let mut common: FxHashMap<u32, BTreeSet<u32>> = FxHashMap::default();
            for &t in &techniques_of_mine {
                for s in other_slots(t) {
                    common.entry(s).or_default().insert(t);
                }
            }
            for (s, shared) in common {
                if shared.len() < 2 {
                    continue;
                }
                let theirs = self.techniques_of(s);
                let union = techniques_of_mine.union(&theirs).count().max(1);
                let similarity = shared.len() as f64 / union as f64;
                if similarity >= TECHNIQUES_MIN {
                    reasons
                        .entry(s)
                        .or_default()
                        .push(RelatedReason::Techniques {
                            shared: shared
                                .iter()
                                .map(|&t| self.values[t as usize].value().to_string())
                                .collect(),
                            similarity: (similarity * 100.0).round() / 100.0,
                        });
                }
            }
        }
        let mut out: Vec<Related> = reasons
            .into_iter()
            .filter_map(|(s, reasons)| {
                let camp = &self.camps[s as usize];
                if camp.members.is_empty() || is_advisory_key(camp.id) {
                    return None;
                }
                if camp.first_at > first_seen {
                    return None;
                }
                let score = reasons
                    .iter()
                    .map(|r| match r {
                        RelatedReason::SharedNetwork { .. } => 0.3,
                        RelatedReason::Registrant { .. } => 0.3,
                        RelatedReason::MalwareFamily { .. } => 0.4,
                        RelatedReason::Techniques { similarity, .. } => 0.4 * similarity,
                    })
                    .sum::<f64>()
                    .min(1.0);
                Some(Related {
                    id: camp.id,
                    score: (score * 100.0).round() / 100.0,
                    reasons,
                })
            })
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        out.truncate(RELATED_MAX);
        out
    }

    /// The ATT&CK techniques a campaign's reports name (bounded).
    fn techniques_of(&self, slot: u32) -> BTreeSet<u32> {
        self.camps[slot as usize]
            .members
            .iter()
            .take(NEAR_REPORTS)
            .flat_map(|&m| self.reps[m as usize].obs(&self.rep_values).iter().copied())
            .filter(|&o| self.values[o as usize].kind() == ObservableKind::AttackTechnique)
            .collect()
    }
}
