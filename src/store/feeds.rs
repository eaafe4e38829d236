//! Feed poller state: one row per feed in `feed_state`.
//!
//! The poller is pure (state in, state out); the daemon loads the state at start-up and
//! saves the state each poll returns, through the writer.

use crate::store::db::{Conn, OptionalExtension, params};
use chrono::{DateTime, Utc};

use super::{Result, parse_ts, ts};
use crate::model::redact::redact_text;

/// What a poll's items became: kept, kept after a change, not kept (the store's copy of
/// `formats::ItemCounts`, which the store may not import).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ItemCounts {
    pub kept: usize,
    pub normalised: usize,
    pub skipped: usize,
}

/// How many skip reasons the feed health keeps: enough to see what goes wrong, not a log.
pub const SKIP_REASONS_KEPT: usize = 5;

/// What musubi remembers about a feed between polls.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct FeedState {
    /// Validator for `If-None-Match`.
    pub etag: Option<String>,
    /// Validator for `If-Modified-Since` (HTTP date as the server sent it; for `file://`
    /// feeds the file's modification time).
    pub last_modified: Option<String>,
    /// Failures since the last success; drives the backoff.
    pub consecutive_failures: u32,
    /// No attempt before this time (set after a failure).
    pub next_attempt_after: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    /// Display text of the last failure, cleared by a success.
    pub last_error: Option<String>,
    /// Reports parsed on the last successful poll that returned content.
    pub items_added: u64,
    /// Format-specific position (MISP feeds: the newest event timestamp fetched).
    pub cursor: Option<String>,
    /// For a member's own feed (`format = "misp-api"`): the member's id, or the member as
    /// configured while the roster lacks it. Such a feed names its provider, so only the
    /// secretariat learns that it exists (`council::read::feeds`).
    pub member: Option<String>,
    /// Items the last poll that returned content kept, normalised and skipped.
    pub last_items: ItemCounts,
    /// The first few ([`SKIP_REASONS_KEPT`]) skip reasons of that poll, `at: why`, redacted.
    pub skip_reasons: Vec<String>,
}

/// The columns of `feed_state` every read selects, in [`FeedState::from_row`]'s order.
const SELECT: &str = "SELECT feed, etag, last_modified, consecutive_failures, next_attempt_after,
        last_success, last_error, items_added, cursor, member, items_kept, items_normalised,
        items_skipped, skip_reasons
    FROM feed_state";

impl FeedState {
    /// A row of [`SELECT`]: the feed's name and its state. Redacted on the way out too: a
    /// state saved before redaction existed may hold a feed URL with its credentials.
    fn from_row(
        r: &crate::store::db::Row<'_>,
    ) -> crate::store::db::Result<(String, Result<FeedState>)> {
        let feed: String = r.get(0)?;
        let failures: i64 = r.get(3)?;
        let next: Option<String> = r.get(4)?;
        let success: Option<String> = r.get(5)?;
        let error: Option<String> = r.get(6)?;
        let items: i64 = r.get(7)?;
        let (etag, last_modified, cursor, member) = (r.get(1)?, r.get(2)?, r.get(8)?, r.get(9)?);
        let count = |i: usize| -> crate::store::db::Result<usize> {
            Ok(r.get::<_, i64>(i)?.max(0) as usize)
        };
        let last_items = ItemCounts {
            kept: count(10)?,
            normalised: count(11)?,
            skipped: count(12)?,
        };
        let reasons: String = r.get(13)?;
        let state = (|| {
            let skip_reasons: Vec<String> = serde_json::from_str(&reasons).map_err(|e| {
                super::StoreError::Corrupt(format!(
                    "feed_state.skip_reasons of feed {feed:?} is not a JSON list of text: {e}"
                ))
            })?;
            Ok(FeedState {
                etag,
                last_modified,
                consecutive_failures: failures.max(0) as u32,
                next_attempt_after: next.as_deref().map(parse_ts).transpose()?,
                last_success: success.as_deref().map(parse_ts).transpose()?,
                last_error: error.as_deref().map(redact_text),
                items_added: items.max(0) as u64,
                cursor,
                member,
                last_items,
                skip_reasons: skip_reasons.iter().map(|r| redact_text(r)).collect(),
            })
        })();
        Ok((feed, state))
    }
}

/// The saved state of `feed`, or the default (never polled) state.
pub fn load_state(conn: &Conn, feed: &str) -> Result<FeedState> {
    let row = conn
        .prepare_cached(&format!("{SELECT} WHERE feed = ?1"))?
        .query_row(params![feed], FeedState::from_row)
        .optional()?;
    match row {
        Some((_, state)) => state,
        None => Ok(FeedState::default()),
    }
}

/// Saves the state of `feed` (insert or replace).
pub fn save_state(
    conn: &Conn,
    feed: &str,
    state: &FeedState,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let skip_reasons: Vec<String> = state
        .skip_reasons
        .iter()
        .take(SKIP_REASONS_KEPT)
        .map(|r| redact_text(r))
        .collect();
    conn.execute(
        "INSERT INTO feed_state (feed, etag, last_modified, consecutive_failures,
             next_attempt_after, last_success, last_error, items_added, cursor, updated_at,
             member, items_kept, items_normalised, items_skipped, skip_reasons)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT(feed) DO UPDATE SET
             etag = excluded.etag, last_modified = excluded.last_modified,
             consecutive_failures = excluded.consecutive_failures,
             next_attempt_after = excluded.next_attempt_after,
             last_success = excluded.last_success, last_error = excluded.last_error,
             items_added = excluded.items_added, cursor = excluded.cursor,
             updated_at = excluded.updated_at, member = excluded.member,
             items_kept = excluded.items_kept, items_normalised = excluded.items_normalised,
             items_skipped = excluded.items_skipped, skip_reasons = excluded.skip_reasons",
        params![
            feed,
            state.etag,
            state.last_modified,
            state.consecutive_failures as i64,
            state.next_attempt_after.map(ts),
            state.last_success.map(ts),
            state.last_error.as_deref().map(redact_text),
            state.items_added as i64,
            state.cursor,
            ts(now),
            state.member,
            state.last_items.kept as i64,
            state.last_items.normalised as i64,
            state.last_items.skipped as i64,
            serde_json::to_string(&skip_reasons).unwrap_or_else(|_| "[]".into()),
        ],
    )?;
    Ok(())
}

/// Marks `feed`'s saved state, if it has one not yet marked, as `member`'s feed. For
/// states saved before feed states recorded their member (migration 11): until its next
/// poll, a member's feed polled by an older version would otherwise show to every member.
pub fn mark_member_feed(conn: &Conn, feed: &str, member: &str) -> Result<()> {
    conn.execute(
        "UPDATE feed_state SET member = ?2 WHERE feed = ?1 AND member IS NULL",
        params![feed, member],
    )?;
    Ok(())
}

/// Every saved state, by feed name (for `musubi feeds` listings): one query.
pub fn all_states(conn: &Conn) -> Result<Vec<(String, FeedState)>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} ORDER BY feed"))?;
    let rows = stmt.query_map(params![], FeedState::from_row)?;
    let mut out = Vec::new();
    for row in rows {
        let (feed, state) = row?;
        out.push((feed, state?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let now = chrono::Utc::now();
        let state = FeedState {
            etag: Some("\"abc\"".into()),
            last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
            consecutive_failures: 2,
            next_attempt_after: Some(now),
            last_success: None,
            last_error: Some("http status 500".into()),
            items_added: 7,
            cursor: Some("1599626526".into()),
            member: Some("m079".into()),
            last_items: ItemCounts {
                kept: 3,
                normalised: 1,
                skipped: 2,
            },
            skip_reasons: vec!["line 4: not an observable".into()],
        };
        let s2 = state.clone();
        store
            .writer()
            .write_blocking(move |c| save_state(c, "kev", &s2, now))
            .unwrap();
        let loaded = store.read(|c| load_state(c, "kev")).unwrap();
        assert_eq!(loaded.etag, state.etag);
        assert_eq!(loaded.consecutive_failures, 2);
        assert_eq!(loaded.items_added, 7);
        assert_eq!(loaded.member, state.member);
        assert_eq!(loaded.last_items, state.last_items);
        assert_eq!(loaded.skip_reasons, state.skip_reasons);
        assert_eq!(
            loaded.next_attempt_after.map(|t| t.timestamp_micros()),
            Some(now.timestamp_micros())
        );
        assert_eq!(
            store.read(|c| load_state(c, "other")).unwrap(),
            FeedState::default()
        );
        assert_eq!(store.read(all_states).unwrap().len(), 1);
        store.close();
    }
}
