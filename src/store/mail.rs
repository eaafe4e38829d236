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
//!
//! A window covers a range of report *sequence numbers*, not of receipt times: a report is
//! stamped before it commits, so one stamped just before a window's end that commits after
//! the window was begun would be in neither that window (not there when it was read) nor the
//! next (stamped before its start). Sequence numbers are given in commit order on both
//! backends (one writer on SQLite; every group commit holds `LOG_LOCK` on PostgreSQL), so
//! beginning a window records the store's head *in the writer's transaction* ([`WindowBounds`]'s
//! `through`), and the next window covers the seqs after it. The times stay for display and
//! the schedule.
//!
//! Stores from before the seq bounds (migration 15) fall back to time once: a window left
//! pending by the upgrade has no seqs and is finished as it was begun (`[start, end)` by
//! receipt time), and the first window after a state without a seq starts at its time
//! (`received_at >= start`) and ends at a seq; every later window is bounded by seqs only.

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

/// The reports a digest window covers, and the times it is shown with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowBounds {
    /// Shown as "received between `start` and `end`"; `end` also names the window's batch.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The window covers the reports after this seq (the previous window's `through`).
    /// None: the previous state predates seq bounds; the reports received at or after
    /// `start` (the time fallback, once).
    pub after: Option<Seq>,
    /// The window covers the reports up to this seq (the head when it was begun). None: a
    /// window begun before the upgrade; the reports received before `end`.
    pub through: Option<Seq>,
}

impl WindowBounds {
    /// A window as a time range only (a window begun before seq bounds; tests).
    pub fn by_time(start: DateTime<Utc>, end: DateTime<Utc>) -> WindowBounds {
        WindowBounds {
            start,
            end,
            after: None,
            through: None,
        }
    }
}

/// Where a digest's next window starts: the end of the last completed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentUntil {
    pub at: DateTime<Utc>,
    /// The last report seq it covered (None: a state from before seq bounds, or set by time
    /// only with [`MailBook::set_sent_until`]).
    pub through: Option<Seq>,
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
        Ok(self.sent(digest).await?.map(|s| s.at))
    }

    /// The end of the last window a digest completed, with the last report seq it covered.
    pub async fn sent(&self, digest: &str) -> Result<Option<SentUntil>> {
        let d = digest.to_string();
        self.store.read_async(move |c| sent_state(c, &d)).await
    }

    /// Sets where a digest's next window starts, by time only (tests, an operator resetting
    /// a digest): the next window falls back to `received_at >= at` for its start.
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

    /// First sight of a digest: its first window starts at `at` and after the reports
    /// committed now. Does nothing if the digest already has a state (another node saw it
    /// first).
    pub async fn start(&self, digest: &str, at: DateTime<Utc>) -> Result<()> {
        let d = digest.to_string();
        self.store.writer().write(move |c| start(c, &d, at)).await
    }

    /// The window a digest is in the middle of sending, if any.
    pub async fn pending(&self, digest: &str) -> Result<Option<WindowBounds>> {
        let d = digest.to_string();
        self.store.read_async(move |c| pending(c, &d)).await
    }

    /// [`MailBook::pending`] outside the async runtime.
    pub fn pending_blocking(&self, digest: &str) -> Result<Option<WindowBounds>> {
        self.store.read(|c| pending(c, digest))
    }

    /// The window a digest would begin at `end` if it began one now (previews): like
    /// [`MailBook::begin`] but recording nothing. The head is read outside the writer, so
    /// a report committing meanwhile may fall either side; a preview does not count.
    pub async fn next_window(
        &self,
        digest: &str,
        default_start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<WindowBounds> {
        let d = digest.to_string();
        self.store
            .read_async(move |c| next_window(c, &d, default_start, end))
            .await
    }

    /// Begins a window ending at `end`, recorded before the first message goes out: it
    /// starts where the last completed one ended (`default_start` for a digest never sent)
    /// and covers the reports committed up to now, read in the writer's transaction (the
    /// head cannot move under it). A report committing after this is in the next window.
    pub async fn begin(
        &self,
        digest: &str,
        default_start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<WindowBounds> {
        let d = digest.to_string();
        self.store
            .writer()
            .write(move |c| begin(c, &d, default_start, end))
            .await
    }

    /// Completes a window: the next one starts at its end and after its last report.
    pub async fn complete(&self, digest: &str, window: WindowBounds) -> Result<()> {
        let d = digest.to_string();
        self.store
            .writer()
            .write(move |c| complete(c, &d, &window))
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

fn seq_of(raw: Option<i64>) -> Option<Seq> {
    raw.map(|n| Seq(n.max(0) as u64))
}

fn seq_param(seq: Option<Seq>) -> Option<i64> {
    seq.map(|s| s.0 as i64)
}

pub(in crate::engine) fn sent_state(conn: &Conn, digest: &str) -> Result<Option<SentUntil>> {
    let raw: Option<(String, Option<i64>)> = conn
        .query_row(
            "SELECT sent_until, sent_through FROM digest_state WHERE digest = ?1",
            params![digest],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    raw.map(|(at, through)| {
        Ok(SentUntil {
            at: parse_ts(&at)?,
            through: seq_of(through),
        })
    })
    .transpose()
}

fn set_sent(conn: &Conn, digest: &str, at: DateTime<Utc>, through: Option<Seq>) -> Result<()> {
    conn.execute(
        "INSERT INTO digest_state (digest, sent_until, sent_through) VALUES (?1, ?2, ?3)
         ON CONFLICT(digest) DO UPDATE
         SET sent_until = excluded.sent_until, sent_through = excluded.sent_through",
        params![digest, ts(at), seq_param(through)],
    )?;
    Ok(())
}

fn set_sent_until(conn: &Conn, digest: &str, at: DateTime<Utc>) -> Result<()> {
    set_sent(conn, digest, at, None)
}

fn start(conn: &Conn, digest: &str, at: DateTime<Utc>) -> Result<()> {
    let head = super::reports::last_seq(conn)?;
    conn.execute(
        "INSERT INTO digest_state (digest, sent_until, sent_through) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        params![digest, ts(at), head.0 as i64],
    )?;
    Ok(())
}

pub(in crate::engine) fn pending(conn: &Conn, digest: &str) -> Result<Option<WindowBounds>> {
    let raw: Option<(String, String, Option<i64>, Option<i64>)> = conn
        .query_row(
            "SELECT window_start, window_end, after_seq, through_seq
             FROM digest_pending WHERE digest = ?1",
            params![digest],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    raw.map(|(start, end, after, through)| {
        Ok(WindowBounds {
            start: parse_ts(&start)?,
            end: parse_ts(&end)?,
            after: seq_of(after),
            through: seq_of(through),
        })
    })
    .transpose()
}

/// The window that would begin now: from the last completed one (or `default_start`) to
/// `end`, through the head as `conn` sees it.
fn next_window(
    conn: &Conn,
    digest: &str,
    default_start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<WindowBounds> {
    let sent = sent_state(conn, digest)?;
    Ok(WindowBounds {
        start: sent.map_or(default_start, |s| s.at).min(end),
        end,
        after: sent.and_then(|s| s.through),
        through: Some(super::reports::last_seq(conn)?),
    })
}

fn begin(
    conn: &Conn,
    digest: &str,
    default_start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<WindowBounds> {
    // On the writer's connection: SQLite's one writer, or PostgreSQL's group transaction
    // holding LOG_LOCK, so no report commits between reading the head and this commit.
    let w = next_window(conn, digest, default_start, end)?;
    conn.execute(
        "INSERT INTO digest_pending (digest, window_start, window_end, after_seq, through_seq)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            digest,
            ts(w.start),
            ts(w.end),
            seq_param(w.after),
            seq_param(w.through)
        ],
    )?;
    Ok(w)
}

fn complete(conn: &Conn, digest: &str, window: &WindowBounds) -> Result<()> {
    // A window begun before seq bounds leaves no seq: the next one falls back to time once.
    set_sent(conn, digest, window.end, window.through)?;
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

/// Sequence numbers of the reports a window covers, in order: seqs in `(after, through]`,
/// with the time fallback for a missing end (`received_at >= start`, `received_at < end`).
pub(in crate::engine) fn reports_received(conn: &Conn, window: &WindowBounds) -> Result<Vec<Seq>> {
    use super::db::Value;
    let (lower, low) = match window.after {
        Some(a) => ("seq > ?1", Value::Integer(a.0 as i64)),
        None => ("received_at >= ?1", Value::Text(ts(window.start))),
    };
    let (upper, high) = match window.through {
        Some(t) => ("seq <= ?2", Value::Integer(t.0 as i64)),
        None => ("received_at < ?2", Value::Text(ts(window.end))),
    };
    let sql = format!("SELECT seq FROM reports WHERE {lower} AND {upper} ORDER BY seq");
    let rows = conn.query_map(&sql, params![low, high], |r| r.get::<_, i64>(0))?;
    Ok(rows.into_iter().map(|n| Seq(n as u64)).collect())
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

    fn feed_item(conn: &Conn, title: &str, at: DateTime<Utc>) -> Seq {
        use crate::model::{Origin, ReportDraft, Tlp};
        let origin = Origin::FeedItem {
            feed: "digest-test".into(),
        };
        super::super::reports::insert(conn, &origin, &ReportDraft::new(title, Tlp::Green), at)
            .unwrap()
            .id()
            .0
    }

    /// The race a time-bounded window loses: a report stamped before the window's end that
    /// commits after the window was begun. By seq it is in the next window, and in no two.
    #[test]
    fn a_report_stamped_before_a_window_ends_and_committed_after_it_began_is_in_the_next() {
        let conn = super::super::open_in_memory().unwrap();
        let t = |s: i64| DateTime::from_timestamp(1_790_000_000 + s, 0).unwrap();
        start(&conn, "d", t(0)).unwrap();
        let a = feed_item(&conn, "before the window ends", t(10));
        let first = begin(&conn, "d", t(-100), t(20)).unwrap();
        assert_eq!(
            (first.start, first.after, first.through),
            (t(0), Some(Seq(0)), Some(a))
        );
        // Stamped 1 ms before the first window's end, committed after it was begun.
        let late = feed_item(
            &conn,
            "stamped in, committed after",
            t(20) - chrono::Duration::milliseconds(1),
        );
        assert_eq!(reports_received(&conn, &first).unwrap(), vec![a]);
        // Resumed (read again) after the late commit: still the same reports.
        assert_eq!(pending(&conn, "d").unwrap(), Some(first));
        assert_eq!(reports_received(&conn, &first).unwrap(), vec![a]);
        // By time it would be in neither window.
        assert_eq!(
            reports_received(&conn, &WindowBounds::by_time(t(20), t(40))).unwrap(),
            Vec::<Seq>::new()
        );
        complete(&conn, "d", &first).unwrap();
        assert_eq!(
            sent_state(&conn, "d").unwrap(),
            Some(SentUntil {
                at: t(20),
                through: Some(a)
            })
        );
        let b = feed_item(&conn, "in the second window", t(30));
        let second = begin(&conn, "d", t(-100), t(40)).unwrap();
        assert_eq!(
            (second.start, second.after, second.through),
            (t(20), Some(a), Some(b))
        );
        assert_eq!(reports_received(&conn, &second).unwrap(), vec![late, b]);
        // A window is begun once: a second begin (a deposed leader) fails, nothing changes.
        assert!(begin(&conn, "d", t(-100), t(50)).is_err());
        assert_eq!(pending(&conn, "d").unwrap(), Some(second));
    }

    /// Rows from before seq bounds fall back to time once: a pending window without seqs is
    /// read by time on both ends and completes without a seq; the next window starts by
    /// time and ends at a seq; the one after is bounded by seqs only.
    #[test]
    fn windows_without_seqs_fall_back_to_time_once() {
        let conn = super::super::open_in_memory().unwrap();
        let t = |s: i64| DateTime::from_timestamp(1_790_000_000 + s, 0).unwrap();
        let early = feed_item(&conn, "before the window", t(-5));
        let inside = feed_item(&conn, "inside", t(5));
        let after_end = feed_item(&conn, "stamped after its end", t(25));
        // As migration 15 leaves a window that was pending: no seqs.
        conn.execute(
            "INSERT INTO digest_pending (digest, window_start, window_end) VALUES ('d', ?1, ?2)",
            params![ts(t(0)), ts(t(20))],
        )
        .unwrap();
        let legacy = pending(&conn, "d").unwrap().unwrap();
        assert_eq!(legacy, WindowBounds::by_time(t(0), t(20)));
        assert_eq!(reports_received(&conn, &legacy).unwrap(), vec![inside]);
        complete(&conn, "d", &legacy).unwrap();
        assert_eq!(sent_state(&conn, "d").unwrap().unwrap().through, None);

        let next = begin(&conn, "d", t(-100), t(40)).unwrap();
        assert_eq!(
            (next.start, next.after, next.through),
            (t(20), None, Some(after_end))
        );
        assert_eq!(reports_received(&conn, &next).unwrap(), vec![after_end]);
        complete(&conn, "d", &next).unwrap();
        let last = feed_item(&conn, "stamped long ago, committed now", t(-50));
        let third = begin(&conn, "d", t(-100), t(60)).unwrap();
        assert_eq!((third.after, third.through), (Some(after_end), Some(last)));
        assert_eq!(reports_received(&conn, &third).unwrap(), vec![last]);
        assert!(!reports_received(&conn, &third).unwrap().contains(&early));
        // Setting the start by time only drops the seq: the fallback applies again.
        set_sent_until(&conn, "e", t(0)).unwrap();
        assert_eq!(sent_state(&conn, "e").unwrap().unwrap().through, None);
    }
}
