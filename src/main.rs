//! The `musubi` command: the daemon and the operators' and analysts' tools. This file is
//! the entry point only (logging, arguments, dispatch); each command group lives in its
//! own module of [`cli`].

mod cli;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Command};
use musubi::config::Config;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MUSUBI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Cli::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("musubi: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Cli) -> Result<()> {
    let config = Config::load_or_default(args.global.config.as_deref())?;
    let data_dir = args
        .global
        .data_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.clone());
    match args.command {
        Command::Serve(a) => cli::serve::run(config, data_dir, a),
        Command::Import(a) => cli::import::run(&data_dir, a),
        Command::Extract(a) => cli::extract::run(a),
        Command::Feeds(cmd) => cli::feeds::run(&config, &data_dir, cmd),
        Command::Campaigns(a) => cli::campaigns::list(&config, &data_dir, a),
        Command::Campaign(a) => cli::campaigns::show(&config, &data_dir, a),
        Command::Search(a) => cli::search::run(&config, &data_dir, a),
        Command::Member(cmd) => cli::member::run(&data_dir, cmd),
        Command::Digest(cmd) => cli::digest::run(&config, &data_dir, cmd),
        Command::Check => cli::check::run(&config),
        Command::Reindex => cli::reindex::run(&config, &data_dir),
        Command::Decide(a) => cli::campaigns::decide(&data_dir, a),
        Command::Release(a) => cli::campaigns::release(&data_dir, a),
        Command::Stats(a) => cli::stats::stats(&data_dir, a),
        Command::Audit(a) => cli::stats::audit(&data_dir, a),
        Command::Export(a) => cli::export::run(&config, &data_dir, a),
    }
}
