//! Releases: the secretariat's decision that class 2 and general members may now see a
//! report, or every report of a campaign received up to the moment of release.
//!
//! Class 1 members see new material at once; the rest wait for a release (tiered release,
//! see `council::policy::decide`). A campaign release covers the reports received up to
//! the release, not later ones: new material in a released campaign waits for its own
//! release, as any new material does.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::{Result, ts};
use crate::model::{CampaignId, Seq};

/// Releases one report.
pub fn release_report(conn: &Connection, seq: Seq, analyst: &str, at: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "INSERT INTO releases (target_kind, target, released_at, analyst) VALUES ('report', ?1, ?2, ?3)",
        params![seq.0.to_string(), ts(at), analyst],
    )?;
    Ok(())
}

/// Releases a campaign: every report of it received up to `at`.
pub fn release_campaign(
    conn: &Connection,
    id: CampaignId,
    analyst: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO releases (target_kind, target, released_at, analyst) VALUES ('campaign', ?1, ?2, ?3)",
        params![id.to_string(), ts(at), analyst],
    )?;
    Ok(())
}

const RELEASED: &str = "
    SELECT EXISTS (SELECT 1 FROM releases WHERE target_kind = 'report' AND target = CAST(?1 AS TEXT))
        OR EXISTS (
            SELECT 1 FROM releases rl
            JOIN campaign_reports cr ON rl.target_kind = 'campaign' AND rl.target = cr.campaign_id
            JOIN reports r ON r.seq = cr.seq
            WHERE cr.seq = ?1 AND rl.released_at >= r.received_at)";

/// Whether the report has been released (itself, or through its campaign).
pub fn is_released(conn: &Connection, seq: Seq) -> Result<bool> {
    Ok(conn
        .prepare_cached(RELEASED)?
        .query_row([seq.0 as i64], |r| r.get(0))?)
}

/// The released ones among `seqs`.
pub fn released(conn: &Connection, seqs: &[Seq]) -> Result<HashSet<Seq>> {
    let mut out = HashSet::new();
    for &seq in seqs {
        if is_released(conn, seq)? {
            out.insert(seq);
        }
    }
    Ok(out)
}
