//! Correlation benchmarks: full build at 100k reports and the incremental add.
//!
//! `cargo bench --bench correlate`. The add benchmark also prints p50/p99 of single adds,
//! which criterion's mean hides.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use musubi::correlate::synth::{Synth, SynthConfig};
use musubi::correlate::{Engine, IdBook, Rules};

const REPORTS: usize = 100_000;

fn config() -> SynthConfig {
    SynthConfig {
        reports: REPORTS,
        campaigns: REPORTS / 20,
        ..SynthConfig::default()
    }
}

fn build(c: &mut Criterion) {
    let reports = Synth::generate(config());
    let rules = Rules::shipped();
    let mut group = c.benchmark_group("correlate");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("build_100k", |b| {
        b.iter(|| Engine::build_with(rules.clone(), IdBook::default(), reports.clone()))
    });
    group.finish();
}

fn add(c: &mut Criterion) {
    let mut all: Vec<_> = Synth::new(config()).take(REPORTS + 20_000).collect();
    let extra = all.split_off(REPORTS);
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
    group.bench_function("add_at_100k", |b| {
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

criterion_group!(benches, build, add);
criterion_main!(benches);
