//! `musubi import`: submission files stored on a member's behalf. The pipeline is the
//! library's ([`sources::import::import_files`]); this only prints what it reports.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use musubi::model::Origin;
use musubi::sources::import::{self, ImportEvent};
use musubi::store::Store;

use super::{block_on, operator, store_read_path};

#[derive(Args)]
pub struct ImportArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The submitting member (id or exact name).
    #[arg(long = "as", value_name = "MEMBER")]
    member: String,
    /// auto (detect from the content), native, stix, misp, rss, csaf, kev, kev-csv, nvd,
    /// blocklist[:preset], text.
    #[arg(long, default_value = "auto")]
    format: String,
}

pub fn run(data_dir: &Path, args: ImportArgs) -> Result<()> {
    let ImportArgs {
        files,
        member,
        format,
    } = args;
    let format: Option<musubi::formats::Format> = match format.as_str() {
        "auto" => None,
        name => Some(name.parse().map_err(|e| anyhow::anyhow!("{e}"))?),
    };
    let store = Store::open(data_dir)?;
    let read = store_read_path(&store);
    let member = block_on(read.member(&operator(), &member))?
        .with_context(|| format!("no member with id or name {member:?}"))?;
    let origin = Origin::Submission {
        member: member.id.clone(),
    };
    let mut failed = 0;
    let mut stored = 0;
    import::import_files(
        &store,
        &origin,
        &files,
        format.as_ref(),
        |event| match event {
            ImportEvent::Read { path, warnings } => {
                for w in warnings {
                    eprintln!("musubi: {}: warning: {w}", path.display());
                }
            }
            ImportEvent::Done(outcome) => match &outcome.result {
                Ok(ids) => {
                    stored += ids.len();
                    let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
                    println!("{}: stored {}", outcome.path.display(), ids.join(", "));
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("musubi: {e}");
                }
            },
        },
    );
    drop(read);
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
