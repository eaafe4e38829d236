//! `musubi feeds ...`: the public feeds' health, and polling one now.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use musubi::config::Config;
use musubi::config::feeds::FeedsConfig;
use musubi::council::read::FeedView;
use musubi::sources::feeds;
use musubi::store::Store;

use musubi::formats::OutcomeCounts;

use super::{block_on, operator, print_json, store_read_path};

#[derive(Subcommand)]
pub enum FeedsCommand {
    /// Each feed's health: last success, last error, consecutive failures, items added, and
    /// what the last poll with content kept, normalised and skipped (the first few skip
    /// reasons below it).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Poll one feed now (ignores its backoff) and store what it brings.
    Poll {
        name: String,
        /// Print one JSON object (feed, reports read, new, items kept/normalised/skipped).
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: &Config, data_dir: &Path, cmd: FeedsCommand) -> Result<()> {
    let store = musubi::daemon::open_store(config, data_dir)?;
    match cmd {
        FeedsCommand::List { json } => list(config, &store, json)?,
        FeedsCommand::Poll { name, json } => poll(config, &store, &name, json)?,
    }
    store.close();
    Ok(())
}

fn list(config: &Config, store: &Store, json: bool) -> Result<()> {
    let read = store_read_path(store);
    let states: HashMap<_, _> = block_on(read.feeds(&operator()))?
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
                "name": f.name, "enabled": f.enabled, "format": f.format_name(),
                "last_success": st.last_success, "last_error": st.last_error,
                "consecutive_failures": st.consecutive_failures,
                "items_added": st.items_added,
                "member": st.member,
                "last_items": st.last_items,
                "skip_reasons": st.skip_reasons,
            })
        })
        .collect();
    if json {
        print_json(&serde_json::json!({ "feeds": rows }))?;
    } else {
        for r in &rows {
            println!(
                "{:<28} {:<8} {:<12} ok:{:<28} failures:{} items:{} kept:{} normalised:{} skipped:{} {}",
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
                r["last_items"]["kept"],
                r["last_items"]["normalised"],
                r["last_items"]["skipped"],
                r["last_error"].as_str().unwrap_or("")
            );
            for why in r["skip_reasons"].as_array().into_iter().flatten() {
                println!("    skipped {}", why.as_str().unwrap_or_default());
            }
        }
    }
    Ok(())
}

fn poll(config: &Config, store: &Store, name: &str, json: bool) -> Result<()> {
    let cfg = FeedsConfig::load(&config.feeds_file)?;
    let feed = cfg
        .feeds
        .iter()
        .find(|f| f.name == name)
        .with_context(|| format!("no feed named {name:?} in {}", config.feeds_file.display()))?
        .clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    // A spinner with the phase on a terminal; otherwise one line per phase of the feed
    // on stderr, so that a timer's journal shows where a slow poll is.
    let bar = super::spinner("polling");
    let plain = bar.is_hidden();
    bar.set_message(format!("{name}: polling"));
    if plain && !json {
        eprintln!("musubi: {name}: polling");
    }
    let (added, read, items) = runtime.block_on(async {
        let client = feeds::build_client()?;
        let state = feeds::load_state(store, name).await?;
        let outcome = feeds::poll(&client, &feed, &state, chrono::Utc::now()).await;
        if let Err(e) = &outcome.result {
            bar.suspend(|| eprintln!("musubi: {name}: {e}"));
        }
        let (read, items) = match &outcome.result {
            Ok(Some(p)) => (Some(p.reports.len()), p.counts()),
            _ => (None, OutcomeCounts::default()),
        };
        if let Some(n) = read {
            bar.set_message(format!("{name}: storing {n} report(s)"));
            if plain && !json {
                eprintln!("musubi: {name}: storing {n} report(s)");
            }
        }
        let failed = outcome.result.is_err();
        let added = feeds::store_outcome(store, name, outcome).await?;
        if failed {
            bail!("poll of {name} failed (recorded in its health)");
        }
        anyhow::Ok((added, read, items))
    })?;
    bar.finish_and_clear();
    if json {
        print_json(&serde_json::json!({
            "feed": name,
            "modified": read.is_some(),
            "reports": read.unwrap_or(0),
            "new": added,
            "items": items,
        }))?;
    } else if read.is_none() {
        println!("{name}: 0 new report(s); not modified since the last poll");
    } else {
        println!(
            "{name}: {added} new report(s) of {}; items: {} kept, {} normalised, {} skipped",
            read.unwrap_or(0),
            items.kept,
            items.normalised,
            items.skipped
        );
    }
    Ok(())
}
