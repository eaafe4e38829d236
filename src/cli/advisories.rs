//! `musubi advisories`: public context (groups of feed items no member reported), apart
//! from campaigns.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use musubi::config::Config;
use musubi::council::read::{AdvisoryQuery, AdvisoryView, Page};

use super::{Projections, block_on, operator, print_json};

#[derive(Args)]
pub struct AdvisoriesArgs {
    /// Only advisories with an item whose title contains this text (case-insensitive).
    #[arg(long)]
    q: Option<String>,
    /// Only advisories of this feed.
    #[arg(long)]
    feed: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct AdvisoryListing {
    advisories: Vec<AdvisoryView>,
}

pub fn list(config: &Config, data_dir: &Path, args: AdvisoriesArgs) -> Result<()> {
    let p = Projections::open(config, data_dir, false)?;
    let query = AdvisoryQuery {
        q: args.q,
        feed: args.feed,
        page: Page {
            offset: 0,
            limit: args.limit,
        },
    };
    let views = block_on(p.read.advisories(&operator(), query))?;
    if args.json {
        return print_json(&AdvisoryListing { advisories: views });
    }
    let mut out = super::stdout();
    writeln!(
        out,
        "{:<10} {:>5}  {:<20} {:<12} title",
        "advisory", "items", "last seen", "feed"
    )?;
    for v in &views {
        writeln!(
            out,
            "{:<10} {:>5}  {:<20} {:<12} {}",
            v.id.to_string(),
            v.report_count,
            v.last_seen.format("%Y-%m-%d %H:%M"),
            v.feeds.join(","),
            v.title
        )?;
    }
    out.flush()?;
    Ok(())
}
