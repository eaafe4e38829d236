//! Releases: the secretariat's decision that class 2 and general members may now see a
//! report, or the reports a campaign holds at the moment of release.
//!
//! Class 1 members see new material at once; the rest wait for a release (tiered release,
//! see `council::policy::decide`). A release is a decision about *reports*: releasing a
//! campaign records, in the same transaction, exactly the reports it holds then
//! (`released_reports`). Whatever joins the campaign later — a new report, a merge with
//! another campaign, a pin — waits for its own release, so no later change of the campaign
//! can widen anyone's view.

use std::collections::HashSet;

use crate::store::db::{Conn, params};
use chrono::{DateTime, Utc};

use super::{Result, ts};
use crate::model::{CampaignId, Seq};

/// Releases one report.
pub fn release_report(conn: &Conn, seq: Seq, analyst: &str, at: DateTime<Utc>) -> Result<()> {
    let release = record(conn, "report", &seq.0.to_string(), analyst, at)?;
    mark(conn, &[seq], release, at)
}

/// Releases a campaign: the reports it holds now (`reports`, from the recorded campaign
/// assignments when `None`). Returns how many reports the release covered.
pub fn release_campaign(
    conn: &Conn,
    id: CampaignId,
    analyst: &str,
    at: DateTime<Utc>,
) -> Result<usize> {
    let reports = super::campaigns::reports_of(conn, id)?;
    let release = record(conn, "campaign", &id.to_string(), analyst, at)?;
    mark(conn, &reports, release, at)?;
    Ok(reports.len())
}

fn record(conn: &Conn, kind: &str, target: &str, analyst: &str, at: DateTime<Utc>) -> Result<i64> {
    Ok(conn.query_row(
        "INSERT INTO releases (target_kind, target, released_at, analyst) VALUES (?1, ?2, ?3, ?4) RETURNING id",
        params![kind, target, ts(at), analyst],
        |r| r.get(0),
    )?)
}

fn mark(conn: &Conn, reports: &[Seq], release: i64, at: DateTime<Utc>) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO released_reports (seq, released_at, release_id)
         SELECT seq, ?2, ?3 FROM reports WHERE seq = ?1 ON CONFLICT DO NOTHING",
    )?;
    let at = ts(at);
    for seq in reports {
        stmt.execute(params![seq.0 as i64, at, release])?;
    }
    Ok(())
}

/// Whether the report has been released (itself, or by a campaign release that covered it).
pub fn is_released(conn: &Conn, seq: Seq) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM released_reports WHERE seq = ?1)")?
        .query_row(params![seq.0 as i64], |r| r.get(0))?)
}

/// How many releases were ever recorded. Every change of the released set is a new
/// release, so the count names the set's state (the search index keeps the visibility
/// filters it evaluated per count, and reads [`all_released`] only when it changes).
pub fn count(conn: &Conn) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM releases", params![], |r| r.get(0))?;
    Ok(n as u64)
}

/// Every released report, in store order (the search filter of class 2 and general members
/// and of audiences).
pub fn all_released(conn: &Conn) -> Result<Vec<Seq>> {
    let mut stmt = conn.prepare_cached("SELECT seq FROM released_reports ORDER BY seq")?;
    let rows = stmt.query_map(params![], |r| r.get::<_, i64>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(Seq(row? as u64));
    }
    Ok(out)
}

/// The released ones among `seqs`: one query per [`super::reports::CHUNK`] of them.
pub fn released(conn: &Conn, seqs: &[Seq]) -> Result<HashSet<Seq>> {
    use super::reports::{CHUNK, placeholders};
    let mut out = HashSet::new();
    for chunk in seqs.chunks(CHUNK) {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT seq FROM released_reports WHERE seq IN ({})",
            placeholders(chunk.len())
        ))?;
        let ids: Vec<i64> = chunk.iter().map(|s| s.0 as i64).collect();
        let rows = stmt.query_map(&crate::store::db::each(&ids), |r| r.get::<_, i64>(0))?;
        for row in rows {
            out.insert(Seq(row? as u64));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Origin, ReportDraft, Tlp};

    fn report(conn: &Conn, title: &str, at: DateTime<Utc>) -> Seq {
        // A feed item: no member row needed; the release table does not care.
        let origin = Origin::FeedItem { feed: "x".into() };
        crate::store::reports::insert(conn, &origin, &ReportDraft::new(title, Tlp::Amber), at)
            .unwrap()
            .id()
            .0
    }

    fn assign(conn: &Conn, seq: Seq, id: CampaignId) {
        conn.execute(
            "INSERT INTO campaign_reports (seq, campaign_id) VALUES (?1, ?2)
             ON CONFLICT(seq) DO UPDATE SET campaign_id = excluded.campaign_id",
            params![seq.0 as i64, id.to_string()],
        )
        .unwrap();
    }

    /// A campaign release covers what the campaign held then; a report that joins later,
    /// or a campaign merged into it later, stays unreleased.
    #[test]
    fn campaign_release_covers_its_reports_at_that_moment_only() {
        let conn = crate::store::open_in_memory().unwrap();
        let t0 = Utc::now() - chrono::Duration::hours(2);
        let released_c: CampaignId = "C-2026-0001".parse().unwrap();
        let other_c: CampaignId = "C-2026-0002".parse().unwrap();
        let a = report(&conn, "a", t0);
        let hidden = report(&conn, "hidden", t0);
        assign(&conn, a, released_c);
        assign(&conn, hidden, other_c);
        assert_eq!(
            release_campaign(&conn, released_c, "sec", t0 + chrono::Duration::hours(1)).unwrap(),
            1
        );
        // A bridging report merges the unreleased campaign into the released one.
        let bridge = report(&conn, "bridge", t0 + chrono::Duration::minutes(90));
        assign(&conn, bridge, released_c);
        assign(&conn, hidden, released_c);
        assert!(is_released(&conn, a).unwrap());
        assert!(!is_released(&conn, hidden).unwrap());
        assert!(!is_released(&conn, bridge).unwrap());
        assert_eq!(
            released(&conn, &[a, hidden, bridge]).unwrap(),
            HashSet::from([a])
        );
    }
}
