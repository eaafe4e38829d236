//! The analysts' review: a queue of flagged campaigns, dispositions with full history, and
//! manual merge and split requests ("pins") that the correlation engine must respect.
//!
//! Every decision is also written to the audit log, in the same transaction.

use std::collections::HashMap;

use crate::store::db::{Conn, OptionalExtension, params};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::audit::{self, action};
use crate::model::{CampaignId, Disposition, FlagKind, Seq};
use crate::store::{self, StoreError};

/// A campaign's priority in the queue: lower comes first.
///
/// Each kind's rank is a column of the flag table ([`FlagKind::review_rank`]); today:
/// 0. cross-sector and novel: spreading across sectors and seen nowhere public — the
///    council's reason to exist (a rank-1 and a rank-2 flag together);
/// 1. cross-sector; 2. novel; 3. surge; 4. any other flag;
/// 5. only `known` and/or `stale` flags (or none): likely low need, reviewed last.
pub fn priority(flags: &[FlagKind]) -> u8 {
    let has = |rank: u8| flags.iter().any(|f| f.review_rank() == rank);
    if has(1) && has(2) {
        return 0;
    }
    flags.iter().map(|f| f.review_rank()).min().unwrap_or(5)
}

/// One entry of the review queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueEntry {
    pub campaign: CampaignId,
    pub flags: Vec<FlagKind>,
    pub last_seen: DateTime<Utc>,
    pub priority: u8,
    /// The current disposition, if any (an `under-analysis` campaign stays in the queue).
    pub disposition: Option<Disposition>,
}

/// Orders flagged campaigns: by [`priority`], then most recent activity first, then id.
/// Campaigns without flags are not in the queue.
pub fn order(items: &[(CampaignId, Vec<FlagKind>, DateTime<Utc>)]) -> Vec<QueueEntry> {
    let mut out: Vec<QueueEntry> = items
        .iter()
        .filter(|(_, flags, _)| !flags.is_empty())
        .map(|(id, flags, last_seen)| QueueEntry {
            campaign: *id,
            flags: flags.clone(),
            last_seen: *last_seen,
            priority: priority(flags),
            disposition: None,
        })
        .collect();
    out.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.campaign.cmp(&b.campaign))
    });
    out
}

/// The review queue: [`order`], leaving out campaigns already decided (other than
/// `under-analysis`) unless they have seen activity since the decision.
pub fn queue(
    conn: &Conn,
    items: &[(CampaignId, Vec<FlagKind>, DateTime<Utc>)],
) -> store::Result<Vec<QueueEntry>> {
    let current = current_all(conn)?;
    Ok(order(items)
        .into_iter()
        .filter_map(|mut e| {
            if let Some(d) = current.get(&e.campaign) {
                e.disposition = Some(d.disposition);
                if d.disposition != Disposition::UnderAnalysis && e.last_seen <= d.at {
                    return None;
                }
            }
            Some(e)
        })
        .collect())
}

/// One recorded disposition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DispositionRecord {
    pub id: i64,
    pub campaign: CampaignId,
    pub disposition: Disposition,
    pub note: String,
    pub analyst: String,
    pub at: DateTime<Utc>,
}

/// Records a disposition (the newest one is the campaign's current disposition) and audits it.
pub fn decide(
    conn: &Conn,
    campaign: CampaignId,
    disposition: Disposition,
    note: &str,
    analyst: &str,
    at: DateTime<Utc>,
) -> store::Result<i64> {
    if analyst.trim().is_empty() {
        return Err(StoreError::Conflict(
            "a disposition needs the analyst's name".into(),
        ));
    }
    let id: i64 = conn.query_row(
        "INSERT INTO dispositions (campaign_id, disposition, note, analyst, at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        params![campaign.to_string(), disposition.as_str(), note, analyst, store::ts_string(at)],
        |r| r.get(0),
    )?;
    audit::record(
        conn,
        at,
        analyst,
        action::DECIDE,
        &campaign.to_string(),
        disposition.as_str(),
    )?;
    Ok(id)
}

type RawDisposition = (i64, String, String, String, String, String);

fn raw(r: &crate::store::db::Row<'_>) -> crate::store::db::Result<RawDisposition> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn decode(raw: RawDisposition) -> store::Result<DispositionRecord> {
    let (id, campaign, disposition, note, analyst, at) = raw;
    let bad = |e: String| StoreError::Corrupt(format!("disposition {id}: {e}"));
    Ok(DispositionRecord {
        id,
        campaign: campaign.parse().map_err(bad)?,
        disposition: disposition.parse().map_err(bad)?,
        note,
        analyst,
        at: store::parse_ts_string(&at)?,
    })
}

const SELECT: &str = "SELECT id, campaign_id, disposition, note, analyst, at FROM dispositions";

/// Every disposition of the campaign, oldest first.
pub fn history(conn: &Conn, campaign: CampaignId) -> store::Result<Vec<DispositionRecord>> {
    let mut stmt =
        conn.prepare_cached(&format!("{SELECT} WHERE campaign_id = ?1 ORDER BY at, id"))?;
    let rows = stmt.query_map(params![campaign.to_string()], raw)?;
    rows.map(|r| decode(r?)).collect()
}

/// The campaign's current disposition.
pub fn current(conn: &Conn, campaign: CampaignId) -> store::Result<Option<DispositionRecord>> {
    let r = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE campaign_id = ?1 ORDER BY at DESC, id DESC LIMIT 1"
        ))?
        .query_row(params![campaign.to_string()], raw)
        .optional()?;
    r.map(decode).transpose()
}

/// The current disposition of every campaign decided at or before `as_of` (all if `None`).
pub fn current_all_as_of(
    conn: &Conn,
    as_of: Option<DateTime<Utc>>,
) -> store::Result<HashMap<CampaignId, DispositionRecord>> {
    let limit = as_of.map(store::ts_string).unwrap_or_else(|| "9999".into());
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE at <= ?1 ORDER BY at, id"))?;
    let rows = stmt.query_map(params![limit], raw)?;
    let mut out = HashMap::new();
    for r in rows {
        let d = decode(r?)?;
        out.insert(d.campaign, d);
    }
    Ok(out)
}

/// The current disposition of every decided campaign.
pub fn current_all(conn: &Conn) -> store::Result<HashMap<CampaignId, DispositionRecord>> {
    current_all_as_of(conn, None)
}

pub use crate::store::pins::{Pin, PinKind};

/// Records a merge request and audits it.
pub fn pin_merge(
    conn: &Conn,
    a: CampaignId,
    b: CampaignId,
    note: &str,
    analyst: &str,
    at: DateTime<Utc>,
) -> store::Result<i64> {
    if a == b {
        return Err(StoreError::Conflict(format!(
            "cannot merge {a} with itself"
        )));
    }
    let id: i64 = conn.query_row(
        "INSERT INTO pins (kind, campaign_a, campaign_b, note, analyst, at) VALUES ('merge', ?1, ?2, ?3, ?4, ?5) RETURNING id",
        params![a.to_string(), b.to_string(), note, analyst, store::ts_string(at)],
        |r| r.get(0),
    )?;
    audit::record(
        conn,
        at,
        analyst,
        action::PIN_MERGE,
        &a.to_string(),
        &b.to_string(),
    )?;
    Ok(id)
}

/// Records a split request and audits it.
pub fn pin_split(
    conn: &Conn,
    campaign: CampaignId,
    reports: &[Seq],
    note: &str,
    analyst: &str,
    at: DateTime<Utc>,
) -> store::Result<i64> {
    if reports.is_empty() {
        return Err(StoreError::Conflict(format!(
            "a split of {campaign} needs at least one report"
        )));
    }
    let list: Vec<u64> = reports.iter().map(|s| s.0).collect();
    let json = serde_json::to_string(&list).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let id: i64 = conn.query_row(
        "INSERT INTO pins (kind, campaign_a, reports, note, analyst, at) VALUES ('split', ?1, ?2, ?3, ?4, ?5) RETURNING id",
        params![campaign.to_string(), json, note, analyst, store::ts_string(at)],
        |r| r.get(0),
    )?;
    audit::record(
        conn,
        at,
        analyst,
        action::PIN_SPLIT,
        &campaign.to_string(),
        &json,
    )?;
    Ok(id)
}

/// Withdraws a pin (it stays in the history).
pub fn withdraw_pin(conn: &Conn, id: i64, analyst: &str, at: DateTime<Utc>) -> store::Result<()> {
    let n = conn.execute(
        "UPDATE pins SET withdrawn_at = ?2 WHERE id = ?1 AND withdrawn_at IS NULL",
        params![id, store::ts_string(at)],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("no active pin {id}")));
    }
    audit::record(conn, at, analyst, action::PIN_WITHDRAW, &id.to_string(), "")?;
    Ok(())
}

/// The pins in force that name the campaign (either side of a merge, or the campaign a
/// split takes reports from), newest first: what an analyst reviewing it needs to know.
pub fn pins_naming(conn: &Conn, campaign: CampaignId) -> store::Result<Vec<Pin>> {
    let mut pins: Vec<Pin> = active_pins(conn)?
        .into_iter()
        .filter(|p| match &p.kind {
            PinKind::Merge { a, b } => *a == campaign || *b == campaign,
            PinKind::Split { campaign: c, .. } => *c == campaign,
        })
        .collect();
    pins.sort_by(|x, y| y.at.cmp(&x.at).then(y.id.cmp(&x.id)));
    Ok(pins)
}

/// What an analyst asks of the correlation engine for one campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinRequest {
    /// Keep the campaign together with another.
    Merge { with: CampaignId },
    /// Take these reports out of the campaign.
    Split { reports: Vec<Seq> },
}

impl PinRequest {
    /// The pin that carries out this request on `campaign`.
    pub fn pin_of(self, campaign: CampaignId) -> PinKind {
        match self {
            PinRequest::Merge { with } => PinKind::Merge {
                a: campaign,
                b: with,
            },
            PinRequest::Split { reports } => PinKind::Split { campaign, reports },
        }
    }
}

/// The pins in force, oldest first: what the correlation engine must respect.
pub fn active_pins(conn: &Conn) -> store::Result<Vec<Pin>> {
    store::pins::active(conn)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;
    use crate::council::{audit, feedback, policy::Viewer};
    use crate::model::{MemberClass, MemberId, SightingKind};

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + TimeDelta::hours(h)
    }

    fn c(n: u32) -> CampaignId {
        CampaignId {
            year: 2026,
            number: n,
        }
    }

    fn flags(f: &[&str]) -> Vec<FlagKind> {
        f.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn queue_puts_cross_sector_and_novel_first() {
        let items = vec![
            (c(1), flags(&["stale", "known"]), t(9)),
            (c(2), flags(&["novel"]), t(1)),
            (c(3), flags(&["cross-sector"]), t(2)),
            (c(4), flags(&["novel", "cross-sector"]), t(0)),
            (c(5), flags(&[]), t(10)),
            (c(6), flags(&["surge"]), t(3)),
            (c(7), flags(&["novel"]), t(5)),
        ];
        let order: Vec<(String, u8)> = order(&items)
            .into_iter()
            .map(|e| (e.campaign.to_string(), e.priority))
            .collect();
        let expected = [
            ("C-2026-0004", 0),
            ("C-2026-0003", 1),
            ("C-2026-0007", 2),
            ("C-2026-0002", 2),
            ("C-2026-0006", 3),
            ("C-2026-0001", 5),
        ];
        let expected: Vec<(String, u8)> =
            expected.iter().map(|(a, b)| (a.to_string(), *b)).collect();
        assert_eq!(order, expected);
    }

    #[test]
    fn decisions_have_history_leave_the_queue_and_are_audited() {
        let conn = store::open_in_memory().unwrap();
        let items = vec![
            (c(1), flags(&["novel"]), t(5)),
            (c(2), flags(&["cross-sector"]), t(5)),
        ];
        decide(
            &conn,
            c(1),
            Disposition::UnderAnalysis,
            "asking members",
            "analyst-a",
            t(6),
        )
        .unwrap();
        decide(
            &conn,
            c(2),
            Disposition::LowNeedTransient,
            "gone quiet",
            "analyst-b",
            t(6),
        )
        .unwrap();
        let q: Vec<_> = queue(&conn, &items)
            .unwrap()
            .into_iter()
            .map(|e| (e.campaign, e.disposition))
            .collect();
        // Under analysis stays in the queue; a decided campaign leaves it...
        assert_eq!(q, [(c(1), Some(Disposition::UnderAnalysis))]);
        // ...until it is active again after the decision.
        let items = vec![
            (c(1), flags(&["novel"]), t(5)),
            (c(2), flags(&["cross-sector"]), t(7)),
        ];
        let q: Vec<_> = queue(&conn, &items)
            .unwrap()
            .into_iter()
            .map(|e| e.campaign)
            .collect();
        assert_eq!(q, [c(2), c(1)]);

        decide(
            &conn,
            c(1),
            Disposition::SharedLimited,
            "shared with finance ISAC",
            "analyst-b",
            t(8),
        )
        .unwrap();
        let h = history(&conn, c(1)).unwrap();
        let h: Vec<_> = h
            .iter()
            .map(|d| (d.disposition, d.note.as_str(), d.analyst.as_str(), d.at))
            .collect();
        assert_eq!(
            h,
            [
                (
                    Disposition::UnderAnalysis,
                    "asking members",
                    "analyst-a",
                    t(6)
                ),
                (
                    Disposition::SharedLimited,
                    "shared with finance ISAC",
                    "analyst-b",
                    t(8)
                ),
            ]
        );
        assert_eq!(
            current(&conn, c(1)).unwrap().unwrap().disposition,
            Disposition::SharedLimited
        );
        assert_eq!(
            current_all_as_of(&conn, Some(t(7))).unwrap()[&c(1)].disposition,
            Disposition::UnderAnalysis
        );
        assert!(decide(&conn, c(1), Disposition::SharedPublic, "", " ", t(9)).is_err());

        let log = audit::list(&conn, None, None, 100).unwrap();
        let log: Vec<_> = log
            .iter()
            .map(|e| {
                (
                    e.actor.as_str(),
                    e.action.as_str(),
                    e.target.as_str(),
                    e.detail.as_str(),
                )
            })
            .collect();
        assert_eq!(
            log,
            [
                ("analyst-a", "decide", "C-2026-0001", "under-analysis"),
                ("analyst-b", "decide", "C-2026-0002", "low-need-transient"),
                ("analyst-b", "decide", "C-2026-0001", "shared-limited"),
            ]
        );
        assert_eq!(
            audit::list(&conn, Some(t(7)), Some("analyst-b"), 100)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn pins_are_recorded_withdrawn_and_audited() {
        let conn = store::open_in_memory().unwrap();
        let m = pin_merge(&conn, c(1), c(2), "same actor", "analyst-a", t(1)).unwrap();
        pin_split(
            &conn,
            c(3),
            &[Seq(7), Seq(9)],
            "unrelated scan",
            "analyst-a",
            t(2),
        )
        .unwrap();
        assert!(pin_merge(&conn, c(1), c(1), "", "analyst-a", t(2)).is_err());
        assert!(pin_split(&conn, c(3), &[], "", "analyst-a", t(2)).is_err());
        let kinds: Vec<_> = active_pins(&conn)
            .unwrap()
            .into_iter()
            .map(|p| p.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                PinKind::Merge { a: c(1), b: c(2) },
                PinKind::Split {
                    campaign: c(3),
                    reports: vec![Seq(7), Seq(9)]
                },
            ]
        );
        withdraw_pin(&conn, m, "analyst-b", t(3)).unwrap();
        assert!(withdraw_pin(&conn, m, "analyst-b", t(3)).is_err());
        assert_eq!(active_pins(&conn).unwrap().len(), 1);
        let actions: Vec<_> = audit::list(&conn, None, None, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions, ["pin-merge", "pin-split", "pin-withdraw"]);
    }

    #[test]
    fn feedback_requests_reach_the_asked_classes_once() {
        let conn = store::open_in_memory().unwrap();
        let entries = crate::council::roster::parse(include_bytes!(
            "../../tests/fixtures/council/roster-2020-06-05.json"
        ))
        .unwrap();
        let members: Vec<_> = entries
            .iter()
            .map(|e| e.to_member(crate::council::roster::default_class))
            .collect();
        store::members::import_roster(&conn, &members).unwrap();
        let v = |id: &str, class| Viewer::member(MemberId(id.into()), class);
        let general = v("m100", MemberClass::General);
        let class2 = v("m121", MemberClass::Class2);
        let class1 = v("m150", MemberClass::Class1);
        let id =
            feedback::request(&conn, c(1), "Seen these hashes?", &[], "analyst-a", t(1)).unwrap();
        assert_eq!(feedback::open_for(&conn, &general).unwrap().len(), 1);
        assert_eq!(feedback::open_for(&conn, &class2).unwrap()[0].analyst, None);
        assert!(feedback::open_for(&conn, &class1).unwrap().is_empty());
        let answer = |viewer: &Viewer, kind, count, note: &str, at| {
            let req = feedback::get(&conn, id).unwrap().unwrap();
            let a = feedback::Answer {
                kind,
                count,
                note: note.into(),
            };
            match feedback::answer(&conn, &req, viewer, &a, at) {
                Ok(Ok(s)) => Ok(s),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        };
        assert!(answer(&class1, SightingKind::Seen, 1, "", t(2)).is_err());
        answer(&general, SightingKind::Seen, 3, "two hosts", t(2)).unwrap();
        answer(&class2, SightingKind::NotSeen, 1, "", t(2)).unwrap();
        let again = answer(&general, SightingKind::Seen, 1, "", t(3)).unwrap_err();
        assert_eq!(again, format!("feedback request {id} is already answered"));
        assert!(feedback::open_for(&conn, &general).unwrap().is_empty());
        let p = feedback::progress(&conn, id).unwrap();
        // Approved class 2 (76) and general (87) members of the roster were asked.
        assert_eq!((p.asked, p.answered, p.seen, p.not_seen), (163, 2, 1, 1));
        let sightings = store::sightings::for_campaign(&conn, c(1)).unwrap();
        assert_eq!(store::sightings::counts(&sightings).seen, 3);
        feedback::close(&conn, id, "analyst-a", t(4)).unwrap();
        assert!(answer(&class2, SightingKind::Seen, 1, "", t(5)).is_err());
    }
}

/// The category the review queue proposes for a campaign, with its reason. Only a
/// proposal: nothing is recorded (and statistics do not move) until the analyst confirms
/// or overrides it as a disposition.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Suggestion {
    pub disposition: Disposition,
    pub reason: String,
}

/// The council's rule: known → (1)(a) known threat, stale → (1)(b) transient, anything
/// else under analysis. Read from the flags the viewer is shown (the secretariat's).
pub fn suggest(view: &crate::council::CampaignView) -> Suggestion {
    use crate::model::FlagKind;
    for (kind, disposition) in [
        (FlagKind::Known, Disposition::LowNeedKnown),
        (FlagKind::Stale, Disposition::LowNeedTransient),
    ] {
        if let Some(f) = view.flags.iter().find(|f| f.name == kind) {
            return Suggestion {
                disposition,
                reason: format!("{}: {}", kind.as_str(), f.summary()),
            };
        }
    }
    Suggestion {
        disposition: Disposition::UnderAnalysis,
        reason: "neither known nor stale: needs analysis".to_string(),
    }
}
