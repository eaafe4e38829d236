//! Stable campaign ids.
//!
//! A campaign id is given once and kept: when groups change (a new report joins two
//! campaigns, rules change and a campaign splits), each new group takes the old id with which
//! it shares the most reports; ties go to the older id. Each old id goes to at most one group;
//! a group with no old id gets a new number in the year of its first report.
//!
//! Only attack activities (groups with a member report) take campaign numbers, so that the
//! `C-` numbers the council reads run without gaps. Feed-only groups (advisories) are keyed
//! from a separate range ([`ADVISORY_BASE`] and up) that no reader ever shows; a group that
//! turns into a campaign (a member report joins it) is given a campaign number then.

use std::collections::{BTreeMap, HashMap};

pub use crate::model::CampaignEvent;
use crate::model::{CampaignId, Seq};
use chrono::{DateTime, Datelike, Utc};

/// First number of the engine's private keys for advisories (feed-only groups): far above
/// any campaign number a council reaches, so the two ranges never meet.
pub const ADVISORY_BASE: u32 = 1_000_000_000;

/// Whether `id` is an advisory's private key rather than a campaign id.
pub fn is_advisory_key(id: CampaignId) -> bool {
    id.number >= ADVISORY_BASE
}

/// The campaign id of every report, and the next free number per year (campaigns and
/// advisory keys counted apart).
#[derive(Debug, Clone, Default)]
pub struct IdBook {
    by_report: HashMap<Seq, CampaignId>,
    next: BTreeMap<u16, u32>,
    next_advisory: BTreeMap<u16, u32>,
}

impl IdBook {
    /// Rebuilds the book from recorded assignments.
    pub fn from_assignments(assignments: impl IntoIterator<Item = (Seq, CampaignId)>) -> IdBook {
        let mut book = IdBook::default();
        for (seq, id) in assignments {
            book.by_report.insert(seq, id);
            book.reserve(id);
        }
        book
    }

    /// Marks an id as used (also ids that no longer hold reports after a merge).
    pub fn reserve(&mut self, id: CampaignId) {
        let (book, first) = if is_advisory_key(id) {
            (&mut self.next_advisory, ADVISORY_BASE)
        } else {
            (&mut self.next, 1)
        };
        let next = book.entry(id.year).or_insert(first);
        *next = (*next).max(id.number.saturating_add(1));
    }

    pub fn of(&self, seq: Seq) -> Option<CampaignId> {
        self.by_report.get(&seq).copied()
    }

    pub fn len(&self) -> usize {
        self.by_report.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_report.is_empty()
    }

    /// Assigns ids to one changed group.
    pub fn assign_one(
        &mut self,
        group: &[Seq],
        first_seen: DateTime<Utc>,
    ) -> (CampaignId, Vec<CampaignEvent>) {
        let (ids, events) = self.assign(&[group.to_vec()], &[first_seen], &[true]);
        (ids[0], events)
    }

    /// Assigns ids to `groups` (each with the time of its first report and whether it is an
    /// attack activity) by overlap. A campaign only takes a campaign id and an advisory only
    /// an advisory key, so that advisories never hold (and hide) a campaign number.
    pub fn assign(
        &mut self,
        groups: &[Vec<Seq>],
        first_seen: &[DateTime<Utc>],
        is_campaign: &[bool],
    ) -> (Vec<CampaignId>, Vec<CampaignEvent>) {
        // Overlap of each group with each old id.
        let mut candidates: Vec<(usize, usize, CampaignId)> = Vec::new();
        let mut old_homes: HashMap<CampaignId, usize> = HashMap::new();
        let mut old_of_group: Vec<Vec<CampaignId>> = Vec::with_capacity(groups.len());
        for (g, group) in groups.iter().enumerate() {
            let mut overlap: HashMap<CampaignId, usize> = HashMap::new();
            for seq in group {
                if let Some(id) = self.by_report.get(seq) {
                    *overlap.entry(*id).or_default() += 1;
                }
            }
            let mut olds: Vec<CampaignId> = overlap.keys().copied().collect();
            olds.sort();
            for (&id, &n) in &overlap {
                if is_advisory_key(id) == is_campaign[g] {
                    // Still counted as a home: a campaign that swallowed an advisory
                    // "merged" it, one that took part of it "split" it.
                    *old_homes.entry(id).or_default() += 1;
                    continue;
                }
                candidates.push((n, g, id));
                *old_homes.entry(id).or_default() += 1;
            }
            old_of_group.push(olds);
        }
        // Largest overlap first; ties to the older id, then the earlier group.
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)).then(a.1.cmp(&b.1)));
        let mut chosen: Vec<Option<CampaignId>> = vec![None; groups.len()];
        let mut taken: std::collections::HashSet<CampaignId> = Default::default();
        for (_, g, id) in candidates {
            if chosen[g].is_none() && !taken.contains(&id) {
                chosen[g] = Some(id);
                taken.insert(id);
            }
        }
        let mut events = Vec::new();
        let mut ids = Vec::with_capacity(groups.len());
        for (g, group) in groups.iter().enumerate() {
            let id = match chosen[g] {
                Some(id) => id,
                None => {
                    let id = if is_campaign[g] {
                        self.allocate(first_seen[g])
                    } else {
                        self.allocate_advisory(first_seen[g])
                    };
                    events.push(CampaignEvent::Created { id });
                    id
                }
            };
            // An old id whose reports all landed here was merged; one whose reports
            // are spread over several groups was split.
            let mut from = Vec::new();
            for &old in &old_of_group[g] {
                if old == id {
                    continue;
                }
                if old_homes.get(&old).copied().unwrap_or(0) > 1 {
                    events.push(CampaignEvent::Split {
                        from: old,
                        into: id,
                    });
                } else {
                    from.push(old);
                }
            }
            if !from.is_empty() {
                events.push(CampaignEvent::Merged { into: id, from });
            }
            let changed: Vec<Seq> = group
                .iter()
                .copied()
                .filter(|s| self.by_report.get(s) != Some(&id))
                .collect();
            for &seq in &changed {
                self.by_report.insert(seq, id);
            }
            if !changed.is_empty() {
                events.push(CampaignEvent::Assigned {
                    id,
                    reports: changed,
                });
            }
            ids.push(id);
        }
        (ids, events)
    }

    /// Records that `seq` now belongs to `id` (the engine's fast paths, which know the
    /// answer without an overlap count).
    pub(crate) fn set(&mut self, seq: Seq, id: CampaignId) {
        self.by_report.insert(seq, id);
    }

    /// Seqs recorded under `id` (a full scan: for pins, not for hot paths).
    pub fn reports_of(&self, id: CampaignId) -> Vec<Seq> {
        let mut out: Vec<Seq> = self
            .by_report
            .iter()
            .filter(|(_, v)| **v == id)
            .map(|(s, _)| *s)
            .collect();
        out.sort();
        out
    }

    /// A new campaign number in the year of `first_seen`.
    pub(crate) fn allocate(&mut self, first_seen: DateTime<Utc>) -> CampaignId {
        let year = first_seen.year().clamp(0, 9999) as u16;
        let next = self.next.entry(year).or_insert(1);
        let id = CampaignId {
            year,
            number: *next,
        };
        *next += 1;
        id
    }

    /// A new private advisory key (never a campaign number).
    pub(crate) fn allocate_advisory(&mut self, first_seen: DateTime<Utc>) -> CampaignId {
        let year = first_seen.year().clamp(0, 9999) as u16;
        let next = self.next_advisory.entry(year).or_insert(ADVISORY_BASE);
        let id = CampaignId {
            year,
            number: *next,
        };
        *next += 1;
        id
    }

    /// Allocates for a new group: a campaign number if it is an attack activity, an
    /// advisory key otherwise.
    pub(crate) fn allocate_for(&mut self, first_seen: DateTime<Utc>, campaign: bool) -> CampaignId {
        if campaign {
            self.allocate(first_seen)
        } else {
            self.allocate_advisory(first_seen)
        }
    }
}
