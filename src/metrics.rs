//! Prometheus metrics, kept as plain atomics and rendered on `GET /metrics`.
//!
//! Names follow `musubi_<area>_<name>_<unit>`; labels are bounded (route templates and
//! status classes) and never carry a member, a token, an observable, a TLP or a feed
//! credential: every figure is a process-wide total. Totals still count every report,
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
}

/// Point-in-time values gathered when rendering.
pub struct Gauges {
    pub committed_seq: u64,
    pub indexed_seq: u64,
    pub correlated_seq: u64,
    pub campaigns: u64,
    pub uptime_seconds: f64,
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
        out
    }
}
