//! Load generator: drives a real `musubi serve` over HTTP with realistic submissions and
//! reports throughput, latency percentiles and the daemon's peak memory.
//!
//! ```sh
//! cargo build --release --examples
//! target/release/examples/loadgen --musubi target/release/musubi --clients 32 --seconds 20
//! # one or two nodes on a PostgreSQL store (issue #16; benches/cluster/run starts one):
//! target/release/examples/loadgen --store postgres://musubi@127.0.0.1:5432/musubi --nodes 2
//! ```
//!
//! It starts the daemon itself in a temporary data directory (or uses `--url` and `--token`
//! for a running one), registers members from several sectors, and has each client submit
//! reports of 1–40 indicators whose values are drawn from a Zipf-like distribution over a pool,
//! so that a few values recur everywhere (as C2 infrastructure does) and most are rare.
//!
//! `--store URL` writes `[store] backend = "postgres"` with that URL into each node's
//! musubi.toml; `--nodes N` starts N daemons on that one store, each on its own data
//! directory (its own index), and client `c` submits to node `c mod N`. The member is added
//! once: the store is shared. `--json` prints the figures as one JSON object instead of the
//! table (for `benches/cluster/run`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;

#[path = "support/zipf.rs"]
mod zipf;
use zipf::{draw, zipf_table};

struct Args {
    musubi: String,
    url: Option<String>,
    token: Option<String>,
    clients: usize,
    seconds: u64,
    pool: usize,
    /// A PostgreSQL URL for `[store]`; None: each node's own SQLite file.
    store: Option<String>,
    nodes: usize,
    json: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        musubi: "target/release/musubi".into(),
        url: None,
        token: None,
        clients: 32,
        seconds: 20,
        pool: 200_000,
        store: None,
        nodes: 1,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--json" {
            a.json = true;
            continue;
        }
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--musubi" => a.musubi = val(),
            "--url" => a.url = Some(val()),
            "--token" => a.token = Some(val()),
            "--clients" => a.clients = val().parse().expect("--clients N"),
            "--seconds" => a.seconds = val().parse().expect("--seconds N"),
            "--pool" => a.pool = val().parse().expect("--pool N"),
            "--store" => a.store = Some(val()),
            "--nodes" => a.nodes = val().parse().expect("--nodes N"),
            other => panic!("unknown flag {other}"),
        }
    }
    if let Some(url) = &a.store {
        assert!(
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "--store {url}: a postgres:// URL (without it each node has its own SQLite file)"
        );
    }
    assert!(a.nodes >= 1, "--nodes must be at least 1");
    assert!(
        a.nodes == 1 || a.store.is_some(),
        "--nodes {}: several nodes need a shared store (--store postgres://...)",
        a.nodes
    );
    assert!(
        a.url.is_none() || (a.store.is_none() && a.nodes == 1),
        "--url drives a running daemon: --store and --nodes are for the daemons loadgen starts"
    );
    a
}

fn value(rank: usize) -> (&'static str, String) {
    match rank % 4 {
        0 => (
            "ipv4",
            format!(
                "198.{}.{}.{}",
                18 + (rank >> 16) % 2,
                (rank >> 8) % 256,
                rank % 256
            ),
        ),
        1 => ("domain", format!("c2-{rank}.load-example.net")),
        2 => (
            "sha256",
            format!("{:064x}", rank as u128 * 0x9e37_79b9_7f4a_7c15),
        ),
        _ => (
            "url",
            format!("http://dl-{}.load-example.org/p/{rank}", rank % 977),
        ),
    }
}

/// One daemon started here, on its own temporary data directory.
struct Node {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

/// A temporary data directory with a musubi.toml: `[store]` when the store is shared.
fn data_dir(store: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut toml = String::new();
    if let Some(url) = store {
        toml.push_str(&format!(
            "[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n"
        ));
    }
    std::fs::write(dir.path().join("musubi.toml"), toml).expect("write musubi.toml");
    dir
}

/// `musubi` on `dir` with its musubi.toml, run from that directory.
fn musubi(bin: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .arg("--data-dir")
        .arg(dir)
        .arg("--config")
        .arg(dir.join("musubi.toml"))
        .env("MUSUBI_LOG", "warn");
    cmd
}

/// Adds a member and returns its token.
fn add_member(bin: &str, dir: &Path, name: &str, class: &str, sector: Option<&str>) -> String {
    let mut cmd = musubi(bin, dir);
    cmd.args(["member", "add", name, "--class", class]);
    if let Some(s) = sector {
        cmd.args(["--sector", s]);
    }
    let out = cmd.output().expect("run musubi member add");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "musubi member add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.split_whitespace()
        .find(|w| w.starts_with("msb_"))
        .expect("token")
        .to_string()
}

/// Starts `musubi serve` on `dir` and waits for its address.
fn start_node(bin: &str, dir: tempfile::TempDir) -> Node {
    let mut child = musubi(bin, dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn musubi serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines.next().expect("daemon output").expect("line");
        if let Some(rest) = line.strip_prefix("musubi: listening on ") {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Node {
        child,
        url,
        _dir: dir,
    }
}

/// `/healthz` as the secretariat sees it.
async fn health(http: &reqwest::Client, url: &str, operator: &str) -> serde_json::Value {
    http.get(format!("{url}/healthz"))
        .bearer_auth(operator)
        .send()
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json")
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = parse_args();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()
        .expect("client");
    let mut nodes: Vec<Node> = Vec::new();
    let mut operator = None;
    let (urls, token) = match (&args.url, &args.token) {
        (Some(u), Some(t)) => (vec![u.clone()], t.clone()),
        _ => {
            let dirs: Vec<_> = (0..args.nodes)
                .map(|_| data_dir(args.store.as_deref()))
                .collect();
            // Once, on the first node's directory: the store is shared.
            let first = dirs[0].path();
            let token = add_member(
                &args.musubi,
                first,
                "Load Generator",
                "class1",
                Some("telecom"),
            );
            // /healthz details (the projections' progress) are for the secretariat.
            operator = Some(add_member(
                &args.musubi,
                first,
                "Load Generator Secretariat",
                "secretariat",
                None,
            ));
            nodes = dirs
                .into_iter()
                .map(|d| start_node(&args.musubi, d))
                .collect();
            // Every node ready (its projections caught up once) before the clock starts.
            for n in &nodes {
                let t0 = Instant::now();
                loop {
                    let ok = http
                        .get(format!("{}/healthz", n.url))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if ok {
                        break;
                    }
                    assert!(
                        t0.elapsed() < Duration::from_secs(120),
                        "{} not ready within 120 s",
                        n.url
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            (nodes.iter().map(|n| n.url.clone()).collect(), token)
        }
    };
    let table = Arc::new(zipf_table(args.pool));
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let indicators = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        // Clients spread evenly over the nodes.
        let url = urls[c % urls.len()].clone();
        let (http, token, table) = (http.clone(), token.clone(), table.clone());
        let (latencies, errors, indicators) =
            (latencies.clone(), errors.clone(), indicators.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::from_os_rng();
            let mut mine = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                // Mixed sizes: most reports are small, some carry dozens of values.
                let n = if rng.random_bool(0.8) {
                    rng.random_range(1..=5)
                } else {
                    rng.random_range(6..=40)
                };
                let inds: Vec<serde_json::Value> = (0..n)
                    .map(|_| {
                        let (t, v) = value(draw(&table, &mut rng));
                        serde_json::json!({"type": t, "value": v})
                    })
                    .collect();
                let body = serde_json::json!({
                    "title": format!("load report {c}-{i}"),
                    "tlp": "green",
                    "indicators": inds,
                });
                let t0 = Instant::now();
                let r = http
                    .post(format!("{url}/api/v1/reports"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let _ = r.bytes().await;
                        mine.push(t0.elapsed());
                        indicators.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            latencies.lock().await.extend(mine);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = latencies.lock().await.clone();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let ok = lat.len();
    let errors = errors.load(std::sync::atomic::Ordering::Relaxed);
    let indicators = indicators.load(std::sync::atomic::Ordering::Relaxed);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (p50, p90, p99) = (ms(pct(0.50)), ms(pct(0.90)), ms(pct(0.99)));
    let max = ms(lat.last().copied().unwrap_or_default());
    // Each daemon's peak resident memory, read before it is stopped.
    let peaks: Vec<String> = nodes
        .iter()
        .map(|n| {
            std::fs::read_to_string(format!("/proc/{}/status", n.child.id()))
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
                .unwrap_or_default()
        })
        .collect();
    // Time from the last acknowledgement until every node's projections are current.
    let mut caught_up = None;
    if let Some(op) = &operator {
        let t0 = Instant::now();
        for n in &nodes {
            loop {
                let h = health(&http, &n.url, op).await;
                // Current with the store's own head, not only with what this node has
                // heard of (`store_lag`: other nodes' commits not yet notified).
                let heard_all = h.get("store_lag").is_none_or(|l| l.as_u64() == Some(0));
                if h["projections_current"] == serde_json::Value::Bool(true) && heard_all {
                    caught_up = Some((t0.elapsed(), h["committed_seq"].clone()));
                    break;
                }
                if t0.elapsed() > Duration::from_secs(120) {
                    eprintln!(
                        "{}: projections not current 120 s after the load: {h}",
                        n.url
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    if args.json {
        let summary = serde_json::json!({
            "clients": args.clients,
            "nodes": urls.len(),
            "store": if args.store.is_some() { "postgres" } else { "sqlite" },
            "seconds": elapsed,
            "acknowledged": ok,
            "errors": errors,
            "submissions_per_s": ok as f64 / elapsed,
            "indicators_per_s": indicators as f64 / elapsed,
            "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": max,
            "peak_rss": peaks,
            "caught_up_ms": caught_up.as_ref().map(|(d, _)| ms(*d)),
            "committed_seq": caught_up.as_ref().map(|(_, s)| s.clone()),
        });
        println!("{summary}");
    } else {
        println!("clients            {}", args.clients);
        if urls.len() > 1 {
            println!("nodes              {} on one store", urls.len());
        }
        println!("duration           {elapsed:.1} s");
        println!("submissions        {ok} acknowledged (durable), {errors} errors");
        println!(
            "throughput         {:.0} submissions/s, {:.0} indicators/s",
            ok as f64 / elapsed,
            indicators as f64 / elapsed
        );
        println!(
            "latency            p50 {p50:.1} ms, p90 {p90:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
        );
        if !peaks.is_empty() {
            println!("daemon peak memory {}", peaks.join(", "));
        }
        if let Some((d, seq)) = &caught_up {
            println!(
                "projections caught up {:.0} ms after the load stopped ({seq} reports)",
                ms(*d)
            );
        }
    }
    for mut n in nodes {
        let _ = n.child.kill();
        let _ = n.child.wait();
    }
}
