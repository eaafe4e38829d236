//! Reports and their observables.

use crate::store::db::{Conn, OptionalExtension, params};
use chrono::{DateTime, Utc};

use super::{Result, StoreError, parse_ts, ts};
use crate::model::{
    Confidence, MemberId, Observable, Origin, Report, ReportDraft, ReportId, ReportMeta, Seq, Tlp,
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
pub fn last_seq(conn: &Conn) -> Result<Seq> {
    let n: Option<i64> = conn.query_row("SELECT max(seq) FROM reports", params![], |r| r.get(0))?;
    Ok(Seq(n.unwrap_or(0) as u64))
}

/// Stores one report. Feed items are deduplicated by their own id, then by content.
pub fn insert(
    conn: &Conn,
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
    let seq = conn.prepare_cached(
        "INSERT INTO reports (origin_kind, member_id, feed, received_at, title, tlp, confidence, external_id, content_hash, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING seq",
    )?
    .query_row(
        params![
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
        ],
        |r| r.get::<_, i64>(0),
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO report_observables (seq, kind, value) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )?;
    for i in &draft.indicators {
        stmt.execute(params![
            seq,
            i.observable.kind().as_str(),
            i.observable.value()
        ])?;
    }
    super::taxii::record(conn, seq, draft, received_at)?;
    Ok(Inserted::New(ReportId(Seq(seq as u64))))
}

/// A submission of `member` with this content hash, if one is stored: a member's MISP
/// feed answers an event again after any edit, and the same content is not stored twice.
pub fn submission_with_content(
    conn: &Conn,
    member: &MemberId,
    content_hash: &str,
) -> Result<Option<ReportId>> {
    let seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM reports WHERE origin_kind = 'submission' AND member_id = ?1 AND content_hash = ?2",
            params![member.0, content_hash],
            |r| r.get(0),
        )
        .optional()?;
    Ok(seq.map(|s| ReportId(Seq(s as u64))))
}

const SELECT: &str = "SELECT seq, origin_kind, member_id, feed, received_at, body FROM reports";

/// The columns every read of `reports` starts with: the sequence number and where the
/// report came from (`origin_kind`, `member_id`, `feed`), then `received_at`. One decoder
/// for the origin, whichever projection of the table is read.
struct Head {
    seq: i64,
    origin_kind: String,
    member: Option<String>,
    feed: Option<String>,
    received_at: String,
}

impl Head {
    /// Columns 0 to 4 of a row.
    fn from_row(r: &crate::store::db::Row<'_>) -> crate::store::db::Result<Head> {
        Ok(Head {
            seq: r.get(0)?,
            origin_kind: r.get(1)?,
            member: r.get(2)?,
            feed: r.get(3)?,
            received_at: r.get(4)?,
        })
    }

    fn id(&self) -> ReportId {
        ReportId(Seq(self.seq as u64))
    }

    fn origin(&self) -> Result<Origin> {
        match (self.origin_kind.as_str(), &self.member, &self.feed) {
            ("submission", Some(m), _) => Ok(Origin::Submission {
                member: MemberId(m.clone()),
            }),
            ("feed_item", _, Some(f)) => Ok(Origin::FeedItem { feed: f.clone() }),
            _ => Err(StoreError::Corrupt(format!(
                "report {} has no valid origin",
                self.seq
            ))),
        }
    }

    fn received_at(&self) -> Result<DateTime<Utc>> {
        parse_ts(&self.received_at)
    }
}

/// A whole report as [`SELECT`] reads it: the head and the body.
struct ReportRow {
    head: Head,
    body: String,
}

fn row_to_report(row: &crate::store::db::Row<'_>) -> crate::store::db::Result<ReportRow> {
    Ok(ReportRow {
        head: Head::from_row(row)?,
        body: row.get(5)?,
    })
}

fn decode(raw: ReportRow) -> Result<Report> {
    let ReportRow { head, body } = raw;
    let seq = head.seq;
    let draft: ReportDraft = serde_json::from_str(&body)
        .map_err(|e| StoreError::Corrupt(format!("report {seq} body: {e}")))?;
    Ok(Report {
        id: head.id(),
        origin: head.origin()?,
        received_at: head.received_at()?,
        draft,
    })
}

/// One report by sequence number.
pub fn get(conn: &Conn, seq: Seq) -> Result<Option<Report>> {
    let raw = conn
        .prepare_cached(&format!("{SELECT} WHERE seq = ?1"))?
        .query_row(params![seq.0 as i64], row_to_report)
        .optional()?;
    raw.map(decode).transpose()
}

/// Reports after `after`, in order, at most `limit`.
pub fn after(conn: &Conn, after: Seq, limit: usize) -> Result<Vec<Report>> {
    let mut stmt =
        conn.prepare_cached(&format!("{SELECT} WHERE seq > ?1 ORDER BY seq LIMIT ?2"))?;
    let rows = stmt.query_map(params![after.0 as i64, limit as i64], row_to_report)?;
    let mut out = Vec::new();
    for raw in rows {
        out.push(decode(raw?)?);
    }
    Ok(out)
}

/// Many reports by sequence number, in the order given (missing ones are skipped): one
/// query per [`CHUNK`] of them, not one per report.
pub fn get_many(conn: &Conn, seqs: &[Seq]) -> Result<Vec<Report>> {
    let mut found = std::collections::HashMap::with_capacity(seqs.len());
    for chunk in seqs.chunks(CHUNK) {
        let mut stmt = conn.prepare_cached(&format!(
            "{SELECT} WHERE seq IN ({})",
            placeholders(chunk.len())
        ))?;
        let ids: Vec<i64> = chunk.iter().map(|s| s.0 as i64).collect();
        let rows = stmt.query_map(&crate::store::db::each(&ids), row_to_report)?;
        for raw in rows {
            let report = decode(raw?)?;
            found.insert(report.seq(), report);
        }
    }
    Ok(in_order(seqs, found))
}

/// How many sequence numbers one batch query binds: well under SQLite's limit on host
/// parameters, and few enough distinct statement shapes for the statement cache.
pub(super) const CHUNK: usize = 500;

/// `?1, ?2, …, ?n`.
pub(super) fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The values found, in the order of `seqs` (missing ones skipped, repeated ones repeated),
/// moving each value out at its last occurrence.
fn in_order<T: Clone>(seqs: &[Seq], mut found: std::collections::HashMap<Seq, T>) -> Vec<T> {
    let last: std::collections::HashMap<Seq, usize> =
        seqs.iter().enumerate().map(|(i, &s)| (s, i)).collect();
    let mut out = Vec::with_capacity(found.len());
    for (i, seq) in seqs.iter().enumerate() {
        let value = if last[seq] == i {
            found.remove(seq)
        } else {
            found.get(seq).cloned()
        };
        out.extend(value);
    }
    out
}

/// Number of reports stored.
pub fn count(conn: &Conn) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM reports", params![], |r| r.get(0))?;
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
pub fn facts_after(conn: &Conn, after: Seq, limit: usize) -> Result<Vec<FactsRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, origin_kind, member_id, feed, received_at FROM reports
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after.0 as i64, limit as i64], Head::from_row)?;
    let mut out = Vec::new();
    let mut pos = std::collections::HashMap::new();
    for row in rows {
        let head = row?;
        pos.insert(head.seq, out.len());
        out.push(FactsRow {
            seq: Seq(head.seq as u64),
            received_at: head.received_at()?,
            member: head.member.map(MemberId),
            feed: head.feed,
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
pub fn meta(conn: &Conn, seq: Seq) -> Result<Option<ReportMeta>> {
    Ok(metas(conn, &[seq])?.pop())
}

/// A report's metadata as [`metas`] reads it: the head, then title, tlp, confidence,
/// scope, recipients (from the body) and the release state.
struct MetaRow {
    head: Head,
    title: String,
    tlp: String,
    confidence: String,
    scope: Option<String>,
    recipients: Option<String>,
    released: bool,
}

impl MetaRow {
    fn from_row(r: &crate::store::db::Row<'_>) -> crate::store::db::Result<MetaRow> {
        Ok(MetaRow {
            head: Head::from_row(r)?,
            title: r.get(5)?,
            tlp: r.get(6)?,
            confidence: r.get(7)?,
            scope: r.get(8)?,
            recipients: r.get(9)?,
            released: r.get(10)?,
        })
    }
}

fn decode_meta(raw: MetaRow) -> Result<ReportMeta> {
    let MetaRow {
        head,
        title,
        tlp,
        confidence,
        scope,
        recipients,
        released,
    } = raw;
    let seq = head.seq;
    Ok(ReportMeta {
        id: head.id(),
        origin: head.origin()?,
        received_at: head.received_at()?,
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
        released,
    })
}

/// Metadata of many reports with their release state, in the order given (missing ones
/// skipped): one query per [`CHUNK`] of them, not one (or two) per report.
pub fn metas(conn: &Conn, seqs: &[Seq]) -> Result<Vec<ReportMeta>> {
    let mut found = std::collections::HashMap::with_capacity(seqs.len());
    for chunk in seqs.chunks(CHUNK) {
        let backend = conn.backend();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT r.seq, r.origin_kind, r.member_id, r.feed, r.received_at, r.title, r.tlp,
                    r.confidence, {}, {},
                    EXISTS (SELECT 1 FROM released_reports rr WHERE rr.seq = r.seq)
             FROM reports r WHERE r.seq IN ({})",
            backend.json_text("r.body", "scope"),
            backend.json_text("r.body", "recipients"),
            placeholders(chunk.len())
        ))?;
        let ids: Vec<i64> = chunk.iter().map(|s| s.0 as i64).collect();
        let rows = stmt.query_map(&crate::store::db::each(&ids), MetaRow::from_row)?;
        for raw in rows {
            let meta = decode_meta(raw?)?;
            found.insert(meta.id.0, meta);
        }
    }
    Ok(in_order(seqs, found))
}

/// The feed items that carry `o`, newest first, at most `limit`: the public context of a
/// value (the read path decides who may see them; this only finds them).
pub(in crate::engine) fn feed_items_holding(
    conn: &Conn,
    o: &Observable,
    limit: usize,
) -> Result<Vec<Seq>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.seq FROM report_observables o JOIN reports r ON r.seq = o.seq \
         WHERE o.kind = ?1 AND o.value = ?2 AND r.origin_kind = 'feed_item' \
         ORDER BY o.seq DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![o.kind().as_str(), o.value(), limit as i64], |r| {
        r.get::<_, i64>(0)
    })?;
    let mut out = Vec::new();
    for r in rows {
        out.push(Seq(r? as u64));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch readers answer exactly as one read per report would: in the order asked,
    /// missing ones skipped, repeated ones repeated, across chunk boundaries, with the
    /// release state of each.
    #[test]
    fn batch_reads_keep_the_order_asked_across_chunks() {
        let conn = crate::store::open_in_memory().unwrap();
        let origin = Origin::FeedItem { feed: "x".into() };
        let at = Utc::now();
        let n = CHUNK as u64 + 7;
        for i in 1..=n {
            insert(
                &conn,
                &origin,
                &ReportDraft::new(format!("r{i}"), Tlp::Green),
                at,
            )
            .unwrap();
        }
        crate::store::releases::release_report(&conn, Seq(3), "sec", at).unwrap();
        crate::store::releases::release_report(&conn, Seq(n), "sec", at).unwrap();
        let mut seqs: Vec<Seq> = (1..=n).rev().map(Seq).collect();
        seqs.insert(5, Seq(n + 100)); // absent
        seqs.push(Seq(3)); // repeated
        let want: Vec<Seq> = seqs.iter().copied().filter(|s| s.0 <= n).collect();

        let metas = metas(&conn, &seqs).unwrap();
        assert_eq!(metas.iter().map(|m| m.id.0).collect::<Vec<_>>(), want);
        for m in &metas {
            assert_eq!(m.title, format!("r{}", m.id.0.0));
            assert_eq!(
                m.released,
                m.id.0 == Seq(3) || m.id.0 == Seq(n),
                "{:?}",
                m.id
            );
        }
        assert_eq!(meta(&conn, Seq(3)).unwrap().map(|m| m.released), Some(true));
        assert!(meta(&conn, Seq(n + 1)).unwrap().is_none());

        let reports = get_many(&conn, &seqs).unwrap();
        assert_eq!(reports.iter().map(|r| r.seq()).collect::<Vec<_>>(), want);
        assert_eq!(
            crate::store::releases::released(&conn, &seqs).unwrap(),
            std::collections::HashSet::from([Seq(3), Seq(n)])
        );
    }
}
