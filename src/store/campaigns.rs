//! Campaign ids of reports, and the history of merges and splits.
//!
//! The correlation graph is a projection, but campaign ids are truth: analysts' decisions
//! refer to them, so the id of every report is recorded here and the graph matches its groups
//! to these ids whenever it is rebuilt.

use crate::store::db::{Conn, params};
use chrono::{DateTime, Utc};

use super::{Result, StoreError, ts};
use crate::model::{CampaignEvent, CampaignId, Seq};

/// Every recorded (report, campaign) pair.
pub fn assignments(conn: &Conn) -> Result<Vec<(Seq, CampaignId)>> {
    let mut stmt = conn.prepare("SELECT seq, campaign_id FROM campaign_reports")?;
    let rows = stmt.query_map(params![], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, id) = row?;
        let id = id.parse().map_err(StoreError::Corrupt)?;
        out.push((Seq(seq as u64), id));
    }
    Ok(out)
}

/// The reports recorded in one campaign now.
pub fn reports_of(conn: &Conn, id: CampaignId) -> Result<Vec<Seq>> {
    let mut stmt = conn
        .prepare_cached("SELECT seq FROM campaign_reports WHERE campaign_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map(params![id.to_string()], |r| r.get::<_, i64>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(Seq(row? as u64));
    }
    Ok(out)
}

/// Every campaign id ever given, also those merged away (so that none is given twice).
pub fn all_ids(conn: &Conn) -> Result<Vec<CampaignId>> {
    let mut stmt = conn.prepare("SELECT DISTINCT campaign_id FROM campaign_events")?;
    let rows = stmt.query_map(params![], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.parse().map_err(StoreError::Corrupt)?);
    }
    Ok(out)
}

/// Records what the correlation engine changed.
pub fn record(conn: &Conn, events: &[CampaignEvent], at: DateTime<Utc>) -> Result<()> {
    let mut assign = conn.prepare_cached(
        "INSERT INTO campaign_reports (seq, campaign_id) VALUES (?1, ?2)
         ON CONFLICT(seq) DO UPDATE SET campaign_id = excluded.campaign_id",
    )?;
    let mut log = conn.prepare_cached(
        "INSERT INTO campaign_events (at, campaign_id, event) VALUES (?1, ?2, ?3)",
    )?;
    let at = ts(at);
    for event in events {
        let id = match event {
            CampaignEvent::Created { id } => *id,
            CampaignEvent::Assigned { id, reports } => {
                for seq in reports {
                    assign.execute(params![seq.0 as i64, id.to_string()])?;
                }
                continue;
            }
            CampaignEvent::Merged { into, .. } => *into,
            CampaignEvent::Split { from, .. } => *from,
        };
        let json = serde_json::to_string(event)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode event: {e}")))?;
        log.execute(params![at, id.to_string(), json])?;
    }
    Ok(())
}

/// [`record`] as a typed write for the correlator's owner (the daemon).
pub fn record_op(events: Vec<CampaignEvent>, at: DateTime<Utc>) -> super::Op<()> {
    super::Op::new(move |conn| record(conn, &events, at))
}

/// The recorded history of one campaign: (time, event JSON).
pub fn history(conn: &Conn, id: CampaignId) -> Result<Vec<(String, serde_json::Value)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, event FROM campaign_events WHERE campaign_id = ?1 OR event LIKE ?2 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![id.to_string(), format!("%\"{id}\"%")], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (at, json) = row?;
        let value = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("campaign event: {e}")))?;
        out.push((at, value));
    }
    Ok(out)
}

/// [`history`] as typed events (rows that no longer parse are skipped: the history is
/// informative, and an event written by an older version must not hide the campaign).
pub fn events(conn: &Conn, id: CampaignId) -> Result<Vec<(String, CampaignEvent)>> {
    Ok(history(conn, id)?
        .into_iter()
        .filter_map(|(at, v)| serde_json::from_value(v).ok().map(|e| (at, e)))
        .collect())
}
