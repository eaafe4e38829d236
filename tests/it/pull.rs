//! Pulling from other servers: TAXII 2.1 collections (OASIS's reference server medallion,
//! and musubi's own `/taxii2/`) and a member's MISP instance (a loopback server answering
//! `/events/restSearch` the way MISP does, with real MISP events).
//!
//! medallion comes from `.ci/install` (the CI venv, `/opt/musubi-ci/venv/bin/medallion`, or
//! `MUSUBI_MEDALLION`); the test FAILS if it is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use crate::util::{BIN, Client, Daemon, DataDir, release_all, submission};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn read_json(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(rel)).unwrap()).unwrap()
}

/// The objects of a STIX fixture bundle.
fn stix_objects(rel: &str) -> Vec<Value> {
    read_json(&format!("stix21/{rel}"))["objects"]
        .as_array()
        .unwrap()
        .clone()
}

/// How many reports musubi's STIX reader makes of these objects as one bundle, and how many
/// indicators they hold.
fn reports_of(objects: &[Value]) -> (usize, usize) {
    let bundle = json!({"type": "bundle", "id": "bundle--6b2c9e2a-9d0e-4e35-9c71-2d5f8f3c2a10", "objects": objects});
    let reports = musubi::formats::parse(
        &musubi::formats::Format::Stix21,
        &serde_json::to_vec(&bundle).unwrap(),
        &musubi::formats::ParseContext::default(),
    )
    .unwrap()
    .reports;
    (
        reports.len(),
        reports.iter().map(|r| r.indicators.len()).sum(),
    )
}

/// `musubi feeds poll NAME` in `data` (its `feeds.toml`), with `env`: the number of new
/// reports it printed.
fn poll(data: &DataDir, feed: &str, env: &[(&str, &str)]) -> Result<usize, String> {
    let out: Output = Command::new(BIN)
        .current_dir(data.path())
        .arg("--data-dir")
        .arg(data.path())
        .args(["feeds", "poll", feed])
        .envs(env.iter().copied())
        .env("MUSUBI_LOG", "warn")
        .output()
        .expect("run musubi");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!("{}{stdout}", String::from_utf8_lossy(&out.stderr)));
    }
    let n = stdout
        .split_once(": ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stdout:?}"));
    Ok(n)
}

fn feed_cursor(data: &DataDir, feed: &str) -> Option<String> {
    feed_state(data, feed).cursor
}

fn feed_state(data: &DataDir, feed: &str) -> musubi::sources::feeds::FeedState {
    let path = data.path().to_path_buf();
    let feed = feed.to_string();
    std::thread::spawn(move || {
        let store = musubi::store::Store::open(&path).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let st = rt
            .block_on(musubi::sources::feeds::load_state(&store, &feed))
            .unwrap();
        store.close();
        st
    })
    .join()
    .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------- medallion

struct Medallion {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Medallion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const COLLECTION: &str = "365fed99-08fa-fdcd-a1b3-fb247eb41d01";
const TAXII: &str = "application/taxii+json;version=2.1";

fn medallion_bin() -> PathBuf {
    let bin = std::env::var_os("MUSUBI_MEDALLION")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/musubi-ci/venv/bin/medallion"));
    assert!(
        bin.exists(),
        "medallion (OASIS TAXII 2.1 reference server) is missing at {}: run .ci/install",
        bin.display()
    );
    bin
}

/// medallion on a free loopback port, memory backend, one collection holding `objects`
/// with `date_added` one second apart from 2024-01-01T00:00:00Z.
fn start_medallion(objects: &[Value]) -> Medallion {
    let bin = medallion_bin();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let manifest: Vec<Value> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            json!({
                "id": o["id"],
                "date_added": format!("2024-01-01T00:00:{i:02}.000Z"),
                "version": o.get("modified").or(o.get("created")).cloned().unwrap_or(json!("2024-01-01T00:00:00.000Z")),
                "media_type": "application/stix+json;version=2.1",
            })
        })
        .collect();
    let data = json!({
        "/discovery": {
            "title": "musubi test TAXII server",
            "default": format!("{base}/api1/"),
            "api_roots": [format!("{base}/api1/")],
        },
        "api1": {
            "information": {
                "title": "api1",
                "versions": [TAXII],
                "max_content_length": 10485760,
            },
            "status": [],
            "collections": [{
                "id": COLLECTION,
                "title": "Indicators",
                "can_read": true,
                "can_write": true,
                "media_types": ["application/stix+json;version=2.1"],
                "objects": objects,
                "manifest": manifest,
            }],
        },
    });
    let data_path = dir.path().join("data.json");
    std::fs::write(&data_path, serde_json::to_vec(&data).unwrap()).unwrap();
    let config = json!({
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": data_path,
        },
        "users": { "feeduser": "feed-pass-4711" },
        "taxii": { "max_page_size": 100 },
    });
    let config_path = dir.path().join("medallion.json");
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start medallion");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "medallion did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Medallion {
        child,
        base,
        _dir: dir,
    }
}

const TAXII_ENV: [(&str, &str); 2] = [
    ("PULL_TEST_TAXII_USER", "feeduser"),
    ("PULL_TEST_TAXII_PASS", "feed-pass-4711"),
];

#[test]
fn medallion_collection_is_paged_polled_once_and_resumed_after_a_restart() {
    let first: Vec<Value> = [
        "indicator-for-malicious-url.json",
        "indicators-for-C2-with-COA.json",
        "malware-indicator-for-file-hash.json",
    ]
    .iter()
    .flat_map(|f| stix_objects(f))
    .collect();
    let (expected_first, indicators_first) = reports_of(&first);
    assert!(first.len() > 4 && indicators_first > 2, "{}", first.len());
    let server = start_medallion(&first);
    let data = DataDir::new();
    std::fs::write(
        data.path().join("feeds.toml"),
        format!(
            r#"
[[feed]]
name = "medallion"
url = "{}/taxii2/"
format = "taxii"
collection = "{COLLECTION}"
username_env = "PULL_TEST_TAXII_USER"
password_env = "PULL_TEST_TAXII_PASS"
page_size = 2
allow_private = true
schedule = "0 0 * * * * *"
"#,
            server.base
        ),
    )
    .unwrap();

    // Without the credentials: a clear error naming the variable, nothing stored.
    let err = poll(&data, "medallion", &[]).unwrap_err();
    assert!(err.contains("PULL_TEST_TAXII_USER"), "{err}");
    // Wrong credentials: medallion answers 401.
    let err = poll(
        &data,
        "medallion",
        &[TAXII_ENV[0], ("PULL_TEST_TAXII_PASS", "wrong")],
    )
    .unwrap_err();
    assert!(err.contains("401"), "{err}");

    // Every page (2 objects each) is read: as many reports as the whole bundle gives.
    assert_eq!(poll(&data, "medallion", &TAXII_ENV), Ok(expected_first));
    let cursor = feed_cursor(&data, "medallion").expect("cursor saved");
    assert_eq!(
        cursor,
        format!("2024-01-01T00:00:{:02}.000Z", first.len() - 1),
        "the newest date_added is the cursor"
    );
    // Nothing new: nothing stored.
    assert_eq!(poll(&data, "medallion", &TAXII_ENV), Ok(0));

    // Objects added later (POSTed through TAXII, dated now by medallion) are what the next
    // process (a restart) stores, from the saved added_after.
    let later = stix_objects("indicator-for-c2-ip-address.json");
    let (expected_later, indicators_later) = reports_of(&later);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
            .post(format!(
                "{}/api1/collections/{COLLECTION}/objects/",
                server.base
            ))
            .basic_auth("feeduser", Some("feed-pass-4711"))
            .header("Accept", TAXII)
            .header("Content-Type", TAXII)
            .body(serde_json::to_vec(&json!({ "objects": later })).unwrap())
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status.as_u16(), 202);
    assert_eq!(poll(&data, "medallion", &TAXII_ENV), Ok(expected_later));
    let moved = feed_cursor(&data, "medallion").unwrap();
    assert!(moved.as_str() > cursor.as_str(), "{moved} after {cursor}");
    assert_eq!(poll(&data, "medallion", &TAXII_ENV), Ok(0));

    // What was stored holds every page's indicators (the secretariat's view of each report).
    let daemon = Daemon::start(&data);
    let operator = Client::new(&crate::util::operator_token(&daemon));
    let stored = rt.block_on(async {
        let mut counts = Vec::new();
        for seq in 1..=(expected_first + expected_later) {
            let (status, r) = operator
                .get(&daemon.url(&format!("/api/v1/reports/R-{seq}")))
                .await;
            assert_eq!(status, 200, "{r}");
            assert_eq!(r["kind"], "feed_item", "{r}");
            counts.push(r["indicators"].as_array().unwrap().len());
        }
        counts
    });
    assert_eq!(
        stored.iter().sum::<usize>(),
        indicators_first + indicators_later,
        "{stored:?}"
    );
}

// ---------------------------------------------------------------- musubi's own TAXII

#[tokio::test(flavor = "multi_thread")]
async fn a_musubi_polls_another_musubis_taxii_collection() {
    let serving = DataDir::new();
    let provider = serving.add_member("Test Telecom Operator", "general", Some("telecom"));
    let reader = serving.add_member("Test Water Utility", "general", Some("water"));
    let daemon = Daemon::start(&serving);
    let (status, body) = Client::new(&provider)
        .post_json(
            &daemon.url("/api/v1/reports?wait=campaign"),
            &submission(
                "Phishing kit on a lookalike bank domain",
                "green",
                &[
                    ("domain", "login-quokka-bank.example"),
                    ("ipv4", "203.0.113.77"),
                ],
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    release_all(&serving);
    crate::util::wait_current(&daemon).await;

    let pulling = DataDir::new();
    std::fs::write(
        pulling.path().join("feeds.toml"),
        format!(
            r#"
[[feed]]
name = "other-council"
url = "{}/taxii2/"
format = "taxii"
collection = "members"
headers = {{ Authorization = "env:PULL_TEST_MUSUBI_BEARER" }}
allow_private = true
schedule = "0 0 * * * * *"
"#,
            daemon.base
        ),
    )
    .unwrap();
    let bearer = format!("Bearer {reader}");
    let env = [("PULL_TEST_MUSUBI_BEARER", bearer.as_str())];
    // The second daemon polls at start (the feed never succeeded) and stores the objects.
    let second = Daemon::start_with_env(&pulling, &[], &env);
    let operator = Client::new(&crate::util::operator_token(&second));
    let started = Instant::now();
    let state = loop {
        let (status, feeds) = operator.get(&second.url("/api/v1/feeds")).await;
        assert_eq!(status, 200, "{feeds}");
        let f = feeds["feeds"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["name"] == "other-council"))
            .cloned();
        if let Some(f) = f
            && (f["last_success"].is_string() || f["last_error"].is_string())
        {
            break f;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the second daemon did not poll: {feeds}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(state["last_error"].is_null(), "{state}");
    assert!(state["items_added"].as_u64() >= Some(1), "{state}");
    let (status, report) = operator.get(&second.url("/api/v1/reports/R-1")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["kind"], "feed_item", "{report}");
    let text = report.to_string();
    assert!(text.contains("login-quokka-bank.example"), "{text}");
    assert!(
        !text.contains("Telecom"),
        "the provider is not named: {text}"
    );
    second.terminate(Duration::from_secs(20));
    // Polled again (the CLI, same feed state): nothing new.
    let data = &pulling;
    let again = tokio::task::block_in_place(|| poll(data, "other-council", &env)).unwrap();
    assert_eq!(again, 0, "a second poll stores nothing new");
}

// ---------------------------------------------------------------- a member's MISP

const MISP_KEY: &str = "misp-api-key-0f9e8d7c6b5a";

/// Real MISP events, as the loopback MISP serves them.
fn misp_events() -> Vec<Value> {
    let mut events: Vec<Value> = std::fs::read_dir(fixture("misp-events"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "json").then_some(p)
        })
        .map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            match v.get("response") {
                Some(r) => r[0]["Event"].clone(),
                None => v["Event"].clone(),
            }
        })
        .collect();
    events.sort_by_key(|e| e["timestamp"].as_str().unwrap().parse::<i64>().unwrap());
    events
}

#[derive(Default)]
struct MispLog {
    /// (timestamp, page, limit) of every accepted request.
    requests: Vec<(i64, usize, usize)>,
}

/// `/events/restSearch` as MISP answers it: the API key in `Authorization`, events whose
/// `timestamp` is at or after the asked one, ordered, `page` (from 1) of `limit`.
async fn serve_misp(events: Vec<Value>) -> (String, Arc<Mutex<MispLog>>) {
    let log = Arc::new(Mutex::new(MispLog::default()));
    let log2 = Arc::clone(&log);
    let app = Router::new().route(
        "/events/restSearch",
        post(move |headers: HeaderMap, Json(q): Json<Value>| {
            let events = events.clone();
            let log = Arc::clone(&log2);
            async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(MISP_KEY) {
                    return (
                        StatusCode::FORBIDDEN,
                        Json(json!({"name": "Authentication failed.", "message": "Authentication failed.", "url": "/events/restSearch"})),
                    );
                }
                assert_eq!(q["returnFormat"], "json");
                let int = |v: &Value| v.as_i64().or_else(|| v.as_str()?.parse().ok());
                let since = int(&q["timestamp"]).unwrap_or(0);
                let page = int(&q["page"]).unwrap_or(1) as usize;
                let limit = int(&q["limit"]).unwrap_or(1000) as usize;
                log.lock().unwrap().requests.push((since, page, limit));
                let hits: Vec<Value> = events
                    .iter()
                    .filter(|e| e["timestamp"].as_str().unwrap().parse::<i64>().unwrap() >= since)
                    .skip((page - 1) * limit)
                    .take(limit)
                    .map(|e| json!({ "Event": e }))
                    .collect();
                (StatusCode::OK, Json(json!({ "response": hits })))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), log)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_members_misp_is_pulled_as_its_own_submissions() {
    let events = misp_events();
    assert_eq!(events.len(), 6);
    let newest = events[5]["timestamp"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    let (misp, log) = serve_misp(events).await;
    let data = DataDir::new();
    let provider_name = "Test Railway Operator";
    let _provider = data.add_member(provider_name, "general", Some("railway"));
    let other = data.add_member("Test Water Utility", "general", Some("water"));
    let secretariat = data.add_member("Test Secretariat Analyst", "secretariat", None);
    std::fs::write(
        data.path().join("feeds.toml"),
        format!(
            r#"
[[feed]]
name = "misp-railway"
url = "{misp}"
format = "misp-api"
member = "{provider_name}"
headers = {{ Authorization = "env:PULL_TEST_MISP_KEY" }}
page_size = 4
allow_private = true
schedule = "0 0 * * * * *"

[[feed]]
name = "misp-unknown"
url = "{misp}"
format = "misp-api"
member = "Nobody On The Roster"
headers = {{ Authorization = "env:PULL_TEST_MISP_KEY" }}
allow_private = true
schedule = "0 0 * * * * *"
"#
        ),
    )
    .unwrap();
    let d = &data;
    let wrong = tokio::task::block_in_place(|| {
        poll(d, "misp-railway", &[("PULL_TEST_MISP_KEY", "not-the-key")])
    })
    .unwrap_err();
    assert!(wrong.contains("403"), "{wrong}");
    let env = [("PULL_TEST_MISP_KEY", MISP_KEY)];
    // A member not on the roster: nothing is stored as anyone's, the position stays, and
    // the feed's health says why.
    assert_eq!(
        tokio::task::block_in_place(|| poll(d, "misp-unknown", &env)),
        Ok(0)
    );
    let st = feed_state(&data, "misp-unknown");
    assert_eq!(st.cursor, None);
    assert!(
        st.last_error
            .as_deref()
            .is_some_and(|e| e.contains("not in the roster")),
        "{st:?}"
    );
    log.lock().unwrap().requests.clear();
    assert_eq!(
        tokio::task::block_in_place(|| poll(d, "misp-railway", &env)),
        Ok(6),
        "every event, over two pages"
    );
    assert_eq!(feed_cursor(&data, "misp-railway"), Some(newest.to_string()));
    // MISP's timestamp filter is inclusive: the newest event comes again and is not stored
    // twice.
    assert_eq!(
        tokio::task::block_in_place(|| poll(d, "misp-railway", &env)),
        Ok(0)
    );
    {
        let log = log.lock().unwrap();
        assert_eq!(
            log.requests[..2],
            [(0, 1, 4), (0, 2, 4)],
            "{:?}",
            log.requests
        );
        assert_eq!(log.requests[2], (newest, 1, 4), "{:?}", log.requests);
    }

    // Another member, once released, sees the reports but never the provider.
    release_all(&data);
    let daemon = Daemon::start(&data);
    crate::util::wait_current(&daemon).await;
    let c = Client::new(&other);
    // SignSight (distribution 3, all communities) is released to members.
    let (status, found) = c.get(&daemon.url("/api/v1/search?q=SignSight")).await;
    assert_eq!(status, 200, "{found}");
    let hit = &found["hits"][0]["report"];
    assert_eq!(hit["kind"], "submission", "{found}");
    let id = hit["id"].as_str().expect("a hit").to_string();
    let (status, report) = c.get(&daemon.url(&format!("/api/v1/reports/{id}"))).await;
    assert_eq!(status, 200, "{report}");
    let text = format!("{found}{report}");
    assert!(text.contains("office365.blogdns.com"), "{text}");
    for secret in [provider_name, "Railway", "misp-railway", "ESET", &misp] {
        assert!(
            !text.contains(secret),
            "{secret} shown to another member: {text}"
        );
    }
    // PowerPool (distribution 0, the member's organisation only) is not.
    let (_, hidden) = c.get(&daemon.url("/api/v1/search?q=PowerPool")).await;
    assert_eq!(hidden["hits"], json!([]), "{hidden}");

    // The member's feeds name it: for another member they do not exist; the secretariat
    // sees both, each with its member and the last poll's item counts.
    let (status, feeds) = c.get(&daemon.url("/api/v1/feeds")).await;
    assert_eq!((status, feeds.clone()), (200, json!({"feeds": []})));
    let (status, feeds) = Client::new(&secretariat)
        .get(&daemon.url("/api/v1/feeds"))
        .await;
    assert_eq!(status, 200, "{feeds}");
    let names: Vec<&str> = feeds["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["misp-railway", "misp-unknown"], "{feeds}");
    let railway = &feeds["feeds"][0];
    assert!(railway["member"].is_string(), "{railway}");
    assert!(
        railway["last_items"]["kept"].as_u64().unwrap() > 0,
        "{railway}"
    );
    assert_eq!(
        feeds["feeds"][1]["member"], "Nobody On The Roster",
        "{feeds}"
    );
}
