//! Scale run: bulk import, search and restart of the real daemon at a million indicators.
//!
//! ```sh
//! export CARGO_TARGET_DIR=target
//! cargo build --release --bin musubi --example scale
//! target/release/examples/scale --musubi target/release/musubi --indicators 1000000
//! ```
//!
//! Phases, each printed with its figure:
//! 1. bulk — writes native submission files (JSON arrays) holding `--indicators` values in
//!    reports of mixed sizes, runs `musubi import` into a fresh data directory, then starts the
//!    daemon and times until it listens and until its projections (index and correlation) are
//!    current according to `/healthz`;
//! 2. search — `--queries` searches (half exact observable values, half words of the titles
//!    and descriptions) from `--clients` concurrent clients, with p50/p99;
//! 3. restart — SIGTERM, start again, time until listening and until current.
//!
//! The daemon's peak resident memory (VmHWM) is printed after each phase, and the import's.
//! `--corpus realistic` (the default) draws values from the correlation generator
//! (`correlate::synth`: campaigns with their own infrastructure, commodity values shared
//! across them) in realistic form — public addresses, domains under a real TLD mix, URLs on
//! such hosts, hashes — with anything a shipped warning list would suppress redrawn, so the
//! run correlates as real data would. `--corpus legacy` is the first corpus: Zipf(1.1) over a
//! pool of half as many values as indicators, every address in 10.0.0.0/8 (which the
//! RFC 1918 list suppresses). Words of the text follow a Zipf distribution over a vocabulary.
//! The data is deterministic (`--seed`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

#[path = "support/zipf.rs"]
mod zipf;
use zipf::{draw, zipf_table};

struct Args {
    musubi: String,
    indicators: usize,
    mix: Mix,
    corpus: Corpus,
    files: usize,
    queries: usize,
    clients: usize,
    seed: u64,
    dir: Option<PathBuf>,
    search_only: bool,
}

/// Which values the reports carry.
#[derive(Clone, Copy, PartialEq)]
enum Corpus {
    /// The correlation generator's campaigns and shared infrastructure
    /// (`correlate::synth`), in realistic form (`synth::realistic`): public addresses,
    /// domains under a real TLD mix, URLs on such hosts, hashes; a value a shipped warning
    /// list would suppress is redrawn. Report sizes follow the generator (mean of the mix).
    Realistic,
    /// The first scale corpus: Zipf(1.1) over `value(rank)`, every address in 10.0.0.0/8
    /// (suppressed by the RFC 1918 warning list, so addresses never link).
    Legacy,
}

/// Report sizes.
#[derive(Clone, Copy, PartialEq)]
enum Mix {
    /// As the load generator: 80 % of reports carry 1–5 indicators, 20 % carry 6–40 (mean ≈ 7).
    Loadgen,
    /// 1–3 indicators per report (mean 2): a million reports from two million indicators.
    Small,
}

fn parse_args() -> Args {
    let mut a = Args {
        musubi: "target/release/musubi".into(),
        indicators: 1_000_000,
        mix: Mix::Loadgen,
        corpus: Corpus::Realistic,
        files: 100,
        queries: 2_000,
        clients: 4,
        seed: 9,
        dir: None,
        search_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--musubi" => a.musubi = val(),
            "--indicators" => a.indicators = val().parse().expect("--indicators N"),
            "--mix" => {
                a.mix = match val().as_str() {
                    "loadgen" => Mix::Loadgen,
                    "small" => Mix::Small,
                    other => panic!("--mix loadgen|small, not {other}"),
                }
            }
            "--corpus" => {
                a.corpus = match val().as_str() {
                    "realistic" => Corpus::Realistic,
                    "legacy" => Corpus::Legacy,
                    other => panic!("--corpus realistic|legacy, not {other}"),
                }
            }
            "--files" => a.files = val().parse().expect("--files N"),
            "--queries" => a.queries = val().parse().expect("--queries N"),
            "--clients" => a.clients = val().parse().expect("--clients N"),
            "--seed" => a.seed = val().parse().expect("--seed N"),
            // Keep the data directory (and import files) here instead of a temporary one.
            "--dir" => a.dir = Some(PathBuf::from(val())),
            // Only the search phase, over the data a previous run left in --dir.
            "--search-only" => a.search_only = true,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// The observable of rank `rank`: IPv4, domain, SHA-256 or URL.
fn value(rank: usize) -> (&'static str, String) {
    match rank % 4 {
        0 => (
            "ipv4",
            format!(
                "10.{}.{}.{}",
                (rank >> 16) % 256,
                (rank >> 8) % 256,
                rank % 256
            ),
        ),
        1 => ("domain", format!("c2-{rank}.scale-example.net")),
        2 => (
            "sha256",
            format!("{:064x}", (rank as u128 + 1) * 0x9e37_79b9_7f4a_7c15_f39c),
        ),
        _ => (
            "url",
            format!("http://dl-{}.scale-example.org/p/{rank}", rank % 977),
        ),
    }
}

const SYLLABLES: [&str; 16] = [
    "ka", "ri", "to", "mu", "sa", "ne", "zu", "ho", "ra", "ki", "no", "te", "shi", "ma", "ku", "yo",
];

/// A pronounceable made-up word for rank `rank` of the vocabulary (distinct per rank).
fn word(rank: usize) -> String {
    let mut w = String::new();
    let mut r = rank + 16;
    while r > 0 {
        w.push_str(SYLLABLES[r % 16]);
        r /= 16;
    }
    w
}

const SECTORS: [&str; 6] = [
    "telecom",
    "energy",
    "finance",
    "transport",
    "health",
    "water",
];
const TAGS: [&str; 8] = [
    "phishing",
    "ransomware",
    "c2",
    "scanning",
    "ddos",
    "malware",
    "credential-theft",
    "botnet",
];

struct Generator {
    values: Vec<f64>,
    words: Vec<f64>,
    rng: rand::rngs::StdRng,
    mix: Mix,
}

impl Generator {
    fn report_size(&mut self) -> usize {
        match self.mix {
            Mix::Loadgen if self.rng.random_bool(0.8) => self.rng.random_range(1..=5),
            Mix::Loadgen => self.rng.random_range(6..=40),
            Mix::Small => self.rng.random_range(1..=3),
        }
    }

    fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| word(draw(&self.words, &mut self.rng)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn report(&mut self, n: usize, i: usize) -> Value {
        let indicators: Vec<Value> = (0..n)
            .map(|_| {
                let (t, v) = value(draw(&self.values, &mut self.rng));
                json!({"type": t, "value": v})
            })
            .collect();
        self.report_of(indicators, i)
    }

    fn report_of(&mut self, indicators: Vec<Value>, i: usize) -> Value {
        let sector = SECTORS[self.rng.random_range(0..SECTORS.len())];
        let title = format!("{} against {sector} {}", self.words(2), i);
        let nd = self.rng.random_range(5..=30);
        let description = self.words(nd);
        let tag = TAGS[self.rng.random_range(0..TAGS.len())];
        json!({
            "title": title,
            "description": description,
            "tlp": if self.rng.random_bool(0.7) { "green" } else { "amber" },
            "indicators": indicators,
            "tags": [tag],
        })
    }
}

/// The realistic corpus: each report's indicators, from the correlation generator's
/// stream, in realistic form; every 20th value is kept (by occurrence, so popular values
/// are sampled as often as they occur) for the exact-value searches.
struct RealisticValues {
    synth: musubi::correlate::synth::Synth,
    lists: Arc<musubi::correlate::rules::Rules>,
    sample: Vec<String>,
    seen: usize,
}

impl RealisticValues {
    fn new(args: &Args) -> RealisticValues {
        use musubi::correlate::synth::{Synth, SynthConfig};
        let mean = match args.mix {
            Mix::Loadgen => 7,
            Mix::Small => 2,
        };
        let reports = (args.indicators / mean).max(1);
        RealisticValues {
            synth: Synth::new(SynthConfig {
                reports,
                observables_per_report: mean,
                campaigns: (reports / 20).max(1),
                seed: args.seed,
                ..SynthConfig::default()
            }),
            lists: musubi::correlate::rules::Rules::shipped(),
            sample: Vec::new(),
            seen: 0,
        }
    }

    /// The next report's indicators (at most `left`).
    fn next_report(&mut self, left: usize) -> Vec<Value> {
        let facts = self.synth.next().expect("an endless stream");
        let mut out = Vec::new();
        for o in facts.observables.iter().take(left) {
            let mut salt = 0;
            let mut v = musubi::correlate::synth::realistic(o, salt);
            while self.lists.warninglists.check(&v).is_some() && salt < 16 {
                salt += 1;
                v = musubi::correlate::synth::realistic(o, salt);
            }
            self.seen += 1;
            if self.seen.is_multiple_of(20) {
                self.sample.push(v.value().to_string());
            }
            out.push(json!({"type": v.kind().as_str(), "value": v.value()}));
        }
        out
    }
}

/// Where the realistic corpus's sampled values are kept for the search phase.
fn sample_path(root: &Path) -> PathBuf {
    root.join("values.txt")
}

/// Writes the import files; returns their paths and the number of reports.
fn write_files(args: &Args, dir: &Path) -> (Vec<PathBuf>, usize) {
    if args.corpus == Corpus::Realistic {
        return write_realistic_files(args, dir);
    }
    // No sample: the search phase draws the legacy values itself.
    let _ = std::fs::remove_file(sample_path(dir.parent().unwrap_or(dir)));
    std::fs::create_dir_all(dir).expect("import dir");
    let mut g = Generator {
        values: zipf_table(args.indicators / 2),
        words: zipf_table(20_000),
        rng: rand::rngs::StdRng::seed_from_u64(args.seed),
        mix: args.mix,
    };
    let mut sizes = Vec::new();
    let mut left = args.indicators;
    while left > 0 {
        let n = g.report_size().min(left);
        sizes.push(n);
        left -= n;
    }
    let reports = sizes.len();
    let per_file = reports.div_ceil(args.files.max(1));
    let mut paths = Vec::new();
    for (f, chunk) in sizes.chunks(per_file).enumerate() {
        let path = dir.join(format!("bulk-{f:04}.json"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create file"));
        out.write_all(b"[\n").expect("write");
        for (j, &n) in chunk.iter().enumerate() {
            if j > 0 {
                out.write_all(b",\n").expect("write");
            }
            serde_json::to_writer(&mut out, &g.report(n, f * per_file + j)).expect("write");
        }
        out.write_all(b"\n]\n").expect("write");
        out.flush().expect("flush");
        paths.push(path);
    }
    (paths, reports)
}

/// [`write_files`] for the realistic corpus; also writes the value sample beside `dir`.
fn write_realistic_files(args: &Args, dir: &Path) -> (Vec<PathBuf>, usize) {
    std::fs::create_dir_all(dir).expect("import dir");
    let mut g = Generator {
        values: Vec::new(),
        words: zipf_table(20_000),
        rng: rand::rngs::StdRng::seed_from_u64(args.seed),
        mix: args.mix,
    };
    let mut values = RealisticValues::new(args);
    let mut reports: Vec<Vec<Value>> = Vec::new();
    let mut left = args.indicators;
    while left > 0 {
        let r = values.next_report(left);
        left -= r.len();
        reports.push(r);
    }
    let count = reports.len();
    let per_file = count.div_ceil(args.files.max(1));
    let mut paths = Vec::new();
    let mut i = 0;
    for (f, chunk) in reports.chunks(per_file).enumerate() {
        let path = dir.join(format!("bulk-{f:04}.json"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create file"));
        out.write_all(b"[\n").expect("write");
        for (j, indicators) in chunk.iter().enumerate() {
            if j > 0 {
                out.write_all(b",\n").expect("write");
            }
            serde_json::to_writer(&mut out, &g.report_of(indicators.clone(), i)).expect("write");
            i += 1;
        }
        out.write_all(b"\n]\n").expect("write");
        out.flush().expect("flush");
        paths.push(path);
    }
    let root = dir.parent().unwrap_or(dir);
    std::fs::write(sample_path(root), values.sample.join("\n")).expect("write the value sample");
    (paths, count)
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM"))?;
    line.trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn mib(kb: Option<u64>) -> String {
    kb.map(|k| format!("{:.0} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "unknown".into())
}

fn musubi(args: &Args, data: &Path) -> Command {
    let mut c = Command::new(&args.musubi);
    // Run in the data directory so that no musubi.toml or feeds.toml of the caller applies.
    c.current_dir(data).arg("--data-dir").arg(data);
    c
}

struct Daemon {
    child: Child,
    url: String,
}

/// Starts `musubi serve`; returns once it printed its address, with the time that took.
fn start_daemon(args: &Args, data: &Path) -> (Daemon, Duration) {
    let t0 = Instant::now();
    let mut child = musubi(args, data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("MUSUBI_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn musubi serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the daemon exited before listening")
            .expect("line");
        if let Some(rest) = line.strip_prefix("musubi: listening on ") {
            break rest.trim().to_string();
        }
        if !line.starts_with("musubi: try") {
            eprintln!("daemon: {line}");
        }
    };
    let ready = t0.elapsed();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if !line.starts_with("musubi: try") {
                eprintln!("daemon: {line}");
            }
        }
    });
    (Daemon { child, url }, ready)
}

/// The secretariat token `/healthz` details need (made by the bulk phase, kept in `--dir`).
static OPERATOR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Polls `/healthz` until the projections are current; returns the health document.
async fn wait_current(http: &reqwest::Client, url: &str) -> Value {
    let mut last_print = Instant::now();
    let operator = OPERATOR.get().cloned().unwrap_or_default();
    loop {
        if let Ok(r) = http
            .get(format!("{url}/healthz"))
            .bearer_auth(&operator)
            .send()
            .await
            && let Ok(h) = r.json::<Value>().await
        {
            if h["projections_current"] == Value::Bool(true) {
                return h;
            }
            if last_print.elapsed() > Duration::from_secs(5) {
                eprintln!(
                    "  … committed {} indexed {} correlated {}",
                    h["committed_seq"], h["indexed_seq"], h["correlated_seq"]
                );
                last_print = Instant::now();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stop(daemon: &mut Daemon) -> Duration {
    let t0 = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status();
    let _ = daemon.child.wait();
    t0.elapsed()
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1e3
}

/// Phase (a): writes the files, imports them into a fresh data directory and starts the
/// daemon over them. Returns the running daemon and the member's token.
async fn bulk(
    args: &Args,
    root: &Path,
    files_dir: &Path,
    data: &Path,
    http: &reqwest::Client,
) -> (Daemon, String) {
    if data.exists() {
        std::fs::remove_dir_all(data).expect("clear the old data dir");
    }
    std::fs::create_dir_all(data).expect("data dir");

    // --- (a) bulk import -------------------------------------------------------------------
    let t0 = Instant::now();
    let (files, reports) = write_files(args, files_dir);
    let bytes: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "generated          {} indicators in {reports} reports, {} files, {:.0} MiB ({:.1} s)",
        args.indicators,
        files.len(),
        bytes as f64 / 1048576.0,
        t0.elapsed().as_secs_f64()
    );
    let out = musubi(args, data)
        .args([
            "member",
            "add",
            "Scale Bench",
            "--class",
            "class1",
            "--sector",
            "telecom",
        ])
        .output()
        .expect("run musubi member add");
    let text = String::from_utf8_lossy(&out.stdout);
    let token = text
        .split_whitespace()
        .find(|w| w.starts_with("msb_"))
        .unwrap_or_else(|| panic!("no token in {text:?}"))
        .to_string();
    std::fs::write(root.join("token"), &token).expect("write token");
    // `/healthz` details need a secretariat token: an operator account of the run's own.
    let out = musubi(args, data)
        .args(["member", "add", "Scale Operator", "--class", "secretariat"])
        .output()
        .expect("run musubi member add");
    let text = String::from_utf8_lossy(&out.stdout);
    let operator = text
        .split_whitespace()
        .find(|w| w.starts_with("msb_"))
        .unwrap_or_else(|| panic!("no operator token in {text:?}"))
        .to_string();
    std::fs::write(root.join("operator"), &operator).expect("write operator token");
    let _ = OPERATOR.set(operator);

    let t0 = Instant::now();
    let mut import = musubi(args, data)
        .args(["import", "--as", "Scale Bench", "--format", "native"])
        .args(&files)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn musubi import");
    let pid = import.id();
    let mut import_hwm = None;
    let status = loop {
        if let Some(s) = import.try_wait().expect("wait import") {
            break s;
        }
        import_hwm = vm_hwm_kb(pid).or(import_hwm);
        std::thread::sleep(Duration::from_millis(50));
    };
    let import_time = t0.elapsed();
    let mut err = String::new();
    if let Some(mut e) = import.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "import failed: {err}");
    println!(
        "import             {:.1} s: {:.0} indicators/s, {:.0} reports/s; peak RSS {} ({})",
        import_time.as_secs_f64(),
        args.indicators as f64 / import_time.as_secs_f64(),
        reports as f64 / import_time.as_secs_f64(),
        mib(import_hwm),
        err.trim()
    );

    let (daemon, listening) = start_daemon(args, data);
    let current_from = Instant::now();
    let health = wait_current(http, &daemon.url).await;
    let current = listening + current_from.elapsed();
    let total = import_time + current;
    println!(
        "first start        listening after {:.1} s, projections current after {:.1} s (seq {})",
        listening.as_secs_f64(),
        current.as_secs_f64(),
        health["committed_seq"]
    );
    println!(
        "bulk total         {:.1} s import + index + correlation: {:.0} indicators/s (target ≥ 50,000/s, 1M in ≤ 20 s)",
        total.as_secs_f64(),
        args.indicators as f64 / total.as_secs_f64()
    );
    println!(
        "daemon peak RSS    {} after the first start",
        mib(vm_hwm_kb(daemon.child.id()))
    );

    (daemon, token)
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = parse_args();
    let tmp;
    let root = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).expect("--dir");
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir().expect("temp dir");
            tmp.path().to_path_buf()
        }
    };
    let files_dir = root.join("import");
    let data = root.join("data");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()
        .expect("client");
    let (mut daemon, token) = if args.search_only {
        let token = std::fs::read_to_string(root.join("token")).expect("token of a previous run");
        let operator = std::fs::read_to_string(root.join("operator"))
            .expect("operator token of a previous run");
        let _ = OPERATOR.set(operator.trim().to_string());
        let (daemon, _) = start_daemon(&args, &data);
        wait_current(&http, &daemon.url).await;
        (daemon, token.trim().to_string())
    } else {
        bulk(&args, &root, &files_dir, &data, &http).await
    };
    println!("daemon pid         {}", daemon.child.id());

    // --- (b) search ------------------------------------------------------------------------
    let values = Arc::new(zipf_table(args.indicators / 2));
    let words = Arc::new(zipf_table(20_000));
    // The realistic corpus's exact values come from its own sample (by occurrence).
    let sample: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(sample_path(&root))
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default(),
    );
    let per_client = args.queries.div_ceil(args.clients.max(1));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (http, url, token) = (http.clone(), daemon.url.clone(), token.clone());
        let (values, words, sample) = (values.clone(), words.clone(), sample.clone());
        let seed = args.seed + 1000 + c as u64;
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut lat = Vec::with_capacity(per_client);
            let (mut errors, mut hits) = (0u64, 0u64);
            for i in 0..per_client {
                let exact = i % 2 == 0;
                let q = if exact && !sample.is_empty() {
                    format!("\"{}\"", sample[rng.random_range(0..sample.len())])
                } else if exact {
                    format!("\"{}\"", value(draw(&values, &mut rng)).1)
                } else if rng.random_bool(0.5) {
                    word(draw(&words, &mut rng))
                } else {
                    format!(
                        "{} {}",
                        word(draw(&words, &mut rng)),
                        word(draw(&words, &mut rng))
                    )
                };
                let t = Instant::now();
                let r = http
                    .get(format!(
                        "{url}/api/v1/search?q={}",
                        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
                    ))
                    .bearer_auth(&token)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                        Ok(v) => {
                            lat.push((t.elapsed(), exact));
                            if v["hits"].as_array().is_some_and(|h| !h.is_empty()) {
                                hits += 1;
                            }
                        }
                        Err(_) => errors += 1,
                    },
                    _ => errors += 1,
                }
            }
            (lat, errors, hits)
        }));
    }
    let (mut all, mut errors, mut hits) = (Vec::new(), 0, 0);
    for t in tasks {
        let (l, e, h) = t.await.expect("search client");
        all.extend(l);
        errors += e;
        hits += h;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let sorted = |f: &dyn Fn(bool) -> bool| {
        let mut v: Vec<Duration> = all.iter().filter(|(_, e)| f(*e)).map(|(d, _)| *d).collect();
        v.sort();
        v
    };
    let lat = sorted(&|_| true);
    println!(
        "search             {} queries from {} clients in {elapsed:.1} s ({:.0}/s), {errors} errors, {hits} with hits",
        lat.len(),
        args.clients,
        lat.len() as f64 / elapsed
    );
    println!(
        "search latency     p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 ≤ 50 ms)",
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        lat.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0)
    );
    for (name, exact) in [("exact values", true), ("words", false)] {
        let l = sorted(&|e| e == exact);
        println!(
            "  {name:<16} p50 {:.1} ms, p99 {:.1} ms",
            pct(&l, 0.5),
            pct(&l, 0.99)
        );
    }
    println!(
        "daemon peak RSS    {} after the searches",
        mib(vm_hwm_kb(daemon.child.id()))
    );

    if args.search_only {
        stop(&mut daemon);
        return;
    }

    // --- (c) restart -----------------------------------------------------------------------
    let stopped = stop(&mut daemon);
    println!("stop (SIGTERM)     {:.1} s", stopped.as_secs_f64());
    let (mut daemon, listening) = start_daemon(&args, &data);
    let current_from = Instant::now();
    wait_current(&http, &daemon.url).await;
    let current = listening + current_from.elapsed();
    println!(
        "restart            listening after {:.1} s, projections current after {:.1} s (target ready ≤ 10 s)",
        listening.as_secs_f64(),
        current.as_secs_f64()
    );
    println!(
        "daemon peak RSS    {} after the restart (target ≤ 2 GB)",
        mib(vm_hwm_kb(daemon.child.id()))
    );
    stop(&mut daemon);
    let du = |p: &Path| -> u64 {
        std::fs::read_dir(p)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    println!(
        "data on disk       store {:.0} MiB, index {:.0} MiB",
        du(&data) as f64 / 1048576.0,
        du(&data.join("index")) as f64 / 1048576.0
    );
}
