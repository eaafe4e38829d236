//! Analysts' review records the console writes and reads: dispositions and merge/split
//! requests ("pins").
//!
//! The tables are the council review module's (`dispositions`, `pins`); until that module
//! owns them on main, these few queries live here. Readers check that the table exists, so
//! that a store without it shows "not yet available" rather than an error.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::model::{CampaignId, Disposition, MemberId, ReportId};
use crate::store::{Result, StoreError};

/// One recorded disposition.
#[derive(Debug, Clone, Serialize)]
pub struct DispositionRecord {
    pub disposition: Disposition,
    pub note: String,
    pub analyst: String,
    pub at: DateTime<Utc>,
}

/// One recorded merge or split request.
#[derive(Debug, Clone, Serialize)]
pub struct PinRecord {
    pub kind: String,
    pub other: Option<String>,
    pub reports: Option<String>,
    pub note: String,
    pub analyst: String,
    pub at: DateTime<Utc>,
}

/// A merge or split request.
#[derive(Debug, Clone)]
pub enum PinRequest {
    Merge { with: CampaignId },
    Split { reports: Vec<ReportId> },
}

/// Whether the store has the table.
pub fn has_table(conn: &Connection, table: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad time stamp {s:?}: {e}")))
}

fn disposition(s: &str) -> Result<Disposition> {
    s.parse()
        .map_err(|e: String| StoreError::Corrupt(format!("dispositions: {e}")))
}

/// Records a disposition through the council's review workflow (validated and audited
/// like every other decision).
pub fn record_disposition(
    conn: &Connection,
    campaign: CampaignId,
    d: Disposition,
    note: &str,
    analyst: &MemberId,
    at: DateTime<Utc>,
) -> Result<()> {
    crate::council::review::decide(conn, campaign, d, note, &analyst.0, at).map(|_| ())
}

/// A campaign's dispositions, newest first (None without the table).
pub fn dispositions(
    conn: &Connection,
    campaign: CampaignId,
) -> Result<Option<Vec<DispositionRecord>>> {
    if !has_table(conn, "dispositions")? {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT disposition, note, analyst, at FROM dispositions WHERE campaign_id = ?1 ORDER BY at DESC, id DESC",
    )?;
    let rows = stmt.query_map([campaign.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (d, note, analyst, at) = row?;
        out.push(DispositionRecord {
            disposition: disposition(&d)?,
            note,
            analyst,
            at: parse_ts(&at)?,
        });
    }
    Ok(Some(out))
}

/// The latest disposition of every campaign that has one (None without the table).
pub fn latest_dispositions(conn: &Connection) -> Result<Option<HashMap<CampaignId, Disposition>>> {
    if !has_table(conn, "dispositions")? {
        return Ok(None);
    }
    let mut stmt =
        conn.prepare_cached("SELECT campaign_id, disposition FROM dispositions ORDER BY at, id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (id, d) = row?;
        let id: CampaignId = id.parse().map_err(StoreError::Corrupt)?;
        out.insert(id, disposition(&d)?);
    }
    Ok(Some(out))
}

/// Records a merge or split request through the council's review workflow, in the form
/// the correlation engine reads back (`review::active_pins`), audited.
pub fn record_pin(
    conn: &Connection,
    campaign: CampaignId,
    request: &PinRequest,
    note: &str,
    analyst: &MemberId,
    at: DateTime<Utc>,
) -> Result<()> {
    use crate::council::review;
    match request {
        PinRequest::Merge { with } => {
            review::pin_merge(conn, campaign, *with, note, &analyst.0, at)
        }
        PinRequest::Split { reports } => {
            let seqs: Vec<_> = reports.iter().map(|r| r.0).collect();
            review::pin_split(conn, campaign, &seqs, note, &analyst.0, at)
        }
    }
    .map(|_| ())
}

/// The merge and split requests that name a campaign, newest first.
pub fn pins(conn: &Connection, campaign: CampaignId) -> Result<Vec<PinRecord>> {
    if !has_table(conn, "pins")? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT kind, campaign_a, campaign_b, reports, note, analyst, at FROM pins
         WHERE (campaign_a = ?1 OR campaign_b = ?1) AND withdrawn_at IS NULL ORDER BY at DESC, id DESC",
    )?;
    let id = campaign.to_string();
    let rows = stmt.query_map([&id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, a, b, reports, note, analyst, at) = row?;
        let other = if a == id { b } else { Some(a) };
        out.push(PinRecord {
            kind,
            other,
            reports,
            note,
            analyst,
            at: parse_ts(&at)?,
        });
    }
    Ok(out)
}
