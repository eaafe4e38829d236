//! Correlation benchmarks: full build at 100k reports, the incremental add, and the
//! snapshot after a batch of adds (whose cost is dominated by the largest campaign).
//!
//! `cargo bench --bench correlate`. The add benchmark also prints p50/p99 of single adds,
//! which criterion's mean hides. `MUSUBI_BENCH_REPORTS` changes the size (default 100,000).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use musubi::correlate::synth::{Synth, SynthConfig};
use musubi::correlate::{Engine, IdBook, Rules};

fn size() -> usize {
    std::env::var("MUSUBI_BENCH_REPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn config() -> SynthConfig {
    SynthConfig {
        reports: size(),
        campaigns: size() / 20,
        ..SynthConfig::default()
    }
}

fn build(c: &mut Criterion) {
    let reports = Synth::generate(config());
    let rules = Rules::shipped();
    let mut group = c.benchmark_group("correlate");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function(format!("build_{}k", size() / 1000), |b| {
        b.iter(|| Engine::build_with(rules.clone(), IdBook::default(), reports.clone()))
    });
    group.finish();
}

fn add(c: &mut Criterion) {
    let mut all: Vec<_> = Synth::new(config()).take(size() + 20_000).collect();
    let extra = all.split_off(size());
    let (mut engine, _) = Engine::build_with(Rules::shipped(), IdBook::default(), all);
    let mut extra = extra.into_iter();
    // Percentiles of single adds (criterion reports the mean).
    let mut lat: Vec<Duration> = (0..10_000)
        .filter_map(|_| extra.next())
        .map(|r| {
            let t = Instant::now();
            engine.add(r);
            t.elapsed()
        })
        .collect();
    lat.sort();
    println!(
        "incremental add at {} reports: p50 {:?}, p99 {:?}",
        engine.len(),
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100]
    );
    let mut group = c.benchmark_group("correlate");
    group.bench_function(format!("add_at_{}k", size() / 1000), |b| {
        b.iter_batched(
            || extra.next(),
            |r| {
                if let Some(r) = r {
                    engine.add(r);
                }
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// The snapshot after a batch of 100 adds: what the daemon takes after each round of
/// catching up. Only changed campaigns are rebuilt, but the largest campaign changes in
/// almost every batch, so this is the cost of its view.
fn snapshot(c: &mut Criterion) {
    let mut all: Vec<_> = Synth::new(config()).take(size() + 200_000).collect();
    let extra = all.split_off(size());
    let (mut engine, _) = Engine::build_with(Rules::shipped(), IdBook::default(), all);
    let first = Instant::now();
    let snap = engine.snapshot();
    println!(
        "first snapshot at {} reports: {:?} ({} campaigns, largest {} reports)",
        engine.len(),
        first.elapsed(),
        snap.len(),
        snap.campaigns
            .iter()
            .map(|c| c.reports.len())
            .max()
            .unwrap_or(0)
    );
    let mut extra = extra.into_iter();
    let mut group = c.benchmark_group("correlate");
    group.sample_size(20);
    group.bench_function(
        format!("snapshot_after_100_adds_at_{}k", size() / 1000),
        |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    for r in extra.by_ref().take(100) {
                        engine.add(r);
                    }
                    let t = Instant::now();
                    drop(engine.snapshot());
                    spent += t.elapsed();
                }
                spent
            })
        },
    );
    group.finish();
}

criterion_group!(benches, build, add, snapshot);
criterion_main!(benches);
