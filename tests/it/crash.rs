//! Crash safety: `kill -9` while clients stream submissions loses nothing acknowledged, and
//! the projections agree with the store after the restart.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::util::{Client, Daemon, DataDir, submission, wait_current};

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_under_load_loses_no_acknowledged_submission() {
    let data = DataDir::new();
    let token = data.add_member("Crash Test Member", "class1", None);
    let daemon = Daemon::start(&data);
    let url = daemon.url("/api/v1/reports");
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();

    let mut clients = Vec::new();
    for task in 0..8 {
        let client = Client::new(&token);
        let url = url.clone();
        let acked = acked.clone();
        clients.push(tokio::spawn(async move {
            for i in 0..100_000 {
                let word = format!("crashk{task}n{i}");
                let domain = format!("c2-{}.crash-example.net", (task * 7 + i) % 23);
                let body = submission(
                    &format!("{word} beacon"),
                    "green",
                    &[
                        ("domain", &domain),
                        ("ipv4", &format!("203.0.113.{}", i % 200)),
                    ],
                );
                let sent = client
                    .http
                    .post(&url)
                    .bearer_auth(&client.token)
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let v: Value = match r.json().await {
                            Ok(v) => v,
                            Err(_) => break,
                        };
                        let id = v["reports"][0]["id"].as_str().unwrap().to_string();
                        acked.lock().unwrap().push((id, word));
                    }
                    // The daemon died: what was not acknowledged may be lost.
                    _ => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    daemon.kill9();
    for c in clients {
        let _ = c.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "the load did not get going: {} acknowledged",
        acked.len()
    );

    let daemon = Daemon::start(&data);
    let client = Client::new(&token);
    let health = wait_current(&daemon).await;
    let committed = health["committed_seq"].as_u64().unwrap();
    assert!(committed >= acked.len() as u64, "{health}");
    assert_eq!(health["indexed_seq"], health["committed_seq"]);
    assert_eq!(health["correlated_seq"], health["committed_seq"]);

    // Every acknowledged report is there, unchanged.
    for (id, word) in &acked {
        let (status, report) = client
            .get(&daemon.url(&format!("/api/v1/reports/{id}")))
            .await;
        assert_eq!(status, 200, "acknowledged {id} is missing after the crash");
        assert_eq!(report["title"].as_str().unwrap(), format!("{word} beacon"));
        assert!(report["campaign"].is_string(), "{id} has no campaign");
    }

    // The graph holds every stored report exactly once, and no campaign id twice.
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut ids = HashSet::new();
    let mut offset = 0;
    loop {
        let (_, page) = client
            .get(&daemon.url(&format!("/api/v1/campaigns?limit=1000&offset={offset}")))
            .await;
        let campaigns = page["campaigns"].as_array().unwrap();
        if campaigns.is_empty() {
            break;
        }
        for c in campaigns {
            let cid = c["id"].as_str().unwrap().to_string();
            assert!(ids.insert(cid.clone()), "campaign id {cid} appears twice");
            for r in c["reports"].as_array().unwrap() {
                let rid = r["id"].as_str().unwrap().to_string();
                assert!(
                    seen.insert(rid.clone(), cid.clone()).is_none(),
                    "{rid} is in two campaigns"
                );
            }
        }
        offset += campaigns.len();
    }
    assert_eq!(seen.len() as u64, committed, "graph and store disagree");

    // The index has them too.
    for (id, word) in acked.iter().step_by((acked.len() / 25).max(1)) {
        let (_, hits) = client
            .get(&daemon.url(&format!("/api/v1/search?q={word}")))
            .await;
        let found: Vec<&str> = hits["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["report"]["id"].as_str().unwrap())
            .collect();
        assert!(found.contains(&id.as_str()), "{word}: {found:?}");
    }
}

/// Streams submissions from `clients` tasks until the daemon dies; returns what was
/// acknowledged as (report id, title).
async fn stream_until_killed(
    daemon: Daemon,
    token: &str,
    clients: usize,
    run_for: Duration,
    round: usize,
) -> Vec<(String, String)> {
    let url = daemon.url("/api/v1/reports");
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    for task in 0..clients {
        let client = Client::new(token);
        let (url, acked) = (url.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let title = format!("loop r{round} k{task} n{i}");
                let body = submission(
                    &title,
                    "green",
                    &[("domain", &format!("loop-{}.crash-example.net", i % 17))],
                );
                match client
                    .http
                    .post(&url)
                    .bearer_auth(&client.token)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().as_u16() == 201 => match r.json::<Value>().await {
                        Ok(v) => acked
                            .lock()
                            .unwrap()
                            .push((v["reports"][0]["id"].as_str().unwrap().to_string(), title)),
                        Err(_) => break,
                    },
                    _ => break,
                }
            }
        }));
    }
    tokio::time::sleep(run_for).await;
    daemon.kill9();
    for t in tasks {
        let _ = t.await;
    }
    let out: Vec<(String, String)> = acked.lock().unwrap().drain(..).collect();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_loop_of_twenty_kills() {
    let data = DataDir::new();
    let token = data.add_member("Crash Loop Member", "class1", None);
    let mut acked = Vec::new();
    for round in 0..20 {
        let daemon = Daemon::start(&data);
        // Each restart must have caught up before READY: projections agree with the store.
        let health = wait_current(&daemon).await;
        assert!(
            health["committed_seq"].as_u64().unwrap() >= acked.len() as u64,
            "round {round}: {health}"
        );
        // Kill at a varying moment: early in start-up load, mid-stream, later.
        let run_for = Duration::from_millis(150 + (round as u64 * 137) % 600);
        acked.extend(stream_until_killed(daemon, &token, 4, run_for, round).await);
    }
    assert!(
        acked.len() > 100,
        "only {} acknowledged over 20 rounds",
        acked.len()
    );
    let daemon = Daemon::start(&data);
    let client = Client::new(&token);
    let health = wait_current(&daemon).await;
    assert_eq!(health["indexed_seq"], health["committed_seq"]);
    assert_eq!(health["correlated_seq"], health["committed_seq"]);
    for (id, title) in &acked {
        let (status, report) = client
            .get(&daemon.url(&format!("/api/v1/reports/{id}")))
            .await;
        assert_eq!(status, 200, "acknowledged {id} lost");
        assert_eq!(report["title"].as_str(), Some(title.as_str()));
    }
    // Each campaign id once, every report in exactly one campaign. (The 17 domains recur in
    // far more reports than the over-correlation cap, so most reports stand alone.)
    let mut ids = HashSet::new();
    let mut total = 0;
    let mut offset = 0;
    loop {
        let (_, page) = client
            .get(&daemon.url(&format!("/api/v1/campaigns?limit=1000&offset={offset}")))
            .await;
        let campaigns = page["campaigns"].as_array().unwrap().clone();
        if campaigns.is_empty() {
            break;
        }
        for c in &campaigns {
            assert!(
                ids.insert(c["id"].as_str().unwrap().to_string()),
                "duplicate campaign id"
            );
            total += c["report_count"].as_u64().unwrap();
        }
        offset += campaigns.len();
    }
    assert_eq!(total, health["committed_seq"].as_u64().unwrap());
}
