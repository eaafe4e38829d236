//! The store's contract, checked on both backends: the same scripted council — members,
//! submissions that correlate, a release, dispositions, a sighting, a split pin — run against
//! a daemon on SQLite and a daemon on PostgreSQL must give the same answers, output for output
//! (campaigns and their details, reports, searches, TAXII pages, statistics, the ledger, the
//! audit trail).
//!
//! Differential rather than per-table: every SQL statement the outputs depend on runs on both
//! engines, and any difference of dialect (ordering, types, NULLs, JSON, conflicts) shows up as
//! a different answer. Times and the ids derived from each store's own secret (member-facing
//! report ids, STIX ids) differ by design and are masked.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::pg::PgCluster;
use crate::util::{Client, Daemon, DataDir, register_operator, submission, wait_current};

/// Replaces what differs between two stores by design: times, and ids keyed by the store's
/// secret (opaque `R-…` report ids and STIX `type--uuid` ids), numbered in order of
/// appearance so that the structure is still compared.
fn mask(v: &Value, seen: &mut BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => {
            let t = s.as_str();
            let is_time = t.len() >= 20
                && t.as_bytes()[4] == b'-'
                && t.as_bytes()[10] == b'T'
                && chrono::DateTime::parse_from_rfc3339(t).is_ok();
            let is_opaque = (t.starts_with("R-") && t.len() > 8)
                || (t.starts_with("C-") && !t.starts_with("C-20") && t.len() > 8)
                || (t.contains("--") && t.len() > 40 && !t.contains(' '));
            if is_time {
                Value::String("<time>".into())
            } else if is_opaque {
                let n = seen.len();
                Value::String(
                    seen.entry(t.to_string())
                        .or_insert(format!("<id{n}>"))
                        .clone(),
                )
            } else {
                v.clone()
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| mask(x, seen)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "score" | "took_ms"))
                .map(|(k, x)| (k.clone(), mask(x, seen)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Runs the script against `dir` (whose musubi.toml names the backend) and returns every
/// answer by name.
async fn script(dir: &DataDir) -> BTreeMap<String, Value> {
    let gas = dir.add_member("Contract Gas", "class1", Some("gas"));
    let water = dir.add_member("Contract Water", "class2", Some("water"));
    let general = dir.add_member("Contract General", "general", None);
    let op = dir.add_member("Contract Operator", "secretariat", None);
    let node = Daemon::start(dir);
    register_operator(&node, &op);
    let (s, g, w, n) = (
        Client::new(&op),
        Client::new(&gas),
        Client::new(&water),
        Client::new(&general),
    );
    let url = |p: &str| node.url(p);

    // Nine reports in three groups, from three members, of several TLPs, one at a time so
    // that both stores number them alike.
    let tlps = ["green", "amber", "clear"];
    for i in 0..9usize {
        let client = [&g, &w, &n][i % 3];
        let body = submission(
            &format!("contract report {i} about group {}", i % 3),
            tlps[i / 3],
            &[
                ("domain", &format!("g{}.contract-test.example", i % 3)),
                ("sha256", &format!("{:064x}", 0xc0de_0000 + i)),
            ],
        );
        let (status, b) = client.post_json(&url("/api/v1/reports"), &body).await;
        assert_eq!(status, 201, "{b}");
        wait_current(&node).await;
    }
    let (_, list) = s.get(&url("/api/v1/campaigns")).await;
    let ids: Vec<String> = list["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "{list}");

    // The secretariat's acts: a release, two dispositions, a split; a member's sighting.
    let (status, b) = s
        .post_json(
            &url("/api/v1/council/releases"),
            &json!({"campaign": ids[0]}),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    for (c, d) in [(&ids[1], "shared-public"), (&ids[2], "low-need-transient")] {
        let (status, b) = s
            .post_json(
                &url(&format!("/api/v1/council/dispositions/{c}")),
                &json!({"disposition": d}),
            )
            .await;
        assert_eq!(status, 201, "{b}");
    }
    let (_, detail) = s.get(&url(&format!("/api/v1/campaigns/{}", ids[2]))).await;
    let first = detail["reports"][0]["id"].as_str().unwrap().to_string();
    let (status, b) = s
        .post_json(
            &url("/api/v1/council/pins"),
            &json!({"kind": "split", "campaign": ids[2], "reports": [first], "note": "contract"}),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let (_, mine) = g.get(&url("/api/v1/campaigns")).await;
    let seen = mine["campaigns"][0]["id"].as_str().unwrap().to_string();
    let (status, b) = g
        .post_json(
            &url("/api/v1/sightings"),
            &json!({"target": {"campaign": seen}, "kind": "seen", "count": 2,
                    "seen_at": "2026-12-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    wait_current(&node).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_current(&node).await;

    // Every answer, for the secretariat and for each member.
    let mut out = BTreeMap::new();
    // Each answer under `name` (by default "who path").
    let mut get = async |who: &str, c: &Client, path: &str, name: Option<String>| {
        let (status, body) = c.get(&url(path)).await;
        let name = name.unwrap_or_else(|| format!("{who} {path}"));
        out.insert(name, json!({"status": status, "body": body}));
        body
    };
    let list = get("sec", &s, "/api/v1/campaigns", None).await;
    for c in list["campaigns"].as_array().cloned().unwrap_or_default() {
        let id = c["id"].as_str().unwrap().to_string();
        get("sec", &s, &format!("/api/v1/campaigns/{id}"), None).await;
        get(
            "sec",
            &s,
            &format!("/api/v1/campaigns/{id}?explain=true"),
            None,
        )
        .await;
    }
    for i in 1..=9 {
        get("sec", &s, &format!("/api/v1/reports/R-{i}"), None).await;
    }
    get("sec", &s, "/api/v1/council/stats", None).await;
    get("sec", &s, "/api/v1/ledger", None).await;
    get("sec", &s, "/api/v1/council/audit", None).await;
    for (who, c) in [("gas", &g), ("water", &w), ("general", &n)] {
        let list = get(who, c, "/api/v1/campaigns", None).await;
        // A member's campaign ids are keyed by the store's secret: named by position.
        for (k, camp) in list["campaigns"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let id = camp["id"].as_str().unwrap().to_string();
            let name = Some(format!("{who} campaign #{k}"));
            get(who, c, &format!("/api/v1/campaigns/{id}"), name).await;
        }
        get(who, c, "/api/v1/search?q=g1.contract-test.example", None).await;
        get(who, c, "/api/v1/search?q=contract", None).await;
        get(who, c, "/api/v1/ledger", None).await;
    }
    for (who, token) in [("gas", &gas), ("general", &general)] {
        let resp = reqwest::Client::new()
            .get(url("/taxii2/api/collections/members/objects/?limit=50"))
            .bearer_auth(token)
            .header("Accept", "application/taxii+json;version=2.1")
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        // Pages are in (date added, id) order, and STIX ids are keyed by each store's
        // secret: the objects are compared as a sorted list without their ids.
        let mut objects: Vec<String> = body["objects"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|o| {
                let mut o = o.clone();
                for key in ["id", "created_by_ref", "object_refs", "object_marking_refs"] {
                    o.as_object_mut().map(|m| m.remove(key));
                }
                mask(&o, &mut BTreeMap::new()).to_string()
            })
            .collect();
        objects.sort();
        out.insert(format!("{who} taxii members"), json!(objects));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_council_gives_the_same_answers_on_sqlite_and_on_postgres() {
    let pg = tokio::task::block_in_place(PgCluster::start);
    let on_sqlite = DataDir::new();
    let on_pg = crate::cluster::node_dir(&pg);
    let a = script(&on_sqlite).await;
    let b = script(&on_pg).await;
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let mut differ = Vec::new();
    for (k, va) in &a {
        // Masked per answer: ids are numbered in order of appearance within it.
        let (ma, mb) = (
            mask(va, &mut BTreeMap::new()),
            mask(&b[k], &mut BTreeMap::new()),
        );
        if ma != mb {
            differ.push(format!("{k}:\n  sqlite   {ma}\n  postgres {mb}"));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} answers differ between the backends:\n{}",
        differ.len(),
        a.len(),
        differ.join("\n")
    );
}
