//! The `musubi` command: the daemon and the operators' and analysts' tools. This file is
//! the entry point only (logging, arguments, dispatch); each command group lives in its
//! own module of [`cli`].

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Command};
use musubi::config::{Config, LogFormat};

/// Exit codes (documented in the README's CLI section): 0 ok, 1 failure, 2 usage (clap's
/// own, before anything runs), 3 input partly rejected (what was good is stored).
fn main() -> ExitCode {
    let args = Cli::parse();
    init_logging(&args);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // `musubi man | head`: the reader has what it wanted; not a failure to report.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("musubi: {e:#}");
            if e.downcast_ref::<cli::PartlyRejected>().is_some() {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The daemon logs at INFO (its journal is read by operators); the CLI commands at WARN
/// unless `-v` (INFO) or `-vv` (DEBUG), so that a command in a script or a systemd timer
/// prints its result and its problems, not the store's migrations. `MUSUBI_LOG` overrides
/// both. Colour only for a terminal, and never with `NO_COLOR` set (no-color.org), so that
/// a log file or a pipe holds no escape codes. `[log] format = "json"` in `musubi.toml`
/// writes one JSON object a line (for a SIEM); the configuration is read here only for that
/// key, and its errors are reported by the command that loads it properly.
fn init_logging(args: &Cli) {
    let default = match (&args.command, args.global.verbose) {
        (Command::Serve(_), _) => "info",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let format = Config::load_or_default(args.global.config.as_deref())
        .map(|c| c.log_format)
        .unwrap_or_default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MUSUBI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_ansi(false).init(),
        LogFormat::Plain => builder
            .with_ansi(std::io::stderr().is_terminal() && !no_color)
            .init(),
    }
}

fn run(args: Cli) -> Result<()> {
    // Generated from the definitions alone: no configuration (which may not be there yet
    // when the package is built) is read.
    let args = match args.command {
        Command::Completions(a) => return cli::shell::completions(a),
        Command::Man => return cli::shell::man(),
        command => Cli { command, ..args },
    };
    let config = Config::load_or_default(args.global.config.as_deref())?;
    let data_dir = args
        .global
        .data_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.clone());
    match args.command {
        Command::Serve(a) => cli::serve::run(config, data_dir, a),
        Command::Import(a) => cli::import::run(&config, &data_dir, a, &args.global),
        Command::Extract(a) => cli::extract::run(a),
        Command::StixPattern(a) => cli::pattern::run(a),
        Command::Feeds(cmd) => cli::feeds::run(&config, &data_dir, cmd),
        Command::Campaigns(a) => cli::campaigns::list(&config, &data_dir, a),
        Command::Campaign(a) => cli::campaigns::show(&config, &data_dir, a),
        Command::Advisories(a) => cli::advisories::list(&config, &data_dir, a),
        Command::Search(a) => cli::search::run(&config, &data_dir, a),
        Command::Member(cmd) => cli::member::run(&config, &data_dir, cmd),
        Command::Digest(cmd) => cli::digest::run(&config, &data_dir, cmd),
        Command::Check => cli::check::run(&config, &data_dir),
        Command::Reindex => cli::reindex::run(&config, &data_dir),
        Command::Migrate(a) => cli::migrate::run(&data_dir, a),
        Command::Decide(a) => cli::campaigns::decide(&config, &data_dir, a),
        Command::Release(a) => cli::campaigns::release(&config, &data_dir, a),
        Command::Stats(a) => cli::stats::stats(&config, &data_dir, a),
        Command::Audit(a) => cli::stats::audit(&config, &data_dir, a),
        Command::Export(a) => cli::export::run(&config, &data_dir, a),
        Command::Completions(a) => cli::shell::completions(a),
        Command::Man => cli::shell::man(),
    }
}
