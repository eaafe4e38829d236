//! What mail keeps in the store: members' addresses, digest windows, per-recipient
//! deliveries and failures (tables of migration 2).
//!
//! A digest window is advanced only after every recipient's copy was accepted by the SMTP
//! server; until then the window is kept in `digest_pending`, so that a restart resends
//! the same window (same Message-IDs) to the recipients without a delivery row only.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::config::mail::Language;
use crate::model::MemberId;
use crate::store::{Result, StoreError, parse_ts, ts};

/// A member's mail address and language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub member: MemberId,
    pub email: String,
    pub language: Language,
}

/// Sets (or replaces) a member's address and language.
pub fn set_contact(conn: &Connection, contact: &Contact) -> Result<()> {
    let res = conn.execute(
        "INSERT INTO member_contacts (member_id, email, language) VALUES (?1, ?2, ?3)
         ON CONFLICT(member_id) DO UPDATE SET email = excluded.email, language = excluded.language",
        params![contact.member.0, contact.email, contact.language.as_str()],
    );
    match res {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(StoreError::Conflict(format!(
                "no member with id {}",
                contact.member
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Every member's contact, by member id.
pub fn contacts(conn: &Connection) -> Result<std::collections::HashMap<MemberId, Contact>> {
    let mut stmt = conn.prepare_cached("SELECT member_id, email, language FROM member_contacts")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = std::collections::HashMap::new();
    for row in rows {
        let (member, email, lang) = row?;
        let language = lang
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("contact of {member}: {e}")))?;
        let member = MemberId(member);
        out.insert(
            member.clone(),
            Contact {
                member,
                email,
                language,
            },
        );
    }
    Ok(out)
}

/// The end of the last window a digest completed.
pub fn sent_until(conn: &Connection, digest: &str) -> Result<Option<DateTime<Utc>>> {
    let raw: Option<String> = conn
        .query_row(
            "SELECT sent_until FROM digest_state WHERE digest = ?1",
            [digest],
            |r| r.get(0),
        )
        .optional()?;
    raw.map(|s| parse_ts(&s)).transpose()
}

/// Sets where a digest's next window starts (first sight of a digest; tests).
pub fn set_sent_until(conn: &Connection, digest: &str, at: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "INSERT INTO digest_state (digest, sent_until) VALUES (?1, ?2)
         ON CONFLICT(digest) DO UPDATE SET sent_until = excluded.sent_until",
        params![digest, ts(at)],
    )?;
    Ok(())
}

/// The window a digest is in the middle of sending, if any.
pub fn pending(conn: &Connection, digest: &str) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>> {
    let raw: Option<(String, String)> = conn
        .query_row(
            "SELECT window_start, window_end FROM digest_pending WHERE digest = ?1",
            [digest],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    raw.map(|(a, b)| Ok((parse_ts(&a)?, parse_ts(&b)?)))
        .transpose()
}

/// Starts a window: recorded before the first message goes out.
pub fn begin(
    conn: &Connection,
    digest: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO digest_pending (digest, window_start, window_end) VALUES (?1, ?2, ?3)",
        params![digest, ts(start), ts(end)],
    )?;
    Ok(())
}

/// Completes a window: the next one starts at its end.
pub fn complete(conn: &Connection, digest: &str, end: DateTime<Utc>) -> Result<()> {
    set_sent_until(conn, digest, end)?;
    conn.execute("DELETE FROM digest_pending WHERE digest = ?1", [digest])?;
    Ok(())
}

/// Members who already received a batch (a digest window or an alert).
pub fn delivered(
    conn: &Connection,
    kind: &str,
    batch: &str,
) -> Result<std::collections::HashSet<MemberId>> {
    let mut stmt = conn
        .prepare_cached("SELECT member_id FROM mail_deliveries WHERE kind = ?1 AND batch = ?2")?;
    let rows = stmt.query_map([kind, batch], |r| r.get::<_, String>(0))?;
    rows.map(|r| Ok(MemberId(r?))).collect()
}

/// Records that the SMTP server accepted a member's copy of a batch.
pub fn record_delivery(
    conn: &Connection,
    kind: &str,
    batch: &str,
    member: &MemberId,
    message_id: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO mail_deliveries (kind, batch, member_id, message_id, sent_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![kind, batch, member.0, message_id, ts(at)],
    )?;
    Ok(())
}

/// Records a delivery failure (shown to the secretariat in its digest).
pub fn record_failure(
    conn: &Connection,
    context: &str,
    error: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO mail_failures (at, context, error) VALUES (?1, ?2, ?3)",
        params![ts(at), context, error],
    )?;
    Ok(())
}

/// Failures recorded in `[start, end)`, oldest first.
pub fn failures(
    conn: &Connection,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, context, error FROM mail_failures WHERE at >= ?1 AND at < ?2 ORDER BY id",
    )?;
    let rows = stmt.query_map([ts(start), ts(end)], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (at, c, e) = row?;
        out.push((parse_ts(&at)?, c, e));
    }
    Ok(out)
}

/// Sequence numbers of the reports received in `[start, end)`.
pub fn reports_received(
    conn: &Connection,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<crate::model::Seq>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq FROM reports WHERE received_at >= ?1 AND received_at < ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map([ts(start), ts(end)], |r| r.get::<_, i64>(0))?;
    rows.map(|r| Ok(crate::model::Seq(r? as u64))).collect()
}
