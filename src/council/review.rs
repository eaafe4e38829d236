//! The analysts' review: a queue of flagged campaigns, dispositions with full history, and
//! manual merge and split requests ("pins") that the correlation engine must respect.
//!
//! Every decision is also written to the audit log, in the same transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::audit::{self, action};
use crate::model::{CampaignId, Disposition, Seq};
use crate::store::{self, StoreError};

/// Flag names as the correlation engine writes them.
pub mod flag {
    pub const CROSS_SECTOR: &str = "cross-sector";
    pub const NOVEL: &str = "novel";
    pub const SURGE: &str = "surge";
    pub const KNOWN: &str = "known";
    pub const STALE: &str = "stale";
}

/// A campaign's priority in the queue: lower comes first.
///
/// 0. cross-sector and novel: spreading across sectors and seen nowhere public — the
///    council's reason to exist;
/// 1. cross-sector; 2. novel; 3. surge; 4. any other flag;
/// 5. only `known` and/or `stale` flags: likely low need, reviewed last.
pub fn priority(flags: &[String]) -> u8 {
    let has = |f: &str| flags.iter().any(|x| x == f);
    let cross = has(flag::CROSS_SECTOR);
    let novel = has(flag::NOVEL);
    if cross && novel {
        0
    } else if cross {
        1
    } else if novel {
        2
    } else if has(flag::SURGE) {
        3
    } else if flags.iter().any(|f| f != flag::KNOWN && f != flag::STALE) {
        4
    } else {
        5
    }
}

/// One entry of the review queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueEntry {
    pub campaign: CampaignId,
    pub flags: Vec<String>,
    pub last_seen: DateTime<Utc>,
    pub priority: u8,
    /// The current disposition, if any (an `under-analysis` campaign stays in the queue).
    pub disposition: Option<Disposition>,
}

/// Orders flagged campaigns: by [`priority`], then most recent activity first, then id.
/// Campaigns without flags are not in the queue.
pub fn order(items: &[(CampaignId, Vec<String>, DateTime<Utc>)]) -> Vec<QueueEntry> {
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
    conn: &Connection,
    items: &[(CampaignId, Vec<String>, DateTime<Utc>)],
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
    conn: &Connection,
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
    conn.execute(
        "INSERT INTO dispositions (campaign_id, disposition, note, analyst, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![campaign.to_string(), disposition.as_str(), note, analyst, store::ts_string(at)],
    )?;
    let id = conn.last_insert_rowid();
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

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawDisposition> {
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
pub fn history(conn: &Connection, campaign: CampaignId) -> store::Result<Vec<DispositionRecord>> {
    let mut stmt =
        conn.prepare_cached(&format!("{SELECT} WHERE campaign_id = ?1 ORDER BY at, id"))?;
    let rows = stmt.query_map([campaign.to_string()], raw)?;
    rows.map(|r| decode(r?)).collect()
}

/// The campaign's current disposition.
pub fn current(
    conn: &Connection,
    campaign: CampaignId,
) -> store::Result<Option<DispositionRecord>> {
    let r = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE campaign_id = ?1 ORDER BY at DESC, id DESC LIMIT 1"
        ))?
        .query_row([campaign.to_string()], raw)
        .optional()?;
    r.map(decode).transpose()
}

/// The current disposition of every campaign decided at or before `as_of` (all if `None`).
pub fn current_all_as_of(
    conn: &Connection,
    as_of: Option<DateTime<Utc>>,
) -> store::Result<HashMap<CampaignId, DispositionRecord>> {
    let limit = as_of.map(store::ts_string).unwrap_or_else(|| "9999".into());
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE at <= ?1 ORDER BY at, id"))?;
    let rows = stmt.query_map([limit], raw)?;
    let mut out = HashMap::new();
    for r in rows {
        let d = decode(r?)?;
        out.insert(d.campaign, d);
    }
    Ok(out)
}

/// The current disposition of every decided campaign.
pub fn current_all(conn: &Connection) -> store::Result<HashMap<CampaignId, DispositionRecord>> {
    current_all_as_of(conn, None)
}

/// A manual correlation request the engine must respect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PinKind {
    /// Keep these two campaigns together.
    Merge { a: CampaignId, b: CampaignId },
    /// Take these reports out of the campaign into a campaign of their own.
    Split {
        campaign: CampaignId,
        reports: Vec<Seq>,
    },
}

/// A recorded pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    pub id: i64,
    #[serde(flatten)]
    pub kind: PinKind,
    pub note: String,
    pub analyst: String,
    pub at: DateTime<Utc>,
}

/// Records a merge request and audits it.
pub fn pin_merge(
    conn: &Connection,
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
    conn.execute(
        "INSERT INTO pins (kind, campaign_a, campaign_b, note, analyst, at) VALUES ('merge', ?1, ?2, ?3, ?4, ?5)",
        params![a.to_string(), b.to_string(), note, analyst, store::ts_string(at)],
    )?;
    let id = conn.last_insert_rowid();
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
    conn: &Connection,
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
    conn.execute(
        "INSERT INTO pins (kind, campaign_a, reports, note, analyst, at) VALUES ('split', ?1, ?2, ?3, ?4, ?5)",
        params![campaign.to_string(), json, note, analyst, store::ts_string(at)],
    )?;
    let id = conn.last_insert_rowid();
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
pub fn withdraw_pin(
    conn: &Connection,
    id: i64,
    analyst: &str,
    at: DateTime<Utc>,
) -> store::Result<()> {
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

/// The pins in force, oldest first: what the correlation engine must respect.
pub fn active_pins(conn: &Connection) -> store::Result<Vec<Pin>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, campaign_a, campaign_b, reports, note, analyst, at FROM pins
         WHERE withdrawn_at IS NULL ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, kind, a, b, reports, note, analyst, at) = row?;
        let bad = |e: String| StoreError::Corrupt(format!("pin {id}: {e}"));
        let kind = match (kind.as_str(), b, reports) {
            ("merge", Some(b), _) => PinKind::Merge {
                a: a.parse().map_err(bad)?,
                b: b.parse().map_err(bad)?,
            },
            ("split", _, Some(reports)) => {
                let list: Vec<u64> =
                    serde_json::from_str(&reports).map_err(|e| bad(e.to_string()))?;
                PinKind::Split {
                    campaign: a.parse().map_err(bad)?,
                    reports: list.into_iter().map(Seq).collect(),
                }
            }
            _ => return Err(bad("incomplete pin".into())),
        };
        out.push(Pin {
            id,
            kind,
            note,
            analyst,
            at: store::parse_ts_string(&at)?,
        });
    }
    Ok(out)
}
