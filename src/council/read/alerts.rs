//! Which campaigns deserve an immediate alert: a council decision over the state already
//! announced (kept in the store, `store::alerts`) and the latest campaign snapshot (the
//! sectors it compares are secretariat-only evidence), so it lives beside the read path; the
//! mail outputs only coalesce, render and send for each recipient's view.
//!
//! The leader records each pass ([`AlertWatch::record`]): the triggers go to the store's
//! outbox and the announced state moves, in one transaction. Since the comparison is with
//! the stored state and not with the leader's previous snapshot, a new leader after a
//! failover raises exactly what its predecessor had not, including changes made while no
//! node led. A store where nothing was ever recorded is seeded silently (no mail storm on
//! an upgrade).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

use super::ReadPath;
use crate::correlate::CampaignSet;
use crate::model::{CampaignId, FlagKind, Sector};
use crate::store::alerts::{
    self, Announced, AnnouncedChange, Announcement, OutboxEntry, OutboxRow, Recorded,
};
use crate::store::{Result, Store, StoreError};

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

impl Reason {
    /// The reason as the outbox keeps it: `flag:<name>` or `sectors:<a>,<b>`.
    fn stored(&self) -> String {
        match self {
            Reason::Flag { flag } => format!("flag:{}", flag.as_str()),
            Reason::NewSectors { sectors } => format!(
                "sectors:{}",
                sectors
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    fn parse_stored(s: &str) -> Result<Reason> {
        let bad = |e: String| StoreError::Corrupt(format!("alert_outbox reason {s:?}: {e}"));
        match s.split_once(':') {
            Some(("flag", f)) => Ok(Reason::Flag {
                flag: f.parse::<FlagKind>().map_err(|e| bad(e.to_string()))?,
            }),
            Some(("sectors", list)) => Ok(Reason::NewSectors {
                sectors: list
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .map(|x| x.parse::<Sector>().map_err(|e| bad(e.to_string())))
                    .collect::<Result<_>>()?,
            }),
            _ => Err(bad("unknown kind".into())),
        }
    }
}

/// One campaign's reason to alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub campaign: CampaignId,
    pub reason: Reason,
}

/// A batch to send: campaigns and their reasons.
pub type Batch = Vec<(CampaignId, Vec<Reason>)>;

/// What a snapshot raises against what was announced, and the change that makes the
/// announced state that of the snapshot. A campaign's "before" is what was announced of the
/// campaigns its reports belonged to, so merges and new campaigns are handled alike.
pub fn derive(announced: &Announced, now: &CampaignSet) -> (Vec<Trigger>, AnnouncedChange) {
    let mut out = Vec::new();
    let mut change = AnnouncedChange {
        through: now.applied,
        ..AnnouncedChange::default()
    };
    for c in &now.campaigns {
        let mut prev = Announcement::default();
        let mut seen = BTreeSet::new();
        for seq in &c.reports {
            if let Some(id) = announced.reports.get(seq)
                && seen.insert(*id)
                && let Some(p) = announced.campaigns.get(id)
            {
                prev.flags.extend(p.flags.iter().copied());
                prev.sectors.extend(p.sectors.iter().copied());
            }
            if announced.reports.get(seq) != Some(&c.id) {
                change.reports.push((*seq, c.id));
            }
        }
        let state = Announcement {
            flags: c.flag_kinds().into_iter().filter(|f| f.alerts()).collect(),
            sectors: c.sectors.clone(),
        };
        for f in c.flag_kinds() {
            if f.alerts() && !prev.flags.contains(&f) {
                out.push(Trigger {
                    campaign: c.id,
                    reason: Reason::Flag { flag: f },
                });
            }
        }
        let gained: BTreeSet<Sector> = c.sectors.difference(&prev.sectors).copied().collect();
        if !gained.is_empty() && c.sectors.len() >= 2 {
            out.push(Trigger {
                campaign: c.id,
                reason: Reason::NewSectors { sectors: gained },
            });
        }
        if announced.campaigns.get(&c.id) != Some(&state) {
            change.campaigns.push((c.id, state));
        }
    }
    change.gone_campaigns = announced
        .campaigns
        .keys()
        .filter(|id| !now.by_id.contains_key(id))
        .copied()
        .collect();
    change.gone_campaigns.sort();
    change.gone_reports = announced
        .reports
        .keys()
        .filter(|seq| !now.by_report.contains_key(seq))
        .copied()
        .collect();
    change.gone_reports.sort();
    (out, change)
}

/// The triggers of a batch gathered per campaign: a campaign's sectors gained in several
/// steps read as one reason.
pub fn gather(rows: &[(CampaignId, Reason)]) -> Batch {
    let mut per: BTreeMap<CampaignId, BTreeSet<Reason>> = BTreeMap::new();
    for (id, reason) in rows {
        let reasons = per.entry(*id).or_default();
        if let Reason::NewSectors { sectors } = reason
            && let Some(Reason::NewSectors { sectors: old }) = reasons
                .iter()
                .find(|r| matches!(r, Reason::NewSectors { .. }))
                .cloned()
        {
            reasons.remove(&Reason::NewSectors {
                sectors: old.clone(),
            });
            let mut all = old;
            all.extend(sectors.iter().copied());
            reasons.insert(Reason::NewSectors { sectors: all });
            continue;
        }
        reasons.insert(reason.clone());
    }
    per.into_iter()
        .map(|(id, r)| (id, r.into_iter().collect()))
        .collect()
}

/// What one [`AlertWatch::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertPass {
    /// Nothing was ever recorded: the state was recorded, nothing raised.
    Seeded,
    /// The triggers appended to the outbox (none when only the state moved).
    Recorded { triggers: usize },
    /// This snapshot was recorded already, or changes nothing.
    Unchanged,
    /// The snapshot is behind what was recorded (this node's correlator is catching up).
    Behind,
    /// Another node recorded meanwhile: the state is read again next time.
    Superseded,
}

/// The leader's alert recorder over the correlator's snapshots.
pub struct AlertWatch {
    store: Store,
    campaigns: watch::Receiver<Arc<CampaignSet>>,
    /// The stored state as this node last read or wrote it (None: read it).
    announced: Option<Announced>,
    /// The snapshot last recorded.
    recorded: Option<Arc<CampaignSet>>,
}

impl AlertWatch {
    /// Waits for the next snapshot; false once the correlator is gone.
    pub async fn changed(&mut self) -> bool {
        self.campaigns.changed().await.is_ok()
    }

    /// Compares the latest snapshot with the announced state and records the triggers and
    /// the new state in one store transaction.
    pub async fn record(&mut self, at: DateTime<Utc>) -> Result<AlertPass> {
        let now = self.campaigns.borrow_and_update().clone();
        if self.recorded.as_ref().is_some_and(|r| Arc::ptr_eq(r, &now)) {
            return Ok(AlertPass::Unchanged);
        }
        let announced = match self.announced.take() {
            Some(a) => a,
            None => self.store.read_async(alerts::announced).await?,
        };
        if now.applied < announced.through {
            self.announced = Some(announced);
            return Ok(AlertPass::Behind);
        }
        let seed = announced.version.is_none();
        let (triggers, change) = derive(&announced, &now);
        let entries: Vec<OutboxEntry> = if seed {
            Vec::new()
        } else {
            triggers
                .iter()
                .map(|t| OutboxEntry {
                    campaign: t.campaign,
                    reason: t.reason.stored(),
                })
                .collect()
        };
        if !seed && entries.is_empty() && change.is_empty() {
            self.announced = Some(announced);
            self.recorded = Some(now);
            return Ok(AlertPass::Unchanged);
        }
        let n = entries.len();
        let op = crate::council::commands::record_alert_pass(
            announced.version,
            change.clone(),
            entries,
            at,
        );
        // On an error the state is read again next time (the write may or may not be in).
        match self.store.writer().run(op).await? {
            Recorded::Done { version } => {
                let mut a = announced;
                a.apply(&change, version);
                self.announced = Some(a);
                self.recorded = Some(now);
                if seed {
                    tracing::info!(
                        campaigns = change.campaigns.len(),
                        "Alert state recorded for the first time; nothing alerted for what already existed."
                    );
                    Ok(AlertPass::Seeded)
                } else {
                    Ok(AlertPass::Recorded { triggers: n })
                }
            }
            Recorded::Superseded => Ok(AlertPass::Superseded),
        }
    }
}

/// A batch claimed from the outbox and not done yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedAlerts {
    /// The batch id (its Message-IDs and delivery rows are made from it).
    pub batch: String,
    pub claimed_at: DateTime<Utc>,
    pub campaigns: Batch,
}

/// The outbox as the sender needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertOutbox {
    /// A claimed batch not done (resumed before anything else).
    pub open: Option<ClaimedAlerts>,
    /// The triggers not yet in a batch.
    pub pending: Option<alerts::Pending>,
    /// When the last batch was claimed.
    pub last_claimed: Option<DateTime<Utc>>,
}

fn gather_rows(rows: &[OutboxRow]) -> Result<Batch> {
    let parsed = rows
        .iter()
        .map(|r| Ok((r.campaign, Reason::parse_stored(&r.reason)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(gather(&parsed))
}

impl ReadPath {
    /// The leader's alert recorder from the latest snapshot on.
    pub fn alert_watch(&self) -> AlertWatch {
        AlertWatch {
            store: self.store.clone(),
            campaigns: self.campaigns.clone(),
            announced: None,
            recorded: None,
        }
    }

    /// The alert outbox: the open batch with its campaigns and reasons, the pending
    /// triggers, the last claim.
    pub async fn alert_outbox(&self) -> Result<AlertOutbox> {
        let o = self.read(alerts::outbox).await?;
        let open = match o.open {
            Some(b) => Some(ClaimedAlerts {
                campaigns: gather_rows(&b.rows)?,
                batch: b.batch,
                claimed_at: b.claimed_at,
            }),
            None => None,
        };
        Ok(AlertOutbox {
            open,
            pending: o.pending,
            last_claimed: o.last_claimed,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::correlate::Campaign;
    use crate::model::Seq;

    /// The state `set` would leave recorded.
    fn announced_of(set: &CampaignSet) -> Announced {
        let mut a = Announced::default();
        let (_, change) = derive(&a, set);
        a.apply(&change, 1);
        a
    }

    fn triggers(before: &CampaignSet, after: &CampaignSet) -> Vec<Trigger> {
        derive(&announced_of(before), after).0
    }

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
                reports: reports.into_iter().map(Seq).collect::<Vec<_>>().into(),
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
