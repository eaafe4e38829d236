//! A full TAXII walk costs O(N): time per page stays flat as the collection grows.
//!
//! `cargo bench --bench taxii` (`MUSUBI_BENCH_TAXII`, default `1000,10000,100000`
//! indicators, in reports of 10). For each size it stores the reports (as feed items), then
//! walks the collection as a class-2 member (whose visibility depends on release, so the
//! release test runs inside every page query) through the same code the server runs:
//! `Filter::query` → `ReadPath::taxii_objects` → `stix::taxii_object` → `taxii::page`,
//! limit 500, following the cursor. It prints pages, the walk's total time and the time per
//! page (mean, p50, p99); criterion then times one page in the middle of each collection.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use musubi::correlate::CampaignSet;
use musubi::council::{ReadPath, Viewer};
use musubi::model::{MemberClass, MemberId, Observable, Origin, ReportDraft, Tlp};
use musubi::outputs::stix;
use musubi::outputs::taxii::{self as tx, Cursor, Filter};
use musubi::store::Store;

const PER_REPORT: usize = 10;
const LIMIT: usize = 500;

fn sizes() -> Vec<usize> {
    std::env::var("MUSUBI_BENCH_TAXII")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000])
}

/// A store holding `n` domain indicators in reports of [`PER_REPORT`].
fn corpus(dir: &Path, n: usize) -> Store {
    let store = Store::open(dir).expect("open store");
    let drafts: Vec<ReportDraft> = (0..n.div_ceil(PER_REPORT))
        .map(|r| {
            let mut d = ReportDraft::new(format!("bench report {r}"), Tlp::Green);
            for i in 0..PER_REPORT.min(n - r * PER_REPORT) {
                let value = format!("h{r}-{i}.bench.example.net");
                d.push_observable(
                    Observable::parse_named("domain", &value).expect("domain"),
                    None,
                );
            }
            d
        })
        .collect();
    for chunk in drafts.chunks(1_000) {
        musubi::sources::import::store_drafts(
            &store,
            Path::new("bench"),
            Origin::FeedItem {
                feed: "bench".into(),
            },
            chunk.to_vec(),
        )
        .expect("store");
    }
    store
}

/// One page after `next`, as the server serves it.
async fn page(read: &ReadPath, viewer: &Viewer, next: Option<Cursor>) -> tx::Page {
    let filter = Filter {
        limit: LIMIT,
        next,
        ..Filter::default()
    };
    let mut all = stix::taxii_common_objects();
    if let Some(q) = filter.query() {
        let objects = read.taxii_objects(viewer, q).await.expect("page");
        all.extend(objects.iter().map(stix::taxii_object));
    }
    tx::page(all, &filter)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let viewer = Viewer::member(MemberId("m-bench".into()), MemberClass::Class2);
    let mut group = c.benchmark_group("taxii");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    for n in sizes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let t = Instant::now();
        let store = corpus(dir.path(), n);
        let stored = t.elapsed();
        let read = ReadPath::snapshot(store, Arc::new(CampaignSet::default()), None);
        let (mut times, mut objects, mut next) = (Vec::new(), 0usize, None);
        let mut middle = None;
        let walk = Instant::now();
        loop {
            let t = Instant::now();
            let p = rt.block_on(page(&read, &viewer, next.clone()));
            times.push(t.elapsed());
            objects += p.objects.len();
            if times.len() == (n / LIMIT / 2).max(1) {
                middle = next.clone();
            }
            match p.next {
                Some(s) => next = Some(Cursor::decode(&s).expect("cursor")),
                None => break,
            }
        }
        let total = walk.elapsed();
        let expected = n + n.div_ceil(PER_REPORT) + 10;
        assert_eq!(objects, expected, "every object once");
        times.sort();
        let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        println!(
            "taxii walk: {n} indicators, {objects} objects, {} pages of {LIMIT}: total {:.1} ms, \
             per page mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms (stored in {:.1} s)",
            times.len(),
            total.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3 / times.len() as f64,
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            stored.as_secs_f64(),
        );
        group.bench_function(format!("page_of_{LIMIT}_at_{n}"), |b| {
            b.iter(|| rt.block_on(page(&read, &viewer, middle.clone())))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
