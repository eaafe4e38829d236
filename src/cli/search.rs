//! `musubi search`: full-text search over reports, as the operator sees them.

use std::path::Path;

use anyhow::Result;
use clap::Args;

use musubi::config::Config;

use super::{Projections, block_on, operator, print_json};

#[derive(Args)]
pub struct SearchArgs {
    query: String,
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(config: &Config, data_dir: &Path, args: SearchArgs) -> Result<()> {
    let SearchArgs { query, limit, json } = args;
    let p = Projections::open(config, data_dir, true)?;
    let hits = block_on(p.read.search(&operator(), &query, limit));
    p.close();
    let hits = hits?;
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
    Ok(())
}
