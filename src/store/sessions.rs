//! Console sessions, login nonces and failed-credential counts ([`FailureBook`]): the state a console request
//! needs whichever node serves it, kept in the store so that a load balancer may send any
//! request to any node and a restart signs nobody out.
//!
//! Rows are keyed by the SHA-256 of the session id or nonce, never by the value: whoever
//! reads a copy of the database learns who is signed in, but cannot open a session. A
//! session stores no CSRF token either; the console derives it from the session id it is
//! given (`http::console::session`).
//!
//! Reached from http through [`SessionBook`], a small typed API like `store::mail`'s
//! `MailBook`: the console keeps its own bookkeeping here, and what a page *shows* still
//! comes from the council's read path.
//!
//! The SQL is portable (numbered placeholders, `ON CONFLICT`, BIGINT-sized integers, no
//! SQLite functions) so that it runs unchanged on PostgreSQL.

use std::collections::HashSet;
use std::time::Duration;

use super::db::{Conn, OptionalExtension, params};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{Result, Store, parse_ts, ts};
use crate::model::MemberId;

/// How long sessions and nonces live and how many are kept: the console's policy, handed
/// to the store by the console.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// A session ends after this long without a request...
    pub idle: Duration,
    /// ... and after this long in any case.
    pub absolute: Duration,
    /// Sessions kept at most (the longest idle go first).
    pub max_sessions: i64,
    /// A session's last-seen time is written only when it is older than this, so that a
    /// request does not cost a durable write; the idle limit is thus exact to within it.
    pub touch_after: Duration,
    /// A login nonce is good for this long after it was issued.
    pub nonce_life: Duration,
    /// Unused login nonces kept at most (the oldest go first).
    pub max_nonces: i64,
}

/// A live session as stored: who signed in, under which token generation, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub member: MemberId,
    pub generation: u64,
    pub created: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// The typed door to the console's session tables. Cheap to clone.
#[derive(Clone)]
pub struct SessionBook {
    store: Store,
    limits: SessionLimits,
}

impl Store {
    /// The console's sessions and nonces in this store, under `limits`.
    pub fn sessions(&self, limits: SessionLimits) -> SessionBook {
        SessionBook {
            store: self.clone(),
            limits,
        }
    }
}

impl SessionBook {
    /// Opens a session for a member who just authenticated under token generation
    /// `generation`; returns the session id (32 random bytes, hex), durable when returned.
    pub async fn open(
        &self,
        member: &MemberId,
        generation: u64,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let id = random_secret();
        let (hash, member, limits) = (secret_hash(&id), member.clone(), self.limits);
        self.store
            .writer()
            .write(move |c| open(c, &hash, &member, generation, now, &limits))
            .await?;
        Ok(id)
    }

    /// The live session with this id, if any. An expired one is deleted; a live one whose
    /// last-seen time is older than [`SessionLimits::touch_after`] is touched (a failure to
    /// touch is logged, not fatal: the session is still good).
    pub async fn find(&self, id: &str, now: DateTime<Utc>) -> Result<Option<StoredSession>> {
        let hash = secret_hash(id);
        let h = hash.clone();
        let Some(session) = self.store.read_async(move |c| find(c, &h)).await? else {
            return Ok(None);
        };
        let limits = self.limits;
        if !live(&session, now, &limits) {
            self.end_hash(hash).await?;
            return Ok(None);
        }
        if now - session.last_seen >= chrono_duration(limits.touch_after) {
            let touched = self
                .store
                .writer()
                .write(move |c| {
                    c.execute(
                        "UPDATE console_sessions SET last_seen_at = ?2 WHERE id_hash = ?1",
                        params![hash, ts(now)],
                    )?;
                    Ok(())
                })
                .await;
            if let Err(e) = touched {
                tracing::warn!(error = %e, "Could not record a console session's last request.");
            }
        }
        Ok(Some(session))
    }

    /// Ends a session (sign-out, or its member's credentials changed).
    pub async fn end(&self, id: &str) -> Result<()> {
        self.end_hash(secret_hash(id)).await
    }

    async fn end_hash(&self, hash: String) -> Result<()> {
        self.store
            .writer()
            .write(move |c| {
                c.execute(
                    "DELETE FROM console_sessions WHERE id_hash = ?1",
                    params![hash],
                )?;
                Ok(())
            })
            .await
    }

    /// A fresh login nonce for one sign-in form (32 random bytes, hex), durable when
    /// returned.
    pub async fn issue_nonce(&self, now: DateTime<Utc>) -> Result<String> {
        let nonce = random_secret();
        let (hash, limits) = (secret_hash(&nonce), self.limits);
        self.store
            .writer()
            .write(move |c| issue_nonce(c, &hash, now, &limits))
            .await?;
        Ok(nonce)
    }

    /// Uses up a nonce: true once, if it was issued less than
    /// [`SessionLimits::nonce_life`] ago. Deleting is the test, so two nodes taking the
    /// same nonce at once cannot both succeed.
    pub async fn take_nonce(&self, nonce: &str, now: DateTime<Utc>) -> Result<bool> {
        let hash = secret_hash(nonce);
        let since = ts(now - chrono_duration(self.limits.nonce_life));
        self.store
            .writer()
            .write(move |c| {
                let n = c.execute(
                    "DELETE FROM login_nonces WHERE nonce_hash = ?1 AND issued_at > ?2",
                    params![hash, since],
                )?;
                Ok(n == 1)
            })
            .await
    }
}

/// The typed door to the failed-credential counts ([`Store::failures`]). Cheap to clone.
#[derive(Clone)]
pub struct FailureBook {
    store: Store,
}

impl Store {
    /// The failed-credential counts of this store, shared by every node.
    pub fn failures(&self) -> FailureBook {
        FailureBook {
            store: self.clone(),
        }
    }
}

impl FailureBook {
    /// Adds failed credential presentations per source to the window starting at
    /// `window_start` (Unix seconds), forgets older windows, and returns the sources whose
    /// count in that window, over every node, has reached `limit`.
    pub async fn count_failures(
        &self,
        window_start: i64,
        failures: Vec<(String, i64)>,
        limit: i64,
    ) -> Result<HashSet<String>> {
        self.store
            .writer()
            .write(move |c| count_failures(c, window_start, &failures, limit))
            .await
    }

    /// The sources whose failures in the window starting at `window_start` have reached
    /// `limit` over every node (read only: a node starting a window learns the blocks
    /// the others recorded).
    pub async fn over_limit(&self, window_start: i64, limit: i64) -> Result<HashSet<String>> {
        self.store
            .read_async(move |c| over_limit(c, window_start, limit))
            .await
    }
}

/// The stored form of a session id or nonce.
fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// 32 random bytes, hex.
fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn live(s: &StoredSession, now: DateTime<Utc>, limits: &SessionLimits) -> bool {
    now - s.last_seen < chrono_duration(limits.idle)
        && now - s.created < chrono_duration(limits.absolute)
}

fn open(
    conn: &Conn,
    hash: &str,
    member: &MemberId,
    generation: u64,
    now: DateTime<Utc>,
    limits: &SessionLimits,
) -> Result<()> {
    conn.execute(
        "DELETE FROM console_sessions WHERE last_seen_at <= ?1 OR created_at <= ?2",
        params![
            ts(now - chrono_duration(limits.idle)),
            ts(now - chrono_duration(limits.absolute))
        ],
    )?;
    make_room(conn, Capped::Sessions, limits.max_sessions)?;
    conn.execute(
        "INSERT INTO console_sessions (id_hash, member_id, generation, created_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![hash, member.0, generation as i64, ts(now)],
    )?;
    Ok(())
}

fn find(conn: &Conn, hash: &str) -> Result<Option<StoredSession>> {
    let row = conn
        .prepare_cached(
            "SELECT member_id, generation, created_at, last_seen_at FROM console_sessions
             WHERE id_hash = ?1",
        )?
        .query_row(params![hash], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .optional()?;
    row.map(|(member, generation, created, last_seen)| {
        Ok(StoredSession {
            member: MemberId(member),
            generation: generation as u64,
            created: parse_ts(&created)?,
            last_seen: parse_ts(&last_seen)?,
        })
    })
    .transpose()
}

fn issue_nonce(conn: &Conn, hash: &str, now: DateTime<Utc>, limits: &SessionLimits) -> Result<()> {
    conn.execute(
        "DELETE FROM login_nonces WHERE issued_at <= ?1",
        params![ts(now - chrono_duration(limits.nonce_life))],
    )?;
    make_room(conn, Capped::Nonces, limits.max_nonces)?;
    conn.execute(
        "INSERT INTO login_nonces (nonce_hash, issued_at) VALUES (?1, ?2)",
        params![hash, ts(now)],
    )?;
    Ok(())
}

fn count_failures(
    conn: &Conn,
    window_start: i64,
    failures: &[(String, i64)],
    limit: i64,
) -> Result<HashSet<String>> {
    let mut add = conn.prepare_cached(
        "INSERT INTO auth_failures (source, window_start, failures) VALUES (?1, ?2, ?3)
         ON CONFLICT (source, window_start)
         DO UPDATE SET failures = auth_failures.failures + excluded.failures",
    )?;
    for (source, n) in failures {
        add.execute(params![source, window_start, n])?;
    }
    conn.execute(
        "DELETE FROM auth_failures WHERE window_start < ?1",
        params![window_start],
    )?;
    over_limit(conn, window_start, limit)
}

fn over_limit(conn: &Conn, window_start: i64, limit: i64) -> Result<HashSet<String>> {
    let mut over = conn.prepare_cached(
        "SELECT source FROM auth_failures WHERE window_start = ?1 AND failures >= ?2",
    )?;
    let rows = over.query_map(params![window_start, limit], |r| r.get::<_, String>(0))?;
    rows.map(|r| Ok(r?)).collect()
}

/// The tables kept under a cap, with the order in which rows go (least recently used first).
#[derive(Clone, Copy)]
enum Capped {
    Sessions,
    Nonces,
}

/// Deletes the oldest rows of `table` so that one more fits under `max`.
fn make_room(conn: &Conn, table: Capped, max: i64) -> Result<()> {
    let (count, trim) = match table {
        Capped::Sessions => (
            "SELECT count(*) FROM console_sessions",
            "DELETE FROM console_sessions WHERE id_hash IN
             (SELECT id_hash FROM console_sessions ORDER BY last_seen_at, id_hash LIMIT ?1)",
        ),
        Capped::Nonces => (
            "SELECT count(*) FROM login_nonces",
            "DELETE FROM login_nonces WHERE nonce_hash IN
             (SELECT nonce_hash FROM login_nonces ORDER BY issued_at, nonce_hash LIMIT ?1)",
        ),
    };
    let kept: i64 = conn.query_row(count, params![], |r| r.get(0))?;
    let over = kept - max + 1;
    if over > 0 {
        conn.execute(trim, params![over])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SessionLimits = SessionLimits {
        idle: Duration::from_secs(8 * 3600),
        absolute: Duration::from_secs(24 * 3600),
        max_sessions: 3,
        touch_after: Duration::from_secs(60),
        nonce_life: Duration::from_secs(15 * 60),
        max_nonces: 2,
    };

    fn db() -> Conn<'static> {
        let conn = super::super::open_in_memory().unwrap();
        conn.execute(
            "INSERT INTO members (id, name, category, class, created_at)
             VALUES ('m001', 'x', 'other', 'general', '2025-01-01T00:00:00Z')",
            params![],
        )
        .unwrap();
        conn
    }

    fn at(h: i64) -> DateTime<Utc> {
        "2025-06-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::hours(h)
    }

    #[test]
    fn sessions_are_stored_by_hash_expire_and_are_capped() {
        let c = db();
        let m = MemberId("m001".into());
        for (i, h) in ["a", "b", "c", "d"].iter().enumerate() {
            open(&c, &secret_hash(h), &m, 3, at(i as i64), &LIMITS).unwrap();
        }
        // The cap keeps three: the longest idle ("a") went first.
        assert!(find(&c, &secret_hash("a")).unwrap().is_none());
        let d = find(&c, &secret_hash("d")).unwrap().unwrap();
        assert_eq!((d.generation, d.created), (3, at(3)));
        let raw: i64 = c
            .query_row(
                "SELECT count(*) FROM console_sessions WHERE id_hash = 'd'",
                params![],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(raw, 0, "the id itself is never stored");
        assert!(live(&d, at(3 + 7), &LIMITS));
        assert!(!live(&d, at(3 + 8), &LIMITS), "idle limit");
        let touched = StoredSession {
            last_seen: at(3 + 23),
            ..d.clone()
        };
        assert!(!live(&touched, at(3 + 24), &LIMITS), "absolute limit");
        // Opening another after the idle limit purges the expired.
        open(&c, &secret_hash("e"), &m, 3, at(3 + 9), &LIMITS).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM console_sessions", params![], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn nonces_are_capped_and_purged() {
        let c = db();
        for (i, h) in ["a", "b", "c"].iter().enumerate() {
            issue_nonce(
                &c,
                &secret_hash(h),
                at(0) + chrono::Duration::seconds(i as i64),
                &LIMITS,
            )
            .unwrap();
        }
        let hashes: Vec<String> = c
            .prepare("SELECT nonce_hash FROM login_nonces ORDER BY issued_at")
            .unwrap()
            .query_map(params![], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(hashes, vec![secret_hash("b"), secret_hash("c")]);
        issue_nonce(&c, &secret_hash("d"), at(1), &LIMITS).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM login_nonces", params![], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "nonces older than their life are purged");
    }

    #[test]
    fn failures_add_up_per_source_and_window() {
        let c = db();
        let over =
            count_failures(&c, 60, &[("10.0.0.1".into(), 2), ("10.0.0.2".into(), 1)], 3).unwrap();
        assert!(over.is_empty());
        let over = count_failures(&c, 60, &[("10.0.0.1".into(), 1)], 3).unwrap();
        assert_eq!(over, HashSet::from(["10.0.0.1".to_string()]));
        let over = count_failures(&c, 120, &[("10.0.0.2".into(), 1)], 3).unwrap();
        assert!(over.is_empty(), "a new window starts from zero");
        let n: i64 = c
            .query_row("SELECT count(*) FROM auth_failures", params![], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1, "older windows are forgotten");
    }
}
