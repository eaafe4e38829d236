//! Prometheus metrics, kept as plain atomics and rendered on `GET /metrics`.
//!
//! Names follow `musubi_<area>_<name>_<unit>`; labels are bounded (route templates and
//! status classes) and never carry a member, a token, an observable, a TLP or a feed
//! credential: every figure is a process-wide total, except the feed counters, which are
//! labelled with the feed's *name* from `feeds.toml` (an operator's word, never its URL,
//! whose query may hold a key). Totals still count every report,
//! hidden ones included, which is why `/metrics` answers to the secretariat's token only.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of the daemon.
#[derive(Debug, Default)]
pub struct Metrics {
    pub submissions_accepted: AtomicU64,
    pub submissions_rejected: AtomicU64,
    pub reports_stored: AtomicU64,
    pub store_unavailable: AtomicU64,
    pub http_client_errors: AtomicU64,
    pub http_server_errors: AtomicU64,
    pub searches: AtomicU64,
    /// Mail delivery counters, shared with the mail tasks.
    pub mail: std::sync::Arc<crate::outputs::mail::MailStats>,
    /// Latched once the projections have caught up with the startup backlog (`/healthz`).
    pub ready: std::sync::atomic::AtomicBool,
    /// What the store held when the daemon started serving.
    pub backlog: std::sync::OnceLock<crate::council::read::Backlog>,
    /// Per-feed poll counters, by feed name.
    pub feeds: FeedStats,
}

/// Counters of one feed since the daemon started.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FeedCounters {
    pub polls: u64,
    /// Reports stored as new.
    pub items_stored: u64,
    /// Items not stored: already stored (the same item again), or not representable (the
    /// parser's warnings).
    pub items_skipped: u64,
    /// Polls that failed (fetch, parse or store).
    pub errors: u64,
    /// Unix time of the last successful poll (0: none yet).
    pub last_success_unix: i64,
}

/// One per-feed series: name, Prometheus type, help, and how to read it off the counters.
type FeedSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&FeedCounters) -> i64,
);

/// What the feed scheduler records after each poll, read by `/metrics`.
#[derive(Debug, Default)]
pub struct FeedStats {
    by_feed: std::sync::Mutex<std::collections::BTreeMap<String, FeedCounters>>,
}

impl FeedStats {
    /// Records one poll of `feed`: `stored` new reports, `skipped` items, success or not.
    pub fn record(&self, feed: &str, ok: bool, stored: u64, skipped: u64, now_unix: i64) {
        let mut map = self.by_feed.lock().unwrap_or_else(|e| e.into_inner());
        let c = map.entry(feed.to_string()).or_default();
        c.polls += 1;
        c.items_stored += stored;
        c.items_skipped += skipped;
        if ok {
            c.last_success_unix = now_unix;
        } else {
            c.errors += 1;
        }
    }

    /// The counters of every feed polled so far, by name.
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, FeedCounters> {
        self.by_feed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn render(&self, out: &mut String) {
        let feeds = self.snapshot();
        if feeds.is_empty() {
            return;
        }
        let series: [FeedSeries; 5] = [
            (
                "musubi_feed_polls_total",
                "counter",
                "Polls of the feed.",
                |c| c.polls as i64,
            ),
            (
                "musubi_feed_items_stored_total",
                "counter",
                "Feed items stored as new reports.",
                |c| c.items_stored as i64,
            ),
            (
                "musubi_feed_items_skipped_total",
                "counter",
                "Feed items not stored: already stored, or not representable (the feed's warnings).",
                |c| c.items_skipped as i64,
            ),
            (
                "musubi_feed_errors_total",
                "counter",
                "Polls that failed (fetch, parse or store).",
                |c| c.errors as i64,
            ),
            (
                "musubi_feed_last_success_timestamp_seconds",
                "gauge",
                "Unix time of the feed's last successful poll (0: none since start).",
                |c| c.last_success_unix,
            ),
        ];
        for (name, kind, help, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (feed, c) in &feeds {
                let _ = writeln!(out, "{name}{{feed=\"{}\"}} {}", label_value(feed), value(c));
            }
        }
    }
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Point-in-time values gathered when rendering.
pub struct Gauges {
    /// The last report in the store itself (the shared database's head on PostgreSQL).
    pub store_seq: u64,
    pub committed_seq: u64,
    pub indexed_seq: u64,
    pub correlated_seq: u64,
    pub campaigns: u64,
    pub uptime_seconds: f64,
    /// Whether this node holds the leader duties.
    pub role: crate::model::Role,
}

impl Gauges {
    /// Reports the store holds that this node has not yet heard were committed (other
    /// nodes' commits, before their notification arrives).
    pub fn store_lag(&self) -> u64 {
        self.store_seq.saturating_sub(self.committed_seq)
    }

    /// Reports committed to the store and not yet in the index.
    pub fn index_lag(&self) -> u64 {
        self.committed_seq.saturating_sub(self.indexed_seq)
    }

    /// Reports committed to the store and not yet applied to the correlation graph (on a
    /// follower this includes what the leader has not recorded yet).
    pub fn correlation_lag(&self) -> u64 {
        self.committed_seq.saturating_sub(self.correlated_seq)
    }
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            "musubi_submissions_accepted_total",
            "Submissions stored and acknowledged.",
            self.submissions_accepted.load(Relaxed),
        );
        counter(
            "musubi_submissions_rejected_total",
            "Submissions rejected as invalid.",
            self.submissions_rejected.load(Relaxed),
        );
        counter(
            "musubi_store_reports_stored_total",
            "Reports stored by this process.",
            self.reports_stored.load(Relaxed),
        );
        counter(
            "musubi_store_unavailable_total",
            "Writes refused because the store was unavailable.",
            self.store_unavailable.load(Relaxed),
        );
        counter(
            "musubi_http_client_errors_total",
            "Responses with a 4xx status.",
            self.http_client_errors.load(Relaxed),
        );
        counter(
            "musubi_http_server_errors_total",
            "Responses with a 5xx status.",
            self.http_server_errors.load(Relaxed),
        );
        counter(
            "musubi_search_queries_total",
            "Search queries served.",
            self.searches.load(Relaxed),
        );
        self.mail.render(&mut out);
        self.feeds.render(&mut out);
        let mut gauge = |name: &str, help: &str, v: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "musubi_store_committed_seq",
            "Last report sequence number committed to the store.",
            g.committed_seq.to_string(),
        );
        gauge(
            "musubi_index_seq",
            "Last report sequence number committed to the index.",
            g.indexed_seq.to_string(),
        );
        gauge(
            "musubi_correlate_seq",
            "Last report sequence number applied to the correlation graph.",
            g.correlated_seq.to_string(),
        );
        gauge(
            "musubi_correlate_campaigns",
            "Campaigns in the current snapshot.",
            g.campaigns.to_string(),
        );
        gauge(
            "musubi_uptime_seconds",
            "Seconds since the daemon started.",
            format!("{:.3}", g.uptime_seconds),
        );
        gauge(
            "musubi_store_lag",
            "Reports in the store this node has not yet heard were committed.",
            g.store_lag().to_string(),
        );
        gauge(
            "musubi_index_lag",
            "Reports committed to the store and not yet indexed.",
            g.index_lag().to_string(),
        );
        gauge(
            "musubi_correlate_lag",
            "Reports committed to the store and not yet correlated.",
            g.correlation_lag().to_string(),
        );
        gauge(
            "musubi_leader",
            "1 while this node holds the leader duties (feeds, mail, campaign ids), else 0.",
            u8::from(g.role.is_leader()).to_string(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_counters_render_per_feed_name() {
        let m = Metrics::default();
        m.feeds.record("cisa-kev", true, 3, 1, 1_700_000_000);
        m.feeds.record("cisa-kev", false, 0, 0, 1_700_000_100);
        m.feeds.record("odd \"name\"", true, 0, 0, 5);
        let out = m.render(&Gauges {
            store_seq: 0,
            committed_seq: 0,
            indexed_seq: 0,
            correlated_seq: 0,
            campaigns: 0,
            uptime_seconds: 0.0,
            role: crate::model::Role::Leader,
        });
        assert!(
            out.contains("musubi_feed_polls_total{feed=\"cisa-kev\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("musubi_feed_items_stored_total{feed=\"cisa-kev\"} 3"),
            "{out}"
        );
        assert!(
            out.contains("musubi_feed_items_skipped_total{feed=\"cisa-kev\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("musubi_feed_errors_total{feed=\"cisa-kev\"} 1"),
            "{out}"
        );
        assert!(
            out.contains(
                "musubi_feed_last_success_timestamp_seconds{feed=\"cisa-kev\"} 1700000000"
            ),
            "{out}"
        );
        assert!(out.contains("{feed=\"odd \\\"name\\\"\"}"), "{out}");
    }
}
