//! The give-and-take ledger: what each member gave the council against what it received.
//!
//! The council's rule is give and take, with more benefit for active providers. Per member:
//! reports submitted, campaigns contributed to, campaigns it reported first, sightings and
//! feedback answers given — against the campaigns shared with it (campaigns in which it may
//! see another member's report). Computed from stored facts only: reports, campaign
//! assignments, releases, dispositions, sightings and feedback answers.
//!
//! # Who sees what
//! - The secretariat sees every member's row ([`Ledger::compute`]), and the task-force
//!   candidates: active providers not in class 1.
//! - A member sees its own row only ([`Ledger::own_row`]), computed *through its own
//!   visibility*: "first reporter" means first among the submissions it may see, "received"
//!   counts campaigns with another member's report it may see, "shared" means its own report
//!   was released or the campaign's disposition shares. So no figure of a member's row moves
//!   with material it cannot see, and no other member's figure (nor any total over members)
//!   reaches it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::store::db::{Conn, params};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::policy::Viewer;
use crate::model::{CampaignId, Member, MemberClass, MemberId, ReportMeta, Sector, Seq};
use crate::store::{self, members::MemberStatus};

/// Campaigns a member must have contributed to, to count as an active provider.
pub const ACTIVE_CAMPAIGNS: usize = 2;

/// One member's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerRow {
    pub member: MemberId,
    /// The member's name: in the secretariat's ledger only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub class: MemberClass,
    /// The member's sector: in the secretariat's ledger only (a sector can name a member).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector: Option<Sector>,
    /// Membership status: in the secretariat's ledger only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<MemberStatus>,
    pub reports_submitted: usize,
    /// Campaigns holding at least one of its reports.
    pub campaigns_contributed: usize,
    /// Of those, the campaigns in which its report was shared beyond class 1 (released, or
    /// the campaign's disposition shares): "your reports contributed to N campaigns shared
    /// with the council".
    pub contributed_shared: usize,
    /// Campaigns whose first member submission was its report.
    pub first_reporter: usize,
    /// Sightings given on its own initiative (answers to feedback requests are counted
    /// under `feedback_answers`).
    pub sightings: usize,
    pub feedback_answers: usize,
    /// Campaigns shared with it: holding another member's report it may see.
    pub campaigns_received: usize,
}

impl LedgerRow {
    /// An active provider (see [`ACTIVE_CAMPAIGNS`]).
    pub fn active(&self) -> bool {
        self.campaigns_contributed >= ACTIVE_CAMPAIGNS
    }
}

/// The secretariat's ledger: every member's row (ordered by member id) and the task-force
/// candidates (active approved providers not in class 1, most campaigns first).
#[derive(Debug, Clone, Serialize)]
pub struct Ledger {
    pub rows: Vec<LedgerRow>,
    pub task_force_candidates: Vec<MemberId>,
}

/// A member report as the ledger reads it.
struct Submission {
    meta: ReportMeta,
    member: MemberId,
    campaign: Option<CampaignId>,
}

/// What the ledger is computed from, read once (a digest reads it once for all its
/// recipients); rows come from it through [`LedgerBook::ledger`] and [`LedgerBook::own_row`].
pub struct LedgerBook {
    members: Vec<(Member, MemberStatus)>,
    /// Every member report, oldest first (received time, then store order).
    submissions: Vec<Submission>,
    /// Campaigns with a disposition that shares.
    shared_by_disposition: HashSet<CampaignId>,
    sightings: HashMap<MemberId, usize>,
    answers: HashMap<MemberId, usize>,
}

impl LedgerBook {
    /// Reads the facts recorded by `now`.
    pub fn read(conn: &Conn, now: DateTime<Utc>) -> store::Result<LedgerBook> {
        let members = store::members::list_with_status(conn)?;
        let mut stmt = conn.prepare_cached(
            "SELECT r.seq, cr.campaign_id FROM reports r
             LEFT JOIN campaign_reports cr ON cr.seq = r.seq
             WHERE r.origin_kind = 'submission'",
        )?;
        let rows = stmt.query_map(params![], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        let mut campaign_of: HashMap<Seq, CampaignId> = HashMap::new();
        let mut seqs = Vec::new();
        for row in rows {
            let (seq, campaign) = row?;
            let seq = Seq(seq as u64);
            seqs.push(seq);
            if let Some(c) = campaign {
                campaign_of.insert(seq, c.parse().map_err(store::StoreError::Corrupt)?);
            }
        }
        let mut submissions: Vec<Submission> = store::reports::metas(conn, &seqs)?
            .into_iter()
            .filter_map(|meta| match &meta.origin {
                crate::model::Origin::Submission { member } => Some(Submission {
                    member: member.clone(),
                    campaign: campaign_of.get(&meta.id.0).copied(),
                    meta,
                }),
                crate::model::Origin::FeedItem { .. } => None,
            })
            .collect();
        submissions.sort_by_key(|s| (s.meta.received_at, s.meta.id));
        let shared_by_disposition = disposition_shared(conn, now)?;
        let count = |sql: &str| -> store::Result<HashMap<MemberId, usize>> {
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map(params![], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            let mut out = HashMap::new();
            for row in rows {
                let (m, n) = row?;
                out.insert(MemberId(m), n as usize);
            }
            Ok(out)
        };
        Ok(LedgerBook {
            members,
            submissions,
            shared_by_disposition,
            sightings: count(
                "SELECT member_id, count(*) FROM sightings WHERE request_id IS NULL GROUP BY member_id",
            )?,
            answers: count("SELECT member_id, count(*) FROM feedback_answers GROUP BY member_id")?,
        })
    }

    /// One member's row, every figure through `viewer`'s visibility (the secretariat sees
    /// everything, so its rows are the true figures).
    fn row(&self, member: &Member, status: MemberStatus, viewer: &Viewer) -> LedgerRow {
        let mut contributed: BTreeSet<CampaignId> = BTreeSet::new();
        let mut shared: BTreeSet<CampaignId> = BTreeSet::new();
        let mut received: BTreeSet<CampaignId> = BTreeSet::new();
        let mut first: BTreeMap<CampaignId, bool> = BTreeMap::new();
        let mut reports = 0;
        let who = Viewer::of(member);
        for s in &self.submissions {
            let own = s.member == member.id;
            reports += usize::from(own);
            let Some(c) = s.campaign else {
                continue;
            };
            if own {
                contributed.insert(c);
                if s.meta.released || self.shared_by_disposition.contains(&c) {
                    shared.insert(c);
                }
            } else if who.may_see(&s.meta) {
                received.insert(c);
            }
            // The first submission of the campaign the viewer may see (oldest first).
            if viewer.may_see(&s.meta) {
                first.entry(c).or_insert(own);
            }
        }
        LedgerRow {
            member: member.id.clone(),
            name: None,
            class: member.class,
            sector: None,
            status: None,
            reports_submitted: reports,
            campaigns_contributed: contributed.len(),
            contributed_shared: shared.len(),
            first_reporter: first.values().filter(|f| **f).count(),
            sightings: self.sightings.get(&member.id).copied().unwrap_or(0),
            feedback_answers: self.answers.get(&member.id).copied().unwrap_or(0),
            campaigns_received: if status == MemberStatus::Approved {
                received.len()
            } else {
                // Suspended, expelled and applying members receive nothing.
                0
            },
        }
    }
}

/// The campaigns with a disposition that shares, recorded by `now`.
fn disposition_shared(conn: &Conn, now: DateTime<Utc>) -> store::Result<HashSet<CampaignId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT campaign_id FROM dispositions
         WHERE disposition IN ('shared-public', 'shared-limited') AND at <= ?1",
    )?;
    let rows = stmt.query_map(params![store::ts_string(now)], |r| r.get::<_, String>(0))?;
    let mut out = HashSet::new();
    for row in rows {
        out.insert(row?.parse().map_err(store::StoreError::Corrupt)?);
    }
    Ok(out)
}

impl LedgerBook {
    /// Every member's row (the secretariat's analysts themselves excluded) with names,
    /// sectors and status, and the task-force candidates: the secretariat's ledger.
    pub fn ledger(&self) -> Ledger {
        let sees_all = Viewer::member(MemberId(String::new()), MemberClass::Secretariat);
        let mut rows: Vec<LedgerRow> = self
            .members
            .iter()
            .filter(|(m, _)| !m.is_secretariat())
            .map(|(m, status)| {
                let mut row = self.row(m, *status, &sees_all);
                row.name = Some(m.name.clone());
                row.sector = m.sector;
                row.status = Some(*status);
                row
            })
            .collect();
        rows.sort_by(|a, b| a.member.cmp(&b.member));
        let mut candidates: Vec<&LedgerRow> = rows
            .iter()
            .filter(|r| {
                r.active()
                    && r.status == Some(MemberStatus::Approved)
                    && matches!(r.class, MemberClass::Class2 | MemberClass::General)
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.campaigns_contributed
                .cmp(&a.campaigns_contributed)
                .then(b.first_reporter.cmp(&a.first_reporter))
                .then(a.member.cmp(&b.member))
        });
        let task_force_candidates = candidates.iter().map(|r| r.member.clone()).collect();
        Ledger {
            rows,
            task_force_candidates,
        }
    }

    /// The viewer's own row, through its own visibility; `None` for anyone who is not a
    /// member of the council (an audience, an unknown id, the secretariat's analysts).
    pub fn own_row(&self, viewer: &Viewer) -> Option<LedgerRow> {
        let me = viewer.member_id()?;
        if viewer.is_secretariat() {
            return None;
        }
        self.members
            .iter()
            .find(|(m, _)| &m.id == me)
            .map(|(m, status)| self.row(m, *status, viewer))
    }
}

/// The give-and-take figures, in the order of both CSV forms.
const FIGURES: [&str; 7] = [
    "reports_submitted",
    "campaigns_contributed",
    "contributed_shared",
    "first_reporter",
    "sightings",
    "feedback_answers",
    "campaigns_received",
];

impl LedgerRow {
    /// The values of [`FIGURES`] for this row.
    fn figures(&self) -> [String; 7] {
        [
            self.reports_submitted.to_string(),
            self.campaigns_contributed.to_string(),
            self.contributed_shared.to_string(),
            self.first_reporter.to_string(),
            self.sightings.to_string(),
            self.feedback_answers.to_string(),
            self.campaigns_received.to_string(),
        ]
    }
}

/// Writes a header and rows to CSV text.
fn csv_text(header: Vec<&str>, rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(header);
    for r in rows {
        let _ = w.write_record(r);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

impl Ledger {
    /// The secretariat's ledger as CSV: one line per member.
    pub fn to_csv(&self) -> String {
        let candidates: HashSet<&MemberId> = self.task_force_candidates.iter().collect();
        let mut header = vec!["member", "name", "class", "sector", "status"];
        header.extend(FIGURES);
        header.push("task_force_candidate");
        csv_text(
            header,
            self.rows.iter().map(|r| {
                let mut line = vec![
                    r.member.0.clone(),
                    r.name.clone().unwrap_or_default(),
                    r.class.as_str().to_string(),
                    r.sector.map(|s| s.as_str().to_string()).unwrap_or_default(),
                    r.status.map(|s| s.as_str().to_string()).unwrap_or_default(),
                ];
                line.extend(r.figures());
                line.push(candidates.contains(&r.member).to_string());
                line
            }),
        )
    }
}

/// A member's own row as CSV (header and one line).
pub fn own_csv(row: &LedgerRow) -> String {
    let mut header = vec!["member", "class"];
    header.extend(FIGURES);
    let mut line = vec![row.member.0.clone(), row.class.as_str().to_string()];
    line.extend(row.figures());
    csv_text(header, [line])
}
