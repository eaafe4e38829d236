//! The audit log: every decision and every read of secretariat-only data.
//!
//! Entries are append-only. `musubi audit` lists them; they are secretariat-only
//! themselves (they name members), and reading them is not audited again.

use crate::store::db::{Conn, params};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store;

/// Well-known actions (others may be recorded; these are the ones musubi writes).
pub mod action {
    pub const DECIDE: &str = "decide";
    pub const PIN_MERGE: &str = "pin-merge";
    pub const PIN_SPLIT: &str = "pin-split";
    pub const PIN_WITHDRAW: &str = "pin-withdraw";
    pub const RELEASE: &str = "release";
    pub const FEEDBACK_REQUEST: &str = "feedback-request";
    pub const FEEDBACK_CLOSE: &str = "feedback-close";
    pub const MEMBER_STATUS: &str = "member-status";
    pub const TOKEN_ROTATE: &str = "token-rotate";
    /// A read of secretariat-only data (a report's provider, sightings by member, ...).
    pub const READ: &str = "read";
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// Appends an entry. Never put a token in `detail`.
pub fn record(
    conn: &Conn,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> store::Result<i64> {
    Ok(conn.query_row(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        params![store::ts_string(at), actor, action, target, detail],
        |r| r.get(0),
    )?)
}

/// Entries at or after `since` (all if `None`), oldest first, at most `limit`; optionally
/// only one actor's.
pub fn list(
    conn: &Conn,
    since: Option<DateTime<Utc>>,
    actor: Option<&str>,
    limit: usize,
) -> store::Result<Vec<AuditEntry>> {
    let since = since.map(store::ts_string).unwrap_or_default();
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, actor, action, target, detail FROM audit
         WHERE at >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR actor = ?2) ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![since, actor, limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, at, actor, action, target, detail) = row?;
        out.push(AuditEntry {
            id,
            at: store::parse_ts_string(&at)?,
            actor,
            action,
            target,
            detail,
        });
    }
    Ok(out)
}
