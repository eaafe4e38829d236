//! Request budgets and the guard against token guessing, and which of them several nodes
//! share.
//!
//! **Per-member token buckets stay per node.** A bucket per member, so that one runaway
//! script cannot starve the other members, is charged by [`super::auth::authenticate`] for
//! every way in — API (Bearer), TAXII (Basic or Bearer) and console session — and answered
//! with 429 and `Retry-After`. It guards a node's capacity, not a secret, so it is kept in
//! memory and costs no store round trip per request: behind a load balancer spreading
//! requests over N nodes, a member may sustain up to N × `server.requests_per_second`
//! (the limit configured is per node).
//!
//! **The count of failed tokens is shared.** A token is 32 random bytes, so guessing one is
//! hopeless; the [`CredentialGuard`] bounds the tries anyway, and it must hold however many
//! nodes a guesser spreads them over: each node adds its failures per source to the store
//! ([`crate::council::FailureBook`]) at most once a second, and at once when a source
//! reaches the limit on that node, and learns in return which sources have reached it over
//! every node; a node also reads the blocks once at the start of each window (and so
//! after a restart) before it checks a token. A source that has made [`FAILURES_PER_WINDOW`] failed token presentations
//! in the current window (windows of [`FAILURE_WINDOW_SECS`] seconds, aligned to the clock,
//! so nodes need synchronised clocks as they do for time stamps) is answered 429 without
//! its token being checked, so a guess that happens to be right is refused too. Across N
//! nodes the bound is exact to within what a source gets through in the second before a
//! node hears of the block.
//!
//! A source is the peer's address (IPv6 by /64, which one subscriber holds). Behind an
//! HTTP load balancer every request comes from the balancer's address: the budget is then
//! shared by everyone behind it, which bounds guessing as tightly but lets a flood of bad
//! tokens lock out tokens this node has not seen yet; tokens this node accepted in the
//! last ten minutes stay accepted from a blocked source, and console sessions already open
//! are not affected.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::model::MemberId;

/// Requests per second each member may sustain (`server.requests_per_second`).
pub const DEFAULT_RATE: f64 = crate::config::DEFAULT_REQUESTS_PER_SECOND;
/// Requests a member may send in one burst (`server.request_burst`).
pub const DEFAULT_BURST: f64 = crate::config::DEFAULT_REQUEST_BURST;
/// Failed token presentations one source may make per window, over every node.
pub const FAILURES_PER_WINDOW: i64 = 30;
/// The length of a failure window, in seconds; windows start at multiples of it.
pub const FAILURE_WINDOW_SECS: i64 = 60;
/// A node writes its failure counts to the store at most this often (and at once when a
/// source reaches the limit on the node).
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long a token this node accepted stays accepted from a blocked source.
const RECENT_FOR: Duration = Duration::from_secs(600);
/// Accepted tokens remembered at most (their SHA-256, never the token).
const RECENT_MAX: usize = 10_000;

/// Token buckets per member (per node), and the guard against token guessing (shared).
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<MemberId, (f64, Instant)>>,
    /// Failed tokens per source, shared with the other nodes through the store.
    pub guard: CredentialGuard,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(DEFAULT_RATE, DEFAULT_BURST)
    }
}

impl RateLimiter {
    pub fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate,
            burst,
            buckets: Mutex::default(),
            guard: CredentialGuard::default(),
        }
    }

    /// Takes one request from the member's bucket. Err(seconds to wait) when empty.
    pub fn check(&self, member: &MemberId) -> Result<(), f64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limiter poisoned");
        let (tokens, last) = buckets.entry(member.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - *tokens) / self.rate)
        }
    }
}

/// Failure counts waiting to be added to the store: the window they belong to and the
/// failures per source.
pub type FailureBatch = (i64, Vec<(String, i64)>);

/// This node's view of failed token presentations per source (see the module doc).
#[derive(Debug, Default)]
pub struct CredentialGuard {
    state: Mutex<GuardState>,
}

#[derive(Debug, Default)]
struct GuardState {
    /// The window the counts below belong to (Unix seconds of its start).
    window: i64,
    /// This node's failures per source in the window.
    here: HashMap<String, i64>,
    /// Failures not yet added to the store.
    pending: HashMap<String, i64>,
    /// Sources the store said had reached the limit in the window, over every node.
    blocked: HashSet<String>,
    /// Whether the blocks of the window were read from the store yet.
    synced: bool,
    last_flush: Option<Instant>,
    /// SHA-256 of tokens this node accepted, and when.
    recent: HashMap<[u8; 32], Instant>,
}

impl GuardState {
    /// Starts a new window when the clock has moved past this one.
    fn roll(&mut self, now_unix: i64) {
        let window = window_of(now_unix);
        if window != self.window {
            self.window = window;
            self.here.clear();
            self.pending.clear();
            self.blocked.clear();
            self.synced = false;
        }
    }
}

fn window_of(now_unix: i64) -> i64 {
    now_unix.div_euclid(FAILURE_WINDOW_SECS) * FAILURE_WINDOW_SECS
}

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl CredentialGuard {
    /// Whether a token from `source` is refused without being checked: `Some(seconds until
    /// the window ends)` when the source has used up its failures, unless this node accepted
    /// that very token recently.
    pub fn refuses(&self, source: &str, token: &str, now_unix: i64) -> Option<u64> {
        let mut s = self.state.lock().expect("credential guard poisoned");
        s.roll(now_unix);
        let spent = s.blocked.contains(source)
            || s.here
                .get(source)
                .is_some_and(|n| *n >= FAILURES_PER_WINDOW);
        if !spent {
            return None;
        }
        let known = s
            .recent
            .get(&token_key(token))
            .is_some_and(|at| at.elapsed() < RECENT_FOR);
        (!known).then(|| (s.window + FAILURE_WINDOW_SECS - now_unix).max(1) as u64)
    }

    /// The window whose blocks this node has not read from the store yet, if any: the
    /// caller reads them ([`crate::council::FailureBook::over_limit`]) and reports back
    /// with [`CredentialGuard::flushed`]. Asked once per window, so that a node that
    /// starts (or starts a window) knows the blocks the other nodes recorded before it
    /// checks a token.
    pub fn unsynced(&self, now_unix: i64) -> Option<i64> {
        let mut s = self.state.lock().expect("credential guard poisoned");
        s.roll(now_unix);
        (!std::mem::replace(&mut s.synced, true)).then_some(s.window)
    }

    /// Records that a token was accepted.
    pub fn passed(&self, token: &str) {
        let mut s = self.state.lock().expect("credential guard poisoned");
        if s.recent.len() >= RECENT_MAX {
            s.recent.retain(|_, at| at.elapsed() < RECENT_FOR);
            if s.recent.len() >= RECENT_MAX {
                s.recent.clear();
            }
        }
        s.recent.insert(token_key(token), Instant::now());
    }

    /// Records a failed token from `source`; returns the counts to add to the store when
    /// it is time to (a second since the last time, or the source just reached the limit
    /// here). The caller adds them and reports back with [`CredentialGuard::flushed`].
    pub fn failed(&self, source: &str, now_unix: i64) -> Option<FailureBatch> {
        let mut s = self.state.lock().expect("credential guard poisoned");
        s.roll(now_unix);
        let here = {
            let n = s.here.entry(source.to_string()).or_default();
            *n += 1;
            *n
        };
        *s.pending.entry(source.to_string()).or_default() += 1;
        let due = s.last_flush.is_none_or(|at| at.elapsed() >= FLUSH_EVERY)
            || here == FAILURES_PER_WINDOW;
        if !due {
            return None;
        }
        s.last_flush = Some(Instant::now());
        let batch = s.pending.drain().collect();
        Some((s.window, batch))
    }

    /// The store's answer to a batch or a read: the sources that reached the limit over
    /// every node.
    pub fn flushed(&self, window: i64, blocked: HashSet<String>) {
        let mut s = self.state.lock().expect("credential guard poisoned");
        if s.window == window {
            s.blocked.extend(blocked);
        }
    }

    /// A batch the store could not take: kept for the next one.
    pub fn unflushed(&self, (window, batch): FailureBatch) {
        let mut s = self.state.lock().expect("credential guard poisoned");
        if s.window == window {
            for (source, n) in batch {
                *s.pending.entry(source).or_default() += n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_limited_and_refills() {
        let limiter = RateLimiter::new(10.0, 3.0);
        let m = MemberId("m1".into());
        let other = MemberId("m2".into());
        assert!(limiter.check(&m).is_ok());
        assert!(limiter.check(&m).is_ok());
        assert!(limiter.check(&m).is_ok());
        let wait = limiter.check(&m).unwrap_err();
        assert!(wait > 0.0 && wait <= 0.1, "{wait}");
        assert!(limiter.check(&other).is_ok(), "buckets are per member");
        std::thread::sleep(std::time::Duration::from_millis(120));
        assert!(limiter.check(&m).is_ok(), "the bucket refills");
    }

    #[test]
    fn failures_block_a_source_for_the_rest_of_the_window() {
        let g = CredentialGuard::default();
        let t0 = 6_000; // a window start
        assert!(g.failed("a", t0).is_some(), "the first failure is flushed");
        let mut flushed = 1;
        for _ in 1..FAILURES_PER_WINDOW {
            assert_eq!(g.refuses("a", "msb_x", t0 + 1), None);
            if let Some((w, batch)) = g.failed("a", t0 + 1) {
                assert_eq!(w, t0);
                flushed += batch.iter().map(|(_, n)| n).sum::<i64>();
            }
        }
        assert_eq!(
            flushed, FAILURES_PER_WINDOW,
            "reaching the limit flushes at once"
        );
        assert_eq!(g.refuses("a", "msb_x", t0 + 10), Some(50));
        assert_eq!(g.refuses("b", "msb_x", t0 + 10), None, "per source");
        assert_eq!(
            g.refuses("a", "msb_x", t0 + FAILURE_WINDOW_SECS),
            None,
            "a new window"
        );
    }

    #[test]
    fn a_block_learned_from_the_store_holds_and_known_tokens_pass() {
        let g = CredentialGuard::default();
        let t0 = 6_000;
        g.passed("msb_known");
        let (w, _) = g.failed("lb", t0).unwrap();
        // Other nodes' failures brought the source to the limit.
        g.flushed(w, HashSet::from(["lb".to_string()]));
        assert!(g.refuses("lb", "msb_guess", t0 + 2).is_some());
        assert_eq!(g.refuses("lb", "msb_known", t0 + 2), None);
        // A stale answer (for an older window) is ignored.
        g.flushed(w - FAILURE_WINDOW_SECS, HashSet::from(["x".to_string()]));
        assert_eq!(g.refuses("x", "msb_guess", t0 + 2), None);
    }

    #[test]
    fn each_window_is_read_from_the_store_once() {
        let g = CredentialGuard::default();
        assert_eq!(g.unsynced(6_000), Some(6_000));
        assert_eq!(g.unsynced(6_030), None);
        assert_eq!(g.unsynced(6_060), Some(6_060));
    }

    #[test]
    fn a_batch_the_store_refused_goes_out_with_the_next() {
        let g = CredentialGuard::default();
        let batch = g.failed("a", 6_000).unwrap();
        g.unflushed(batch);
        g.state.lock().unwrap().last_flush = None;
        let (_, batch) = g.failed("a", 6_001).unwrap();
        assert_eq!(batch, vec![("a".to_string(), 2)]);
    }
}
