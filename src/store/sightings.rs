//! Sightings: members' feedback on an observable or a campaign.
//!
//! Who sighted what is known only here and to the secretariat; outputs show counts.

use crate::store::db::{Conn, params};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Result, StoreError, parse_ts, ts};
use crate::model::{CampaignId, MemberId, Observable, SightingDraft, SightingKind, SightingTarget};

/// A stored sighting's id.
pub type SightingId = i64;

fn kind_str(k: SightingKind) -> &'static str {
    match k {
        SightingKind::Seen => "seen",
        SightingKind::NotSeen => "not-seen",
        SightingKind::FalsePositive => "false-positive",
    }
}

fn parse_kind(s: &str) -> Result<SightingKind> {
    Ok(match s {
        "seen" => SightingKind::Seen,
        "not-seen" => SightingKind::NotSeen,
        "false-positive" => SightingKind::FalsePositive,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown sighting kind {other:?}"
            )));
        }
    })
}

/// Stores a sighting by `member`, optionally as the answer to a feedback request.
pub fn insert(
    conn: &Conn,
    member: &MemberId,
    draft: &SightingDraft,
    received_at: DateTime<Utc>,
    request: Option<i64>,
) -> Result<SightingId> {
    let (target_kind, obs_kind, obs_value, campaign) = match &draft.target {
        SightingTarget::Observable(o) => (
            "observable",
            Some(o.kind().as_str()),
            Some(o.value().to_string()),
            None,
        ),
        SightingTarget::Campaign(c) => ("campaign", None, None, Some(c.to_string())),
    };
    Ok(conn.query_row(
        "INSERT INTO sightings (member_id, target_kind, obs_kind, obs_value, campaign_id, kind, count, seen_at, received_at, request_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
        params![
            member.0,
            target_kind,
            obs_kind,
            obs_value,
            campaign,
            kind_str(draft.kind),
            i64::from(draft.count),
            ts(draft.seen_at),
            ts(received_at),
            request
        ],
        |r| r.get(0),
    )?)
}

/// A stored sighting (secretariat view: it names the member).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sighting {
    pub id: SightingId,
    pub member: MemberId,
    pub draft: SightingDraft,
    pub received_at: DateTime<Utc>,
    pub request: Option<i64>,
}

/// Counts per kind, for outputs outside the secretariat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SightingCounts {
    pub seen: u64,
    pub not_seen: u64,
    pub false_positive: u64,
}

const SELECT: &str = "SELECT id, member_id, obs_kind, obs_value, campaign_id, kind, count, seen_at, received_at, request_id FROM sightings";

type Raw = (
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    u32,
    String,
    String,
    Option<i64>,
);

fn raw(r: &crate::store::db::Row<'_>) -> crate::store::db::Result<Raw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn decode(raw: Raw) -> Result<Sighting> {
    let (id, member, obs_kind, obs_value, campaign, kind, count, seen_at, received_at, request) =
        raw;
    let target = match (obs_kind, obs_value, campaign) {
        (Some(k), Some(v), None) => SightingTarget::Observable(
            Observable::parse_named(&k, &v)
                .map_err(|e| StoreError::Corrupt(format!("sighting {id}: {e}")))?,
        ),
        (None, None, Some(c)) => SightingTarget::Campaign(
            c.parse()
                .map_err(|e| StoreError::Corrupt(format!("sighting {id}: {e}")))?,
        ),
        _ => {
            return Err(StoreError::Corrupt(format!(
                "sighting {id} has no valid target"
            )));
        }
    };
    Ok(Sighting {
        id,
        member: MemberId(member),
        draft: SightingDraft {
            target,
            kind: parse_kind(&kind)?,
            count,
            seen_at: parse_ts(&seen_at)?,
        },
        received_at: parse_ts(&received_at)?,
        request,
    })
}

fn collect(conn: &Conn, sql: &str, p: &[&dyn crate::store::db::Param]) -> Result<Vec<Sighting>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(p, raw)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(decode(r?)?);
    }
    Ok(out)
}

/// Sightings of a campaign, oldest first.
pub fn for_campaign(conn: &Conn, id: CampaignId) -> Result<Vec<Sighting>> {
    collect(
        conn,
        &format!("{SELECT} WHERE campaign_id = ?1 ORDER BY id"),
        params![id.to_string()],
    )
}

/// Sightings of an observable, oldest first.
pub fn for_observable(conn: &Conn, o: &Observable) -> Result<Vec<Sighting>> {
    collect(
        conn,
        &format!("{SELECT} WHERE obs_kind = ?1 AND obs_value = ?2 ORDER BY id"),
        params![o.kind().as_str(), o.value()],
    )
}

/// The reports that hold an observable, oldest first: a member may sight an observable only
/// if it may see one of them (the read path decides; this only finds them).
pub(in crate::engine) fn reports_holding(
    conn: &Conn,
    o: &Observable,
) -> Result<Vec<crate::model::Seq>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq FROM report_observables WHERE kind = ?1 AND value = ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![o.kind().as_str(), o.value()], |r| {
        r.get::<_, i64>(0)
    })?;
    let mut out = Vec::new();
    for r in rows {
        out.push(crate::model::Seq(r? as u64));
    }
    Ok(out)
}

/// Sums sightings by kind (weighted by their counts).
pub fn counts(sightings: &[Sighting]) -> SightingCounts {
    let mut c = SightingCounts::default();
    for s in sightings {
        let n = u64::from(s.draft.count);
        match s.draft.kind {
            SightingKind::Seen => c.seen += n,
            SightingKind::NotSeen => c.not_seen += n,
            SightingKind::FalsePositive => c.false_positive += n,
        }
    }
    c
}

/// Sightings stored after id `after`, oldest first, at most `limit` (for the correlator).
pub(in crate::engine) fn after(conn: &Conn, after: i64, limit: usize) -> Result<Vec<Sighting>> {
    collect(
        conn,
        &format!("{SELECT} WHERE id > ?1 ORDER BY id LIMIT ?2"),
        params![after, limit as i64],
    )
}
