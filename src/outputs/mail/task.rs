//! The daemon's mail tasks: the digest scheduler and the alert watcher. Both run on tokio,
//! apart from the API; what they send comes from the council's read path (its store reads
//! go to the blocking pool), SMTP is async.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::alert::{self, Coalescer};
use super::{MailStats, Mailer, digest};
use crate::config::Config;
use crate::council::ReadPath;
use crate::council::read::AlertWatch;
use crate::council::{MailBook, Store};

/// How often the scheduler looks whether a digest is due.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(20);
/// The longest pause after failed digest runs.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Starts the mail tasks if `[smtp]` is configured (None otherwise). They stop when `stop`
/// turns true.
pub fn spawn_mail(
    store: Store,
    config: Arc<Config>,
    stats: Arc<MailStats>,
    read: ReadPath,
    stop: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let smtp = config.mail.smtp.as_ref()?;
    let mailer = match Mailer::new(smtp, stats) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "Mail is configured but cannot start; no mail will be sent.");
            return None;
        }
    };
    let book = store.mail();
    // In a set, so that aborting the returned task (a node that stops being leader) aborts
    // both at their next await instead of letting a digest run on to its end.
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(run_digests(
        read.clone(),
        book.clone(),
        config.clone(),
        mailer.clone(),
        stop.clone(),
    ));
    let watch = read.alert_watch();
    tasks.spawn(run_alerts(read, book, config, mailer, watch, stop));
    Some(tokio::spawn(async move {
        while tasks.join_next().await.is_some() {}
    }))
}

async fn run_digests(
    read: ReadPath,
    book: MailBook,
    config: Arc<Config>,
    mailer: Mailer,
    mut stop: watch::Receiver<bool>,
) {
    if config.mail.digests.is_empty() {
        return;
    }
    let mut pause = CHECK_INTERVAL;
    loop {
        let results = digest::run_due(&read, &book, &config, &mailer, Utc::now()).await;
        let failed = results.iter().any(|(_, r)| r.is_err());
        for (name, r) in results {
            if let Err(e) = r {
                tracing::warn!(digest = %name, error = %e, "Digest not completed; it is retried.");
            }
        }
        pause = if failed {
            (pause * 2).min(MAX_BACKOFF)
        } else {
            CHECK_INTERVAL
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

async fn run_alerts(
    read: ReadPath,
    book: MailBook,
    config: Arc<Config>,
    mailer: Mailer,
    mut triggers: AlertWatch,
    mut stop: watch::Receiver<bool>,
) {
    let cfg = &config.mail.alerts;
    if !cfg.enabled {
        return;
    }
    let mut coalescer = Coalescer::new(cfg.coalesce, cfg.min_interval);
    let mut failures = 0u32;
    loop {
        let wait = coalescer
            .deadline()
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            t = triggers.next() => {
                let Some(t) = t else { return };
                if !t.is_empty() {
                    tracing::debug!(triggers = t.len(), "Alert triggers.");
                }
                coalescer.push(t, Instant::now());
            }
            _ = tokio::time::sleep(wait) => {
                let Some(batch) = coalescer.take(Instant::now()) else { continue };
                if let Err(e) = alert::send(&read, &book, &config, &mailer, &batch, Utc::now()).await {
                    failures += 1;
                    tracing::warn!(error = %e, failures, "Alert not delivered to everyone; retrying.");
                    // Put the batch back: the next attempt respects the rate limit.
                    if failures < 10 {
                        coalescer.push(
                            batch.into_iter().flat_map(|(id, rs)| rs.into_iter().map(move |reason| alert::Trigger { campaign: id, reason })).collect(),
                            Instant::now(),
                        );
                    }
                } else {
                    failures = 0;
                }
            }
            _ = stop.changed() => return,
        }
    }
}
