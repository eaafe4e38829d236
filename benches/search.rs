//! Search latency over the tantivy index: exact observable values, words and phrases.
//!
//! `cargo bench --bench search` (`MUSUBI_BENCH_REPORTS`, default 200,000 reports). Besides
//! criterion's means, it prints p50/p99 over a fixed set of queries, which is what the
//! search target (p99 ≤ 50 ms) is about. The 1M-report figure over HTTP comes from
//! `examples/scale.rs` (see BENCHMARKS.md).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use musubi::correlate::synth::{Synth, SynthConfig};
use musubi::index::ReportIndex;
use musubi::model::{Indicator, Origin, Report, ReportDraft, ReportId, Tlp};

const WORDS: [&str; 12] = [
    "phishing",
    "ransomware",
    "loader",
    "beacon",
    "credential",
    "exfiltration",
    "scanning",
    "webshell",
    "botnet",
    "supply",
    "vpn",
    "exploit",
];

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("MUSUBI_BENCH_REPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let index = ReportIndex::open(dir.path()).expect("open index");
    let mut indexer = index.indexer().expect("index writer");
    let cfg = SynthConfig {
        reports: n,
        campaigns: n / 20,
        ..SynthConfig::default()
    };
    let mut values = Vec::new();
    let t = Instant::now();
    for facts in Synth::new(cfg).take(n) {
        let seq = facts.seq;
        if seq.0 % 997 == 0 {
            values.push(facts.observables[0].value().to_string());
        }
        let w = WORDS[(seq.0 % WORDS.len() as u64) as usize];
        let report = Report {
            id: ReportId(seq),
            origin: Origin::FeedItem {
                feed: "synthetic".into(),
            },
            received_at: facts.at,
            draft: ReportDraft {
                indicators: facts
                    .observables
                    .into_iter()
                    .map(|observable| Indicator {
                        observable,
                        comment: None,
                        stix_id: None,
                    })
                    .collect(),
                ..ReportDraft::new(format!("{w} activity report {}", seq.0), Tlp::Green)
            },
        };
        indexer.add(&report).expect("index");
    }
    indexer.commit().expect("commit");
    index.refresh().expect("refresh");
    println!("indexed {n} reports in {:.1} s", t.elapsed().as_secs_f64());

    let mut queries: Vec<String> = values.iter().take(200).cloned().collect();
    queries.extend(WORDS.iter().map(|w| w.to_string()));
    queries.extend(WORDS.iter().map(|w| format!("\"{w} activity\"")));
    let mut lat: Vec<Duration> = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            let hits = index.search(q, 50).expect("search");
            std::hint::black_box(hits);
            t.elapsed()
        })
        .collect();
    lat.sort();
    println!(
        "search over {n} reports, {} queries: p50 {:?}, p99 {:?}, max {:?}",
        lat.len(),
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100],
        lat[lat.len() - 1]
    );

    let mut group = c.benchmark_group("search");
    let value = values.first().cloned().unwrap_or_default();
    group.bench_function("exact_value", |b| {
        b.iter(|| index.search(&value, 50).expect("search"))
    });
    group.bench_function("word", |b| {
        b.iter(|| index.search("ransomware", 50).expect("search"))
    });
    group.bench_function("phrase", |b| {
        b.iter(|| index.search("\"loader activity\"", 50).expect("search"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
