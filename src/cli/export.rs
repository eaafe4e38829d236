//! `musubi export`: campaigns as a STIX 2.1 bundle, a MISP feed or CSV, for exactly one
//! audience.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use musubi::config::Config;
use musubi::council::Viewer;
use musubi::model::CampaignId;
use musubi::outputs;

use super::{Projections, operator};

#[derive(Args)]
pub struct ExportArgs {
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

pub fn run(config: &Config, data_dir: &Path, args: ExportArgs) -> Result<()> {
    // A spinner only when writing to a file: with stdout the export itself may be on the
    // terminal, and a bar would be drawn into it.
    let bar = match &args.out {
        Some(_) => super::spinner("catching up with the store"),
        None => indicatif::ProgressBar::hidden(),
    };
    // Cleared however `run` returns, so that an error is not printed onto its line.
    let _clear = ClearOnDrop(&bar);
    let p = Projections::open(config, data_dir, false)?;
    bar.set_message("reading the audience's campaigns");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let read = &p.read;
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
    p.close();
    bar.set_message(format!("writing {} campaign(s)", exports.len()));
    if let Some(id) = args.campaign
        && exports.is_empty()
    {
        bail!("no campaign {id} visible to this audience");
    }
    let write_to = |bytes: &[u8]| -> Result<()> {
        let written = match &args.out {
            Some(path) => {
                std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
            }
            None => Ok(std::io::stdout().lock().write_all(bytes)?),
        };
        bar.finish_and_clear();
        written
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
            bar.finish_and_clear();
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

/// Clears the spinner however `run` returns, so that an error message is not drawn over.
struct ClearOnDrop<'a>(&'a indicatif::ProgressBar);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
