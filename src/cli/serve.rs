//! `musubi serve`: the daemon, optionally over the demo data.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use musubi::config::{Config, LogFormat};
use musubi::store::Store;
use musubi::{daemon, sources};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:7070).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Load the council roster and sample reports into an empty store first.
    #[arg(long)]
    demo: bool,
}

/// A line for the operator on stderr, in the log's format: with `[log] format = "json"` every
/// stderr line is a JSON object shaped like tracing's own (`timestamp`, `level`,
/// `fields.message`), so that the SIEM reading the log parses the start-up lines too.
fn say(format: LogFormat, message: &str) {
    match format {
        LogFormat::Plain => eprintln!("{message}"),
        LogFormat::Json => eprintln!(
            "{}",
            serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": "INFO",
                "fields": { "message": message },
                "target": "musubi::serve",
            })
        ),
    }
}

pub fn run(config: Config, data_dir: PathBuf, args: ServeArgs) -> Result<()> {
    let log = config.log_format;
    if args.demo {
        let store = Store::open(&data_dir).context("opening the store for the demo")?;
        let loaded = sources::demo::load(&store)?;
        store.close();
        say(
            log,
            &format!(
                "demo: {} members, {} reports in {}",
                loaded.members,
                loaded.reports,
                data_dir.display()
            ),
        );
        if let Some(token) = loaded.analyst_token {
            // Printed once, to the operator's terminal, never logged: with a JSON log (a
            // SIEM reads stderr) it goes to stdout instead.
            let line = format!(
                "demo: secretariat token for {}: {token}",
                sources::demo::DEMO_ANALYST
            );
            match log {
                LogFormat::Plain => eprintln!("{line}"),
                LogFormat::Json => println!("{line}"),
            }
        }
    }
    let listen = args.listen.unwrap_or(config.listen);
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
            say(log, &format!("musubi: listening on http://{addr}"));
            say(log, &format!("musubi: try  curl -H \"Authorization: Bearer $TOKEN\" http://{addr}/api/v1/campaigns"));
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
