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
    // Reports sharing a domain share a campaign: 23 domains, heavily linked.
    assert!(ids.len() <= 23, "{} campaigns", ids.len());

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
