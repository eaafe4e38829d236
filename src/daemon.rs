//! Wiring of the daemon: store, projections, HTTP server, signals, systemd.
//!
//! ```text
//! HTTP ──▶ StoreWriter (group commit) ──committed seq──▶ indexer task ──▶ tantivy
//!                                                  └──▶ correlator task ──▶ campaign snapshot
//! ```
//! Projections follow the store's committed sequence number (a `watch`: they always see the
//! latest value, never a backlog) and also poll it every second, which picks up reports that
//! another process — `musubi import` — wrote. The daemon reports READY once the store is open
//! and the listener bound; both projections catch up in the background and `/healthz` says how
//! far they are. SIGTERM stops accepting, lets requests in flight finish, commits the index
//! and exits.
//!
//! Every node serves everything; the leader duties — polling feeds, sending digests, alerts
//! and webhooks, recording campaign ids — run only while this node is leader
//! ([`leader::Leadership`]): they start when it becomes leader and are stopped (aborted at
//! their next await; a store write already queued commits or not as a whole) when it stops
//! being leader. A follower's correlator shows the ids the leader recorded.

pub mod leader;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::correlate::catchup::Correlator;
use crate::correlate::rules::{Rules, RulesError};
use crate::correlate::{CampaignEvent, CampaignSet};
use crate::http::{self, AppState};
use crate::index::{self, IndexError, Indexer, ReportIndex};
use crate::metrics::Metrics;
use crate::model::{Role, Seq};
use crate::store::{self, Store, StoreError};

/// How often projections look at the store even without a notification.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Least time between two rounds of the indexer that found work. Every round commits a
/// tantivy segment, and under a stream of submissions a round per group commit made
/// segments by the hundred per second and kept a core busy merging them (a third of the
/// daemon's CPU at 32 clients): rounds a quarter of a second apart batch them, and a search
/// sees a submission at most that much later.
const INDEX_EVERY: Duration = Duration::from_millis(250);
/// How long shutdown may take before the daemon gives up waiting.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("index: {0}")]
    Index(#[from] IndexError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("rules: {0}")]
    Rules(#[from] RulesError),
    #[error("[store]: {0}")]
    StoreSettings(#[from] crate::config::store::PostgresSettingsError),
    #[error("{0}")]
    Task(String),
}

/// The correlation rules of `config`: the `rules/` folder if it exists, else the rules
/// compiled into musubi (the same files as shipped).
pub fn load_rules(config: &Config) -> Result<Arc<Rules>, RulesError> {
    if config.rules_dir.is_dir() {
        Ok(Arc::new(Rules::load(&config.rules_dir)?))
    } else {
        tracing::info!(dir = %config.rules_dir.display(), "No rules folder; using the shipped rules.");
        Ok(Rules::shipped())
    }
}

/// Everything a running daemon needs to be started.
pub struct Options {
    pub config: Config,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
}

/// Opens the store `musubi.toml`'s `[store]` names: SQLite in `data_dir` (the default), or
/// the PostgreSQL database the council's nodes share. The data directory holds this node's
/// own projections (the search index) in either case.
pub fn open_store(config: &Config, data_dir: &std::path::Path) -> Result<Store, DaemonError> {
    match &config.store {
        crate::config::store::StoreBackend::Sqlite => Ok(Store::open(data_dir)?),
        crate::config::store::StoreBackend::Postgres(settings) => {
            Ok(Store::open_postgres(&settings.client_config()?)?)
        }
    }
}

/// Opens the store, loads the rules and brings both projections up to date. Used by CLI
/// commands that answer from projections. The rules are parsed on a thread of their own
/// while the store opens and the index catches up, as the daemon does.
pub fn open_projections(
    config: &Config,
    data_dir: &std::path::Path,
) -> Result<(Store, Arc<ReportIndex>, Option<Indexer>, Correlator), DaemonError> {
    std::thread::scope(|scope| {
        let rules = scope.spawn(|| load_rules(config));
        let opened = open_and_catch_up_index(config, data_dir);
        let rules = rules
            .join()
            .map_err(|_| DaemonError::Task("parsing the rules panicked".into()))??;
        let (store, index, indexer) = opened?;
        correlate_from(store, index, indexer, rules)
    })
}

/// The store and the index, caught up with the store unless another process (the daemon)
/// owns the index's writer.
fn open_and_catch_up_index(
    config: &Config,
    data_dir: &std::path::Path,
) -> Result<(Store, Arc<ReportIndex>, Option<Indexer>), DaemonError> {
    let store = open_store(config, data_dir)?;
    let index = Arc::new(ReportIndex::open(data_dir)?);
    let indexer = match index.indexer() {
        Ok(mut indexer) => {
            let added = index::catch_up(&mut indexer, &store)?;
            if added > 0 {
                tracing::info!(added, "Index caught up with the store.");
            }
            index.refresh()?;
            Some(indexer)
        }
        // Another process (the daemon) owns the index and keeps it current.
        Err(IndexError::Locked) => None,
        Err(e) => return Err(e.into()),
    };
    Ok((store, index, indexer))
}

/// The correlation built over `store`, its first campaign ids recorded.
fn correlate_from(
    store: Store,
    index: Arc<ReportIndex>,
    indexer: Option<Indexer>,
    rules: Arc<Rules>,
) -> Result<(Store, Arc<ReportIndex>, Option<Indexer>, Correlator), DaemonError> {
    let (mut correlator, events) = Correlator::start(&store, rules)?;
    if correlator.needs_recording(&events) {
        let op = correlator.record_op(events, chrono::Utc::now());
        let outcome = store.writer().run_blocking(op)?;
        if let store::campaigns::Recorded::Superseded(_) = outcome {
            tracing::warn!("The daemon recorded campaign ids meanwhile; they are kept.");
        }
        correlator.recorded(Some(outcome));
    }
    Ok((store, index, indexer, correlator))
}

/// This node's leadership. One node on its own store (SQLite) is always leader; nodes on a
/// shared PostgreSQL store contend for [`leader::LEADER_LOCK_KEY`]
/// ([`leader::Leadership::pg_advisory_lock`]).
fn leadership(config: &Config) -> Result<leader::Leadership, DaemonError> {
    Ok(match &config.store {
        crate::config::store::StoreBackend::Sqlite => leader::Leadership::solo(),
        crate::config::store::StoreBackend::Postgres(settings) => {
            leader::Leadership::pg_advisory_lock(settings.client_config()?, leader::LEADER_LOCK_KEY)
        }
    })
}

/// Opens the store and the index and takes the index's writer, without catching anything
/// up: the daemon serves from the last committed index while its tasks catch up.
fn open_store_and_index(
    config: &Config,
    data_dir: &std::path::Path,
) -> Result<(Store, Arc<ReportIndex>, Indexer), DaemonError> {
    let store = open_store(config, data_dir)?;
    let index = Arc::new(ReportIndex::open(data_dir)?);
    let indexer = index.indexer()?;
    Ok((store, index, indexer))
}

/// Runs the daemon until `shutdown` resolves. Calls `ready` with the bound address once the
/// store is open and the listener is bound.
///
/// The projections catch up in the background: at a million reports the correlation graph
/// takes longer to build than a restart may take, and the store (the truth) is available at
/// once. Until they are current, `/healthz` says how far each is (`indexed_seq`,
/// `correlated_seq` against `committed_seq`, `projections_current: false`), searches answer
/// from the last committed index, and campaigns are empty until the graph is built. Mail
/// starts only once the graph is built, so that the first real snapshot is not mistaken
/// for a burst of new campaigns.
pub async fn run(
    opts: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), DaemonError> {
    let started = Instant::now();
    let data_dir = opts.data_dir.clone();
    // The rules (3 MB of warning lists) are parsed while the store and the index open:
    // both stand before the listener.
    let config = opts.config.clone();
    let rules = tokio::task::spawn_blocking(move || load_rules(&config));
    let config = opts.config.clone();
    let (store, index, indexer) =
        tokio::task::spawn_blocking(move || open_store_and_index(&config, &data_dir))
            .await
            .map_err(|e| DaemonError::Task(e.to_string()))??;
    let rules = rules
        .await
        .map_err(|e| DaemonError::Task(e.to_string()))??;
    let (rules_tx, rules_rx) = watch::channel(rules.clone());
    let (campaigns_tx, campaigns_rx) = watch::channel(Arc::new(CampaignSet::default()));
    let (indexed_tx, indexed_rx) = watch::channel(indexer.last());
    let (stop_tx, stop_rx) = watch::channel(false);
    let leadership = leadership(&opts.config)?;
    let role = leadership.role();
    // Whether the correlation graph is built: mail waits for it, so that the first real
    // snapshot is not mistaken for a burst of new campaigns.
    let (built_tx, built_rx) = watch::channel(false);
    // The graph is built after the index's first catch-up, not beside it: after a bulk
    // import both are big, and one after the other keeps the peak memory that of the larger.
    // A restart over a current index does not wait.
    let (first_indexed_tx, first_indexed_rx) = watch::channel(false);

    let indexer_task = spawn_indexer(
        store.clone(),
        index.clone(),
        indexer,
        indexed_tx,
        first_indexed_tx,
        stop_rx.clone(),
    );
    let metrics = Arc::new(Metrics::default());
    let mail_duty = {
        // Mail reads through the same snapshots as the API: the correlator's latest campaigns.
        let read = crate::council::ReadPath::new(store.clone(), campaigns_rx.clone(), None);
        let (store, config, stats) = (
            store.clone(),
            Arc::new(opts.config.clone()),
            metrics.mail.clone(),
        );
        spawn_duty(
            "mail",
            role.clone(),
            built_rx,
            stop_rx.clone(),
            move |stop| {
                let (store, config, stats, read) =
                    (store.clone(), config.clone(), stats.clone(), read.clone());
                async move { crate::outputs::mail::task::spawn_mail(store, config, stats, read, stop) }
            },
        )
    };
    let correlator_task = spawn_correlator(
        store.clone(),
        rules,
        campaigns_tx,
        rules_rx,
        first_indexed_rx,
        stop_rx.clone(),
        role.clone(),
        built_tx,
    );

    // Before anyone can list feeds, and on every node (whichever leads): a member's feed
    // saved by an older version is marked as the member's.
    mark_member_feeds(&store, &opts.config).await;
    start_digests(&store, &opts.config).await;
    let feeds_duty = {
        let (store, config, metrics) = (
            store.clone(),
            Arc::new(opts.config.clone()),
            Arc::clone(&metrics),
        );
        spawn_duty(
            "feeds",
            role.clone(),
            watch::channel(true).1,
            stop_rx.clone(),
            move |stop| {
                let (store, config, metrics) = (store.clone(), config.clone(), metrics.clone());
                async move { spawn_feeds(store, &config, stop, metrics).await }
            },
        )
    };
    let state = AppState {
        read: crate::council::ReadPath::new(
            store.clone(),
            campaigns_rx.clone(),
            Some(index.clone()),
        ),
        acts: crate::council::Acts::new(store.clone(), campaigns_rx.clone()),
        store: store.clone(),
        indexed: indexed_rx,
        role: role.clone(),
        metrics,
        config: Arc::new(opts.config.clone()),
        started,
        limiter: Arc::new(http::limit::RateLimiter::new(
            opts.config.requests_per_second,
            opts.config.request_burst,
        )),
    };
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: opts.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| DaemonError::Listen {
            addr: opts.listen,
            source,
        })?;
    let reloader = spawn_reloader(opts.config.clone(), rules_tx);
    tracing::info!(%addr, elapsed_ms = started.elapsed().as_millis() as u64, "musubi is ready; projections catch up in the background.");
    ready(addr);
    let watchdog = spawn_watchdog();

    let app = http::router(state);
    // Peer addresses: the guard against token guessing counts failures per source.
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown);
    if let Err(e) = server.await {
        tracing::error!(error = %e, "HTTP server failed.");
    }
    // Requests in flight have finished; their writes are acknowledged and durable.
    tracing::info!("Stopping: draining projections.");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    let drain = async {
        let _ = indexer_task.await;
        let _ = correlator_task.await;
        let _ = mail_duty.await;
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!("Projections did not stop in time; they catch up at the next start.");
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    reloader.abort();
    // Polls in flight store what they fetched or are dropped unacknowledged; the feed
    // state on disk makes the next start poll them again.
    let _ = tokio::time::timeout(Duration::from_secs(3), feeds_duty).await;
    // The duties have stopped: the lead may pass on.
    drop(leadership);
    store.close();
    tracing::info!("musubi stopped.");
    Ok(())
}

/// Waits for a store change, a poll tick or the stop signal. Returns false on stop.
async fn next_round(
    committed: &mut watch::Receiver<Seq>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = committed.changed() => true,
        _ = tokio::time::sleep(POLL_INTERVAL) => true,
        _ = stop.changed() => false,
    }
}

fn spawn_indexer(
    store: Store,
    index: Arc<ReportIndex>,
    indexer: Indexer,
    indexed: watch::Sender<Seq>,
    first_round_done: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut committed = store.writer().committed();
        let mut indexer = Some(indexer);
        // The first round runs at once: it catches up what was stored while the daemon was
        // down (or by `musubi import`).
        let mut first = true;
        let mut last_work: Option<Instant> = None;
        loop {
            let running = if std::mem::take(&mut first) {
                !*stop.borrow()
            } else {
                next_round(&mut committed, &mut stop).await
            };
            if let Some(at) = last_work.take() {
                tokio::select! {
                    _ = tokio::time::sleep_until((at + INDEX_EVERY).into()) => {}
                    _ = stop.changed() => {}
                }
            }
            let round_began = Instant::now();
            let (s, i) = (store.clone(), index.clone());
            let mut ix = match indexer.take() {
                Some(ix) => ix,
                None => match index.live_indexer() {
                    Ok(ix) => ix,
                    Err(e) => {
                        tracing::error!(error = %e, "Opening the index writer failed; will retry.");
                        if !running {
                            break;
                        }
                        continue;
                    }
                },
            };
            let progress = indexed.clone();
            let (ix, result) = tokio::task::spawn_blocking(move || {
                let (from, began) = (ix.last(), Instant::now());
                let r = index::catch_up_with(&mut ix, &s, |seq| {
                    // A long catch-up commits in steps: searches and /healthz see progress,
                    // and the journal a line per step (every few seconds) with its rate.
                    if i.refresh().is_ok() {
                        progress.send_replace(seq);
                    }
                    let secs = began.elapsed().as_secs_f64().max(1e-3);
                    tracing::info!(
                        seq = seq.0,
                        per_s = ((seq.0 - from.0) as f64 / secs) as u64,
                        "Index catching up."
                    );
                })
                .and_then(|n| {
                    if n > 0 {
                        i.refresh()?;
                    }
                    Ok(n)
                });
                (ix, r)
            })
            .await
            .expect("indexer task does not panic");
            match result {
                Ok(n) => {
                    indexed.send_replace(ix.last());
                    // The first round's writer (threads for a catch-up after an import) gives
                    // way to the live one, opened by the next round.
                    if !*first_round_done.borrow() {
                        // Dropping a writer waits for its merges: off the runtime's threads.
                        let _ = tokio::task::spawn_blocking(move || drop(ix)).await;
                    } else {
                        indexer = Some(ix);
                    }
                    if n > 0 {
                        last_work = Some(round_began);
                    }
                }
                Err(e) => {
                    // A tantivy writer whose worker hit an I/O error (a full disk) stays dead,
                    // and what it added since its last commit is gone: the next round opens a
                    // fresh writer, which starts again from the last commit.
                    tracing::error!(error = %e, "Indexing failed; will retry with a fresh writer.");
                    drop(ix);
                }
            }
            // Done or failed, the first round is over: the correlator may start.
            first_round_done.send_replace(true);
            if !running {
                break;
            }
        }
        tracing::debug!("Indexer stopped.");
    })
}

/// Builds the correlation graph from the store in `role` (a leader records what the build
/// changed), retrying until it succeeds or the daemon stops. Returns `None` on stop.
async fn start_correlator(
    store: &Store,
    rules: Arc<Rules>,
    role: Role,
    stop: &mut watch::Receiver<bool>,
) -> Option<Correlator> {
    loop {
        let started = Instant::now();
        let (s, r) = (store.clone(), rules.clone());
        let built = tokio::task::spawn_blocking(move || Correlator::start_as(&s, r, role))
            .await
            .expect("correlator start does not panic");
        match built {
            Ok((mut correlator, events)) => {
                tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    applied = correlator.applied().0,
                    role = role.as_str(),
                    "Correlation graph built."
                );
                record(store, &mut correlator, events).await;
                return Some(correlator);
            }
            Err(e) => {
                tracing::error!(error = %e, "Building the correlation graph failed; will retry.");
                tokio::select! {
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                    _ = stop.changed() => return None,
                }
                if *stop.borrow() {
                    return None;
                }
            }
        }
    }
}

/// Records a leader's campaign events and watermark. A recording that fails, or that
/// another node superseded, is not lost: the correlator matches everything to the store
/// again at its next round as leader and records the difference.
async fn record(store: &Store, correlator: &mut Correlator, events: Vec<CampaignEvent>) {
    if !correlator.needs_recording(&events) {
        return;
    }
    let op = correlator.record_op(events, chrono::Utc::now());
    match store.writer().run(op).await {
        Ok(outcome) => {
            if let store::campaigns::Recorded::Superseded(w) = outcome {
                tracing::warn!(
                    generation = w.generation,
                    "Another node recorded campaign ids meanwhile; matching to its records."
                );
            }
            correlator.recorded(Some(outcome));
        }
        Err(e) => {
            tracing::error!(error = %e, "Recording campaign ids failed; the next round records them again.");
            correlator.recorded(None);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn_correlator(
    store: Store,
    rules: Arc<Rules>,
    campaigns: watch::Sender<Arc<CampaignSet>>,
    mut rules_rx: watch::Receiver<Arc<Rules>>,
    mut first_indexed: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    mut role: watch::Receiver<Role>,
    built: watch::Sender<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut committed = store.writer().committed();
        tokio::select! {
            _ = first_indexed.wait_for(|done| *done) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        // Rules that arrive while the graph is being built apply to the next round.
        rules_rx.mark_unchanged();
        let first_role = *role.borrow_and_update();
        let Some(correlator) = start_correlator(&store, rules, first_role, &mut stop).await else {
            return;
        };
        campaigns.send_replace(Arc::new(correlator.snapshot()));
        built.send_replace(true);
        let mut correlator = Some(correlator);
        loop {
            let running = tokio::select! {
                running = next_round(&mut committed, &mut stop) => running,
                _ = rules_rx.changed() => true,
                // A new role is taken at once (a new leader records without waiting).
                _ = role.changed() => true,
            };
            let now_role = *role.borrow_and_update();
            // New rules (SIGHUP): full re-correlation before the next reports.
            let new_rules = rules_rx
                .has_changed()
                .unwrap_or(false)
                .then(|| rules_rx.borrow_and_update().clone());
            let s = store.clone();
            let mut c = correlator
                .take()
                .expect("correlator is returned after each round");
            let (mut c, result) = tokio::task::spawn_blocking(move || {
                let mut events = Vec::new();
                if let Some(r) = new_rules {
                    let started = Instant::now();
                    events = c.recorrelate(r);
                    tracing::info!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        changes = events.len(),
                        "Re-correlated under the new rules."
                    );
                    if c.role() == Role::Follower {
                        // A follower's groups take the recorded ids in its round.
                        events.clear();
                    }
                }
                let r = c.round(&s, now_role).map(|mut more| {
                    events.append(&mut more);
                    events
                });
                (c, r)
            })
            .await
            .expect("correlator task does not panic");
            match result {
                Ok(events) => {
                    // Only while still leader: a node that lost the lead meanwhile drops
                    // its events (its next round matches the new leader's records).
                    if role.borrow().is_leader() {
                        record(&store, &mut c, events).await;
                    }
                    // Flags age (stale, surge) even without new reports: refresh every round.
                    campaigns.send_replace(Arc::new(c.snapshot()));
                }
                Err(e) => tracing::error!(error = %e, "Correlation failed; will retry."),
            }
            correlator = Some(c);
            if !running {
                break;
            }
        }
        tracing::debug!("Correlator stopped.");
    })
}

/// Runs a leader duty while this node leads: `start` is called (with the duty's own stop
/// signal) when the node becomes leader and `ready` is true; when the node stops being
/// leader the duty is aborted at its next await — it does nothing more, and a store write it
/// had queued commits or not as a whole. On shutdown the duty is asked to stop and given a
/// moment to finish what it is doing.
fn spawn_duty<F, Fut>(
    name: &'static str,
    mut role: watch::Receiver<Role>,
    mut ready: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    mut start: F,
) -> JoinHandle<()>
where
    F: FnMut(watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<JoinHandle<()>>> + Send,
{
    tokio::spawn(async move {
        loop {
            let go = tokio::select! {
                go = until_leading(&mut role, &mut ready) => go,
                _ = stop.wait_for(|s| *s) => false,
            };
            if !go {
                return;
            }
            tracing::info!(duty = name, "Leader: starting the duty.");
            let (duty_stop, duty_stopped) = watch::channel(false);
            let handle = start(duty_stopped).await;
            let lost = tokio::select! {
                r = role.wait_for(|r| !r.is_leader()) => r.is_ok(),
                _ = stop.wait_for(|s| *s) => false,
            };
            let _ = duty_stop.send(true);
            let Some(mut h) = handle else {
                if lost {
                    continue;
                }
                return;
            };
            if lost {
                h.abort();
                let _ = h.await;
                tracing::warn!(duty = name, "No longer leader: the duty is stopped.");
                continue;
            }
            if tokio::time::timeout(SHUTDOWN_GRACE / 3, &mut h)
                .await
                .is_err()
            {
                h.abort();
            }
            return;
        }
    })
}

/// Waits until the node leads and the duty may start; false if either channel closed.
async fn until_leading(
    role: &mut watch::Receiver<Role>,
    ready: &mut watch::Receiver<bool>,
) -> bool {
    loop {
        if role.wait_for(|r| r.is_leader()).await.is_err() {
            return false;
        }
        if ready.wait_for(|r| *r).await.is_err() {
            return false;
        }
        if role.borrow().is_leader() {
            return true;
        }
    }
}

/// Pings systemd's watchdog at half its interval, if the unit asks for one.
fn spawn_watchdog() -> Option<JoinHandle<()>> {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let interval = sd_notify::watchdog_enabled()?;
    let period = interval / 2;
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
    }))
}

/// Handles SIGHUP: re-reads and validates the configuration and the rules. New rules go
/// to the correlator, which re-correlates; a file with errors is reported and the running
/// configuration is kept. Work in flight is never dropped.
fn spawn_reloader(config: Config, rules: watch::Sender<Arc<Rules>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                tracing::warn!("Cannot listen for SIGHUP; reload needs a restart.");
                return;
            };
            while hup.recv().await.is_some() {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
                let fresh = match &config.source {
                    Some(path) => Config::load(path),
                    None => Ok(config.clone()),
                };
                match fresh
                    .map_err(|e| e.to_string())
                    .and_then(|c| load_rules(&c).map_err(|e| e.to_string()))
                {
                    Ok(new_rules) => {
                        rules.send_replace(new_rules);
                        tracing::info!("Reloaded configuration and rules.");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "Reload failed; keeping the running configuration.")
                    }
                }
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    })
}

/// Records where each digest never sent begins its first window: here, after what was
/// stored before this start (an import) and before anything this daemon accepts. The mail
/// duty would otherwise record it at its first look, a moment after the graph is built,
/// so which of the first submissions fell in the first window depended on timing (the leak
/// harness saw a member's preview count reports differently from one run to the next).
/// Recording twice is harmless: a digest with a state keeps it.
async fn start_digests(store: &Store, config: &Config) {
    let book = store.mail();
    let now = chrono::Utc::now();
    for d in &config.mail.digests {
        if let Err(e) = book.start(&d.name, now).await {
            tracing::warn!(digest = %d.name, error = %e, "Cannot record where the digest's first window begins; the mail duty will.");
        }
    }
}

/// Marks the configured members' feeds in the saved feed states (see
/// `sources::feeds::mark_member_feeds`). A missing or invalid `feeds.toml` marks nothing
/// (the feed duty reports an invalid one).
async fn mark_member_feeds(store: &Store, config: &Config) {
    use crate::config::feeds::FeedsConfig;
    if !config.feeds_file.is_file() {
        return;
    }
    let Ok(cfg) = FeedsConfig::load(&config.feeds_file) else {
        return;
    };
    if let Err(e) = crate::sources::feeds::mark_member_feeds(store, &cfg.feeds).await {
        tracing::error!(error = %e, "Cannot mark members' feeds in the feed state.");
    }
}

/// Polls the enabled feeds of `feeds.toml` on their schedules and stores what they bring.
/// A missing `feeds.toml` means no feeds; an invalid one is reported and skipped (the API
/// keeps serving; `musubi check` lists the problems).
async fn spawn_feeds(
    store: Store,
    config: &Config,
    mut stop: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) -> Option<JoinHandle<()>> {
    use crate::config::feeds::FeedsConfig;
    use crate::sources::feeds;
    if !config.feeds_file.is_file() {
        return None;
    }
    let cfg = match FeedsConfig::load(&config.feeds_file) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "feeds.toml is invalid; no feeds are polled.");
            return None;
        }
    };
    let client = match feeds::build_client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Cannot build the feed HTTP client; no feeds are polled.");
            return None;
        }
    };
    let initial = feeds::load_states(&store).await.unwrap_or_default();
    let enabled: Vec<_> = cfg.enabled().cloned().collect();
    tracing::info!(feeds = enabled.len(), "Polling feeds.");
    let sink = move |name: String, outcome: feeds::PollOutcome| {
        let store = store.clone();
        let metrics = Arc::clone(&metrics);
        async move {
            // What the poll brought, before the store decides what is new.
            let (ok, items, warnings) = match &outcome.result {
                Ok(Some(p)) => (true, p.reports.len() as u64, p.warnings.len() as u64),
                Ok(None) => (true, 0, 0),
                Err(_) => (false, 0, 0),
            };
            let now = chrono::Utc::now().timestamp();
            match feeds::store_outcome(&store, &name, outcome).await {
                Ok(added) => {
                    if added > 0 {
                        tracing::info!(feed = %name, added, "Stored feed items.");
                    }
                    let skipped = items.saturating_sub(added) + warnings;
                    metrics.feeds.record(&name, ok, added, skipped, now);
                }
                Err(e) => {
                    metrics.feeds.record(&name, false, 0, 0, now);
                    tracing::error!(feed = %name, error = %e, "Storing feed items failed; the next poll retries.")
                }
            }
        }
    };
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    Some(tokio::spawn(feeds::run_scheduler(
        enabled, client, initial, sink, shutdown,
    )))
}
