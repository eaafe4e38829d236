//! `musubi stats` (the council's campaign statistics) and `musubi audit` (its audit log).

use std::path::Path;

use anyhow::Result;
use clap::Args;

use musubi::config::Config;
use musubi::council::stats::{Format, Lang};

use super::{block_on, operator, print_json, store_read_path};

#[derive(Args)]
pub struct StatsArgs {
    #[arg(long)]
    from: chrono::NaiveDate,
    #[arg(long)]
    to: chrono::NaiveDate,
    /// ja or en.
    #[arg(long, default_value = "ja")]
    lang: Lang,
    /// md, json or csv.
    #[arg(long, default_value = "md")]
    format: Format,
    /// The same as `--format json` (every command that prints a table takes `--json`).
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

#[derive(Args)]
pub struct AuditArgs {
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

pub fn stats(config: &Config, data_dir: &Path, args: StatsArgs) -> Result<()> {
    let store = musubi::daemon::open_store(config, data_dir)?;
    let read = store_read_path(&store);
    let today = chrono::Utc::now().date_naive();
    let table = block_on(read.statistics(&operator(), args.from, args.to, today))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    print!(
        "{}",
        musubi::council::stats::render(
            &table,
            args.lang,
            if args.json { Format::Json } else { args.format }
        )
    );
    drop(read);
    store.close();
    Ok(())
}

pub fn audit(config: &Config, data_dir: &Path, args: AuditArgs) -> Result<()> {
    let store = musubi::daemon::open_store(config, data_dir)?;
    let read = store_read_path(&store);
    let entries = block_on(read.audit(&operator(), args.limit))?;
    if args.json {
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
    drop(read);
    store.close();
    Ok(())
}
