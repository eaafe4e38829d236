//! Campaign ids of reports, and the history of merges and splits.
//!
//! The correlation graph is a projection, but campaign ids are truth: analysts' decisions
//! refer to them, so the id of every report is recorded here and the graph matches its groups
//! to these ids whenever it is rebuilt.
//!
//! Several nodes may share one store; only the leader records (see [`record_through`]).
//! Its *watermark* in `meta` says up to which report it has recorded correlation and in
//! which generation it last recorded; followers apply reports up to the watermark and adopt
//! the assignments recorded since the generation they last read.

use crate::store::db::{Conn, OptionalExtension, params};
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

/// How far the leader has recorded correlation: every report up to `seq` has its campaign
/// id recorded, and `generation` counts the leader's recordings (it grows by one with each,
/// also with one that changed no id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Watermark {
    pub seq: Seq,
    pub generation: i64,
}

/// What [`record_through`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded; the new watermark.
    Done(Watermark),
    /// Nothing written: another node recorded since the generation the caller expected
    /// (a second leader, or a CLI command beside the daemon). The caller adopts what is
    /// recorded before it records again.
    Superseded(Watermark),
}

const SEQ_KEY: &str = "correlated_seq";
const GENERATION_KEY: &str = "correlation_generation";

fn meta_i64(conn: &Conn, key: &str) -> Result<i64> {
    let value: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row(params![key], |r| r.get(0))
        .optional()?;
    match value {
        None => Ok(0),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("meta {key} = {v:?}: {e}"))),
    }
}

fn set_meta_i64(conn: &Conn, key: &str, value: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value.to_string()])?;
    Ok(())
}

/// The leader's watermark (zero before anyone recorded through it).
pub fn watermark(conn: &Conn) -> Result<Watermark> {
    Ok(Watermark {
        seq: Seq(meta_i64(conn, SEQ_KEY)?.max(0) as u64),
        generation: meta_i64(conn, GENERATION_KEY)?,
    })
}

/// Records what the leader's correlation changed and that it has correlated every report
/// up to `through`, in one transaction with the events: a follower never sees a watermark
/// without the ids it covers. `expected` is the generation the caller last recorded or
/// adopted; if another node recorded since, nothing is written ([`Recorded::Superseded`]),
/// so that two nodes that both believe they lead cannot interleave their ids.
pub fn record_through(
    conn: &Conn,
    events: &[CampaignEvent],
    at: DateTime<Utc>,
    through: Seq,
    expected: i64,
) -> Result<Recorded> {
    let now = watermark(conn)?;
    if now.generation != expected {
        return Ok(Recorded::Superseded(now));
    }
    let generation = expected + 1;
    record(conn, events, at)?;
    let mut mark =
        conn.prepare_cached("UPDATE campaign_reports SET generation = ?1 WHERE seq = ?2")?;
    for event in events {
        if let CampaignEvent::Assigned { reports, .. } = event {
            for seq in reports {
                mark.execute(params![generation, seq.0 as i64])?;
            }
        }
    }
    // The watermark never goes back (a new leader may record a pin's changes before it
    // has applied as far as its predecessor did).
    let seq = now.seq.max(through);
    set_meta_i64(conn, SEQ_KEY, seq.0 as i64)?;
    set_meta_i64(conn, GENERATION_KEY, generation)?;
    Ok(Recorded::Done(Watermark { seq, generation }))
}

/// [`record_through`] as a typed write for the leader's correlator (the daemon).
pub fn record_through_op(
    events: Vec<CampaignEvent>,
    at: DateTime<Utc>,
    through: Seq,
    expected: i64,
) -> super::Op<Recorded> {
    super::Op::new(move |conn| record_through(conn, &events, at, through, expected))
}

/// The (report, campaign) pairs recorded in a generation after `generation`: what a
/// follower adopts. Assignments written before migration 12 are generation 0, read by a
/// follower's first full load ([`assignments`]).
pub fn assignments_since(conn: &Conn, generation: i64) -> Result<Vec<(Seq, CampaignId)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, campaign_id FROM campaign_reports WHERE generation > ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![generation], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, id) = row?;
        out.push((Seq(seq as u64), id.parse().map_err(StoreError::Corrupt)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> CampaignId {
        CampaignId {
            year: 2026,
            number: n,
        }
    }

    fn assigned(n: u32, seqs: &[u64]) -> CampaignEvent {
        CampaignEvent::Assigned {
            id: id(n),
            reports: seqs.iter().map(|&s| Seq(s)).collect(),
        }
    }

    /// The watermark moves with the events it covers, followers read only what changed
    /// since their generation, and a recording against a stale generation writes nothing.
    #[test]
    fn record_through_moves_the_watermark_and_fences_a_second_leader() {
        let conn = super::super::open_in_memory().unwrap();
        let origin = crate::model::Origin::FeedItem { feed: "x".into() };
        for i in 1..=9 {
            let draft = crate::model::ReportDraft::new(format!("r{i}"), crate::model::Tlp::Green);
            super::super::reports::insert(&conn, &origin, &draft, Utc::now()).unwrap();
        }
        assert_eq!(watermark(&conn).unwrap(), Watermark::default());
        let at = Utc::now();
        let first = record_through(
            &conn,
            &[CampaignEvent::Created { id: id(1) }, assigned(1, &[1, 2])],
            at,
            Seq(2),
            0,
        )
        .unwrap();
        let w1 = Watermark {
            seq: Seq(2),
            generation: 1,
        };
        assert_eq!(first, Recorded::Done(w1));
        assert_eq!(watermark(&conn).unwrap(), w1);
        assert_eq!(
            assignments_since(&conn, 0).unwrap(),
            vec![(Seq(1), id(1)), (Seq(2), id(1))]
        );
        // Report 3 joins and report 1 moves: a follower at generation 1 reads only those.
        let second = record_through(&conn, &[assigned(2, &[1, 3])], at, Seq(3), 1).unwrap();
        assert!(matches!(second, Recorded::Done(w) if w.generation == 2 && w.seq == Seq(3)));
        assert_eq!(
            assignments_since(&conn, 1).unwrap(),
            vec![(Seq(1), id(2)), (Seq(3), id(2))]
        );
        // A node that last saw generation 1 is fenced off: nothing changes.
        let stale = record_through(&conn, &[assigned(9, &[1, 2, 3])], at, Seq(9), 1).unwrap();
        assert!(matches!(stale, Recorded::Superseded(w) if w.generation == 2));
        assert_eq!(watermark(&conn).unwrap().seq, Seq(3));
        assert_eq!(
            assignments(&conn)
                .unwrap()
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
            [(Seq(1), id(2)), (Seq(2), id(1)), (Seq(3), id(2))]
                .into_iter()
                .collect()
        );
        // An empty recording still moves the watermark (reports that changed no id).
        let empty = record_through(&conn, &[], at, Seq(5), 2).unwrap();
        assert!(matches!(empty, Recorded::Done(w) if w.seq == Seq(5) && w.generation == 3));
        assert!(assignments_since(&conn, 2).unwrap().is_empty());
    }
}
