//! Linking reports through their observables and grouping them into campaigns.
//!
//! Reports and observables form a bipartite graph; two reports are linked when they share
//! an observable of a linking kind. Campaigns are the connected groups of reports, kept in
//! a union–find so that adding a report costs (almost) only the observables it carries.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::ids::{CampaignEvent, IdBook};
use super::{Campaign, CampaignSet, ReportFacts, Source};
use crate::model::{CampaignId, Observable, ObservableKind, Seq};

/// Whether an observable of this kind may link two reports on its own. A CVE or an ATT&CK
/// technique is shared by unrelated attacks, and so is a malware family name.
pub fn links(kind: ObservableKind) -> bool {
    !matches!(
        kind,
        ObservableKind::Cve | ObservableKind::AttackTechnique | ObservableKind::MalwareFamily
    )
}

/// The correlation graph and its campaigns.
#[derive(Debug, Default)]
pub struct Engine {
    reports: Vec<ReportFacts>,
    index_of: HashMap<Seq, u32>,
    /// Observable → reports carrying it.
    postings: HashMap<Observable, Vec<u32>>,
    /// Union–find parent per report.
    parent: Vec<u32>,
    /// Members per root.
    members: HashMap<u32, Vec<u32>>,
    ids: IdBook,
    /// Campaign id per root.
    root_id: HashMap<u32, CampaignId>,
}

impl Engine {
    /// An empty engine that will keep the ids already in `ids`.
    pub fn new(ids: IdBook) -> Engine {
        Engine {
            ids,
            ..Engine::default()
        }
    }

    /// Builds the engine over many reports at once and assigns ids by overlap with the
    /// ids already recorded. Returns the engine and what changed for the store.
    pub fn build(ids: IdBook, reports: Vec<ReportFacts>) -> (Engine, Vec<CampaignEvent>) {
        let mut engine = Engine::new(ids);
        for facts in reports {
            engine.link(facts);
        }
        let groups: Vec<Vec<Seq>> = engine.members.values().map(|m| engine.seqs_of(m)).collect();
        let starts: Vec<DateTime<Utc>> = engine
            .members
            .values()
            .map(|m| engine.first_seen(m))
            .collect();
        let roots: Vec<u32> = engine.members.keys().copied().collect();
        let (assigned, events) = engine.ids.assign(&groups, &starts);
        engine.root_id = roots.into_iter().zip(assigned).collect();
        (engine, events)
    }

    /// Adds one report (the incremental fast path) and returns what changed for the store.
    pub fn add(&mut self, facts: ReportFacts) -> Vec<CampaignEvent> {
        if self.index_of.contains_key(&facts.seq) {
            return Vec::new();
        }
        let root = self.link(facts);
        let members = &self.members[&root];
        let group = self.seqs_of(members);
        let start = self.first_seen(members);
        let (assigned, events) = self.ids.assign_one(&group, start);
        // Roots merged into this one lost their own entries in `members`.
        self.root_id.retain(|r, _| self.members.contains_key(r));
        self.root_id.insert(root, assigned);
        events
    }

    /// The id book, to persist or inspect.
    pub fn ids(&self) -> &IdBook {
        &self.ids
    }

    /// Number of reports in the graph.
    pub fn len(&self) -> usize {
        self.reports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    /// Takes an immutable snapshot of every campaign.
    pub fn snapshot(&self) -> CampaignSet {
        let mut set = CampaignSet::default();
        for (root, members) in &self.members {
            let id = self.root_id[root];
            let mut reports = self.seqs_of(members);
            reports.sort();
            let mut counts: HashMap<&Observable, usize> = HashMap::new();
            let mut sectors = BTreeSet::new();
            let mut last_seen = self.reports[members[0] as usize].at;
            for &m in members {
                let facts = &self.reports[m as usize];
                last_seen = last_seen.max(facts.at);
                if let Source::Member {
                    sector: Some(s), ..
                } = &facts.source
                {
                    sectors.insert(*s);
                }
                for o in &facts.observables {
                    *counts.entry(o).or_default() += 1;
                }
            }
            let mut linking: Vec<Observable> = counts
                .into_iter()
                .filter(|(o, n)| *n >= 2 && links(o.kind()))
                .map(|(o, _)| o.clone())
                .collect();
            linking.sort();
            let index = set.campaigns.len();
            for &seq in &reports {
                set.by_report.insert(seq, index);
            }
            set.by_id.insert(id, index);
            set.campaigns.push(Campaign {
                id,
                reports,
                first_seen: self.first_seen(members),
                last_seen,
                linking,
                sectors,
            });
        }
        set.applied = self.reports.iter().map(|r| r.seq).max().unwrap_or_default();
        set
    }

    fn link(&mut self, facts: ReportFacts) -> u32 {
        let me = self.reports.len() as u32;
        self.index_of.insert(facts.seq, me);
        self.parent.push(me);
        self.members.insert(me, vec![me]);
        let mut root = me;
        for o in &facts.observables {
            let posting = self.postings.entry(o.clone()).or_default();
            if links(o.kind())
                && let Some(&other) = posting.first()
            {
                root = self.union(root, other);
            }
            self.postings.get_mut(o).expect("just inserted").push(me);
        }
        self.reports.push(facts);
        root
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) -> u32 {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return ra;
        }
        let (big, small) = if self.members[&ra].len() >= self.members[&rb].len() {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        let moved = self.members.remove(&small).unwrap_or_default();
        self.members
            .get_mut(&big)
            .expect("root has members")
            .extend(moved);
        big
    }

    fn seqs_of(&self, members: &[u32]) -> Vec<Seq> {
        members
            .iter()
            .map(|&m| self.reports[m as usize].seq)
            .collect()
    }

    fn first_seen(&self, members: &[u32]) -> DateTime<Utc> {
        members
            .iter()
            .map(|&m| self.reports[m as usize].at)
            .min()
            .expect("a group has at least one report")
    }
}
