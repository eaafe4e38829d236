//! Which campaigns deserve an immediate alert: a council decision over two campaign
//! snapshots (the sectors it compares are secretariat-only evidence), so it lives beside the
//! read path; the mail outputs only coalesce, render and send for each recipient's view.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use super::ReadPath;
use crate::correlate::CampaignSet;
use crate::model::{CampaignId, FlagKind, Sector};

/// Why a campaign is alerted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// The campaign gained a flag that alerts ([`FlagKind::alerts`]).
    Flag { flag: FlagKind },
    /// The campaign gained reports from sectors it had none from (the sectors are
    /// secretariat-only evidence: members are told only that it spread).
    NewSectors {
        #[serde(skip)]
        sectors: BTreeSet<Sector>,
    },
}

/// One campaign's reason to alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub campaign: CampaignId,
    pub reason: Reason,
}

/// What changed between two snapshots that deserves an alert. A campaign's "before" is
/// what its reports belonged to before, so merges and new campaigns are handled alike.
fn triggers(before: &CampaignSet, after: &CampaignSet) -> Vec<Trigger> {
    let mut out = Vec::new();
    for c in &after.campaigns {
        let mut prev_flags = BTreeSet::new();
        let mut prev_sectors = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for &seq in &c.reports {
            if let Some(&i) = before.by_report.get(&seq)
                && seen.insert(i)
                && let Some(p) = before.get(i)
            {
                prev_flags.extend(p.flag_kinds());
                prev_sectors.extend(p.sectors.iter().copied());
            }
        }
        for f in c.flag_kinds() {
            if f.alerts() && !prev_flags.contains(&f) {
                out.push(Trigger {
                    campaign: c.id,
                    reason: Reason::Flag { flag: f },
                });
            }
        }
        let gained: BTreeSet<Sector> = c.sectors.difference(&prev_sectors).copied().collect();
        if !gained.is_empty() && c.sectors.len() >= 2 {
            out.push(Trigger {
                campaign: c.id,
                reason: Reason::NewSectors { sectors: gained },
            });
        }
    }
    out
}

/// The correlator's snapshots as alert triggers: each change yields what it raised.
pub struct AlertWatch {
    campaigns: watch::Receiver<Arc<CampaignSet>>,
    before: Arc<CampaignSet>,
}

impl AlertWatch {
    /// The triggers of the next change of the campaigns; `None` once the correlator is gone.
    pub async fn next(&mut self) -> Option<Vec<Trigger>> {
        self.campaigns.changed().await.ok()?;
        let after = self.campaigns.borrow_and_update().clone();
        let t = triggers(&self.before, &after);
        self.before = after;
        Some(t)
    }
}

impl ReadPath {
    /// Alert triggers from now on (changes already seen raise nothing).
    pub fn alert_watch(&self) -> AlertWatch {
        let mut campaigns = self.campaigns.clone();
        let before = campaigns.borrow_and_update().clone();
        AlertWatch { campaigns, before }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::correlate::Campaign;
    use crate::model::Seq;

    fn set(campaigns: Vec<(u32, Vec<u64>, Vec<Sector>)>) -> CampaignSet {
        let mut s = CampaignSet::default();
        for (n, reports, sectors) in campaigns {
            let id = CampaignId {
                year: 2026,
                number: n,
            };
            let i = s.campaigns.len();
            for &r in &reports {
                s.by_report.insert(Seq(r), id);
            }
            s.by_id.insert(id, i);
            s.campaigns.push(std::sync::Arc::new(Campaign {
                id,
                reports: reports.into_iter().map(Seq).collect(),
                first_seen: Utc::now(),
                last_seen: Utc::now(),
                linking: Vec::new(),
                sectors: sectors.into_iter().collect(),
                flags: Vec::new(),
            }));
        }
        s
    }

    #[test]
    fn a_new_sector_triggers_once() {
        let a = set(vec![(1, vec![1, 2], vec![Sector::Telecom])]);
        let b = set(vec![(
            1,
            vec![1, 2, 3],
            vec![Sector::Telecom, Sector::Finance],
        )]);
        let t = triggers(&a, &b);
        assert_eq!(t.len(), 1);
        assert_eq!(
            t[0].reason,
            Reason::NewSectors {
                sectors: [Sector::Finance].into()
            }
        );
        // Nothing new since: no trigger.
        assert!(triggers(&b, &b).is_empty());
        // A single-sector campaign growing is no alert.
        let c = set(vec![(1, vec![1, 2, 3, 4], vec![Sector::Telecom])]);
        assert!(triggers(&a, &c).is_empty());
    }

    #[test]
    fn merges_compare_with_the_parts() {
        let a = set(vec![
            (1, vec![1], vec![Sector::Telecom]),
            (2, vec![2], vec![Sector::Finance]),
        ]);
        // Merged: both sectors existed before, but in different campaigns; the merged
        // campaign gained none relative to the union of its parts.
        let b = set(vec![(
            1,
            vec![1, 2],
            vec![Sector::Telecom, Sector::Finance],
        )]);
        assert!(triggers(&a, &b).is_empty());
        // A brand-new campaign spanning two sectors triggers.
        let c = set(vec![(3, vec![7, 8], vec![Sector::Water, Sector::Gas])]);
        assert_eq!(triggers(&CampaignSet::default(), &c).len(), 1);
    }
}
