//! Logs fit their sink (#18 item 8): with stderr a pipe (journald, a file, a collector) the
//! daemon writes no ANSI escape codes; with `[log] format = "json"` every stderr line is one
//! JSON object a SIEM can ingest, and no token appears in either.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{BIN, Client, DataDir, submission};

/// Runs `musubi serve` with stderr a pipe, exercises it (a member's submission and search,
/// a wrong token), stops it with SIGTERM and returns every stderr line.
async fn run_daemon(
    data: &DataDir,
    config: Option<&str>,
    json: bool,
) -> (Vec<String>, Vec<String>) {
    let token = data.add_member("Logs Test CSIRT", "class1", Some("electricity"));
    let mut cmd = Command::new(BIN);
    cmd.current_dir(data.path())
        .arg("--data-dir")
        .arg(data.path());
    if let Some(text) = config {
        let path = data.path().join("musubi.toml");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(&path);
    }
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        // Debug for musubi: the most lines, so the most chances to leak or to colour.
        .env("MUSUBI_LOG", "info,musubi=debug")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn musubi serve");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    let started = Instant::now();
    let base = loop {
        let found = lines.lock().unwrap().iter().find_map(|l| {
            let msg = if json {
                serde_json::from_str::<Value>(l).ok()?["fields"]["message"]
                    .as_str()?
                    .to_string()
            } else {
                l.clone()
            };
            msg.strip_prefix("musubi: listening on ")
                .map(|s| s.trim().to_string())
        });
        if let Some(b) = found {
            break b;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "daemon did not report its address: {:?}",
            lines.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let member = Client::new(&token);
    let (s, _) = member
        .post_json(
            &format!("{base}/api/v1/reports"),
            &submission("Phishing wave", "green", &[("domain", "evil.example.net")]),
        )
        .await;
    assert!(s == 200 || s == 201 || s == 202, "submission answered {s}");
    let _ = member.get(&format!("{base}/api/v1/search?q=evil")).await;
    let (s, _) = Client::new("msb_not_a_real_token_0000")
        .get(&format!("{base}/api/v1/campaigns"))
        .await;
    assert_eq!(s, 401);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "daemon exit {status}");
    reader.join().unwrap();
    let all = lines.lock().unwrap().clone();
    (all, vec![token])
}

#[tokio::test(flavor = "multi_thread")]
async fn piped_stderr_has_no_escape_codes() {
    let data = DataDir::new();
    let (lines, tokens) = run_daemon(&data, None, false).await;
    assert!(lines.len() >= 3, "too few log lines to judge: {lines:?}");
    for l in &lines {
        assert!(!l.contains('\x1b'), "escape code in {l:?}");
        for t in &tokens {
            assert!(!l.contains(t.as_str()), "token in log line {l:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_is_one_object_a_line() {
    let data = DataDir::new();
    let (lines, tokens) = run_daemon(&data, Some("[log]\nformat = \"json\"\n"), true).await;
    assert!(lines.len() >= 3, "too few log lines to judge: {lines:?}");
    let mut levels = std::collections::BTreeSet::new();
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
        assert!(v["timestamp"].is_string(), "no timestamp: {l}");
        levels.insert(v["level"].as_str().unwrap_or_default().to_string());
        assert!(!l.contains('\x1b'), "escape code in {l:?}");
        for t in &tokens {
            assert!(!l.contains(t.as_str()), "token in log line {l:?}");
        }
        assert!(
            !l.contains("msb_not_a_real_token"),
            "presented token in log line {l:?}"
        );
    }
    assert!(levels.contains("INFO"), "{levels:?}");
}
