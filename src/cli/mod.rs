//! The `musubi` command line: its arguments, and one module per command group. Each
//! command reads through the council's read path ([`ReadPath`]) as the operator and writes
//! through the engine's typed commands; none of them reads the store.

pub mod advisories;
pub mod campaigns;
pub mod check;
pub mod digest;
pub mod export;
pub mod extract;
pub mod feeds;
pub mod import;
pub mod member;
pub mod migrate;
pub mod pattern;
pub mod reindex;
pub mod search;
pub mod serve;
pub mod shell;
pub mod stats;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use musubi::config::Config;
use musubi::council::{ReadPath, Viewer};
use musubi::daemon;
use musubi::index::{Indexer, ReportIndex};
use musubi::model::{MemberClass, MemberId};
use musubi::store::Store;

#[derive(Parser)]
#[command(
    name = "musubi",
    version,
    about = "Correlation daemon of a cyber-threat information-sharing council"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct Global {
    /// Data directory (store and index); overrides musubi.toml.
    #[arg(long, global = true, env = "MUSUBI_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (default: ./musubi.toml if present, else built-in defaults).
    #[arg(long, global = true, env = "MUSUBI_CONFIG")]
    pub config: Option<PathBuf>,
    /// More output: -v logs at INFO and lists ids, -vv logs at DEBUG. Commands other than
    /// `serve` log only warnings and errors without it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The input was partly rejected: what was good is stored, the rest was named on stderr.
/// The command exits with code 3 (not 1), so that a script can tell "retry the rejected
/// files" from "nothing happened".
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PartlyRejected(pub String);

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon: HTTP API, projections, feeds.
    Serve(serve::ServeArgs),
    /// Import submission files (one submission or an array each) on a member's behalf.
    Import(import::ImportArgs),
    /// Public feeds: health, and polling one now.
    #[command(subcommand)]
    Feeds(feeds::FeedsCommand),
    /// Extract observables from free text on standard input (refangs, NFKC, IANA TLDs).
    Extract(extract::ExtractArgs),
    /// Check STIX 2.1 patterns on standard input, one per line (the parser an import uses);
    /// exits 1 when any is invalid, naming each with its line and what was wrong.
    StixPattern(pattern::PatternArgs),
    /// List campaigns (as the secretariat sees them).
    Campaigns(campaigns::ListArgs),
    /// Show one campaign.
    Campaign(campaigns::ShowArgs),
    /// List advisories: public feed items no member reported (context, not campaigns).
    Advisories(advisories::AdvisoriesArgs),
    /// Full-text search over reports.
    Search(search::SearchArgs),
    /// Manage members.
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// Digests: preview what a member would receive, or send one now.
    #[command(subcommand)]
    Digest(digest::DigestCommand),
    /// Validate musubi.toml (and feeds.toml and rules/ when present).
    Check,
    /// Rebuild the index and the correlation graph from the store.
    Reindex,
    /// Copy the SQLite store of the data directory into an empty PostgreSQL database and
    /// verify every table's row count.
    Migrate(migrate::MigrateArgs),
    /// Record an analyst's disposition of a campaign.
    Decide(campaigns::DecideArgs),
    /// Release a campaign (its reports received so far) to class 2 and general members.
    Release(campaigns::ReleaseArgs),
    /// The council's campaign statistics for a period.
    Stats(stats::StatsArgs),
    /// The audit log of decisions and secretariat-only reads.
    Audit(stats::AuditArgs),
    /// Export campaigns (STIX 2.1 bundle, MISP feed or CSV) for one audience: `--as MEMBER`
    /// (what that member may see), `--audience members` or `--audience public`. There is no
    /// default audience, so that nothing is exported more widely than meant.
    Export(export::ExportArgs),
    /// Print shell completions (bash, zsh, fish, ...) generated from these definitions.
    Completions(shell::CompletionsArgs),
    /// Print the man page, musubi(1), in roff.
    Man,
}

/// The secretariat's view, used by the operator's CLI (it runs on the council's servers).
pub fn operator() -> Viewer {
    Viewer::member(MemberId("cli-operator".into()), MemberClass::Secretariat)
}

/// Runs one read of the council's read path from the (synchronous) CLI.
///
/// One worker of the multi-threaded kind rather than a current-thread runtime: the
/// PostgreSQL store's blocking client may then step off the worker to wait
/// (`block_in_place`), which a current-thread runtime forbids.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a one-worker runtime")
        .block_on(f)
}

/// A spinner with a phase message for work whose size is not known ahead (`reindex`,
/// `export`), on stderr when it is a terminal; hidden otherwise, so that a log or a pipe
/// gets no redraws. Call `finish_and_clear` before printing the result.
pub fn spinner(message: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .expect("a valid template"),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = stdout();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Standard output, buffered. Rust's `Stdout` is line-buffered even into a pipe, so a
/// listing of a thousand campaigns (pretty JSON, 286,000 lines) cost as many `write` calls
/// and a fifth of `musubi campaigns --json`'s time. Callers flush at the end, so that a
/// closed pipe is an error rather than lost output.
pub fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

/// A read path without campaigns or index, for commands that read only what the store
/// holds (members, feeds, statistics, the audit log).
pub fn store_read_path(store: &Store) -> ReadPath {
    ReadPath::snapshot(store.clone(), Default::default(), None)
}

/// The store with both projections brought up to date, and a read path over them, for the
/// commands that answer from campaigns or the index. The index's writer (when no daemon
/// holds it) is kept until [`Projections::close`], as the daemon would.
pub struct Projections {
    pub store: Store,
    pub index: Arc<ReportIndex>,
    pub read: ReadPath,
    _indexer: Option<Indexer>,
}

impl Projections {
    /// Opens the store and catches the index and the correlation up with it. `with_index`
    /// gives the read path the index (search); the others read campaigns only.
    pub fn open(config: &Config, data_dir: &Path, with_index: bool) -> Result<Self> {
        let (store, index, indexer, correlator) = daemon::open_projections(config, data_dir)?;
        if with_index {
            index.refresh()?;
        }
        let set = Arc::new(correlator.snapshot());
        let read = ReadPath::snapshot(store.clone(), set, with_index.then(|| index.clone()));
        Ok(Projections {
            store,
            index,
            read,
            _indexer: indexer,
        })
    }

    /// Drops the read path and closes the store (its writer commits what is queued).
    pub fn close(self) {
        let Projections {
            store,
            read,
            index,
            _indexer,
        } = self;
        drop((read, index, _indexer));
        store.close();
    }
}
