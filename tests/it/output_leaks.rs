//! Issue #14 regressions for what leaves musubi in members' formats: TAXII collections,
//! STIX / MISP / CSV exports (finding 9: sharing scope, release; scope carried by every
//! format), STIX submissions (finding 15: rejected whole on the API, per object on TAXII),
//! and CSV formula neutralisation.
//!
//! Real daemon on loopback, real tokens, the real CLI; no mocks.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Client, Daemon, DataDir, release_all, wait_current};

const TAXII_MEDIA: &str = "application/taxii+json;version=2.1";
/// The council's scope markings (UUIDv5 ids, see `outputs::stix::scope_marking_id`; written
/// out here so that the test also compiles, and fails, against the code before them).
fn scope_marking(scope: &str) -> &'static str {
    match scope {
        "provider-and-secretariat" => "marking-definition--ea13173a-8fa3-56a5-a8bf-65642906c18b",
        "council-members" => "marking-definition--5dc636b0-d420-50d4-a234-13126d78421b",
        "members-and-supported" => "marking-definition--ac11f309-b0d8-5623-953c-d87428c74d6e",
        other => panic!("no scope {other}"),
    }
}

fn council_scope_marking() -> &'static str {
    scope_marking("council-members")
}

/// The MISP distribution of each event of a feed directory, by attribute value.
fn distributions(feed: &Path) -> Vec<(Value, Vec<String>)> {
    let manifest: Value = serde_json::from_str(&read(&feed.join("manifest.json"))).unwrap();
    manifest
        .as_object()
        .unwrap()
        .keys()
        .map(|uuid| {
            let e: Value = serde_json::from_str(&read(&feed.join(format!("{uuid}.json")))).unwrap();
            let values = e["Event"]["Attribute"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["value"].as_str().unwrap().to_string())
                .collect();
            (e["Event"]["distribution"].clone(), values)
        })
        .collect()
}

/// Released, TLP:CLEAR, no scope: the one report the public may receive.
const OPEN: (&str, &str) = ("OPENCLEAR scanning wave", "203.0.113.10");
/// Released TLP:CLEAR, scoped to council members.
const SCOPED: (&str, &str) = ("SCOPEDCOUNCIL dropper", "scoped-council.example");
/// TLP:CLEAR, no scope, never released.
const UNRELEASED: (&str, &str) = ("UNRELEASEDCLEAR beacon", "unreleased-clear.example");
/// Released TLP:CLEAR, provider and secretariat only.
const PROVIDER_ONLY: (&str, &str) = ("PROVIDERONLY implant", "provider-only.example");

fn report(title: &str, value: &str, scope: Option<&str>) -> Value {
    let kind = if value.parse::<std::net::Ipv4Addr>().is_ok() {
        "ipv4"
    } else {
        "domain"
    };
    let mut r = json!({
        "title": title,
        "description": format!("{title}: seen on our perimeter"),
        "tlp": "clear",
        "confidence": "confirmed",
        "indicators": [{"type": kind, "value": value}],
    });
    if let Some(s) = scope {
        r["scope"] = json!(s);
    }
    r
}

async fn taxii_objects(base: &str, collection: &str, token: &str) -> (u16, String) {
    let r = Client::new(token)
        .http
        .get(format!(
            "{base}/taxii2/api/collections/{collection}/objects/?limit=1000"
        ))
        .basic_auth("member", Some(token))
        .header("accept", TAXII_MEDIA)
        .send()
        .await
        .expect("GET");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

fn assert_hidden(what: &str, text: &str, hidden: &[(&str, &str)]) {
    for (title, value) in hidden {
        assert!(
            !text.contains(title) && !text.contains(value),
            "{what} carries {title:?} / {value:?}: {}",
            &text[..text.len().min(600)]
        );
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Finding 9: the public audience (CLI export and TAXII `public` collection) and the
/// members audience pass every report through the policy — scope and release included —
/// and every format carries the scope of what it holds.
///
/// Fails on the main of round 1: the public collection pulled by the provider (a class 1
/// member) carried the scoped, the unreleased and the provider-only report; the public
/// export carried the scoped one; no output carried a scope.
#[tokio::test(flavor = "multi_thread")]
async fn audiences_honour_scope_and_release_and_outputs_carry_the_scope() {
    let data = DataDir::new();
    let provider = data.add_member("Kitakami Water Works", "class1", Some("water"));
    let general = data.add_member("Hoshi Railway", "general", Some("railway"));
    data.add_member("Council Analyst", "secretariat", None);

    let daemon = Daemon::start(&data);
    let url = daemon.url("/api/v1/reports");
    let p = Client::new(&provider);
    for body in [
        report(OPEN.0, OPEN.1, None),
        report(SCOPED.0, SCOPED.1, Some("council-members")),
        report(
            PROVIDER_ONLY.0,
            PROVIDER_ONLY.1,
            Some("provider-and-secretariat"),
        ),
    ] {
        let (status, answer) = p.post_json(&url, &body).await;
        assert_eq!(status, 201, "{answer}");
    }
    wait_current(&daemon).await;
    release_all(&data);
    let (status, answer) = p
        .post_json(&url, &report(UNRELEASED.0, UNRELEASED.1, None))
        .await;
    assert_eq!(status, 201, "{answer}");
    wait_current(&daemon).await;

    let not_public = [SCOPED, UNRELEASED, PROVIDER_ONLY];
    let base = daemon.base.clone();
    // The public collection is the public's, whoever pulls it: the provider (who may see
    // everything it sent) and a general member get the same objects.
    let mut public_pulls = Vec::new();
    for (who, token) in [("provider", &provider), ("general member", &general)] {
        let (status, text) = taxii_objects(&base, "public", token).await;
        assert_eq!(status, 200, "{text}");
        assert!(
            text.contains(OPEN.1),
            "public collection lacks the open report"
        );
        assert_hidden(
            &format!("public collection for the {who}"),
            &text,
            &not_public,
        );
        public_pulls.push(text);
    }
    assert_eq!(
        public_pulls[0], public_pulls[1],
        "public depends on the puller"
    );
    // The members collection: what every member may receive (released, no scope).
    for (who, token) in [("provider", &provider), ("general member", &general)] {
        let (status, text) = taxii_objects(&base, "members", token).await;
        assert_eq!(status, 200, "{text}");
        assert!(text.contains(OPEN.1));
        assert_hidden(
            &format!("members collection for the {who}"),
            &text,
            &[UNRELEASED, PROVIDER_ONLY],
        );
    }
    // The task-force collection is the requester's own view: the scoped report is there,
    // marked with its scope beside its TLP, and the marking is defined in the collection.
    let (status, text) = taxii_objects(&base, "task-force", &provider).await;
    assert_eq!(status, 200, "{text}");
    let envelope: Value = serde_json::from_str(&text).unwrap();
    let objects = envelope["objects"].as_array().unwrap();
    let scoped_report = objects
        .iter()
        .find(|o| o["type"] == "report" && o["name"] == SCOPED.0)
        .expect("the provider's scoped report in task-force");
    let refs = scoped_report["object_marking_refs"].as_array().unwrap();
    assert!(
        refs.contains(&json!(council_scope_marking())),
        "no scope marking: {scoped_report}"
    );
    assert!(
        refs.contains(&json!(
            "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
        )),
        "the TLP:CLEAR marking stays beside it: {scoped_report}"
    );
    let definition = objects
        .iter()
        .find(|o| o["id"] == council_scope_marking())
        .expect("the scope marking-definition is served");
    assert_eq!(definition["definition_type"], "statement");
    let open_report = objects
        .iter()
        .find(|o| o["type"] == "report" && o["name"] == OPEN.0)
        .unwrap();
    assert_eq!(
        open_report["object_marking_refs"].as_array().unwrap().len(),
        1,
        "no scope, no scope marking"
    );

    drop(daemon);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // --- The CLI exports. ---
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    for format in ["stix", "csv"] {
        for audience in ["public", "members"] {
            let out = path(&format!("{audience}.{format}"));
            data.cli(&[
                "export",
                "--format",
                format,
                "--audience",
                audience,
                "--out",
                &out,
            ]);
            let text = read(Path::new(&out));
            assert!(
                text.contains(OPEN.1),
                "{audience} {format} lacks the open report"
            );
            assert_hidden(
                &format!("{format} export for {audience}"),
                &text,
                &not_public,
            );
        }
    }
    // Given a member, an audience still exports only the audience's part.
    let out = path("public-as-provider.json");
    data.cli(&[
        "export",
        "--format",
        "stix",
        "--audience",
        "public",
        "--as",
        "Kitakami Water Works",
        "--out",
        &out,
    ]);
    assert_hidden(
        "public export --as the provider",
        &read(Path::new(&out)),
        &not_public,
    );
    let feed = path("public-feed");
    data.cli(&[
        "export",
        "--format",
        "misp-feed",
        "--audience",
        "public",
        "--out",
        &feed,
    ]);
    let events = musubi::outputs::misp_feed::read_feed(Path::new(&feed)).unwrap();
    assert_eq!(events.len(), 1, "only the open campaign is public");
    assert_eq!(distributions(Path::new(&feed))[0].0, "3");

    // The provider's own export carries the scope in every format.
    let stix = path("provider.json");
    data.cli(&[
        "export",
        "--format",
        "stix",
        "--as",
        "Kitakami Water Works",
        "--out",
        &stix,
    ]);
    // The council's scope markings are valid STIX 2.1 (OASIS validator).
    crate::taxii::assert_valid_stix(&[Path::new(&stix)]);
    let bundle: Value = serde_json::from_str(&read(Path::new(&stix))).unwrap();
    let objects = bundle["objects"].as_array().unwrap();
    for (title, scope) in [
        (SCOPED.0, "council-members"),
        (PROVIDER_ONLY.0, "provider-and-secretariat"),
    ] {
        let r = objects
            .iter()
            .find(|o| o["type"] == "report" && o["name"] == title)
            .unwrap_or_else(|| panic!("{title} missing from the provider's export"));
        let id = scope_marking(scope);
        assert!(
            r["object_marking_refs"]
                .as_array()
                .unwrap()
                .contains(&json!(id)),
            "{title}: {r}"
        );
        assert!(objects.iter().any(|o| o["id"] == id), "{id} not defined");
    }
    let feed = path("provider-feed");
    data.cli(&[
        "export",
        "--format",
        "misp-feed",
        "--as",
        "Kitakami Water Works",
        "--out",
        &feed,
    ]);
    let events = musubi::outputs::misp_feed::read_feed(Path::new(&feed)).unwrap();
    let dist = distributions(Path::new(&feed));
    let event_of = |value: &str| {
        events
            .iter()
            .find(|e| e.attributes.iter().any(|a| a.value == value))
            .unwrap_or_else(|| panic!("no event holds {value}"))
    };
    for (value, distribution, tag) in [
        (SCOPED.1, "1", Some("musubi:scope=\"council-members\"")),
        (
            PROVIDER_ONLY.1,
            "0",
            Some("musubi:scope=\"provider-and-secretariat\""),
        ),
        (OPEN.1, "3", None),
    ] {
        let e = event_of(value);
        let (d, _) = dist
            .iter()
            .find(|(_, values)| values.iter().any(|v| v == value))
            .unwrap();
        assert_eq!(d, distribution, "{value}");
        if let Some(tag) = tag {
            assert!(
                e.tags.iter().any(|t| t.name == tag),
                "{value}: {:?}",
                e.tags
            );
        }
    }
    let csv = path("provider.csv");
    data.cli(&[
        "export",
        "--format",
        "csv",
        "--as",
        "Kitakami Water Works",
        "--out",
        &csv,
    ]);
    let text = read(Path::new(&csv));
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header = rows.headers().unwrap().clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column: {header:?}"))
    };
    let (value_col, scope_col) = (col("value"), col("scope"));
    let scopes: Vec<(String, String)> = rows
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[value_col].to_string(), r[scope_col].to_string())
        })
        .collect();
    for (value, scope) in [
        (SCOPED.1, "council-members"),
        (PROVIDER_ONLY.1, "provider-and-secretariat"),
        (OPEN.1, ""),
    ] {
        assert!(
            scopes.contains(&(value.to_string(), scope.to_string())),
            "{value} with scope {scope:?} not in {scopes:?}"
        );
    }
}

/// CSV exports neutralise values a spreadsheet would run as formulas (`=`, `+`, `-`,
/// `@`). Fails on the main of round 1, whose export wrote `=HYPERLINK(...)` as is.
#[tokio::test(flavor = "multi_thread")]
async fn csv_export_neutralises_formulas() {
    let data = DataDir::new();
    let provider = data.add_member("Kitakami Water Works", "class1", Some("water"));
    let daemon = Daemon::start(&data);
    let formulas = [
        "=HYPERLINK(\"http:evil\",\"x\").exe",
        "+cmd.exe",
        "-2+3+cmd.exe",
        "@SUM(1+1)cmd.exe",
    ];
    let body = json!({
        "title": "Formula filenames",
        "tlp": "green",
        "indicators": formulas.iter().map(|f| json!({"type": "filename", "value": f}))
            .chain([json!({"type": "sha256", "value": "5f1a3c0e0d7b9a2e4c6f8a1b3d5e7f90123456789abcdef0fedcba9876543210"})])
            .collect::<Vec<_>>(),
    });
    let (status, answer) = Client::new(&provider)
        .post_json(&daemon.url("/api/v1/reports"), &body)
        .await;
    assert_eq!(status, 201, "{answer}");
    wait_current(&daemon).await;
    drop(daemon);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let text = data.cli(&["export", "--format", "csv", "--as", "Kitakami Water Works"]);
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let value_col = rows
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "value")
        .unwrap();
    let values: Vec<String> = rows
        .records()
        .map(|r| r.unwrap()[value_col].to_string())
        .collect();
    for f in formulas {
        assert!(
            values.contains(&format!("'{f}")),
            "{f} not neutralised in {values:?}"
        );
    }
    for v in &values {
        assert!(
            !v.starts_with(['=', '+', '-', '@']),
            "{v} would run as a formula"
        );
    }
}

fn stix_bundle(objects: Vec<Value>) -> Value {
    json!({
        "type": "bundle",
        "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
        "objects": objects,
    })
}

fn indicator(id: &str, pattern: &str) -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": id,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": format!("indicator {id}"),
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
    })
}

const GOOD: &str = "indicator--0a5a6a59-33b6-4a2d-9a46-2f6a1f5d1c01";
const BAD: &str = "indicator--0a5a6a59-33b6-4a2d-9a46-2f6a1f5d1c02";
const PARTLY: &str = "indicator--0a5a6a59-33b6-4a2d-9a46-2f6a1f5d1c03";

/// Finding 15: a STIX bundle on `POST /api/v1/reports` is rejected whole when one object
/// is invalid, like a native submission: 400 naming the object and what was wrong, and
/// nothing stored. Fails on the main of round 1 (201, the bad pattern kept as text).
#[tokio::test(flavor = "multi_thread")]
async fn stix_submission_with_an_invalid_indicator_is_rejected_whole() {
    let data = DataDir::new();
    let provider = data.add_member("Kitakami Water Works", "class1", Some("water"));
    let secretariat = data.add_member("Council Analyst", "secretariat", None);
    let daemon = Daemon::start(&data);
    let url = daemon.url("/api/v1/reports");
    let p = Client::new(&provider);
    for bad in [
        "[ipv4-addr:value = 'not-an-ip']",
        "[ipv4-addr:value = '198.51.100.23'",
        "[process:pid = 4]",
    ] {
        let bundle = stix_bundle(vec![
            indicator(GOOD, "[domain-name:value = 'good-one.example']"),
            indicator(BAD, bad),
        ]);
        let (status, answer) = p
            .post_raw(
                &url,
                "application/stix+json;version=2.1",
                bundle.to_string().into_bytes(),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {answer}");
        let text = answer.to_string();
        assert!(
            text.contains(BAD),
            "{bad}: the answer names no object: {text}"
        );
        assert!(
            !text.contains(GOOD),
            "{bad}: blames the good object: {text}"
        );
    }
    // A valid bundle still goes in (so the 400s above are about the bad object).
    let bundle = stix_bundle(vec![indicator(
        GOOD,
        "[domain-name:value = 'good-two.example']",
    )]);
    let (status, answer) = p
        .post_raw(
            &url,
            "application/stix+json",
            bundle.to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    wait_current(&daemon).await;
    // Nothing of the rejected bundles was stored: the secretariat sees one campaign,
    // holding only the valid bundle's value.
    let text = only_campaign(&daemon, &secretariat).await.to_string();
    assert!(text.contains("good-two.example"), "{text}");
    assert!(!text.contains("good-one.example"), "{text}");
}

/// The one campaign there is, in detail, as the secretariat sees it.
async fn only_campaign(daemon: &Daemon, secretariat: &str) -> Value {
    let sec = Client::new(secretariat);
    let (code, list) = sec.get(&daemon.url("/api/v1/campaigns")).await;
    assert_eq!(code, 200, "{list}");
    let campaigns = list["campaigns"].as_array().expect("campaigns");
    assert_eq!(campaigns.len(), 1, "{list}");
    let id = campaigns[0]["id"].as_str().unwrap();
    let (code, detail) = sec
        .get(&daemon.url(&format!("/api/v1/campaigns/{id}")))
        .await;
    assert_eq!(code, 200, "{detail}");
    detail
}

/// Finding 15, TAXII side: a POSTed envelope answers per-object outcomes (TAXII 2.1 status
/// resource) and nothing of a failed object is stored — not even the part of a pattern
/// this server understood. Fails on the main of round 1, which took `198.51.100.31` out of
/// `[ipv4-addr:value = '198.51.100.31' AND process:pid = 4]` and called the object a
/// success.
#[tokio::test(flavor = "multi_thread")]
async fn taxii_post_reports_per_object_and_stores_nothing_of_a_failure() {
    let data = DataDir::new();
    let provider = data.add_member("Kitakami Water Works", "class1", Some("water"));
    let secretariat = data.add_member("Council Analyst", "secretariat", None);
    let daemon = Daemon::start(&data);
    let envelope = json!({"objects": [
        indicator(GOOD, "[domain-name:value = 'taxii-good.example']"),
        indicator(BAD, "[ipv4-addr:value = 'not-an-ip']"),
        indicator(PARTLY, "[ipv4-addr:value = '198.51.100.31' AND process:pid = 4]"),
    ]});
    let r = Client::new(&provider)
        .http
        .post(daemon.url("/taxii2/api/collections/members/objects/"))
        .basic_auth("member", Some(&provider))
        .header("accept", TAXII_MEDIA)
        .header("content-type", TAXII_MEDIA)
        .body(envelope.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let status: Value = r.json().await.unwrap();
    assert_eq!(status["status"], "complete", "{status}");
    assert_eq!(status["total_count"], 3, "{status}");
    assert_eq!(status["success_count"], 1, "{status}");
    assert_eq!(status["failure_count"], 2, "{status}");
    assert_eq!(status["successes"][0]["id"], GOOD, "{status}");
    let failed: Vec<&str> = status["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(
        failed.contains(&BAD) && failed.contains(&PARTLY),
        "{status}"
    );
    for f in status["failures"].as_array().unwrap() {
        assert!(
            f["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a failure says why: {f}"
        );
    }
    wait_current(&daemon).await;
    let text = only_campaign(&daemon, &secretariat).await.to_string();
    assert!(text.contains("taxii-good.example"), "{text}");
    for gone in ["198.51.100.31", "not-an-ip", "process:pid"] {
        assert!(!text.contains(gone), "{gone} stored: {text}");
    }
}
