//! Correlation at scale: builds the engine over synthetic reports (the load at start-up),
//! re-correlates everything (what a SIGHUP with new rules does), then adds more one at a
//! time and prints wall time, incremental latency percentiles and peak memory.
//!
//! ```text
//! cargo run --release --example correlate_scale -- [reports] [observables per report]
//! ```
//! Defaults: 1,000,000 reports × 10 observables (10M occurrences); the last 10,000 reports
//! are added incrementally to the engine built over the others.

use std::time::Instant;

use musubi::correlate::synth::{Synth, SynthConfig};
use musubi::correlate::{Engine, IdBook, Rules};

fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len() + 1..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn peak_rss() -> String {
    status("VmHWM")
}

/// Resident memory now and the peak so far, after each phase: where the peak is reached.
fn memory() -> String {
    format!("[RSS {}, peak {}]", status("VmRSS"), peak_rss())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    // `RUST_LOG=musubi::correlate=debug` prints the phases of the full build.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let reports: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let per: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let tail = (reports / 100).clamp(1, 10_000);
    let cfg = SynthConfig {
        reports,
        observables_per_report: per,
        campaigns: reports / 20,
        ..SynthConfig::default()
    };
    // Loaded in batches, as start-up reads the store: only the engine stays resident.
    let mut synth = Synth::new(cfg);
    let rules = Rules::shipped();
    let mut engine = Engine::with_rules(rules, IdBook::default());
    let (mut generating, mut loading) = (0.0, 0.0);
    let mut occurrences = 0;
    let mut left = reports - tail;
    while left > 0 {
        let t = Instant::now();
        let batch: Vec<_> = synth.by_ref().take(left.min(50_000)).collect();
        left -= batch.len();
        occurrences += batch.iter().map(|r| r.observables.len()).sum::<usize>();
        generating += t.elapsed().as_secs_f64();
        let t = Instant::now();
        engine.load(batch);
        loading += t.elapsed().as_secs_f64();
    }
    println!(
        "loaded {} reports (nothing linked yet) {}",
        engine.len(),
        memory()
    );
    let t = Instant::now();
    let events = engine.finish_load(Vec::new());
    let build = loading + t.elapsed().as_secs_f64();
    println!(
        "generated {} reports, {occurrences} observable occurrences in {generating:.1} s",
        engine.len()
    );
    println!(
        "full build of {} reports: {build:.2} s, of which loading {loading:.2} s ({} campaigns, {} links, {} events, {} over-correlating values) {}",
        engine.len(),
        engine.campaign_count(),
        engine.link_count(),
        events.len(),
        engine.over_correlating().len(),
        memory()
    );
    let added: Vec<_> = synth.take(tail).collect();
    // What a SIGHUP does: every link and campaign again from the loaded reports, under
    // (here the same) rules; ids are kept by overlap.
    let t = Instant::now();
    let events = engine.recorrelate(Rules::shipped());
    println!(
        "full re-correlation of {} reports: {:.2} s ({} campaigns, {} events) {}",
        engine.len(),
        t.elapsed().as_secs_f64(),
        engine.campaign_count(),
        events.len(),
        memory()
    );
    let t = Instant::now();
    let snap = engine.snapshot();
    println!(
        "first snapshot: {:.2} s ({} campaigns, largest {} reports) {}",
        t.elapsed().as_secs_f64(),
        snap.len(),
        snap.campaigns
            .iter()
            .map(|c| c.reports.len())
            .max()
            .unwrap_or(0),
        memory()
    );
    // Explanations are computed on request for the one campaign asked: time the hardest.
    if let Some(largest) = snap.campaigns.iter().max_by_key(|c| c.reports.len()) {
        let t = Instant::now();
        let why = engine
            .explain(largest.id)
            .expect("a campaign of the snapshot is explained");
        println!(
            "explanation of the largest campaign on request: {:.1} ms ({} links listed of {}, {} related)",
            t.elapsed().as_secs_f64() * 1e3,
            why.why.links.len(),
            why.why.links_total,
            why.related.len()
        );
    }
    drop(snap);
    let mut lat = Vec::with_capacity(added.len());
    let mut snaps = Vec::new();
    for (i, r) in added.into_iter().enumerate() {
        let t = Instant::now();
        engine.add(r);
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        if i % 1000 == 999 {
            let t = Instant::now();
            let s = engine.snapshot();
            snaps.push(t.elapsed().as_secs_f64() * 1e3);
            drop(s);
        }
    }
    lat.sort_by(f64::total_cmp);
    snaps.sort_by(f64::total_cmp);
    println!(
        "incremental add of {} reports into {}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        lat.len(),
        engine.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
    if !snaps.is_empty() {
        println!(
            "snapshot after each batch of 1000 adds: p50 {:.1} ms, max {:.1} ms {}",
            percentile(&snaps, 0.5),
            snaps[snaps.len() - 1],
            memory()
        );
    }
    println!("peak RSS (VmHWM): {}", peak_rss());
}
