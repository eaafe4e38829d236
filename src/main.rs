//! The `musubi` command: the daemon and the operators' and analysts' tools.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use musubi::config::Config;
use std::sync::Arc;

use musubi::council::read::FeedView;
use musubi::council::{CampaignView, ReadPath, Viewer, commands};
use musubi::model::{CampaignId, Category, MemberClass, MemberId, Origin, Sector};
use musubi::store::{self, Store};
use musubi::{daemon, index, sources};

#[derive(Parser)]
#[command(
    name = "musubi",
    version,
    about = "Correlation daemon of a cyber-threat information-sharing council"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Global {
    /// Data directory (store and index); overrides musubi.toml.
    #[arg(long, global = true, env = "MUSUBI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file (default: ./musubi.toml if present, else built-in defaults).
    #[arg(long, global = true, env = "MUSUBI_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: HTTP API, projections, feeds.
    Serve {
        /// Address to listen on (default 127.0.0.1:7070).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Load the council roster and sample reports into an empty store first.
        #[arg(long)]
        demo: bool,
    },
    /// Import submission files (one submission or an array each) on a member's behalf.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The submitting member (id or exact name).
        #[arg(long = "as", value_name = "MEMBER")]
        member: String,
        /// auto (detect from the content), native, stix, misp, rss, csaf, kev, kev-csv, nvd,
        /// blocklist[:preset], text.
        #[arg(long, default_value = "auto")]
        format: String,
    },
    /// Public feeds: health, and polling one now.
    #[command(subcommand)]
    Feeds(FeedsCommand),
    /// Extract observables from free text on standard input (refangs, NFKC, IANA TLDs).
    Extract {
        /// One JSON object per line: {"type": ..., "value": ...}.
        #[arg(long)]
        json: bool,
    },
    /// List campaigns (as the secretariat sees them).
    Campaigns {
        #[arg(long)]
        json: bool,
    },
    /// Show one campaign.
    Campaign {
        id: CampaignId,
        #[arg(long)]
        json: bool,
    },
    /// Full-text search over reports.
    Search {
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Manage members.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Digests: preview what a member would receive, or send one now.
    #[command(subcommand)]
    Digest(DigestCommand),
    /// Validate musubi.toml (and feeds.toml and rules/ when present).
    Check,
    /// Rebuild the index and the correlation graph from the store.
    Reindex,
    /// Record an analyst's disposition of a campaign.
    Decide {
        campaign: CampaignId,
        /// shared-public, shared-limited, low-need-known, low-need-transient, low-need-other,
        /// abandoned-no-consent, abandoned-insufficient-samples, abandoned-other, under-analysis.
        disposition: musubi::model::Disposition,
        #[arg(long, default_value = "")]
        note: String,
        /// The analyst's name (recorded with the decision and in the audit log).
        #[arg(long, env = "MUSUBI_ANALYST")]
        analyst: String,
    },
    /// Release a campaign (its reports received so far) to class 2 and general members.
    Release {
        campaign: CampaignId,
        #[arg(long, env = "MUSUBI_ANALYST")]
        analyst: String,
    },
    /// The council's campaign statistics for a period.
    Stats {
        #[arg(long)]
        from: chrono::NaiveDate,
        #[arg(long)]
        to: chrono::NaiveDate,
        /// ja or en.
        #[arg(long, default_value = "ja")]
        lang: musubi::council::stats::Lang,
        /// md, json or csv.
        #[arg(long, default_value = "md")]
        format: musubi::council::stats::Format,
    },
    /// The audit log of decisions and secretariat-only reads.
    Audit {
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Export campaigns (STIX 2.1 bundle, MISP feed or CSV) for one audience: `--as MEMBER`
    /// (what that member may see), `--audience members` or `--audience public`. There is no
    /// default audience, so that nothing is exported more widely than meant.
    Export(ExportArgs),
}

#[derive(Args)]
struct ExportArgs {
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Export what this member (id or exact name) may see.
    #[arg(
        long = "as",
        value_name = "MEMBER",
        required_unless_present = "audience"
    )]
    member: Option<String>,
    /// An audience instead of one member: `public` (released TLP:CLEAR without sharing
    /// scope), `members` (what every member may receive: released, up to TLP:AMBER, without
    /// sharing scope); `viewer` is exactly what --as may see (the default). `public` and
    /// `members` need no --as; given one, they still export only the audience's part.
    #[arg(long, value_enum)]
    audience: Option<ExportAudience>,
    /// Output file (stix, csv; default stdout) or directory (misp-feed; required).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only this campaign.
    #[arg(long)]
    campaign: Option<CampaignId>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Stix,
    MispFeed,
    Csv,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportAudience {
    Public,
    Members,
    Viewer,
}

#[derive(Subcommand)]
enum FeedsCommand {
    /// Each feed's health: last success, last error, consecutive failures, items added.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Poll one feed now (ignores its backoff) and store what it brings.
    Poll { name: String },
}

#[derive(Subcommand)]
enum MemberCommand {
    /// Add a member and print its token (shown once; only a hash is stored).
    Add {
        name: String,
        /// Sector code, for critical-infrastructure members.
        #[arg(long)]
        sector: Option<Sector>,
        /// class1, class2, general or secretariat.
        #[arg(long)]
        class: MemberClass,
        /// Category (default: critical_infrastructure with a sector, else other).
        #[arg(long)]
        category: Option<Category>,
    },
    /// Import the council roster (roster-2020-06-05.json format); classes by the default rule.
    Import { file: PathBuf },
    /// Replace a member's tokens by a new one and print it (shown once).
    Token { member: String },
    /// Move a member along its life cycle: approved, suspended, expelled.
    Status {
        member: String,
        status: String,
        #[arg(long, default_value = "")]
        note: String,
        #[arg(long, env = "MUSUBI_ANALYST", default_value = "secretariat")]
        actor: String,
    },
    /// List members.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set a member's mail address (and language) for digests and alerts.
    Contact {
        /// Member id or exact name.
        member: String,
        #[arg(long)]
        email: String,
        /// ja or en.
        #[arg(long, default_value = "ja")]
        lang: musubi::config::mail::Language,
    },
}

#[derive(Subcommand)]
enum DigestCommand {
    /// Print what a member would receive from a digest now.
    Preview {
        name: String,
        /// The recipient (id or exact name); default: every recipient's subject line.
        #[arg(long = "as", value_name = "MEMBER")]
        member: Option<String>,
        /// Show the HTML part instead of the text part.
        #[arg(long)]
        html: bool,
    },
    /// Send a digest now (the window since its last completed run).
    Send { name: String },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MUSUBI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("musubi: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let config = Config::load_or_default(cli.global.config.as_deref())?;
    let data_dir = cli
        .global
        .data_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.clone());
    match cli.command {
        Command::Serve { listen, demo } => serve(config, data_dir, listen, demo),
        Command::Import {
            files,
            member,
            format,
        } => import(&data_dir, &files, &member, &format),
        Command::Extract { json } => extract(json),
        Command::Feeds(cmd) => feeds_cmd(&config, &data_dir, cmd),
        Command::Campaigns { json } => campaigns(&config, &data_dir, json),
        Command::Campaign { id, json } => campaign(&config, &data_dir, id, json),
        Command::Search { query, limit, json } => search(&config, &data_dir, &query, limit, json),
        Command::Member(cmd) => member(&data_dir, cmd),
        Command::Digest(cmd) => digest_cmd(&config, &data_dir, cmd),
        Command::Check => check(&config),
        Command::Reindex => reindex(&config, &data_dir),
        Command::Decide {
            campaign,
            disposition,
            note,
            analyst,
        } => {
            let store = Store::open(&data_dir)?;
            store.writer().run_blocking(commands::decide(
                campaign,
                disposition,
                note,
                analyst,
                chrono::Utc::now(),
            ))?;
            store.close();
            println!("{campaign}: {}", disposition.as_str());
            Ok(())
        }
        Command::Release { campaign, analyst } => {
            let store = Store::open(&data_dir)?;
            let n = store.writer().run_blocking(commands::release_campaign(
                campaign,
                analyst,
                chrono::Utc::now(),
            ))?;
            store.close();
            println!("{campaign} released ({n} report(s))");
            Ok(())
        }
        Command::Stats {
            from,
            to,
            lang,
            format,
        } => {
            let store = Store::open(&data_dir)?;
            let read = ReadPath::snapshot(store.clone(), Default::default(), None);
            let today = chrono::Utc::now().date_naive();
            let table = block_on(read.statistics(&operator(), from, to, today))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{}", musubi::council::stats::render(&table, lang, format));
            store.close();
            Ok(())
        }
        Command::Audit { limit, json } => {
            let store = Store::open(&data_dir)?;
            let read = ReadPath::snapshot(store.clone(), Default::default(), None);
            let entries = block_on(read.audit(&operator(), limit))?;
            if json {
                print_json(&serde_json::json!({ "entries": entries }))?;
            } else {
                for e in &entries {
                    println!(
                        "{}  {:<16} {:<16} {:<16} {}",
                        e.at.format("%Y-%m-%d %H:%M:%S"),
                        e.actor,
                        e.action,
                        e.target,
                        e.detail
                    );
                }
            }
            store.close();
            Ok(())
        }
        Command::Export(args) => export(&config, &data_dir, args),
    }
}

fn serve(config: Config, data_dir: PathBuf, listen: Option<SocketAddr>, demo: bool) -> Result<()> {
    if demo {
        let store = Store::open(&data_dir).context("opening the store for the demo")?;
        let loaded = sources::demo::load(&store)?;
        store.close();
        eprintln!(
            "demo: {} members, {} reports in {}",
            loaded.members,
            loaded.reports,
            data_dir.display()
        );
        if let Some(token) = loaded.analyst_token {
            // Printed once, to the operator's terminal, never logged.
            eprintln!(
                "demo: secretariat token for {}: {token}",
                sources::demo::DEMO_ANALYST
            );
        }
    }
    let listen = listen.unwrap_or(config.listen);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let opts = daemon::Options {
            config,
            data_dir,
            listen,
        };
        daemon::run(opts, shutdown_signal(), |addr| {
            eprintln!("musubi: listening on http://{addr}");
            eprintln!("musubi: try  curl -H \"Authorization: Bearer $TOKEN\" http://{addr}/api/v1/campaigns");
        })
        .await
    })?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("Shutdown requested.");
}

fn import(data_dir: &Path, files: &[PathBuf], member: &str, format: &str) -> Result<()> {
    let format: Option<musubi::formats::Format> = match format {
        "auto" => None,
        name => Some(name.parse().map_err(|e| anyhow::anyhow!("{e}"))?),
    };
    let store = Store::open(data_dir)?;
    let read = ReadPath::snapshot(store.clone(), Default::default(), None);
    let member = block_on(read.member(&operator(), member))?
        .with_context(|| format!("no member with id or name {member:?}"))?;
    let mut failed = 0;
    let mut stored = 0;
    // Reading and validating the next files overlaps with storing this one: parsing is
    // CPU work on this thread, inserting is the store writer's thread.
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let format = format.as_ref();
        scope.spawn(move || {
            for path in files {
                if tx
                    .send((path, sources::import::read_any(path, format)))
                    .is_err()
                {
                    break;
                }
            }
        });
        // Up to IN_FLIGHT files queued at the writer: it commits them in one group (each
        // file still atomic in its own savepoint), and results are printed in file order.
        const IN_FLIGHT: usize = 4;
        let mut pending = std::collections::VecDeque::new();
        let mut finish = |path: &Path,
                          result: std::result::Result<
            Vec<musubi::model::ReportId>,
            sources::import::ImportError,
        >| match result {
            Ok(ids) => {
                stored += ids.len();
                let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
                println!("{}: stored {}", path.display(), ids.join(", "));
            }
            Err(e) => {
                failed += 1;
                eprintln!("musubi: {e}");
            }
        };
        for (path, contents) in rx {
            let queued = contents.and_then(|contents| {
                for w in &contents.warnings {
                    eprintln!("musubi: {}: warning: {w}", path.display());
                }
                sources::import::queue_contents(
                    &store,
                    Origin::Submission {
                        member: member.id.clone(),
                    },
                    contents,
                )
                .map_err(|source| store_error(path, source))
            });
            pending.push_back((path, queued));
            while pending.len() > IN_FLIGHT {
                let (path, queued) = pending.pop_front().expect("not empty");
                finish(
                    path,
                    queued.and_then(|p| p.wait().map_err(|e| store_error(path, e))),
                );
            }
        }
        for (path, queued) in pending {
            finish(
                path,
                queued.and_then(|p| p.wait().map_err(|e| store_error(path, e))),
            );
        }
    });
    store.close();
    eprintln!(
        "imported {stored} report(s) from {} file(s); {failed} file(s) failed",
        files.len() - failed
    );
    if failed > 0 {
        bail!("{failed} file(s) could not be imported");
    }
    Ok(())
}

fn store_error(path: &Path, source: store::StoreError) -> sources::import::ImportError {
    sources::import::ImportError::Store {
        path: path.display().to_string(),
        source,
    }
}

/// The secretariat's view, used by the operator's CLI (it runs on the council's servers).
fn operator() -> Viewer {
    Viewer::member(MemberId("cli-operator".into()), MemberClass::Secretariat)
}

#[derive(Serialize)]
struct CampaignListing {
    campaigns: Vec<CampaignView>,
}

fn campaigns(config: &Config, data_dir: &Path, json: bool) -> Result<()> {
    let (store, _index, _indexer, correlator) =
        daemon::open_projections(data_dir, daemon::load_rules(config)?)?;
    let read = ReadPath::snapshot(
        store.clone(),
        Arc::new(correlator.engine().snapshot()),
        None,
    );
    let page = musubi::council::read::Page {
        offset: 0,
        limit: usize::MAX,
    };
    let mut views = block_on(read.campaigns(&operator(), page))?;
    views.sort_by_key(|a| a.id);
    if json {
        print_json(&CampaignListing { campaigns: views })?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{:<12} {:>7}  {:<20} {:<16} title",
            "campaign", "reports", "last seen", "tlp"
        )?;
        for v in &views {
            let title = v.reports.first().map(|r| r.title.as_str()).unwrap_or("");
            writeln!(
                out,
                "{:<12} {:>7}  {:<20} {:<16} {}{}",
                v.id.to_string(),
                v.report_count,
                v.last_seen.format("%Y-%m-%d %H:%M"),
                v.tlp.label(),
                if v.unconfirmed { "[unconfirmed] " } else { "" },
                title
            )?;
        }
        writeln!(out, "{} campaign(s)", views.len())?;
    }
    store.close();
    Ok(())
}

fn campaign(config: &Config, data_dir: &Path, id: CampaignId, json: bool) -> Result<()> {
    let (store, _index, _indexer, correlator) =
        daemon::open_projections(data_dir, daemon::load_rules(config)?)?;
    let read = ReadPath::snapshot(
        store.clone(),
        Arc::new(correlator.engine().snapshot()),
        None,
    );
    let view =
        block_on(read.campaign(&operator(), id))?.with_context(|| format!("no campaign {id}"))?;
    if json {
        print_json(&view)?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{}  {}  {} report(s)  {} – {}{}",
            view.id,
            view.tlp.label(),
            view.report_count,
            view.first_seen.format("%Y-%m-%d %H:%M"),
            view.last_seen.format("%Y-%m-%d %H:%M"),
            if view.unconfirmed {
                "  [unconfirmed]"
            } else {
                ""
            }
        )?;
        if !view.flags.is_empty() {
            writeln!(out, "flags: {}", view.flags.join(", "))?;
        }
        writeln!(out, "\nreports:")?;
        for r in &view.reports {
            writeln!(
                out,
                "  {:<8} {:<10} {:<16} {}",
                r.id.to_string(),
                r.kind,
                r.tlp.label(),
                r.title
            )?;
        }
        if let Some(obs) = &view.observables {
            writeln!(out, "\nobservables:")?;
            for o in obs {
                writeln!(
                    out,
                    "  {:>3}× {:<10} {}",
                    o.reports,
                    o.kind.as_str(),
                    o.value
                )?;
            }
        }
    }
    store.close();
    Ok(())
}

fn search(config: &Config, data_dir: &Path, query: &str, limit: usize, json: bool) -> Result<()> {
    let (store, index, _indexer, correlator) =
        daemon::open_projections(data_dir, daemon::load_rules(config)?)?;
    index.refresh()?;
    let set = std::sync::Arc::new(correlator.engine().snapshot());
    let read = musubi::council::ReadPath::snapshot(store.clone(), set, Some(index));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let hits = runtime.block_on(read.search(&operator(), query, limit))?;
    drop(read);
    if json {
        print_json(&serde_json::json!({ "query": query, "hits": hits }))?;
    } else {
        for h in &hits {
            println!(
                "{:>6.2}  {:<8} {:<12} {}",
                h.score.unwrap_or_default(),
                h.report.id.to_string(),
                h.campaign.map(|c| c.to_string()).unwrap_or_default(),
                h.report.title
            );
        }
        println!("{} hit(s)", hits.len());
    }
    store.close();
    Ok(())
}

fn member(data_dir: &Path, cmd: MemberCommand) -> Result<()> {
    let store = Store::open(data_dir)?;
    match cmd {
        MemberCommand::Add {
            name,
            sector,
            class,
            category,
        } => {
            if sector.is_some() && category.is_some_and(|c| c != Category::CriticalInfrastructure) {
                bail!("--sector applies only to critical_infrastructure members");
            }
            let (id, token) = store
                .writer()
                .run_blocking(commands::add_member(name, class, sector, category))?;
            println!("member {id} added");
            println!("token (shown once, store it safely): {token}");
        }
        MemberCommand::Import { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let entries = musubi::council::roster::parse(&bytes)
                .with_context(|| format!("{}", file.display()))?;
            let summary = store
                .writer()
                .run_blocking(commands::import_roster(entries))?;
            println!(
                "roster imported: {} added, {} updated, {} unchanged",
                summary.added, summary.updated, summary.unchanged
            );
        }
        MemberCommand::Token { member } => {
            let (_, token) = store.writer().run_blocking(commands::rotate_token(
                member,
                "cli-operator".into(),
                chrono::Utc::now(),
            ))?;
            println!("token (shown once, store it safely): {token}");
        }
        MemberCommand::Status {
            member,
            status,
            note,
            actor,
        } => {
            let to: store::members::MemberStatus =
                status.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            let id = store.writer().run_blocking(commands::set_member_status(
                member,
                to,
                actor,
                note,
                chrono::Utc::now(),
            ))?;
            println!("member {id} is now {}", to.as_str());
        }
        MemberCommand::List { json } => {
            let read = ReadPath::snapshot(store.clone(), Default::default(), None);
            let members: Vec<musubi::model::Member> = block_on(read.members(&operator()))?
                .into_iter()
                .map(|(m, _)| m)
                .collect();
            if json {
                print_json(&serde_json::json!({ "members": members }))?;
            } else {
                for m in &members {
                    println!(
                        "{:<14} {:<12} {:<24} {:<12} {}",
                        m.id.0,
                        m.class.as_str(),
                        m.category.as_str(),
                        m.sector.map(|s| s.as_str()).unwrap_or("-"),
                        m.name
                    );
                }
                println!("{} member(s)", members.len());
            }
        }
        MemberCommand::Contact {
            member,
            email,
            lang,
        } => {
            email
                .parse::<lettre::Address>()
                .with_context(|| format!("{email:?} is not a mail address"))?;
            let read = ReadPath::snapshot(store.clone(), Default::default(), None);
            let m = block_on(read.member(&operator(), &member))?
                .with_context(|| format!("no member with id or name {member:?}"))?;
            store.mail().set_contact_blocking(store::mail::Contact {
                member: m.id.clone(),
                email,
                language: lang.as_str().to_string(),
            })?;
            println!("member {}: contact set", m.id);
        }
    }
    store.close();
    Ok(())
}

fn digest_cmd(config: &Config, data_dir: &Path, cmd: DigestCommand) -> Result<()> {
    use musubi::council::ReadPath;
    use musubi::outputs::mail::{MailError, Mailer, digest};
    let name = match &cmd {
        DigestCommand::Preview { name, .. } | DigestCommand::Send { name } => name.clone(),
    };
    let d = config
        .mail
        .digest(&name)
        .ok_or_else(|| MailError::UnknownDigest(name.clone()))?;
    let (store, _index, _indexer, correlator) =
        daemon::open_projections(data_dir, daemon::load_rules(config)?)?;
    let set = std::sync::Arc::new(correlator.engine().snapshot());
    let read = ReadPath::snapshot(store.clone(), set, None);
    let book = store.mail();
    let now = chrono::Utc::now();
    // Everything below runs inside the runtime: the mailer's connection pool starts a task
    // when it is built, and the read path reads on the blocking pool.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match cmd {
            DigestCommand::Preview { member, html, .. } => {
                let members = match member {
                    Some(who) => vec![
                        read.mail_member(&who)
                            .await?
                            .with_context(|| format!("no member with id or name {who:?}"))?,
                    ],
                    None => {
                        let mut out = Vec::new();
                        for r in digest::recipients(&read, &d.audience).await? {
                            out.extend(read.mail_member(&r.member.0).await?);
                        }
                        out
                    }
                };
                let one = members.len() == 1;
                for m in &members {
                    if !m.active {
                        println!("{}: not an active member; receives no mail", m.member);
                        continue;
                    }
                    match digest::preview(&read, &book, config, d, m, now).await? {
                        None => println!("{}: nothing to send", m.member),
                        Some(r) if one => {
                            println!("Subject: {}\n", r.subject);
                            println!("{}", if html { &r.html } else { &r.text });
                        }
                        Some(r) => println!("{}: {}", m.member, r.subject),
                    }
                }
            }
            DigestCommand::Send { .. } => {
                let smtp = config.mail.smtp.as_ref().ok_or(MailError::NotConfigured)?;
                let mailer = Mailer::new(smtp, Default::default())?;
                let out = digest::run(
                    &read,
                    &book,
                    config,
                    &mailer,
                    d,
                    digest::RunOptions::at(now),
                )
                .await?;
                println!(
                    "digest {name}: sent {}, already sent {}, nothing to send {}, refused {}",
                    out.sent, out.already_sent, out.empty, out.rejected
                );
            }
        }
        anyhow::Ok(())
    })?;
    drop(runtime);
    drop((read, book));
    store.close();
    Ok(())
}

fn check(config: &Config) -> Result<()> {
    match &config.source {
        Some(p) => println!("{}: ok", p.display()),
        None => println!("musubi.toml: not found, using built-in defaults"),
    }
    // Every problem of every file is reported before failing.
    let mut failed = 0;
    if config.rules_dir.is_dir() {
        match musubi::correlate::rules::Rules::load(&config.rules_dir) {
            Ok(_) => println!("{}: ok", config.rules_dir.display()),
            Err(e) => {
                failed += 1;
                for p in &e.problems {
                    eprintln!("musubi: {p}");
                }
            }
        }
    } else {
        println!(
            "{}: not found, using the shipped rules",
            config.rules_dir.display()
        );
    }
    if config.feeds_file.is_file() {
        match musubi::config::feeds::FeedsConfig::load(&config.feeds_file) {
            Ok(f) => println!(
                "{}: ok ({} feeds, {} enabled)",
                config.feeds_file.display(),
                f.feeds.len(),
                f.enabled().count()
            ),
            Err(e) => {
                failed += 1;
                eprintln!("musubi: {e}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} configuration file(s) have problems");
    }
    Ok(())
}

fn reindex(config: &Config, data_dir: &Path) -> Result<()> {
    // Fails if the daemon holds the index: a rebuild under a running daemon would race it.
    {
        let store = Store::open(data_dir)?;
        let ix = index::ReportIndex::open(data_dir)?;
        drop(
            ix.indexer()
                .context("stop `musubi serve` before reindexing")?,
        );
        store.close();
    }
    index::ReportIndex::destroy(data_dir)?;
    let started = std::time::Instant::now();
    let (store, index, _indexer, correlator) =
        daemon::open_projections(data_dir, daemon::load_rules(config)?)?;
    let set = correlator.engine().snapshot();
    println!(
        "reindexed {} report(s) into {} campaign(s) in {:.2} s",
        index.num_docs(),
        set.campaigns.len(),
        started.elapsed().as_secs_f64()
    );
    store.close();
    Ok(())
}

/// Runs one read of the council's read path from the (synchronous) CLI.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
        .block_on(f)
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn export(config: &Config, data_dir: &Path, args: ExportArgs) -> Result<()> {
    use musubi::outputs;
    let (store, _index, _indexer, correlator) =
        daemon::open_projections(data_dir, daemon::load_rules(config)?)?;
    let read = ReadPath::snapshot(
        store.clone(),
        std::sync::Arc::new(correlator.engine().snapshot()),
        None,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let exports = runtime.block_on(async {
        let member = match &args.member {
            Some(who) => Some(
                read.member_viewer(&operator(), who)
                    .await?
                    .with_context(|| format!("no member with id or name {who:?}"))?,
            ),
            None => None,
        };
        // The audience is a viewer of its own, narrower than any member: the policy
        // decides for it alone (scope, release and TLP included).
        let viewer = match (args.audience, member) {
            (Some(ExportAudience::Public), _) => Viewer::PUBLIC,
            (Some(ExportAudience::Members), _) => outputs::MEMBERS,
            (Some(ExportAudience::Viewer) | None, Some(member)) => member,
            (Some(ExportAudience::Viewer) | None, None) => {
                bail!("--audience viewer needs --as MEMBER")
            }
        };
        Ok(read.exports(&viewer, args.campaign).await?)
    })?;
    drop(read);
    store.close();
    if let Some(id) = args.campaign
        && exports.is_empty()
    {
        bail!("no campaign {id} visible to this audience");
    }
    let write_to = |bytes: &[u8]| -> Result<()> {
        match &args.out {
            Some(path) => {
                std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
            }
            None => Ok(std::io::stdout().lock().write_all(bytes)?),
        }
    };
    match args.format {
        ExportFormat::Stix => {
            let bundle = outputs::stix::bundle(&exports);
            let mut bytes = serde_json::to_vec_pretty(&bundle)?;
            bytes.push(b'\n');
            write_to(&bytes)?;
            eprintln!(
                "exported {} campaign(s), {} STIX object(s)",
                exports.len(),
                bundle["objects"].as_array().map_or(0, Vec::len)
            );
        }
        ExportFormat::Csv => {
            let mut bytes = Vec::new();
            let rows = outputs::csv::write_csv(&mut bytes, &exports)?;
            write_to(&bytes)?;
            eprintln!("exported {} campaign(s), {rows} row(s)", exports.len());
        }
        ExportFormat::MispFeed => {
            let dir = args
                .out
                .as_deref()
                .context("--format misp-feed needs --out DIR")?;
            let written = outputs::misp_feed::write_feed(dir, &exports)?;
            eprintln!(
                "exported {} event(s), {} attribute(s) to {}",
                written.events,
                written.attributes,
                dir.display()
            );
        }
    }
    Ok(())
}

fn extract(json: bool) -> Result<()> {
    use std::io::Read;
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading standard input (UTF-8 text expected)")?;
    let mut out = std::io::stdout().lock();
    for o in musubi::formats::extract::extract(&text) {
        if json {
            let line = serde_json::json!({ "type": o.kind().as_str(), "value": o.value() });
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{}\t{}", o.kind().as_str(), o.value())?;
        }
    }
    Ok(())
}

fn feeds_cmd(config: &Config, data_dir: &Path, cmd: FeedsCommand) -> Result<()> {
    use musubi::config::feeds::FeedsConfig;
    let store = Store::open(data_dir)?;
    match cmd {
        FeedsCommand::List { json } => {
            let read = ReadPath::snapshot(store.clone(), Default::default(), None);
            let states: std::collections::HashMap<_, _> = block_on(read.feeds(&operator()))?
                .into_iter()
                .filter_map(|f| match f {
                    FeedView::Full { name, state } => Some((name, state)),
                    FeedView::Summary { .. } => None,
                })
                .collect();
            let configured = if config.feeds_file.is_file() {
                FeedsConfig::load(&config.feeds_file)?.feeds
            } else {
                Vec::new()
            };
            let rows: Vec<serde_json::Value> = configured
                .iter()
                .map(|f| {
                    let st = states.get(&f.name).cloned().unwrap_or_default();
                    serde_json::json!({
                        "name": f.name, "enabled": f.enabled, "format": f.format.name(),
                        "last_success": st.last_success, "last_error": st.last_error,
                        "consecutive_failures": st.consecutive_failures,
                        "items_added": st.items_added,
                    })
                })
                .collect();
            if json {
                print_json(&serde_json::json!({ "feeds": rows }))?;
            } else {
                for r in &rows {
                    println!(
                        "{:<28} {:<8} {:<12} ok:{:<28} failures:{} items:{} {}",
                        r["name"].as_str().unwrap_or_default(),
                        if r["enabled"] == true {
                            "enabled"
                        } else {
                            "off"
                        },
                        r["format"].as_str().unwrap_or_default(),
                        r["last_success"].as_str().unwrap_or("-"),
                        r["consecutive_failures"],
                        r["items_added"],
                        r["last_error"].as_str().unwrap_or("")
                    );
                }
            }
        }
        FeedsCommand::Poll { name } => {
            let cfg = FeedsConfig::load(&config.feeds_file)?;
            let feed = cfg
                .feeds
                .iter()
                .find(|f| f.name == name)
                .with_context(|| {
                    format!("no feed named {name:?} in {}", config.feeds_file.display())
                })?
                .clone();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let added = runtime.block_on(async {
                let client = musubi::sources::feeds::build_client()?;
                let state = musubi::sources::feeds::load_state(&store, &name).await?;
                let outcome =
                    musubi::sources::feeds::poll(&client, &feed, &state, chrono::Utc::now()).await;
                if let Err(e) = &outcome.result {
                    eprintln!("musubi: {name}: {e}");
                }
                let failed = outcome.result.is_err();
                let added = musubi::sources::feeds::store_outcome(&store, &name, outcome).await?;
                if failed {
                    bail!("poll of {name} failed (recorded in its health)");
                }
                anyhow::Ok(added)
            })?;
            println!("{name}: {added} new report(s)");
        }
    }
    store.close();
    Ok(())
}
