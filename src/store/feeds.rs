//! Feed poller state: one row per feed in `feed_state`.
//!
//! The poller is pure (state in, state out); the daemon loads the state at start-up and
//! saves the state each poll returns, through the writer.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Result, parse_ts, ts};
use crate::model::redact::redact_text;

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
}

/// The saved state of `feed`, or the default (never polled) state.
pub fn load_state(conn: &Connection, feed: &str) -> Result<FeedState> {
    let row = conn
        .query_row(
            "SELECT etag, last_modified, consecutive_failures, next_attempt_after, last_success,
                    last_error, items_added, cursor
             FROM feed_state WHERE feed = ?1",
            [feed],
            |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            },
        )
        .optional()?;
    let Some((etag, last_modified, failures, next, success, error, items, cursor)) = row else {
        return Ok(FeedState::default());
    };
    Ok(FeedState {
        etag,
        last_modified,
        consecutive_failures: failures.max(0) as u32,
        next_attempt_after: next.as_deref().map(parse_ts).transpose()?,
        last_success: success.as_deref().map(parse_ts).transpose()?,
        // Redacted on the way out too: a state saved before redaction existed may hold a
        // feed URL with its credentials.
        last_error: error.as_deref().map(redact_text),
        items_added: items.max(0) as u64,
        cursor,
    })
}

/// Saves the state of `feed` (insert or replace).
pub fn save_state(
    conn: &Connection,
    feed: &str,
    state: &FeedState,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO feed_state (feed, etag, last_modified, consecutive_failures,
             next_attempt_after, last_success, last_error, items_added, cursor, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(feed) DO UPDATE SET
             etag = excluded.etag, last_modified = excluded.last_modified,
             consecutive_failures = excluded.consecutive_failures,
             next_attempt_after = excluded.next_attempt_after,
             last_success = excluded.last_success, last_error = excluded.last_error,
             items_added = excluded.items_added, cursor = excluded.cursor,
             updated_at = excluded.updated_at",
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
        ],
    )?;
    Ok(())
}

/// Every saved state, by feed name (for `musubi feeds` listings).
pub fn all_states(conn: &Connection) -> Result<Vec<(String, FeedState)>> {
    let names: Vec<String> = conn
        .prepare("SELECT feed FROM feed_state ORDER BY feed")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    names
        .into_iter()
        .map(|n| load_state(conn, &n).map(|s| (n, s)))
        .collect()
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
