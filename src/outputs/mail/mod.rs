//! Mail: scheduled digests and immediate alerts over SMTP.
//!
//! Every copy is built for one recipient through the council policy ([`crate::council::Viewer`]):
//! a member never receives more than the API would show them, and never a provider's name.
//!
//! - [`smtp`]: the mailer (lettre on tokio), retries with backoff, delivery counters.
//! - [`digest`]: building a digest per recipient, windows that advance only after delivery.
//! - [`alert`]: triggers over two campaign snapshots, coalescing, rate limiting.
//! - [`render`]: the embedded minijinja templates (text + HTML, Japanese and English).
//! - [`webhook`]: alert batches POSTed, signed, for a webhook's audience.
//! - [`task`]: the daemon's scheduler and alert tasks.
//!
//! What a mail says comes from the council's read path ([`crate::council::ReadPath`]):
//! views for one viewer, never store rows. The mail's own bookkeeping (windows, deliveries,
//! refusals) is kept through [`crate::council::MailBook`].

pub mod alert;
pub mod digest;
pub mod render;
pub mod smtp;
pub mod task;
pub mod webhook;

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use smtp::Mailer;

/// Errors of the mail outputs.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Mail is not configured (`[smtp]` is missing).
    #[error("mail is not configured (add an [smtp] section to musubi.toml)")]
    NotConfigured,
    #[error("no digest named {0:?} in musubi.toml")]
    UnknownDigest(String),
    #[error("cannot read the smtp password from {what}: {detail}")]
    Password { what: String, detail: String },
    #[error("invalid mail address {address:?} of {whose}: {detail}")]
    Address {
        whose: String,
        address: String,
        detail: String,
    },
    /// A transient failure that outlived the retries: the batch stays open.
    #[error("smtp: {0}")]
    Smtp(String),
    /// The server refused the message for good (5xx): retrying cannot help.
    #[error("smtp: refused permanently: {0}")]
    Rejected(String),
    /// The mailer was built outside the async runtime.
    #[error("the mailer must be built inside the async runtime")]
    NoRuntime,
    /// A webhook could not be signed (its secret is missing or unreadable).
    #[error("webhook secret: {0}")]
    WebhookSecret(String),
    #[error("template {name}: {detail}")]
    Template { name: String, detail: String },
    #[error("building the message: {0}")]
    Message(String),
    #[error("store: {0}")]
    Store(#[from] crate::council::StoreError),
    /// The correlator has not applied every report of a digest window yet: sending now
    /// would leave their campaigns out of this window and of every later one.
    #[error(
        "campaigns are correlated up to report {applied}, the digest window covers up to {through}; the window is sent when they are"
    )]
    CorrelationBehind { applied: u64, through: u64 },
}

/// Delivery counters and the last error, shared by the mail tasks, `/healthz` and `/metrics`.
#[derive(Debug, Default)]
pub struct MailStats {
    pub sent: AtomicU64,
    pub failures: AtomicU64,
    last_error: Mutex<Option<(DateTime<Utc>, String)>>,
    last_sent: Mutex<Option<DateTime<Utc>>>,
}

/// Mail as `/healthz` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MailHealth {
    pub sent: u64,
    pub failures: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sent_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// False while the last attempt to send failed.
    pub ok: bool,
}

impl MailStats {
    pub fn record_sent(&self, at: DateTime<Utc>) {
        self.sent.fetch_add(1, Relaxed);
        *self.last_sent.lock().expect("poisoned") = Some(at);
    }

    pub fn record_failure(&self, at: DateTime<Utc>, error: &str) {
        self.failures.fetch_add(1, Relaxed);
        *self.last_error.lock().expect("poisoned") = Some((at, error.to_string()));
    }

    pub fn health(&self) -> MailHealth {
        let err = self.last_error.lock().expect("poisoned").clone();
        let last_sent = *self.last_sent.lock().expect("poisoned");
        let ok = match (&err, last_sent) {
            (None, _) => true,
            (Some((e, _)), Some(s)) => s > *e,
            (Some(_), None) => false,
        };
        MailHealth {
            sent: self.sent.load(Relaxed),
            failures: self.failures.load(Relaxed),
            last_sent_at: last_sent,
            last_error_at: err.as_ref().map(|(t, _)| *t),
            last_error: err.map(|(_, e)| e),
            ok,
        }
    }

    /// Appends the Prometheus counters.
    pub fn render(&self, out: &mut String) {
        for (name, help, v) in [
            (
                "musubi_mail_sent_total",
                "Messages accepted by the SMTP server.",
                self.sent.load(Relaxed),
            ),
            (
                "musubi_mail_failures_total",
                "Messages given up after retries.",
                self.failures.load(Relaxed),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
    }
}
