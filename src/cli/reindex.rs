//! `musubi reindex`: rebuilds the index and the correlation graph from the store.

use std::path::Path;

use anyhow::{Context, Result};

use musubi::config::Config;
use musubi::{daemon, index};

pub fn run(config: &Config, data_dir: &Path) -> Result<()> {
    // Fails if the daemon holds the index: a rebuild under a running daemon would race it.
    {
        let store = musubi::daemon::open_store(config, data_dir)?;
        let ix = index::ReportIndex::open(data_dir)?;
        drop(
            ix.indexer()
                .context("stop `musubi serve` before reindexing")?,
        );
        store.close();
    }
    let bar = super::spinner("removing the old index");
    index::ReportIndex::destroy(data_dir)?;
    let started = std::time::Instant::now();
    bar.set_message("indexing and correlating every stored report");
    let (store, index, _indexer, correlator) = daemon::open_projections(config, data_dir)?;
    bar.set_message("building campaigns");
    let set = correlator.snapshot();
    bar.finish_and_clear();
    println!(
        "reindexed {} report(s) into {} campaign(s) in {:.2} s",
        index.num_docs(),
        set.campaigns.len(),
        started.elapsed().as_secs_f64()
    );
    store.close();
    Ok(())
}
