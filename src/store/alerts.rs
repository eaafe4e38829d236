//! Alerts that survive a leader failover (issue #16, item 5): what has been announced, and
//! the outbox of triggers waiting to be mailed.
//!
//! The leader compares each campaign of its latest snapshot with what the store says was
//! already announced (`alert_announced` per campaign: the alerting flags and the sectors;
//! `alert_reports`: which campaign each report belonged to then, so that merges compare
//! with their parts), and in one transaction appends the triggers to `alert_outbox` and
//! records the new announced state ([`record_pass`]). A new leader therefore starts from
//! exactly where its predecessor stopped, whatever changed in between.
//!
//! "Never recorded" (an upgrade, a fresh council) is the absence of the `meta` row
//! [`VERSION_KEY`]: the first pass then records the state without raising anything. The
//! version also fences a deposed leader: a pass recorded against another version than the
//! one its leader read writes nothing ([`Recorded::Superseded`]).
//!
//! Sending: the rows still without a batch are pending; the sender claims them as one batch
//! (`alert_batches`, its id made of the first and last row id) before the first copy goes
//! out, records each copy in `mail_deliveries` (kind `alert`, that batch), and marks the
//! batch done when everyone has it. A claimed batch not done is resumed by whichever node
//! leads next, under the same Message-IDs.
//!
//! Finished batches are forgotten after [`RETENTION_DAYS`] (their outbox rows, their
//! delivery and rejection records) by the op that finishes a batch ([`finish`]), so the
//! outbox does not grow for ever. A finished batch is never resumed, and batch names are
//! made of row ids neither backend gives twice, so no Message-ID can come back.
//!
//! The store does not know the council's reasons: a reason is kept as the text the council
//! writes (`council::read::alerts`).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::db::{Conn, OptionalExtension, params};
use super::{Result, StoreError, parse_ts, ts};
use crate::model::{CampaignId, FlagKind, Sector, Seq};

/// `meta` key: the version of the announced state, raised by every recorded pass; absent
/// until the first pass (the seed) has recorded it.
pub const VERSION_KEY: &str = "alerts_version";
/// `meta` key: the last report the recorded state covers (a snapshot behind it is not
/// compared: it would read reports already announced as new).
pub const THROUGH_KEY: &str = "alerts_through";

/// How long a finished alert batch is kept: long enough to answer "was this member (or
/// webhook) sent that alert?" for a month, then forgotten.
pub const RETENTION_DAYS: i64 = 30;

/// The kind the mail outputs record alert copies under in `mail_deliveries` and
/// `mail_rejections` (`outputs::mail::alert::KIND`; webhooks' copies too).
pub const DELIVERY_KIND: &str = "alert";

/// What was announced of one campaign: its alerting flags and its sectors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announcement {
    pub flags: BTreeSet<FlagKind>,
    pub sectors: BTreeSet<Sector>,
}

/// The announced state as the store holds it.
#[derive(Debug, Clone, Default)]
pub struct Announced {
    /// None: never recorded (the next pass seeds).
    pub version: Option<i64>,
    pub through: Seq,
    /// The campaign each report belonged to when it was last announced.
    pub reports: HashMap<Seq, CampaignId>,
    pub campaigns: HashMap<CampaignId, Announcement>,
}

/// The difference a pass records.
#[derive(Debug, Clone, Default)]
pub struct AnnouncedChange {
    pub reports: Vec<(Seq, CampaignId)>,
    pub gone_reports: Vec<Seq>,
    pub campaigns: Vec<(CampaignId, Announcement)>,
    pub gone_campaigns: Vec<CampaignId>,
    pub through: Seq,
}

impl AnnouncedChange {
    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
            && self.gone_reports.is_empty()
            && self.campaigns.is_empty()
            && self.gone_campaigns.is_empty()
    }
}

impl Announced {
    /// Applies a change this state recorded (the leader's copy follows its own writes).
    pub fn apply(&mut self, change: &AnnouncedChange, version: i64) {
        for (seq, id) in &change.reports {
            self.reports.insert(*seq, *id);
        }
        for seq in &change.gone_reports {
            self.reports.remove(seq);
        }
        for (id, a) in &change.campaigns {
            self.campaigns.insert(*id, a.clone());
        }
        for id in &change.gone_campaigns {
            self.campaigns.remove(id);
        }
        self.through = self.through.max(change.through);
        self.version = Some(version);
    }
}

/// A trigger to append: the campaign and the reason as the council writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub campaign: CampaignId,
    pub reason: String,
}

/// What recording a pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded; the state is now at this version.
    Done { version: i64 },
    /// Another pass was recorded since the state was read: nothing written.
    Superseded,
}

fn meta_opt_i64(conn: &Conn, key: &str) -> Result<Option<i64>> {
    let value: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
        .optional()?;
    value
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("meta {key} = {v:?}: {e}")))
        })
        .transpose()
}

fn set_meta_i64(conn: &Conn, key: &str, value: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value.to_string()],
    )?;
    Ok(())
}

fn join<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn split<T: std::str::FromStr + Ord>(s: &str, what: &str) -> Result<BTreeSet<T>>
where
    T::Err: std::fmt::Display,
{
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse()
                .map_err(|e| StoreError::Corrupt(format!("alert_announced {what} {x:?}: {e}")))
        })
        .collect()
}

fn campaign_id(s: &str) -> Result<CampaignId> {
    s.parse().map_err(StoreError::Corrupt)
}

/// The announced state.
pub(in crate::engine) fn announced(conn: &Conn) -> Result<Announced> {
    let mut out = Announced {
        version: meta_opt_i64(conn, VERSION_KEY)?,
        through: Seq(meta_opt_i64(conn, THROUGH_KEY)?.unwrap_or(0).max(0) as u64),
        ..Announced::default()
    };
    let rows = conn
        .prepare_cached("SELECT seq, campaign_id FROM alert_reports")?
        .query_map(params![], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
    for row in rows {
        let (seq, id) = row?;
        out.reports.insert(Seq(seq as u64), campaign_id(&id)?);
    }
    let rows = conn
        .prepare_cached("SELECT campaign_id, flags, sectors FROM alert_announced")?
        .query_map(params![], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
    for row in rows {
        let (id, flags, sectors) = row?;
        out.campaigns.insert(
            campaign_id(&id)?,
            Announcement {
                flags: split(&flags, "flag")?,
                sectors: split(&sectors, "sector")?,
            },
        );
    }
    Ok(out)
}

/// Records a pass: the change of the announced state and the triggers it raised, in the
/// caller's transaction, if the state is still at `expected` (None: never recorded).
pub(in crate::engine) fn record_pass(
    conn: &Conn,
    expected: Option<i64>,
    change: &AnnouncedChange,
    outbox: &[OutboxEntry],
    at: DateTime<Utc>,
) -> Result<Recorded> {
    if meta_opt_i64(conn, VERSION_KEY)? != expected {
        return Ok(Recorded::Superseded);
    }
    let mut report = conn.prepare_cached(
        "INSERT INTO alert_reports (seq, campaign_id) VALUES (?1, ?2)
         ON CONFLICT(seq) DO UPDATE SET campaign_id = excluded.campaign_id",
    )?;
    for (seq, id) in &change.reports {
        report.execute(params![seq.0 as i64, id.to_string()])?;
    }
    let mut gone = conn.prepare_cached("DELETE FROM alert_reports WHERE seq = ?1")?;
    for seq in &change.gone_reports {
        gone.execute(params![seq.0 as i64])?;
    }
    let mut campaign = conn.prepare_cached(
        "INSERT INTO alert_announced (campaign_id, flags, sectors) VALUES (?1, ?2, ?3)
         ON CONFLICT(campaign_id) DO UPDATE SET flags = excluded.flags, sectors = excluded.sectors",
    )?;
    for (id, a) in &change.campaigns {
        campaign.execute(params![
            id.to_string(),
            join(a.flags.iter().map(|f| f.as_str())),
            join(a.sectors.iter().map(|s| s.as_str()))
        ])?;
    }
    let mut gone = conn.prepare_cached("DELETE FROM alert_announced WHERE campaign_id = ?1")?;
    for id in &change.gone_campaigns {
        gone.execute(params![id.to_string()])?;
    }
    let mut append = conn
        .prepare_cached("INSERT INTO alert_outbox (at, campaign_id, reason) VALUES (?1, ?2, ?3)")?;
    for e in outbox {
        append.execute(params![ts(at), e.campaign.to_string(), e.reason])?;
    }
    let version = expected.unwrap_or(0) + 1;
    set_meta_i64(conn, VERSION_KEY, version)?;
    let through =
        Seq(meta_opt_i64(conn, THROUGH_KEY)?.unwrap_or(0).max(0) as u64).max(change.through);
    set_meta_i64(conn, THROUGH_KEY, through.0 as i64)?;
    Ok(Recorded::Done { version })
}

/// One trigger in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub campaign: CampaignId,
    pub reason: String,
}

/// A batch claimed from the outbox and not yet done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedBatch {
    pub batch: String,
    pub claimed_at: DateTime<Utc>,
    pub rows: Vec<OutboxRow>,
}

/// The triggers not yet in a batch, in short: the coalescing window counts from the oldest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub count: i64,
    pub first_at: DateTime<Utc>,
    pub last_id: i64,
}

/// The outbox as the sender sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outbox {
    /// The oldest claimed batch not done (a sender died or failed in it).
    pub open: Option<ClaimedBatch>,
    /// Triggers not yet in a batch.
    pub pending: Option<Pending>,
    /// When the last batch was claimed (the rate limit counts from it).
    pub last_claimed: Option<DateTime<Utc>>,
}

fn rows(conn: &Conn, sql: &str, args: &[&dyn super::db::Param]) -> Result<Vec<OutboxRow>> {
    let raw = conn.query_map(sql, args, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    raw.into_iter()
        .map(|(id, at, campaign, reason)| {
            Ok(OutboxRow {
                id,
                at: parse_ts(&at)?,
                campaign: campaign_id(&campaign)?,
                reason,
            })
        })
        .collect()
}

/// The outbox: the open batch, the pending triggers, the last claim.
pub(in crate::engine) fn outbox(conn: &Conn) -> Result<Outbox> {
    let open: Option<(String, String)> = conn
        .query_row(
            "SELECT batch, claimed_at FROM alert_batches WHERE done_at IS NULL
             ORDER BY claimed_at, batch LIMIT 1",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let open = match open {
        Some((batch, at)) => Some(ClaimedBatch {
            rows: rows(
                conn,
                "SELECT id, at, campaign_id, reason FROM alert_outbox WHERE batch = ?1 ORDER BY id",
                params![batch],
            )?,
            batch,
            claimed_at: parse_ts(&at)?,
        }),
        None => None,
    };
    let (count, first_at, last_id): (i64, Option<String>, Option<i64>) = conn.query_row(
        "SELECT count(*), min(at), max(id) FROM alert_outbox WHERE batch IS NULL",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let pending = match (first_at, last_id) {
        (Some(at), Some(last_id)) if count > 0 => Some(Pending {
            count,
            first_at: parse_ts(&at)?,
            last_id,
        }),
        _ => None,
    };
    let last: Option<String> = conn.query_row(
        "SELECT max(claimed_at) FROM alert_batches",
        params![],
        |r| r.get(0),
    )?;
    Ok(Outbox {
        open,
        pending,
        last_claimed: last.map(|s| parse_ts(&s)).transpose()?,
    })
}

/// Claims the pending triggers up to row `upto` as one batch, named after its first and last
/// row (`<first>-<last>`), unless a batch is already open: then that one is returned and
/// nothing is claimed (one batch at a time, whichever node claimed it). None if nothing is
/// pending.
pub(in crate::engine) fn claim(
    conn: &Conn,
    upto: i64,
    at: DateTime<Utc>,
) -> Result<Option<String>> {
    let open: Option<String> = conn
        .query_row(
            "SELECT batch FROM alert_batches WHERE done_at IS NULL ORDER BY claimed_at, batch LIMIT 1",
            params![],
            |r| r.get(0),
        )
        .optional()?;
    if open.is_some() {
        return Ok(open);
    }
    let (first, last): (Option<i64>, Option<i64>) = conn.query_row(
        "SELECT min(id), max(id) FROM alert_outbox WHERE batch IS NULL AND id <= ?1",
        params![upto],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(None);
    };
    let batch = format!("{first}-{last}");
    conn.execute(
        "INSERT INTO alert_batches (batch, claimed_at) VALUES (?1, ?2)",
        params![batch, ts(at)],
    )?;
    conn.execute(
        "UPDATE alert_outbox SET batch = ?1 WHERE batch IS NULL AND id <= ?2",
        params![batch, last],
    )?;
    Ok(Some(batch))
}

/// Marks a batch done: every recipient was served or refused for good. In the same
/// transaction, forgets the batches finished more than [`RETENTION_DAYS`] before `at`.
/// Returns how many were forgotten.
pub(in crate::engine) fn finish(conn: &Conn, batch: &str, at: DateTime<Utc>) -> Result<usize> {
    conn.execute(
        "UPDATE alert_batches SET done_at = ?2 WHERE batch = ?1 AND done_at IS NULL",
        params![batch, ts(at)],
    )?;
    purge(conn, at - chrono::Duration::days(RETENTION_DAYS))
}

/// Deletes the batches finished before `before`, with their outbox rows and their delivery
/// and rejection records. Open batches and pending triggers are never touched.
fn purge(conn: &Conn, before: DateTime<Utc>) -> Result<usize> {
    let old: Vec<String> = conn.query_map(
        "SELECT batch FROM alert_batches WHERE done_at IS NOT NULL AND done_at < ?1",
        params![ts(before)],
        |r| r.get(0),
    )?;
    for batch in &old {
        conn.execute("DELETE FROM alert_outbox WHERE batch = ?1", params![batch])?;
        for table in ["mail_deliveries", "mail_rejections"] {
            conn.execute(
                &format!("DELETE FROM {table} WHERE kind = ?1 AND batch = ?2"),
                params![DELIVERY_KIND, batch],
            )?;
        }
        conn.execute("DELETE FROM alert_batches WHERE batch = ?1", params![batch])?;
    }
    Ok(old.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> CampaignId {
        CampaignId {
            year: 2026,
            number: n,
        }
    }

    /// A pass is fenced by the version it read; the outbox is claimed one batch at a time,
    /// named after its rows, and an open batch is handed to the next claimer unchanged.
    #[test]
    fn passes_are_fenced_and_batches_are_claimed_once() {
        let conn = super::super::open_in_memory().unwrap();
        let at = Utc::now();
        assert_eq!(announced(&conn).unwrap().version, None);
        let change = AnnouncedChange {
            campaigns: vec![(
                id(1),
                Announcement {
                    flags: [FlagKind::CrossSector].into(),
                    sectors: [Sector::Telecom, Sector::Finance].into(),
                },
            )],
            through: Seq(3),
            ..AnnouncedChange::default()
        };
        assert_eq!(
            record_pass(&conn, None, &change, &[], at).unwrap(),
            Recorded::Done { version: 1 }
        );
        // A second leader that read "never recorded" writes nothing.
        let entry = OutboxEntry {
            campaign: id(1),
            reason: "flag:surge".into(),
        };
        assert_eq!(
            record_pass(&conn, None, &change, std::slice::from_ref(&entry), at).unwrap(),
            Recorded::Superseded
        );
        let a = announced(&conn).unwrap();
        assert_eq!(a.version, Some(1));
        assert_eq!(a.through, Seq(3));
        assert_eq!(a.campaigns[&id(1)].sectors.len(), 2);
        assert!(outbox(&conn).unwrap().pending.is_none());

        let empty = AnnouncedChange::default();
        record_pass(&conn, Some(1), &empty, &[entry.clone(), entry.clone()], at).unwrap();
        let o = outbox(&conn).unwrap();
        let p = o.pending.unwrap();
        assert_eq!(p.count, 2);
        let b = claim(&conn, p.last_id, at).unwrap().unwrap();
        assert_eq!(b, format!("{}-{}", p.last_id - 1, p.last_id));
        record_pass(&conn, Some(2), &empty, &[entry], at).unwrap();
        // Open: claiming again hands out the same batch.
        assert_eq!(claim(&conn, i64::MAX, at).unwrap(), Some(b.clone()));
        let o = outbox(&conn).unwrap();
        assert_eq!(o.open.as_ref().unwrap().rows.len(), 2);
        assert_eq!(o.pending.unwrap().count, 1);
        finish(&conn, &b, at).unwrap();
        let o = outbox(&conn).unwrap();
        assert!(o.open.is_none());
        assert!(o.last_claimed.is_some());
    }

    fn count(conn: &Conn, sql: &str) -> i64 {
        conn.query_row(sql, params![], |r| r.get(0)).unwrap()
    }

    /// Finishing a batch forgets the batches finished more than the retention before, with
    /// their outbox rows and copies' records; newer, open and pending ones stay.
    #[test]
    fn finishing_a_batch_purges_batches_finished_beyond_the_retention() {
        let conn = super::super::open_in_memory().unwrap();
        let t0 = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let day = chrono::Duration::days(1);
        let entry = OutboxEntry {
            campaign: id(1),
            reason: "flag:surge".into(),
        };
        let mut version = None;
        // One batch a day for 40 days, each with one copy delivered and one refused.
        let mut batches = Vec::new();
        for d in 0..40 {
            let at = t0 + day * d;
            let Recorded::Done { version: v } = record_pass(
                &conn,
                version,
                &AnnouncedChange::default(),
                std::slice::from_ref(&entry),
                at,
            )
            .unwrap() else {
                panic!("superseded")
            };
            version = Some(v);
            let b = claim(&conn, i64::MAX, at).unwrap().unwrap();
            for (table, member) in [("mail_deliveries", "m001"), ("mail_rejections", "m002")] {
                let extra = if table == "mail_deliveries" {
                    "message_id, sent_at"
                } else {
                    "error, rejected_at"
                };
                conn.execute(
                    &format!(
                        "INSERT INTO {table} (kind, batch, member_id, {extra}) VALUES (?1, ?2, ?3, 'x', ?4)"
                    ),
                    params![DELIVERY_KIND, b, member, ts(at)],
                )
                .unwrap();
            }
            // A digest batch of the same name is not the alerts' to forget.
            conn.execute(
                "INSERT INTO mail_deliveries (kind, batch, member_id, message_id, sent_at)
                 VALUES ('digest', ?1, 'm001', 'x', ?2)",
                params![b, ts(at)],
            )
            .unwrap();
            let purged = finish(&conn, &b, at).unwrap();
            // Day 31 forgets day 0, day 32 day 1, ...: one a day once past the retention.
            assert_eq!(
                purged,
                usize::from(i64::from(d) > RETENTION_DAYS),
                "day {d}"
            );
            batches.push(b);
        }
        // Still pending, and an open batch: never purged, however old.
        record_pass(
            &conn,
            version,
            &AnnouncedChange::default(),
            std::slice::from_ref(&entry),
            t0,
        )
        .unwrap();
        let kept = RETENTION_DAYS as usize + 1;
        assert_eq!(
            count(&conn, "SELECT count(*) FROM alert_batches"),
            kept as i64
        );
        assert_eq!(
            count(&conn, "SELECT count(*) FROM alert_outbox"),
            kept as i64 + 1
        );
        for table in ["mail_deliveries", "mail_rejections"] {
            assert_eq!(
                count(
                    &conn,
                    &format!("SELECT count(*) FROM {table} WHERE kind = 'alert'")
                ),
                kept as i64
            );
        }
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM mail_deliveries WHERE kind = 'digest'"
            ),
            40
        );
        let oldest: String = conn
            .query_row(
                "SELECT min(claimed_at) FROM alert_batches",
                params![],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(parse_ts(&oldest).unwrap(), t0 + day * (40 - kept as i32));
        let o = outbox(&conn).unwrap();
        assert!(o.open.is_none());
        assert_eq!(o.pending.unwrap().count, 1);
        assert_eq!(o.last_claimed, Some(t0 + day * 39));
        // The next batch is named after new rows: no Message-ID of a forgotten batch comes back.
        let next = claim(&conn, i64::MAX, t0 + day * 40).unwrap().unwrap();
        assert!(!batches.contains(&next), "{next}");
    }
}
