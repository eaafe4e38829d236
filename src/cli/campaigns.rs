//! The campaign commands: `campaigns` (the list), `campaign` (one in detail), and the
//! analyst's `decide` and `release`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use musubi::config::Config;
use musubi::council::read::Page;
use musubi::council::{CampaignView, commands};
use musubi::model::{CampaignId, Disposition};

use super::{Projections, block_on, operator, print_json};

#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    id: CampaignId,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct DecideArgs {
    campaign: CampaignId,
    /// shared-public, shared-limited, low-need-known, low-need-transient, low-need-other,
    /// abandoned-no-consent, abandoned-insufficient-samples, abandoned-other, under-analysis.
    disposition: Disposition,
    #[arg(long, default_value = "")]
    note: String,
    /// The analyst's name (recorded with the decision and in the audit log).
    #[arg(long, env = "MUSUBI_ANALYST")]
    analyst: String,
}

#[derive(Args)]
pub struct ReleaseArgs {
    campaign: CampaignId,
    #[arg(long, env = "MUSUBI_ANALYST")]
    analyst: String,
}

#[derive(Serialize)]
struct CampaignListing {
    campaigns: Vec<CampaignView>,
}

pub fn list(config: &Config, data_dir: &Path, args: ListArgs) -> Result<()> {
    let p = Projections::open(config, data_dir, false)?;
    let page = Page {
        offset: 0,
        limit: usize::MAX,
    };
    let mut views = block_on(p.read.campaigns(&operator(), page))?;
    views.sort_by_key(|a| a.id);
    if args.json {
        print_json(&CampaignListing { campaigns: views })?;
    } else {
        let mut out = super::stdout();
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
        out.flush()?;
    }
    p.close();
    Ok(())
}

pub fn show(config: &Config, data_dir: &Path, args: ShowArgs) -> Result<()> {
    let id = args.id;
    let p = Projections::open(config, data_dir, false)?;
    let view =
        block_on(p.read.campaign(&operator(), id))?.with_context(|| format!("no campaign {id}"))?;
    if args.json {
        print_json(&view)?;
    } else {
        let mut out = super::stdout();
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
        for f in &view.flags {
            writeln!(out, "flag {}: {}", f.name, f.summary())?;
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
        out.flush()?;
    }
    p.close();
    Ok(())
}

pub fn decide(config: &Config, data_dir: &Path, args: DecideArgs) -> Result<()> {
    let DecideArgs {
        campaign,
        disposition,
        note,
        analyst,
    } = args;
    let store = musubi::daemon::open_store(config, data_dir)?;
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

pub fn release(config: &Config, data_dir: &Path, args: ReleaseArgs) -> Result<()> {
    let ReleaseArgs { campaign, analyst } = args;
    let store = musubi::daemon::open_store(config, data_dir)?;
    let n = store.writer().run_blocking(commands::release_campaign(
        campaign,
        analyst,
        chrono::Utc::now(),
    ))?;
    store.close();
    println!("{campaign} released ({n} report(s))");
    Ok(())
}
