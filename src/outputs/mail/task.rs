//! The daemon's mail tasks: the digest scheduler and the alert watcher. Both run on tokio,
//! apart from the API; what they send comes from the council's read path (its store reads
//! go to the blocking pool), SMTP is async.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::alert;
use super::{MailError, MailStats, Mailer, digest};
use crate::config::Config;
use crate::council::read::{AlertPass, AlertWatch};
use crate::council::{MailBook, ReadPath, Store, StoreWriter, commands};

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
    let writer = store.writer().clone();
    tasks.spawn(run_alerts(read, book, writer, config, mailer, watch, stop));
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
    writer: StoreWriter,
    config: Arc<Config>,
    mailer: Mailer,
    mut watch: AlertWatch,
    mut stop: watch::Receiver<bool>,
) {
    if !config.mail.alerts.enabled {
        return;
    }
    let mut failures = 0u32;
    loop {
        // Record what the latest snapshot raised (the first pass on a store that never
        // recorded any seeds it silently), then send what is due.
        match watch.record(Utc::now()).await {
            Ok(AlertPass::Recorded { triggers }) if triggers > 0 => {
                tracing::debug!(triggers, "Alert triggers recorded.");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Alert triggers not recorded; retrying."),
        }
        let next = match send_due(&read, &book, &writer, &config, &mailer).await {
            Ok(next) => {
                failures = 0;
                next.map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, failures, "Alert not delivered to everyone; retrying.");
                Some((ALERT_RETRY * 2u32.saturating_pow(failures.min(10) - 1)).min(MAX_BACKOFF))
            }
        };
        tokio::select! {
            alive = watch.changed() => if !alive { return },
            _ = tokio::time::sleep(next.unwrap_or(Duration::from_secs(3600))) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The first pause after a failed alert batch (doubled up to [`MAX_BACKOFF`]).
pub const ALERT_RETRY: Duration = Duration::from_secs(5);

/// Sends what the outbox holds that is due: first a batch left open (by a failure, or by a
/// leader that died in it), then the pending triggers once coalesced and rate-limited.
/// Returns when the next pending batch is due (None: nothing pending).
async fn send_due(
    read: &ReadPath,
    book: &MailBook,
    writer: &StoreWriter,
    config: &Config,
    mailer: &Mailer,
) -> Result<Option<DateTime<Utc>>, MailError> {
    let cfg = &config.mail.alerts;
    loop {
        let outbox = read.alert_outbox().await?;
        if let Some(open) = outbox.open {
            tracing::info!(batch = %open.batch, "Sending an alert batch.");
            alert::send(read, book, config, mailer, &open).await?;
            let purged = writer
                .run(commands::finish_alerts(open.batch, Utc::now()))
                .await?;
            if purged > 0 {
                tracing::debug!(purged, "Alert batches past their retention forgotten.");
            }
            continue;
        }
        let Some(pending) = outbox.pending else {
            return Ok(None);
        };
        let due = alert::due_at(
            pending.first_at,
            outbox.last_claimed,
            cfg.coalesce,
            cfg.min_interval,
        );
        if due > Utc::now() {
            return Ok(Some(due));
        }
        // Claimed before the first copy goes out; the open batch is sent by the next turn.
        writer
            .run(commands::claim_alerts(pending.last_id, Utc::now()))
            .await?;
    }
}
