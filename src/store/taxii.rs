//! The TAXII object log: one row per STIX object a report contributes to the council's
//! TAXII collections (the report itself and one object per observable), keyed by
//! (date added, STIX id) so that a page is an index range scan, not a walk of the whole
//! collection.
//!
//! Rows are written with the report ([`record`], called by [`super::reports::insert`]) and
//! never change: the date added is the report's `received_at`, the id is the provider's own
//! STIX id when the report came as STIX (TAXII clients find their objects again), else an
//! id derived from the report under the council's id secret (a public derivation would let
//! anyone count reports by enumerating sequence numbers). Visibility is not stored:
//! release changes over time, so the reader's [`Visible`] expression (derived from the
//! council policy by `council::read`) is evaluated inside the page query against the
//! report's row, this table's sharing facts and `released_reports`.

use crate::store::db::{Backend, Conn, Value as SqlValue, each, params};
use chrono::{DateTime, Utc};

use super::{Result, StoreError, parse_ts, ts};
use crate::model::{MemberId, ObservableKind, ReportDraft, Scope, Seq, Tlp};

/// Writes the TAXII rows of a freshly inserted report. An id seen twice at the same
/// moment (an indicator that two report objects of one bundle reference) is one object.
pub fn record(
    conn: &Conn,
    seq: i64,
    draft: &ReportDraft,
    received_at: DateTime<Utc>,
) -> Result<()> {
    let secret = secret(conn)?;
    let at = ts(received_at);
    let scope = draft.scope.map(Scope::as_str);
    let recipients = if draft.recipients.is_empty() {
        None
    } else {
        Some(
            serde_json::to_string(&draft.recipients)
                .map_err(|e| StoreError::Corrupt(format!("cannot encode recipients: {e}")))?,
        )
    };
    let mut stmt = conn.prepare_cached(
        "INSERT INTO taxii_objects (added_at, stix_id, seq, kind, value, scope, recipients)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    )?;
    let report_id = draft
        .external_id
        .as_deref()
        .filter(|id| is_stix_id(id, "report"))
        .map(str::to_string)
        .unwrap_or_else(|| derived_id(&secret, "report", &seq.to_string()));
    stmt.execute(params![
        at,
        report_id,
        seq,
        None::<&str>,
        None::<&str>,
        scope,
        recipients
    ])?;
    for i in &draft.indicators {
        let kind = i.observable.kind();
        let value = i.observable.value();
        let ty = object_type(kind);
        let id = i
            .stix_id
            .as_deref()
            .filter(|id| is_stix_id(id, ty))
            .map(str::to_string)
            .unwrap_or_else(|| {
                derived_id(&secret, ty, &format!("{seq}|{}|{value}", kind.as_str()))
            });
        stmt.execute(params![
            at,
            id,
            seq,
            kind.as_str(),
            value,
            scope,
            recipients
        ])?;
    }
    Ok(())
}

/// The STIX type an observable is served as.
pub fn object_type(kind: ObservableKind) -> &'static str {
    match kind {
        ObservableKind::Cve => "vulnerability",
        ObservableKind::AttackTechnique => "attack-pattern",
        ObservableKind::MalwareFamily => "malware",
        _ => "indicator",
    }
}

/// `type--uuid` with the given type and a UUID.
fn is_stix_id(id: &str, ty: &str) -> bool {
    id.strip_prefix(ty)
        .and_then(|rest| rest.strip_prefix("--"))
        .is_some_and(|u| uuid::Uuid::parse_str(u).is_ok())
}

/// A UUIDv5 under a namespace made from the council's id secret.
fn derived_id(secret: &[u8; 32], ty: &str, key: &str) -> String {
    let mut ns = [0u8; 16];
    ns.copy_from_slice(&secret[..16]);
    let ns = uuid::Uuid::from_bytes(ns);
    format!(
        "{ty}--{}",
        uuid::Uuid::new_v5(&ns, format!("taxii|{ty}|{key}").as_bytes())
    )
}

fn secret(conn: &Conn) -> Result<[u8; 32]> {
    match super::process_id_secret() {
        Some(s) => Ok(s),
        None => super::id_secret(conn),
    }
}

/// Fills the log for reports stored before it existed (migration 9), in store order.
pub(super) fn backfill(conn: &Conn) -> Result<()> {
    let mut after = Seq(0);
    loop {
        let batch = super::reports::after(conn, after, 1000)?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = last.seq();
        for r in &batch {
            record(conn, r.seq().0 as i64, &r.draft, r.received_at)?;
        }
    }
}

/// Which reports a viewer may see, as an expression over a report's facts: the council
/// policy folded by `council::read` (never a second policy), evaluated in the page query.
#[derive(Debug, Clone, PartialEq)]
pub enum Visible {
    Any,
    Nothing,
    /// A member's submission (`submission`) or a feed item, with this TLP and scope.
    Class {
        submission: bool,
        tlp: Tlp,
        scope: Option<Scope>,
    },
    ProvidedBy(MemberId),
    Recipient(MemberId),
    Released,
    And(Vec<Visible>),
    Or(Vec<Visible>),
    Not(Box<Visible>),
}

impl Visible {
    /// The expression as SQL over `r` (reports) and `o` (taxii_objects), its parameters
    /// appended to `args` in order.
    fn sql(&self, backend: Backend, args: &mut Vec<SqlValue>) -> String {
        let join = |parts: &[Visible], op: &str, empty: &str, args: &mut Vec<SqlValue>| {
            if parts.is_empty() {
                return empty.to_string();
            }
            let inner: Vec<String> = parts.iter().map(|p| p.sql(backend, args)).collect();
            format!("({})", inner.join(op))
        };
        match self {
            Visible::Any => "TRUE".into(),
            Visible::Nothing => "FALSE".into(),
            Visible::Class {
                submission,
                tlp,
                scope,
            } => {
                args.push(SqlValue::Text(
                    if *submission {
                        "submission"
                    } else {
                        "feed_item"
                    }
                    .into(),
                ));
                args.push(SqlValue::Text(tlp.as_str().into()));
                match scope {
                    Some(s) => {
                        args.push(SqlValue::Text(s.as_str().into()));
                        "(r.origin_kind = ? AND r.tlp = ? AND o.scope = ?)".into()
                    }
                    None => "(r.origin_kind = ? AND r.tlp = ? AND o.scope IS NULL)".into(),
                }
            }
            Visible::ProvidedBy(m) => {
                args.push(SqlValue::Text(m.0.clone()));
                "(r.origin_kind = 'submission' AND r.member_id = ?)".into()
            }
            Visible::Recipient(m) => {
                args.push(SqlValue::Text(m.0.clone()));
                format!(
                    "(o.recipients IS NOT NULL AND {})",
                    backend.json_array_has("o.recipients")
                )
            }
            Visible::Released => {
                "EXISTS (SELECT 1 FROM released_reports rr WHERE rr.seq = o.seq)".into()
            }
            Visible::And(parts) => join(parts, " AND ", "TRUE", args),
            Visible::Or(parts) => join(parts, " OR ", "FALSE", args),
            Visible::Not(p) => format!("(NOT {})", p.sql(backend, args)),
        }
    }
}

/// What one page asks for. Times are the stored text form ([`ts`]).
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    /// Strictly after this (date added, id): the keyset cursor.
    pub after: Option<(DateTime<Utc>, String)>,
    /// Added at or after this time (`added_after`, already moved past the client's time).
    pub added_from: Option<DateTime<Utc>>,
    /// Only these ids (`match[id]`, `objects/{id}`).
    pub ids: Vec<String>,
    /// Only these STIX types (`match[type]`).
    pub types: Vec<String>,
    /// Only objects whose version lies in one of these half-open ranges (`match[version]`).
    pub versions: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// Rows to read.
    pub limit: usize,
}

/// One row of the log.
#[derive(Debug, Clone)]
pub struct ObjectRow {
    pub added_at: DateTime<Utc>,
    pub stix_id: String,
    pub seq: Seq,
    /// The observable, or `None` for the report object.
    pub observable: Option<(ObservableKind, String)>,
}

/// A log row: date added, id, seq, observable kind and value.
type RawRow = (String, String, i64, Option<String>, Option<String>);

fn row(r: &crate::store::db::Row<'_>) -> crate::store::db::Result<RawRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode(raw: RawRow) -> Result<ObjectRow> {
    let (at, stix_id, seq, kind, value) = raw;
    let observable = match (kind, value) {
        (Some(k), Some(v)) => Some((
            k.parse::<ObservableKind>()
                .map_err(|e| StoreError::Corrupt(format!("taxii object {stix_id}: {e}")))?,
            v,
        )),
        _ => None,
    };
    Ok(ObjectRow {
        added_at: parse_ts(&at)?,
        stix_id,
        seq: Seq(seq as u64),
        observable,
    })
}

/// At most `q.limit` visible rows after the cursor, in (date added, id) order: an index
/// range scan that stops after the page (the visibility test is part of the scan).
pub fn page(conn: &Conn, q: &PageQuery, visible: &Visible) -> Result<Vec<ObjectRow>> {
    if *visible == Visible::Nothing || q.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args: Vec<SqlValue> = Vec::new();
    let mut conds: Vec<String> = Vec::new();
    if let Some((at, id)) = &q.after {
        args.push(SqlValue::Text(ts(*at)));
        args.push(SqlValue::Text(id.clone()));
        conds.push("(o.added_at, o.stix_id) > (?, ?)".into());
    }
    if let Some(from) = q.added_from {
        args.push(SqlValue::Text(ts(from)));
        conds.push("o.added_at >= ?".into());
    }
    if !q.ids.is_empty() {
        conds.push(format!(
            "o.stix_id IN ({})",
            vec!["?"; q.ids.len()].join(", ")
        ));
        args.extend(q.ids.iter().map(|i| SqlValue::Text(i.clone())));
    }
    if !q.types.is_empty() {
        let mut parts = Vec::new();
        for t in &q.types {
            let prefix = format!("{t}--");
            parts.push("substr(o.stix_id, 1, ?) = ?".to_string());
            args.push(SqlValue::Integer(prefix.len() as i64));
            args.push(SqlValue::Text(prefix));
        }
        conds.push(format!("({})", parts.join(" OR ")));
    }
    if !q.versions.is_empty() {
        let mut parts = Vec::new();
        for (from, to) in &q.versions {
            parts.push("(o.added_at >= ? AND o.added_at < ?)".to_string());
            args.push(SqlValue::Text(ts(*from)));
            args.push(SqlValue::Text(ts(*to)));
        }
        conds.push(format!("({})", parts.join(" OR ")));
    }
    conds.push(visible.sql(conn.backend(), &mut args));
    args.push(SqlValue::Integer(q.limit as i64));
    // A lookup by id uses the id index; a walk uses the (date added, id) key. (SQLite's
    // planner is told; PostgreSQL's chooses well from its statistics.)
    let index = if q.ids.is_empty() || conn.backend() == Backend::Postgres {
        ""
    } else {
        "INDEXED BY taxii_objects_id"
    };
    let sql = format!(
        "SELECT o.added_at, o.stix_id, o.seq, o.kind, o.value
         FROM taxii_objects o {index} JOIN reports r ON r.seq = o.seq
         WHERE {}
         ORDER BY o.added_at, o.stix_id LIMIT ?",
        conds.join(" AND ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(&each(&args), row)?;
    let mut out = Vec::new();
    for raw in rows {
        out.push(decode(raw?)?);
    }
    Ok(out)
}

/// The ids of a report's observable objects, in id order (a report object's `object_refs`).
pub fn object_ids_of(conn: &Conn, seq: Seq) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT stix_id FROM taxii_objects WHERE seq = ?1 AND kind IS NOT NULL ORDER BY stix_id",
    )?;
    let rows = stmt.query_map(params![seq.0 as i64], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Observable, Origin};

    #[test]
    fn posted_ids_are_kept_and_others_are_derived_secretly() {
        let conn = crate::store::open_in_memory().unwrap();
        conn.execute(
            "INSERT INTO members (id, name, category, class, created_at) VALUES ('m001', 'm', 'x', 'class1', '2024-01-01T00:00:00Z')", params![],
        )
        .unwrap();
        let origin = Origin::Submission {
            member: MemberId("m001".into()),
        };
        let mut d = ReportDraft::new("r", Tlp::Green);
        d.push_observable(
            Observable::parse_named("domain", "a.example").unwrap(),
            None,
        );
        d.push_observable(
            Observable::parse_named("domain", "b.example").unwrap(),
            None,
        );
        let own = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f";
        d.indicators[0].stix_id = Some(own.into());
        d.indicators[1].stix_id = Some("indicator--not-a-uuid".into());
        let at = Utc::now();
        crate::store::reports::insert(&conn, &origin, &d, at).unwrap();
        let q = PageQuery {
            limit: 10,
            ..PageQuery::default()
        };
        let rows = page(&conn, &q, &Visible::Any).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().any(|r| r.stix_id == own));
        assert!(rows.iter().all(|r| r.stix_id != "indicator--not-a-uuid"));
        assert!(rows.iter().any(|r| r.stix_id.starts_with("report--")));
        let after = page(
            &conn,
            &PageQuery {
                after: Some((rows[0].added_at, rows[0].stix_id.clone())),
                limit: 10,
                ..PageQuery::default()
            },
            &Visible::Any,
        )
        .unwrap();
        assert_eq!(after.len(), 2);
        assert!(page(&conn, &q, &Visible::Released).unwrap().is_empty());
        assert_eq!(object_ids_of(&conn, Seq(1)).unwrap().len(), 2);
    }
}
