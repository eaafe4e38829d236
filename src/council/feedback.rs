//! Feedback requests: an analyst asks members (by default class 2 and general) to check a
//! campaign's observables in their own networks. Answering is voluntary; each member
//! answers a request at most once, and the answer is also stored as a sighting of the
//! campaign so that flags (stale, cross-sector) see it.
//!
//! Members see the open requests meant for their class, and answer them, only through
//! `ReadPath::open_feedback` and `Acts::answer_feedback`, which drop requests
//! whose campaign the member may not see at all: for that member they do not exist.

use crate::store::db::{Conn, OptionalExtension, params};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde::Serialize;

use super::audit::{self, action};
use super::policy::Viewer;
use super::read::Refused;
use crate::model::{CampaignId, MemberClass, SightingDraft, SightingKind, SightingTarget};
use crate::store::{self, StoreError};

/// The classes asked when the analyst does not say: the ones that did not see the
/// material first.
pub const DEFAULT_CLASSES: [MemberClass; 2] = [MemberClass::Class2, MemberClass::General];

/// A feedback request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackRequest {
    pub id: i64,
    pub campaign: CampaignId,
    pub question: String,
    pub classes: Vec<MemberClass>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// Secretariat only (members see requests without the analyst's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analyst: Option<String>,
}

/// How a request is going (secretariat view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestProgress {
    /// Approved members of the asked classes.
    pub asked: u64,
    pub answered: u64,
    pub seen: u64,
    pub not_seen: u64,
    pub false_positive: u64,
}

/// Opens a request and audits it.
pub fn request(
    conn: &Conn,
    campaign: CampaignId,
    question: &str,
    classes: &[MemberClass],
    analyst: &str,
    at: DateTime<Utc>,
) -> store::Result<i64> {
    let classes = if classes.is_empty() {
        &DEFAULT_CLASSES[..]
    } else {
        classes
    };
    if classes.contains(&MemberClass::Secretariat) {
        return Err(StoreError::Conflict(
            "feedback requests are for members, not the secretariat".into(),
        ));
    }
    let list: Vec<&str> = classes.iter().map(|c| c.as_str()).collect();
    let id: i64 = conn.query_row(
        "INSERT INTO feedback_requests (campaign_id, question, classes, analyst, created_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        params![campaign.to_string(), question, list.join(","), analyst, store::ts_string(at)],
        |r| r.get(0),
    )?;
    audit::record(
        conn,
        at,
        analyst,
        action::FEEDBACK_REQUEST,
        &campaign.to_string(),
        &id.to_string(),
    )?;
    Ok(id)
}

/// Closes a request (no more answers) and audits it.
pub fn close(conn: &Conn, id: i64, analyst: &str, at: DateTime<Utc>) -> store::Result<()> {
    let n = conn.execute(
        "UPDATE feedback_requests SET closed_at = ?2 WHERE id = ?1 AND closed_at IS NULL",
        params![id, store::ts_string(at)],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "no open feedback request {id}"
        )));
    }
    audit::record(
        conn,
        at,
        analyst,
        action::FEEDBACK_CLOSE,
        &id.to_string(),
        "",
    )?;
    Ok(())
}

type Raw = (i64, String, String, String, String, String, Option<String>);

fn decode(raw: Raw, with_analyst: bool) -> store::Result<FeedbackRequest> {
    let (id, campaign, question, classes, analyst, created_at, closed_at) = raw;
    let bad = |e: String| StoreError::Corrupt(format!("feedback request {id}: {e}"));
    Ok(FeedbackRequest {
        id,
        campaign: campaign.parse().map_err(bad)?,
        question,
        classes: classes
            .split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(bad)?,
        created_at: store::parse_ts_string(&created_at)?,
        closed_at: closed_at.map(|c| store::parse_ts_string(&c)).transpose()?,
        analyst: with_analyst.then_some(analyst),
    })
}

const SELECT: &str = "SELECT id, campaign_id, question, classes, analyst, created_at, closed_at FROM feedback_requests";

fn raw(r: &crate::store::db::Row<'_>) -> crate::store::db::Result<Raw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

/// One request (as the secretariat sees it).
pub(in crate::engine) fn get(conn: &Conn, id: i64) -> store::Result<Option<FeedbackRequest>> {
    let r = conn
        .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
        .query_row(params![id], raw)
        .optional()?;
    r.map(|r| decode(r, true)).transpose()
}

/// The open requests meant for the viewer's class that the viewer has not answered yet,
/// oldest first. The secretariat sees every open request.
pub(in crate::engine) fn open_for(
    conn: &Conn,
    viewer: &Viewer,
) -> store::Result<Vec<FeedbackRequest>> {
    let Viewer::Member { member, class } = viewer else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE closed_at IS NULL AND NOT EXISTS (
             SELECT 1 FROM feedback_answers a WHERE a.request_id = feedback_requests.id AND a.member_id = ?1)
         ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![member.0], raw)?;
    let mut out = Vec::new();
    for r in rows {
        let req = decode(r?, viewer.is_secretariat())?;
        if viewer.is_secretariat() || req.classes.contains(class) {
            out.push(req);
        }
    }
    Ok(out)
}

/// A member's answer to a feedback request, as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub kind: SightingKind,
    pub count: u32,
    pub note: String,
}

/// The most a sighting may count. The council counts hosts or events seen in one member's
/// networks; a figure beyond this is a typo or an attempt to swamp the flags (a count of
/// 4e9 once made a campaign look like an epidemic).
pub const MAX_COUNT: u32 = 1_000_000;

/// How far in the future a sighting's time may lie: clocks drift and members report in
/// their own time zones, but nobody sees tomorrow.
pub const MAX_AHEAD: TimeDelta = TimeDelta::days(1);

/// The earliest sighting time accepted: before 1990 there was nothing to sight, and such a
/// time would only ever be a mistake that makes a campaign look stale.
pub fn earliest_seen() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(1990, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// "No feedback request with that id": the one answer for absent, hidden, or not addressed
/// to the member's class.
pub fn not_found() -> Refused {
    Refused::NotFound {
        what: "feedback request",
    }
}

/// A count within `1..=MAX_COUNT`, else a 400 naming `count`.
pub fn check_count(count: u32) -> Result<(), Refused> {
    if (1..=MAX_COUNT).contains(&count) {
        Ok(())
    } else {
        Err(Refused::invalid(
            "count",
            format!("must be between 1 and {MAX_COUNT}"),
        ))
    }
}

/// A sighting's count and time within bounds (`count`, `seen_at`), checked before anything
/// is looked up so that the answer does not depend on what exists.
pub fn check_sighting(draft: &SightingDraft, now: DateTime<Utc>) -> Result<(), Refused> {
    check_count(draft.count)?;
    if draft.seen_at < earliest_seen() {
        return Err(Refused::invalid(
            "seen_at",
            "must not be before 1990-01-01T00:00:00Z",
        ));
    }
    if draft.seen_at > now + MAX_AHEAD {
        return Err(Refused::invalid(
            "seen_at",
            "must not be more than a day in the future",
        ));
    }
    Ok(())
}

/// A member's answer, stored as a sighting of the campaign and linked to the request.
///
/// The caller has found the request and checked that the viewer may see its campaign
/// (`Acts::answer_feedback`). A request not addressed to the viewer's class is "not
/// found" like an absent one; a closed or already answered one is a conflict (the member
/// can see it, so saying so reveals nothing). Refusals come before any write (`Ok(Err)`);
/// a store error rolls the whole answer back.
pub fn answer(
    conn: &Conn,
    req: &FeedbackRequest,
    viewer: &Viewer,
    answer: &Answer,
    at: DateTime<Utc>,
) -> store::Result<Result<i64, Refused>> {
    let id = req.id;
    let Viewer::Member { member, class } = viewer else {
        return Ok(Err(not_found()));
    };
    if !req.classes.contains(class) {
        return Ok(Err(not_found()));
    }
    if let Err(e) = check_count(answer.count) {
        return Ok(Err(e));
    }
    if req.closed_at.is_some() {
        return Ok(Err(Refused::Conflict(format!(
            "feedback request {id} is closed"
        ))));
    }
    let answered: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM feedback_answers WHERE request_id = ?1 AND member_id = ?2)",
        params![id, member.0],
        |r| r.get(0),
    )?;
    if answered {
        return Ok(Err(Refused::Conflict(format!(
            "feedback request {id} is already answered"
        ))));
    }
    let draft = SightingDraft {
        target: SightingTarget::Campaign(req.campaign),
        kind: answer.kind,
        count: answer.count,
        seen_at: at,
    };
    let sighting = store::sightings::insert(conn, member, &draft, at, Some(id))?;
    let res = conn.execute(
        "INSERT INTO feedback_answers (request_id, member_id, sighting_id, note, answered_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, member.0, sighting, answer.note, store::ts_string(at)],
    );
    match res {
        Ok(_) => Ok(Ok(sighting)),
        // A concurrent answer won: fail the job so that the sighting is rolled back too.
        Err(e) if e.is_constraint_violation() => Err(StoreError::Conflict(format!(
            "feedback request {id} is already answered"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// How many were asked and what they answered (secretariat view).
pub(in crate::engine) fn progress(conn: &Conn, id: i64) -> store::Result<RequestProgress> {
    let req =
        get(conn, id)?.ok_or_else(|| StoreError::Conflict(format!("no feedback request {id}")))?;
    let mut asked = 0u64;
    for c in &req.classes {
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM members WHERE class = ?1 AND status = 'approved'",
            params![c.as_str()],
            |r| r.get(0),
        )?;
        asked += n as u64;
    }
    let mut stmt = conn.prepare_cached(
        "SELECT s.kind, count(*) FROM feedback_answers a JOIN sightings s ON s.id = a.sighting_id
         WHERE a.request_id = ?1 GROUP BY s.kind",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut p = RequestProgress {
        asked,
        answered: 0,
        seen: 0,
        not_seen: 0,
        false_positive: 0,
    };
    for row in rows {
        let (kind, n) = row?;
        let n = n as u64;
        p.answered += n;
        match kind.as_str() {
            "seen" => p.seen += n,
            "not-seen" => p.not_seen += n,
            _ => p.false_positive += n,
        }
    }
    Ok(p)
}
