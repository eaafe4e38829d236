//! Load generator: drives a real `musubi serve` over HTTP with realistic submissions and
//! reports throughput, latency percentiles and the daemon's peak memory.
//!
//! ```sh
//! cargo build --release --examples
//! target/release/examples/loadgen --musubi target/release/musubi --clients 32 --seconds 20
//! ```
//!
//! It starts the daemon itself in a temporary data directory (or uses `--url` and `--token`
//! for a running one), registers members from several sectors, and has each client submit
//! reports of 1–40 indicators whose values are drawn from a Zipf-like distribution over a pool,
//! so that a few values recur everywhere (as C2 infrastructure does) and most are rare.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
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
}

fn parse_args() -> Args {
    let mut a = Args {
        musubi: "target/release/musubi".into(),
        url: None,
        token: None,
        clients: 32,
        seconds: 20,
        pool: 200_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--musubi" => a.musubi = val(),
            "--url" => a.url = Some(val()),
            "--token" => a.token = Some(val()),
            "--clients" => a.clients = val().parse().expect("--clients N"),
            "--seconds" => a.seconds = val().parse().expect("--seconds N"),
            "--pool" => a.pool = val().parse().expect("--pool N"),
            other => panic!("unknown flag {other}"),
        }
    }
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

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = parse_args();
    let mut daemon = None;
    let (url, token) = match (&args.url, &args.token) {
        (Some(u), Some(t)) => (u.clone(), t.clone()),
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let out = Command::new(&args.musubi)
                .arg("--data-dir")
                .arg(dir.path())
                .args([
                    "member",
                    "add",
                    "Load Generator",
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
                .expect("token")
                .to_string();
            let mut child = Command::new(&args.musubi)
                .arg("--data-dir")
                .arg(dir.path())
                .args(["serve", "--listen", "127.0.0.1:0"])
                .env("MUSUBI_LOG", "warn")
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
            daemon = Some((child, dir));
            (url, token)
        }
    };
    let table = Arc::new(zipf_table(args.pool));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()
        .expect("client");
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let indicators = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (http, url, token, table) = (http.clone(), url.clone(), token.clone(), table.clone());
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
    println!("clients            {}", args.clients);
    println!("duration           {elapsed:.1} s");
    println!(
        "submissions        {ok} acknowledged (durable), {} errors",
        errors.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "throughput         {:.0} submissions/s, {:.0} indicators/s",
        ok as f64 / elapsed,
        indicators.load(std::sync::atomic::Ordering::Relaxed) as f64 / elapsed
    );
    println!(
        "latency            p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.90).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    if let Some((mut child, _dir)) = daemon {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        if let Some(hwm) = status.lines().find(|l| l.starts_with("VmHWM")) {
            println!(
                "daemon peak memory {}",
                hwm.trim_start_matches("VmHWM:").trim()
            );
        }
        // Time from the last acknowledgement to projections being current.
        let t0 = Instant::now();
        loop {
            let h: serde_json::Value = http
                .get(format!("{url}/healthz"))
                .send()
                .await
                .expect("healthz")
                .json()
                .await
                .expect("json");
            if h["projections_current"] == serde_json::Value::Bool(true) {
                println!(
                    "projections caught up {:.0} ms after the load stopped ({} reports)",
                    t0.elapsed().as_secs_f64() * 1e3,
                    h["committed_seq"]
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
