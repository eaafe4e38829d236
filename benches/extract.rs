//! Throughput of free-text extraction (MB/s), of the feed parsers (items/s) and of the STIX
//! pattern parser (patterns/s).
//!
//! `cargo bench --bench extract`. Inputs are the test fixtures.

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use musubi::formats::{self, Format, ParseContext};

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(rel),
    )
    .expect("fixture")
}

fn extraction(c: &mut Criterion) {
    let article =
        String::from_utf8(fixture("ioc-extraction/ioc-finder-long-article-1.txt")).unwrap();
    // A mixed corpus: the article, Japanese bulletin text and a defanged IOC list.
    let mut text = article.clone();
    for i in 0..200 {
        text.push_str(&format!(
            "\n注意喚起：C2サーバ【evil{i}[.]example[.]jp】（１９２．０．２．{}）へ通信。hxxps://bad{i}.example.com/p?id={i} \
             d41d8cd98f00b204e9800998ecf84{:03x} CVE-2024-{:05} T1566.001 version 1.2.3.{}\n",
            i % 250,
            i,
            i + 1000,
            i % 10
        ));
    }
    let mut g = c.benchmark_group("extract");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("mixed_text", |b| {
        b.iter(|| formats::extract::extract(std::hint::black_box(&text)))
    });
    g.throughput(Throughput::Bytes(article.len() as u64));
    g.bench_function("article", |b| {
        b.iter(|| formats::extract::extract(std::hint::black_box(&article)))
    });
    g.finish();
}

fn parsers(c: &mut Criterion) {
    let cases: [(&str, &str, u64); 6] = [
        (
            "kev",
            "kev/known_exploited_vulnerabilities-2025.01.24.json",
            1252,
        ),
        (
            "kev-csv",
            "kev/known_exploited_vulnerabilities-2025.01.24.csv",
            1252,
        ),
        ("nvd", "nvd/nvdcve-1.1-recent-2021-07-20.json", 633),
        ("stix", "stix21/apt1.json", 12),
        ("misp", "misp-events/circl-sunorcal-malware.json", 75),
        (
            "blocklist:feodo",
            "blocklists/feodotracker-ipblocklist-2024-04-03.csv",
            28,
        ),
    ];
    let mut g = c.benchmark_group("parse");
    g.sample_size(20);
    for (format, file, items) in cases {
        let bytes = fixture(file);
        let f: Format = format.parse().unwrap();
        let ctx = ParseContext::default();
        g.throughput(Throughput::Elements(items));
        g.bench_function(format, |b| {
            b.iter(|| formats::parse(&f, std::hint::black_box(&bytes), &ctx).unwrap())
        });
    }
    g.finish();
}

/// The STIX pattern parser over the valid half of the pattern corpus (every construct of the
/// language, 10–150 bytes each): parse to the tree and extract, as an import does.
fn stix_patterns(c: &mut Criterion) {
    let corpus = String::from_utf8(fixture("stix-patterns/corpus.txt")).unwrap();
    let patterns: Vec<&str> = corpus
        .lines()
        .filter(|p| formats::stix_pattern::parse(p).is_ok())
        .collect();
    let bytes: usize = patterns.iter().map(|p| p.len()).sum();
    let mut g = c.benchmark_group("stix_pattern");
    g.throughput(Throughput::Elements(patterns.len() as u64));
    g.bench_function("parse_and_extract", |b| {
        b.iter(|| {
            for p in &patterns {
                std::hint::black_box(formats::stix_pattern::parse(std::hint::black_box(p)))
                    .unwrap();
            }
        })
    });
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("parse_ast_bytes", |b| {
        b.iter(|| {
            for p in &patterns {
                std::hint::black_box(formats::stix_pattern::parse_ast(std::hint::black_box(p)))
                    .unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, extraction, parsers, stix_patterns);
criterion_main!(benches);
