//! Reports and their observables.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Result, StoreError, parse_ts, ts};
use crate::model::{
    Confidence, MemberId, Origin, Report, ReportDraft, ReportId, ReportMeta, Seq, Tlp,
};

/// What happened to a report handed to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored under a new sequence number.
    New(ReportId),
    /// A feed item already stored (same feed and item id, or same content).
    Duplicate(ReportId),
}

impl Inserted {
    pub fn id(self) -> ReportId {
        match self {
            Inserted::New(id) | Inserted::Duplicate(id) => id,
        }
    }
}

/// The highest sequence number stored (0 for an empty store).
pub fn last_seq(conn: &Connection) -> Result<Seq> {
    let n: Option<i64> = conn.query_row("SELECT max(seq) FROM reports", [], |r| r.get(0))?;
    Ok(Seq(n.unwrap_or(0) as u64))
}

/// Stores one report. Feed items are deduplicated by their own id, then by content.
pub fn insert(
    conn: &Connection,
    origin: &Origin,
    draft: &ReportDraft,
    received_at: DateTime<Utc>,
) -> Result<Inserted> {
    let hash = draft.content_hash();
    let (member, feed) = match origin {
        Origin::Submission { member } => (Some(member.0.as_str()), None),
        Origin::FeedItem { feed } => (None, Some(feed.as_str())),
    };
    if let Some(feed) = feed {
        let existing: Option<i64> = match &draft.external_id {
            Some(ext) => conn
                .query_row(
                    "SELECT seq FROM reports WHERE feed = ?1 AND external_id = ?2",
                    params![feed, ext],
                    |r| r.get(0),
                )
                .optional()?,
            None => conn
                .query_row(
                    "SELECT seq FROM reports WHERE feed = ?1 AND content_hash = ?2",
                    params![feed, hash],
                    |r| r.get(0),
                )
                .optional()?,
        };
        if let Some(seq) = existing {
            return Ok(Inserted::Duplicate(ReportId(Seq(seq as u64))));
        }
    }
    let body = serde_json::to_string(draft)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode report: {e}")))?;
    // Cached: a bulk import inserts hundreds of thousands of reports on one connection.
    conn.prepare_cached(
        "INSERT INTO reports (origin_kind, member_id, feed, received_at, title, tlp, confidence, external_id, content_hash, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
            origin.kind_str(),
            member,
            feed,
            ts(received_at),
            draft.title,
            draft.tlp.as_str(),
            draft.confidence.as_str(),
            draft.external_id,
            hash,
            body
        ])?;
    let seq = conn.last_insert_rowid();
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO report_observables (seq, kind, value) VALUES (?1, ?2, ?3)",
    )?;
    for i in &draft.indicators {
        stmt.execute(params![
            seq,
            i.observable.kind().as_str(),
            i.observable.value()
        ])?;
    }
    Ok(Inserted::New(ReportId(Seq(seq as u64))))
}

const SELECT: &str = "SELECT seq, origin_kind, member_id, feed, received_at, body FROM reports";

/// A report row: seq, origin kind, member, feed, received_at, body.
type RawReport = (i64, String, Option<String>, Option<String>, String, String);

fn row_to_report(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawReport> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn decode(raw: RawReport) -> Result<Report> {
    let (seq, kind, member, feed, received_at, body) = raw;
    let origin = match (kind.as_str(), member, feed) {
        ("submission", Some(m), _) => Origin::Submission {
            member: MemberId(m),
        },
        ("feed_item", _, Some(f)) => Origin::FeedItem { feed: f },
        _ => {
            return Err(StoreError::Corrupt(format!(
                "report {seq} has no valid origin"
            )));
        }
    };
    let draft: ReportDraft = serde_json::from_str(&body)
        .map_err(|e| StoreError::Corrupt(format!("report {seq} body: {e}")))?;
    Ok(Report {
        id: ReportId(Seq(seq as u64)),
        origin,
        received_at: parse_ts(&received_at)?,
        draft,
    })
}

/// One report by sequence number.
pub fn get(conn: &Connection, seq: Seq) -> Result<Option<Report>> {
    let raw = conn
        .prepare_cached(&format!("{SELECT} WHERE seq = ?1"))?
        .query_row([seq.0 as i64], row_to_report)
        .optional()?;
    raw.map(decode).transpose()
}

/// Reports after `after`, in order, at most `limit`.
pub fn after(conn: &Connection, after: Seq, limit: usize) -> Result<Vec<Report>> {
    let mut stmt =
        conn.prepare_cached(&format!("{SELECT} WHERE seq > ?1 ORDER BY seq LIMIT ?2"))?;
    let rows = stmt.query_map(params![after.0 as i64, limit as i64], row_to_report)?;
    let mut out = Vec::new();
    for raw in rows {
        out.push(decode(raw?)?);
    }
    Ok(out)
}

/// Many reports by sequence number (missing ones are skipped).
pub fn get_many(conn: &Connection, seqs: &[Seq]) -> Result<Vec<Report>> {
    let mut out = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        if let Some(r) = get(conn, seq)? {
            out.push(r);
        }
    }
    Ok(out)
}

/// Number of reports stored.
pub fn count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM reports", [], |r| r.get(0))?;
    Ok(n as u64)
}

/// What correlation needs of a stored report, read without decoding its body.
#[derive(Debug, Clone)]
pub struct FactsRow {
    pub seq: Seq,
    pub received_at: DateTime<Utc>,
    pub member: Option<MemberId>,
    pub feed: Option<String>,
    pub observables: Vec<crate::model::Observable>,
}

/// Facts of the reports after `after`, in order, at most `limit`.
pub fn facts_after(conn: &Connection, after: Seq, limit: usize) -> Result<Vec<FactsRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, member_id, feed, received_at FROM reports WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after.0 as i64, limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    let mut pos = std::collections::HashMap::new();
    for row in rows {
        let (seq, member, feed, at) = row?;
        pos.insert(seq, out.len());
        out.push(FactsRow {
            seq: Seq(seq as u64),
            received_at: parse_ts(&at)?,
            member: member.map(MemberId),
            feed,
            observables: Vec::new(),
        });
    }
    let (Some(first), Some(last)) = (out.first(), out.last()) else {
        return Ok(out);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT seq, kind, value FROM report_observables WHERE seq >= ?1 AND seq <= ?2",
    )?;
    let rows = stmt.query_map(params![first.seq.0 as i64, last.seq.0 as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (seq, kind, value) = row?;
        let kind = kind
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("report {seq}: {e}")))?;
        if let Some(&i) = pos.get(&seq) {
            out[i]
                .observables
                .push(crate::model::Observable::from_stored(kind, value));
        }
    }
    for row in &mut out {
        row.observables.sort();
    }
    Ok(out)
}

/// The metadata of one report (what the access policy and listings need), without its body.
pub fn meta(conn: &Connection, seq: Seq) -> Result<Option<ReportMeta>> {
    let raw = conn
        .prepare_cached(
            "SELECT seq, origin_kind, member_id, feed, received_at, title, tlp, confidence,
                    json_extract(body, '$.scope'), json_extract(body, '$.recipients')
             FROM reports WHERE seq = ?1",
        )?
        .query_row([seq.0 as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<String>>(9)?,
            ))
        })
        .optional()?;
    let Some((seq, kind, member, feed, at, title, tlp, confidence, scope, recipients)) = raw else {
        return Ok(None);
    };
    let origin = match (kind.as_str(), member, feed) {
        ("submission", Some(m), _) => Origin::Submission {
            member: MemberId(m),
        },
        ("feed_item", _, Some(f)) => Origin::FeedItem { feed: f },
        _ => {
            return Err(StoreError::Corrupt(format!(
                "report {seq} has no valid origin"
            )));
        }
    };
    Ok(Some(ReportMeta {
        id: ReportId(Seq(seq as u64)),
        origin,
        received_at: parse_ts(&at)?,
        title,
        tlp: tlp
            .parse::<Tlp>()
            .map_err(|e| StoreError::Corrupt(format!("report {seq}: {e}")))?,
        confidence: confidence
            .parse::<Confidence>()
            .map_err(|()| StoreError::Corrupt(format!("report {seq}: bad confidence")))?,
        scope: scope
            .map(|s| s.parse())
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("report {seq}: {e}")))?,
        recipients: recipients
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("report {seq}: recipients: {e}")))?
            .unwrap_or_default(),
        released: super::releases::is_released(conn, Seq(seq as u64))?,
    }))
}

/// Metadata of many reports, in the order given (missing ones skipped).
pub fn metas(conn: &Connection, seqs: &[Seq]) -> Result<Vec<ReportMeta>> {
    let mut out = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        if let Some(m) = meta(conn, seq)? {
            out.push(m);
        }
    }
    Ok(out)
}
