//! TAXII pages that cost a page (issue 21 item 2), over real HTTP against the real daemon:
//! a client that POSTs 10,000 indicators walks the collection back and finds every one of
//! them exactly once under its own id; `added_after` keeps exactly what was added later;
//! and a hidden object changes nothing a viewer sees of the paging (counts, `more`, `next`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Client, Daemon, DataDir};

const TAXII_MEDIA: &str = "application/taxii+json;version=2.1";

/// A TAXII GET that waits out the shared rate limit (a walk is many requests in a row).
async fn get(base: &str, path: &str, token: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    loop {
        let r = Client::new(token)
            .http
            .get(format!("{base}{path}"))
            .basic_auth("member", Some(token))
            .header("accept", TAXII_MEDIA)
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        if status == 429 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let headers = r.headers().clone();
        return (status, headers, r.json().await.unwrap_or(Value::Null));
    }
}

async fn post(base: &str, collection: &str, token: &str, envelope: &Value) -> Value {
    loop {
        let r = Client::new(token)
            .http
            .post(format!(
                "{base}/taxii2/api/collections/{collection}/objects/"
            ))
            .basic_auth("member", Some(token))
            .header("accept", TAXII_MEDIA)
            .header("content-type", TAXII_MEDIA)
            .body(envelope.to_string())
            .send()
            .await
            .expect("POST");
        let status = r.status().as_u16();
        if status == 429 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["failure_count"], 0, "{body}");
        return body;
    }
}

fn indicator(id: &str, domain: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1", "id": id,
        "created": "2026-01-02T03:04:05.000Z", "modified": "2026-01-02T03:04:05.000Z",
        "name": domain, "pattern_type": "stix", "pattern_version": "2.1",
        "pattern": format!("[domain-name:value = '{domain}']"),
        "valid_from": "2026-01-02T03:04:05.000Z",
    })
}

fn envelope(objects: Vec<Value>) -> Value {
    json!({ "objects": objects })
}

fn id(n: usize, tag: u8) -> String {
    format!("indicator--{:08x}-0000-4000-8{:03x}-{:012x}", n, tag, n)
}

/// One page as the viewer sees its shape: objects, `more`, whether a `next` was given.
#[derive(Debug, PartialEq)]
struct Shape {
    count: usize,
    more: bool,
    next: bool,
}

/// Walks a collection (or its manifest) from the start, following `next`; answers every
/// page's objects and shape.
async fn walk(
    base: &str,
    token: &str,
    collection: &str,
    what: &str,
    params: &str,
) -> (Vec<Value>, Vec<Shape>) {
    let mut next: Option<String> = None;
    let (mut all, mut shapes) = (Vec::new(), Vec::new());
    loop {
        let mut path = format!("/taxii2/api/collections/{collection}/{what}/?{params}");
        if let Some(n) = &next {
            path.push_str(&format!("&next={n}"));
        }
        let (status, _, body) = get(base, &path, token).await;
        assert_eq!(status, 200, "{path}: {body}");
        let objects = body["objects"].as_array().cloned().unwrap_or_default();
        shapes.push(Shape {
            count: objects.len(),
            more: body["more"] == true,
            next: body.get("next").is_some(),
        });
        all.extend(objects);
        assert_eq!(body["more"] == true, body.get("next").is_some(), "{path}");
        match body.get("next").and_then(Value::as_str) {
            Some(n) => next = Some(n.to_string()),
            None => break,
        }
        assert!(shapes.len() < 10_000, "the walk does not end");
    }
    (all, shapes)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_walks_back_every_object_it_posted_once_under_its_own_id() {
    let data = DataDir::new();
    let token = data.add_member("Aozora Telecom", "class1", Some("telecom"));
    let daemon = Daemon::start(&data);
    let base = daemon.base.clone();

    // 10,000 indicators in 20 bundles of 500.
    let mut posted: Vec<String> = Vec::new();
    for b in 0..20 {
        let objects: Vec<Value> = (0..500)
            .map(|i| {
                let n = b * 500 + i;
                posted.push(id(n, 1));
                indicator(&id(n, 1), &format!("host{n}.walk.example.net"))
            })
            .collect();
        post(&base, "task-force", &token, &envelope(objects)).await;
    }

    // The walk: every posted id exactly once, in (date added, id) order, full pages.
    let started = std::time::Instant::now();
    let (objects, shapes) = walk(&base, &token, "task-force", "objects", "limit=500").await;
    let elapsed = started.elapsed();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for o in &objects {
        *seen.entry(o["id"].as_str().unwrap()).or_default() += 1;
    }
    for id in &posted {
        assert_eq!(
            seen.get(id.as_str()),
            Some(&1),
            "{id} came back {:?} times",
            seen.get(id.as_str())
        );
    }
    assert!(seen.values().all(|n| *n == 1), "an object came back twice");
    // 10,000 indicators, 20 reports, the identity and the 9 markings.
    assert_eq!(objects.len(), 10_000 + 20 + 10);
    assert!(
        shapes[..shapes.len() - 1]
            .iter()
            .all(|s| s.count == 500 && s.more)
    );
    assert!(!shapes.last().unwrap().more);
    let keys: Vec<(String, String)> = objects
        .iter()
        .map(|o| {
            (
                o["created"].as_str().unwrap_or_default().to_string(),
                o["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let posted_set: HashSet<&str> = posted.iter().map(String::as_str).collect();
    let ours: Vec<&Value> = objects
        .iter()
        .filter(|o| posted_set.contains(o["id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ours[0]["pattern"],
        "[domain-name:value = 'host0.walk.example.net']"
    );
    eprintln!(
        "walked {} objects in {} pages in {elapsed:?}",
        objects.len(),
        shapes.len()
    );
    drop(keys);

    // The manifest walks the same ids with their dates added.
    let (manifest, _) = walk(&base, &token, "task-force", "manifest", "limit=1000").await;
    assert_eq!(manifest.len(), objects.len());
    let added: HashMap<String, String> = manifest
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["date_added"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let manifest_ids: Vec<&str> = manifest.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let object_ids: Vec<&str> = objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(
        manifest_ids, object_ids,
        "manifest and objects in one order"
    );

    // added_after: exactly what was added (in ms, as clients see it) after that time.
    let t = added[&posted[5_250]].clone();
    let want: HashSet<&str> = added
        .iter()
        .filter(|(_, at)| at.as_str() > t.as_str())
        .map(|(id, _)| id.as_str())
        .collect();
    assert!(!want.is_empty() && want.len() < 10_000, "{}", want.len());
    assert!(!want.contains(posted[0].as_str()));
    assert!(want.contains(posted[9_999].as_str()) || added[&posted[9_999]] == t);
    let (after, _) = walk(
        &base,
        &token,
        "task-force",
        "objects",
        &format!("limit=500&added_after={t}"),
    )
    .await;
    let got: Vec<&str> = after.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got.iter().copied().collect::<HashSet<_>>(), want);

    // One object by its id, its versions, and an id nobody posted.
    let one = &posted[4_321];
    let (status, _, body) = get(
        &base,
        &format!("/taxii2/api/collections/task-force/objects/{one}/"),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["objects"].as_array().unwrap().len(), 1);
    assert_eq!(body["objects"][0]["id"], json!(one));
    let (status, _, body) = get(
        &base,
        &format!("/taxii2/api/collections/task-force/objects/{one}/versions/"),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["versions"].as_array().unwrap().len(), 1);
    let (status, _, _) = get(
        &base,
        &format!(
            "/taxii2/api/collections/task-force/objects/{}/",
            id(99_999, 1)
        ),
        &token,
    )
    .await;
    assert_eq!(status, 404);
    // Filters by type inside the walk.
    let (reports, _) = walk(
        &base,
        &token,
        "task-force",
        "objects",
        "limit=7&match[type]=report",
    )
    .await;
    assert_eq!(reports.len(), 20);

    // Posted again later, an id has two versions (one per date added).
    post(
        &base,
        "task-force",
        &token,
        &envelope(vec![indicator(one, "host4321.walk.example.net")]),
    )
    .await;
    let (status, _, body) = get(
        &base,
        &format!("/taxii2/api/collections/task-force/objects/{one}/versions/"),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["versions"].as_array().unwrap().len(), 2, "{body}");
}

/// World A has a hidden object between visible ones; world B does not. Everything a class-1
/// member sees of the walk is the same in both: page sizes, `more`, `next` and the
/// order of the posted ids. (Derived ids
/// are keyed by each world's own secret, so where a report object falls among its
/// indicators differs between worlds by design; the posted ids do not.)
#[tokio::test(flavor = "multi_thread")]
async fn a_hidden_object_changes_no_page() {
    async fn world(with_hidden: bool) -> (Vec<Shape>, Vec<String>, usize) {
        let data = DataDir::new();
        let provider = data.add_member("Minato Water", "class2", Some("water"));
        let reader = data.add_member("Aozora Telecom", "class1", Some("telecom"));
        let secretariat = data.add_member("Council Analyst", "secretariat", None);
        let daemon = Daemon::start(&data);
        let base = daemon.base.clone();
        let green = |n: usize| {
            let mut o = indicator(&id(n, 2), &format!("seen{n}.leak.example.org"));
            o["object_marking_refs"] =
                json!(["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]);
            o
        };
        post(
            &base,
            "members",
            &provider,
            &envelope((0..4).map(green).collect()),
        )
        .await;
        if with_hidden {
            let mut o = indicator(&id(7_777, 3), "hidden.leak.example.org");
            o["object_marking_refs"] =
                json!(["marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"]);
            post(&base, "members", &provider, &envelope(vec![o])).await;
        }
        post(
            &base,
            "members",
            &provider,
            &envelope((4..9).map(green).collect()),
        )
        .await;
        let (objects, shapes) = walk(&base, &reader, "task-force", "objects", "limit=3").await;
        let ids: Vec<String> = objects
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .filter(|i| i.contains("-0000-4000-8"))
            .collect();
        // The secretariat does see the hidden object (so this test can fail).
        let (all, _) = walk(&base, &secretariat, "task-force", "objects", "limit=1000").await;
        (shapes, ids, all.len())
    }
    let (a, a_ids, a_all) = world(true).await;
    let (b, b_ids, b_all) = world(false).await;
    assert_eq!(
        a_all,
        b_all + 2,
        "the hidden report and its indicator exist in world A"
    );
    assert_eq!(a, b);
    assert_eq!(a_ids, b_ids);
    assert!(!a_ids.contains(&id(7_777, 3)));
}
