//! Inquiries: the secretariat's questions to chosen member classes about an advisory or a
//! campaign, and the reports members answered them with.

use crate::store::db::{Conn, OptionalExtension, params};
use chrono::{DateTime, Utc};

use super::{Result, StoreError, parse_ts, ts};
use crate::model::{CampaignId, MemberClass, Seq};

/// What an inquiry is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InquiryTarget {
    /// An advisory, named by one of its feed items.
    Advisory(Seq),
    Campaign(CampaignId),
}

/// One inquiry as stored.
#[derive(Debug, Clone)]
pub struct InquiryRow {
    pub id: i64,
    pub opened_at: DateTime<Utc>,
    pub opened_by: String,
    pub target: InquiryTarget,
    pub question: String,
    /// The member classes asked.
    pub classes: Vec<MemberClass>,
}

const SELECT: &str =
    "SELECT id, opened_at, opened_by, target_kind, target, question, classes FROM inquiries";

fn row(
    r: &crate::store::db::Row<'_>,
) -> crate::store::db::Result<(i64, String, String, String, String, String, String)> {
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

fn parse(
    (id, at, by, kind, target, question, classes): (
        i64,
        String,
        String,
        String,
        String,
        String,
        String,
    ),
) -> Result<InquiryRow> {
    let bad = |what: String| StoreError::Corrupt(format!("inquiry {id}: {what}"));
    let target = match kind.as_str() {
        "advisory" => InquiryTarget::Advisory(Seq(target
            .parse()
            .map_err(|_| bad(format!("advisory {target:?}")))?)),
        "campaign" => InquiryTarget::Campaign(target.parse().map_err(bad)?),
        other => return Err(bad(format!("target kind {other:?}"))),
    };
    let classes = classes
        .split(',')
        .filter(|c| !c.is_empty())
        .map(|c| c.parse().map_err(bad))
        .collect::<Result<Vec<MemberClass>>>()?;
    Ok(InquiryRow {
        id,
        opened_at: parse_ts(&at)?,
        opened_by: by,
        target,
        question,
        classes,
    })
}

/// Opens an inquiry; returns its id.
pub fn open(
    conn: &Conn,
    target: &InquiryTarget,
    question: &str,
    classes: &[MemberClass],
    by: &str,
    at: DateTime<Utc>,
) -> Result<i64> {
    let (kind, target) = match target {
        InquiryTarget::Advisory(seq) => ("advisory", seq.0.to_string()),
        InquiryTarget::Campaign(id) => ("campaign", id.to_string()),
    };
    let classes: Vec<&str> = classes.iter().map(|c| c.as_str()).collect();
    Ok(conn.query_row(
        "INSERT INTO inquiries (opened_at, opened_by, target_kind, target, question, classes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        params![ts(at), by, kind, target, question, classes.join(",")],
        |r| r.get(0),
    )?)
}

/// Every inquiry, newest first.
pub fn list(conn: &Conn) -> Result<Vec<InquiryRow>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} ORDER BY id DESC"))?;
    let rows = stmt.query_map(params![], row)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(parse(r?)?);
    }
    Ok(out)
}

/// One inquiry.
pub fn get(conn: &Conn, id: i64) -> Result<Option<InquiryRow>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE id = ?1"))?;
    stmt.query_row(params![id], row)
        .optional()?
        .map(parse)
        .transpose()
}

/// Records that report `seq` answers inquiry `inquiry`.
pub fn answer(conn: &Conn, inquiry: i64, seq: Seq, at: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "INSERT INTO inquiry_answers (inquiry_id, seq, answered_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![inquiry, seq.0 as i64, ts(at)],
    )?;
    Ok(())
}

/// The reports answering `inquiry`, in the order they arrived.
pub fn answers(conn: &Conn, inquiry: i64) -> Result<Vec<Seq>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq FROM inquiry_answers WHERE inquiry_id = ?1 ORDER BY answered_at, seq",
    )?;
    let rows = stmt.query_map(params![inquiry], |r| r.get::<_, i64>(0))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(Seq(r? as u64));
    }
    Ok(out)
}

/// The inquiries that reports among `seqs` answer: (answering report, inquiry).
pub fn answered_by(conn: &Conn, seqs: &[Seq]) -> Result<Vec<(Seq, InquiryRow)>> {
    let mut out = Vec::new();
    let mut stmt = conn.prepare_cached("SELECT inquiry_id FROM inquiry_answers WHERE seq = ?1")?;
    for &seq in seqs {
        let ids: Vec<i64> = stmt
            .query_map(params![seq.0 as i64], |r| r.get(0))?
            .collect::<crate::store::db::Result<_>>()?;
        for id in ids {
            if let Some(inq) = get(conn, id)? {
                out.push((seq, inq));
            }
        }
    }
    Ok(out)
}
