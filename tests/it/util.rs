//! Test harness: the real `musubi` binary, on loopback, in a temporary data directory.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_musubi");

/// A data directory that lives as long as the test.
pub struct DataDir {
    pub dir: tempfile::TempDir,
}

impl DataDir {
    pub fn new() -> DataDir {
        DataDir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs a CLI command against this data directory; returns stdout, panics on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args);
        assert!(
            out.status.success(),
            "musubi {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    pub fn cli_output(&self, args: &[&str]) -> std::process::Output {
        // Run in the data directory: the project's own musubi.toml (which polls the sample
        // feeds) must not apply to tests that do not ask for it with --config.
        Command::new(BIN)
            .current_dir(self.path())
            .arg("--data-dir")
            .arg(self.path())
            .args(args)
            .env("MUSUBI_LOG", "warn")
            .output()
            .expect("run musubi")
    }

    /// Adds a member with the CLI and returns its token.
    pub fn add_member(&self, name: &str, class: &str, sector: Option<&str>) -> String {
        let mut args = vec!["member", "add", name, "--class", class];
        if let Some(s) = sector {
            args.extend(["--sector", s]);
        }
        let out = self.cli(&args);
        out.lines()
            .find_map(|l| l.split_whitespace().find(|w| w.starts_with("msb_")))
            .expect("token printed")
            .to_string()
    }
}

/// A running daemon process.
pub struct Daemon {
    pub child: Child,
    pub base: String,
}

impl Daemon {
    /// Starts `musubi serve` on an ephemeral port and waits until it is ready.
    pub fn start(data: &DataDir) -> Daemon {
        Daemon::start_with(data, &[])
    }

    pub fn start_with(data: &DataDir, extra: &[&str]) -> Daemon {
        Daemon::start_with_env(data, extra, &[])
    }

    /// [`Daemon::start_with`] with environment variables for the daemon alone (feed
    /// credentials named in `feeds.toml`), without touching the test process's environment.
    pub fn start_with_env(data: &DataDir, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut child = Command::new(BIN)
            .current_dir(data.path())
            .arg("--data-dir")
            .arg(data.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .env("MUSUBI_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn musubi serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(rest) = line.strip_prefix("musubi: listening on ") {
                    let _ = tx.send(rest.trim().to_string());
                    sent = true;
                }
                if std::env::var_os("MUSUBI_TEST_VERBOSE").is_some() {
                    eprintln!("[daemon] {line}");
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("daemon did not report its address within 60 s");
        DATA_DIRS
            .lock()
            .unwrap()
            .insert(base.clone(), data.path().to_path_buf());
        // A token registered by URL belongs to an earlier daemon that had this port: its
        // data directory is not this one, and its token would be refused here (401).
        OPERATORS.lock().unwrap().remove(&base);
        Daemon { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGTERM, and the exit status (waits up to `within`).
    pub fn terminate(mut self, within: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < within,
                "daemon did not exit within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: a crash.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client with a member's token.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub token: String,
}

impl Client {
    pub fn new(token: &str) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            token: token.to_string(),
        }
    }

    pub async fn get(&self, url: &str) -> (u16, Value) {
        let r = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, url: &str, body: &Value) -> (u16, Value) {
        self.post_raw(url, "application/json", body.to_string().into_bytes())
            .await
    }

    pub async fn post_raw(&self, url: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// The data directory of each daemon started by [`Daemon::start_with`], by base URL.
static DATA_DIRS: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
/// The harness's secretariat token, by data directory or by base URL (daemons started by
/// hand register theirs with [`register_operator`]).
static OPERATORS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// Tells the harness a secretariat token of a daemon it did not start itself (the console
/// tests' demo daemon), for [`health`] and [`wait_current`].
pub fn register_operator(daemon: &Daemon, token: &str) {
    OPERATORS
        .lock()
        .unwrap()
        .insert(daemon.base.clone(), token.to_string());
}

/// A secretariat token for the daemon: `/healthz` details and `/metrics` need one. Made
/// once per data directory, as the operators would: a secretariat account of its own.
pub fn operator_token(daemon: &Daemon) -> String {
    if let Some(t) = OPERATORS.lock().unwrap().get(&daemon.base) {
        return t.clone();
    }
    let dir = DATA_DIRS
        .lock()
        .unwrap()
        .get(&daemon.base)
        .cloned()
        .expect("a daemon started by Daemon::start_with, or register_operator");
    let key = dir.display().to_string();
    let mut operators = OPERATORS.lock().unwrap();
    if let Some(t) = operators.get(&key) {
        return t.clone();
    }
    let out = Command::new(BIN)
        .current_dir(&dir)
        .arg("--data-dir")
        .arg(&dir)
        .args([
            "member",
            "add",
            "Test Harness Operator",
            "--class",
            "secretariat",
        ])
        .env("MUSUBI_LOG", "warn")
        .output()
        .expect("run musubi member add");
    assert!(
        out.status.success(),
        "adding the harness operator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("msb_"))
        .expect("token printed")
        .to_string();
    operators.insert(key, token.clone());
    token
}

/// `/healthz` with its details (the secretariat's view).
pub async fn health(daemon: &Daemon) -> Value {
    let (status, body) = Client::new(&operator_token(daemon))
        .get(&daemon.url("/healthz"))
        .await;
    assert!(status == 200 || status == 503, "healthz {status}: {body}");
    body
}

/// `/metrics` as the operators' monitoring scrapes it.
pub async fn metrics(daemon: &Daemon) -> String {
    let r = Client::new(&operator_token(daemon))
        .http
        .get(daemon.url("/metrics"))
        .bearer_auth(operator_token(daemon))
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status().as_u16(), 200, "metrics");
    r.text().await.expect("metrics text")
}

/// Waits until the daemon's projections have caught up with its store.
pub async fn wait_current(daemon: &Daemon) -> Value {
    let started = Instant::now();
    loop {
        let health = health(daemon).await;
        if health["projections_current"] == Value::Bool(true) {
            return health;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "projections did not catch up: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A native submission.
pub fn submission(title: &str, tlp: &str, indicators: &[(&str, &str)]) -> Value {
    serde_json::json!({
        "title": title,
        "description": format!("{title} — test submission"),
        "tlp": tlp,
        "confidence": "unconfirmed",
        "indicators": indicators.iter().map(|(t, v)| serde_json::json!({"type": t, "value": v})).collect::<Vec<_>>(),
        "tags": ["test"],
    })
}

/// Releases every stored report to class 2 and general members, as the secretariat does
/// after review (tests of outputs other than tiered release itself start from there).
pub fn release_all(data: &DataDir) {
    let path = data.path().to_path_buf();
    // On a thread of its own: callers may be inside the async runtime.
    std::thread::spawn(move || release_all_in(&path))
        .join()
        .expect("release thread");
}

fn release_all_in(path: &Path) {
    use musubi::model::{ReportId, Seq};
    let store = musubi::store::Store::open(path).expect("open store");
    let last = *store.writer().committed().borrow();
    let now = chrono::Utc::now();
    // One release a sequence number, as the secretariat releases reports one by one; a
    // number that is no report releases nothing.
    for seq in 1..=last.0 {
        store
            .writer()
            .run_blocking(musubi::council::commands::release_report(
                ReportId(Seq(seq)),
                "test-secretariat".into(),
                now,
            ))
            .expect("release");
    }
    store.close();
}
