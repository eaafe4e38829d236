//! The mail outputs' own bookkeeping: members' addresses, digest windows, per-recipient
//! deliveries and permanent rejections, and delivery failures.
//!
//! Outputs keep these tables through [`MailBook`], a small typed API, and never through a
//! raw connection: what a mail *says* comes from the council's read path, and the only facts
//! the mail code writes or reads here are its own (which window is open, who was served).
//!
//! A digest window is advanced only after every recipient was either served or refused for
//! good by the SMTP server; until then the window is kept in `digest_pending`, so that a
//! restart resends the same window (same Message-IDs) to the recipients with neither a
//! delivery nor a rejection row.

use std::collections::{HashMap, HashSet};

use crate::store::db::{Conn, OptionalExtension, params};
use chrono::{DateTime, Utc};

use super::{Result, Store, StoreError, parse_ts, ts};
use crate::model::{MemberId, Seq};

/// A member's mail address and language code (`ja`, `en`; the mail code parses it: the
/// store does not know the configuration's types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub member: MemberId,
    pub email: String,
    pub language: String,
}

/// A delivery failure as recorded (shown to the secretariat only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub at: DateTime<Utc>,
    pub context: String,
    pub error: String,
}

/// The typed door to the mail tables. Cheap to clone.
#[derive(Clone)]
pub struct MailBook {
    store: Store,
}

impl Store {
    /// The mail bookkeeping of this store.
    pub fn mail(&self) -> MailBook {
        MailBook {
            store: self.clone(),
        }
    }
}

impl MailBook {
    /// Sets (or replaces) a member's address and language; `Conflict` if there is no such
    /// member.
    pub async fn set_contact(&self, contact: Contact) -> Result<()> {
        self.store
            .writer()
            .write(move |conn| set_contact(conn, &contact))
            .await
    }

    /// [`MailBook::set_contact`] for callers outside the async runtime (the CLI).
    pub fn set_contact_blocking(&self, contact: Contact) -> Result<()> {
        self.store
            .writer()
            .write_blocking(move |conn| set_contact(conn, &contact))
    }

    /// The end of the last window a digest completed.
    pub async fn sent_until(&self, digest: &str) -> Result<Option<DateTime<Utc>>> {
        let d = digest.to_string();
        self.store.read_async(move |c| sent_until(c, &d)).await
    }

    /// Sets where a digest's next window starts (first sight of a digest; tests).
    pub async fn set_sent_until(&self, digest: &str, at: DateTime<Utc>) -> Result<()> {
        let d = digest.to_string();
        self.store
            .writer()
            .write(move |c| set_sent_until(c, &d, at))
            .await
    }

    /// [`MailBook::set_sent_until`] outside the async runtime.
    pub fn set_sent_until_blocking(&self, digest: &str, at: DateTime<Utc>) -> Result<()> {
        let d = digest.to_string();
        self.store
            .writer()
            .write_blocking(move |c| set_sent_until(c, &d, at))
    }

    /// The window a digest is in the middle of sending, if any.
    pub async fn pending(&self, digest: &str) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>> {
        let d = digest.to_string();
        self.store.read_async(move |c| pending(c, &d)).await
    }

    /// [`MailBook::pending`] outside the async runtime.
    pub fn pending_blocking(&self, digest: &str) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>> {
        self.store.read(|c| pending(c, digest))
    }

    /// Starts a window: recorded before the first message goes out.
    pub async fn begin(
        &self,
        digest: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<()> {
        let d = digest.to_string();
        self.store
            .writer()
            .write(move |c| begin(c, &d, start, end))
            .await
    }

    /// Completes a window: the next one starts at its end.
    pub async fn complete(&self, digest: &str, end: DateTime<Utc>) -> Result<()> {
        let d = digest.to_string();
        self.store
            .writer()
            .write(move |c| complete(c, &d, end))
            .await
    }

    /// Members a batch (a digest window or an alert) is done with: served, or refused for
    /// good by the SMTP server.
    pub async fn done(&self, kind: &str, batch: &str) -> Result<HashSet<MemberId>> {
        let (k, b) = (kind.to_string(), batch.to_string());
        self.store
            .read_async(move |c| {
                let mut out = delivered(c, &k, &b)?;
                out.extend(rejected(c, &k, &b)?.into_keys());
                Ok(out)
            })
            .await
    }

    /// Records that the SMTP server accepted a member's copy of a batch.
    pub async fn record_delivery(
        &self,
        kind: &str,
        batch: &str,
        member: &MemberId,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let (k, b, m, id) = (
            kind.to_string(),
            batch.to_string(),
            member.clone(),
            message_id.to_string(),
        );
        self.store
            .writer()
            .write(move |c| record_delivery(c, &k, &b, &m, &id, at))
            .await
    }

    /// Records that the SMTP server refused a member's copy of a batch for good (5xx): the
    /// batch is done with that member, and a failure naming the member is kept for the
    /// secretariat (`context` names the batch, e.g. `digest daily`).
    pub async fn record_rejection(
        &self,
        kind: &str,
        batch: &str,
        context: &str,
        member: &MemberId,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let (k, b, m, e) = (
            kind.to_string(),
            batch.to_string(),
            member.clone(),
            error.to_string(),
        );
        let context = format!("{context}: copy for member {member} refused permanently");
        self.store
            .writer()
            .write(move |c| {
                c.execute(
                    "INSERT INTO mail_rejections
                     (kind, batch, member_id, error, rejected_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (kind, batch, member_id)
                     DO UPDATE SET error = excluded.error, rejected_at = excluded.rejected_at",
                    params![k, b, m.0, e, ts(at)],
                )?;
                record_failure(c, &context, &e, at)
            })
            .await
    }

    /// The members refused for good in a batch, with the server's answer.
    pub async fn rejections(&self, kind: &str, batch: &str) -> Result<HashMap<MemberId, String>> {
        let (k, b) = (kind.to_string(), batch.to_string());
        self.store.read_async(move |c| rejected(c, &k, &b)).await
    }

    /// Records a delivery failure (shown to the secretariat in its digest).
    pub async fn record_failure(
        &self,
        context: &str,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let (c2, e) = (context.to_string(), error.to_string());
        self.store
            .writer()
            .write(move |c| record_failure(c, &c2, &e, at))
            .await
    }
}

pub(in crate::engine) fn set_contact(conn: &Conn, contact: &Contact) -> Result<()> {
    let res = conn.execute(
        "INSERT INTO member_contacts (member_id, email, language) VALUES (?1, ?2, ?3)
         ON CONFLICT(member_id) DO UPDATE SET email = excluded.email, language = excluded.language",
        params![contact.member.0, contact.email, contact.language],
    );
    match res {
        Ok(_) => Ok(()),
        Err(e) if e.is_constraint_violation() => Err(StoreError::Conflict(format!(
            "no member with id {}",
            contact.member
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Every member's contact, by member id.
pub(in crate::engine) fn contacts(conn: &Conn) -> Result<HashMap<MemberId, Contact>> {
    let mut stmt = conn.prepare_cached("SELECT member_id, email, language FROM member_contacts")?;
    let rows = stmt.query_map(params![], |r| {
        Ok(Contact {
            member: MemberId(r.get(0)?),
            email: r.get(1)?,
            language: r.get(2)?,
        })
    })?;
    rows.map(|r| {
        let c = r?;
        Ok((c.member.clone(), c))
    })
    .collect()
}

pub(in crate::engine) fn sent_until(conn: &Conn, digest: &str) -> Result<Option<DateTime<Utc>>> {
    let raw: Option<String> = conn
        .query_row(
            "SELECT sent_until FROM digest_state WHERE digest = ?1",
            params![digest],
            |r| r.get(0),
        )
        .optional()?;
    raw.map(|s| parse_ts(&s)).transpose()
}

fn set_sent_until(conn: &Conn, digest: &str, at: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "INSERT INTO digest_state (digest, sent_until) VALUES (?1, ?2)
         ON CONFLICT(digest) DO UPDATE SET sent_until = excluded.sent_until",
        params![digest, ts(at)],
    )?;
    Ok(())
}

pub(in crate::engine) fn pending(
    conn: &Conn,
    digest: &str,
) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>> {
    let raw: Option<(String, String)> = conn
        .query_row(
            "SELECT window_start, window_end FROM digest_pending WHERE digest = ?1",
            params![digest],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    raw.map(|(a, b)| Ok((parse_ts(&a)?, parse_ts(&b)?)))
        .transpose()
}

fn begin(conn: &Conn, digest: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "INSERT INTO digest_pending (digest, window_start, window_end) VALUES (?1, ?2, ?3)",
        params![digest, ts(start), ts(end)],
    )?;
    Ok(())
}

fn complete(conn: &Conn, digest: &str, end: DateTime<Utc>) -> Result<()> {
    set_sent_until(conn, digest, end)?;
    conn.execute(
        "DELETE FROM digest_pending WHERE digest = ?1",
        params![digest],
    )?;
    Ok(())
}

fn delivered(conn: &Conn, kind: &str, batch: &str) -> Result<HashSet<MemberId>> {
    let mut stmt = conn
        .prepare_cached("SELECT member_id FROM mail_deliveries WHERE kind = ?1 AND batch = ?2")?;
    let rows = stmt.query_map(params![kind, batch], |r| r.get::<_, String>(0))?;
    rows.map(|r| Ok(MemberId(r?))).collect()
}

fn rejected(conn: &Conn, kind: &str, batch: &str) -> Result<HashMap<MemberId, String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT member_id, error FROM mail_rejections WHERE kind = ?1 AND batch = ?2",
    )?;
    let rows = stmt.query_map(params![kind, batch], |r| {
        Ok((MemberId(r.get::<_, String>(0)?), r.get::<_, String>(1)?))
    })?;
    rows.map(|r| Ok(r?)).collect()
}

fn record_delivery(
    conn: &Conn,
    kind: &str,
    batch: &str,
    member: &MemberId,
    message_id: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO mail_deliveries (kind, batch, member_id, message_id, sent_at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        params![kind, batch, member.0, message_id, ts(at)],
    )?;
    Ok(())
}

fn record_failure(conn: &Conn, context: &str, error: &str, at: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "INSERT INTO mail_failures (at, context, error) VALUES (?1, ?2, ?3)",
        params![ts(at), context, error],
    )?;
    Ok(())
}

/// Failures recorded in `[start, end)`, oldest first.
pub(in crate::engine) fn failures(
    conn: &Conn,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<Failure>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, context, error FROM mail_failures WHERE at >= ?1 AND at < ?2 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![ts(start), ts(end)], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (at, context, error) = row?;
        out.push(Failure {
            at: parse_ts(&at)?,
            context,
            error,
        });
    }
    Ok(out)
}

/// Sequence numbers of the reports received in `[start, end)`.
pub(in crate::engine) fn reports_received(
    conn: &Conn,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<Seq>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq FROM reports WHERE received_at >= ?1 AND received_at < ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![ts(start), ts(end)], |r| r.get::<_, i64>(0))?;
    rows.map(|r| Ok(Seq(r? as u64))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_member_is_done_with_the_batch_and_the_failure_names_them() {
        let conn = super::super::open_in_memory().unwrap();
        let at = Utc::now();
        conn.execute(
            "INSERT INTO mail_rejections (kind, batch, member_id, error, rejected_at)
             VALUES ('digest', 'd.1', 'm003', '550 no such user', ?1)",
            params![ts(at)],
        )
        .unwrap();
        record_failure(
            &conn,
            "digest d: copy for member m003 refused permanently",
            "550",
            at,
        )
        .unwrap();
        assert!(
            rejected(&conn, "digest", "d.1")
                .unwrap()
                .contains_key(&MemberId("m003".into()))
        );
        assert!(rejected(&conn, "digest", "d.2").unwrap().is_empty());
        let f = failures(&conn, at, at + chrono::Duration::seconds(1)).unwrap();
        assert_eq!(f.len(), 1);
        assert!(f[0].context.contains("m003"));
    }
}
