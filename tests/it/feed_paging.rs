//! Feeds that take more than one request (#18 item 6): the NVD CVE API 2.0 walked page by
//! page at the published rate, and a CSAF provider walked from its `provider-metadata.json`
//! through its ROLIE feeds to the advisories, each at least as restricted as its feed's TLP.
//! The servers are on loopback and serve the real fixtures (their absolute URLs pointed at
//! the loopback server).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::Utc;
use musubi::config::feeds::HeaderFromEnv;
use musubi::model::Tlp;
use musubi::sources::feeds::{self, FeedState};
use serde_json::{Value, json};

use crate::feeds::{client, feed};

fn fixture(rel: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The variable the tests' `apiKey` header comes from; set once, to a fixed value.
const KEY_VAR: &str = "MUSUBI_TEST_FEED_PAGING_KEY";
const KEY: &str = "test-key-0123456789";

fn set_key() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: set once, before any feed of these tests reads it; std's own env lock
    // serialises it with every other std::env access in the test binary.
    ONCE.call_once(|| unsafe { std::env::set_var(KEY_VAR, KEY) });
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// (instant, startIndex, apiKey sent) of each request the NVD server saw.
type NvdLog = Arc<Mutex<Vec<(Instant, u64, bool)>>>;

/// The CVE API 2.0 over the four CVEs of the three real API answers in the fixtures,
/// paged as NVD pages: `startIndex`, `resultsPerPage`, `totalResults`.
async fn nvd_server() -> (String, NvdLog) {
    let mut all: Vec<Value> = Vec::new();
    for f in [
        "nvd/api2-simple_search.json",
        "nvd/api2-CVE-2021-26855.json",
        "nvd/api2-CVE-2017-7542.json",
    ] {
        all.extend(
            fixture(f)["vulnerabilities"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
    }
    let template = fixture("nvd/api2-simple_search.json");
    let log: NvdLog = Arc::default();
    let state = (Arc::new(all), Arc::new(template), log.clone());
    let router = Router::new()
        .route(
            "/rest/json/cves/2.0",
            get(
                |State((all, template, log)): State<(Arc<Vec<Value>>, Arc<Value>, NvdLog)>,
                 Query(q): Query<HashMap<String, String>>,
                 headers: HeaderMap| async move {
                    let start: u64 = q
                        .get("startIndex")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let per: u64 = q
                        .get("resultsPerPage")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(2000);
                    log.lock().unwrap().push((
                        Instant::now(),
                        start,
                        headers.get("apiKey").is_some_and(|v| v == KEY),
                    ));
                    let page: Vec<Value> = all
                        .iter()
                        .skip(start as usize)
                        .take(per as usize)
                        .cloned()
                        .collect();
                    let mut body = (*template).clone();
                    body["startIndex"] = json!(start);
                    body["resultsPerPage"] = json!(page.len());
                    body["totalResults"] = json!(all.len());
                    body["vulnerabilities"] = Value::Array(page);
                    axum::Json(body)
                },
            ),
        )
        .with_state(state);
    (serve(router).await, log)
}

fn cves(parsed: &musubi::formats::Parsed) -> Vec<String> {
    let mut ids: Vec<String> = parsed
        .reports
        .iter()
        .flat_map(|r| r.indicators.iter())
        .filter(|i| i.observable.kind() == musubi::model::ObservableKind::Cve)
        .map(|i| i.observable.value().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// With an API key (50 requests per 30 s): every page in one poll, 0.6 s apart, the key
/// on every request, and the walk finished (no cursor left).
#[tokio::test(flavor = "multi_thread")]
async fn nvd_pages_with_a_key_at_fifty_per_thirty_seconds() {
    set_key();
    let (base, log) = nvd_server().await;
    let mut f = feed(
        "nvd-api",
        &format!("{base}/rest/json/cves/2.0?resultsPerPage=1&noRejected"),
        "nvd",
    );
    f.timeout = Duration::from_secs(30);
    f.headers.push(HeaderFromEnv {
        name: "apiKey".into(),
        env_var: KEY_VAR.into(),
    });
    assert_eq!(feeds::nvd_interval(&f), Duration::from_millis(600));
    let o = feeds::poll(&client(), &f, &FeedState::default(), Utc::now()).await;
    let parsed = o.result.expect("poll").expect("content");
    assert_eq!(
        cves(&parsed),
        [
            "CVE-2017-7542",
            "CVE-2021-25992",
            "CVE-2021-26855",
            "CVE-2022-0558"
        ]
    );
    assert_eq!(o.state.cursor, None);
    let log = log.lock().unwrap().clone();
    assert_eq!(log.iter().map(|l| l.1).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(log.iter().all(|l| l.2), "the key goes with every page");
    for w in log.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(gap >= Duration::from_millis(590), "pages {gap:?} apart");
    }
}

/// Without a key (5 requests per 30 s, so 6 s apart): a poll whose timeout leaves no room
/// for the pause stops after the first page and keeps its place; the next poll goes on from
/// there and finishes the walk.
#[tokio::test(flavor = "multi_thread")]
async fn nvd_without_a_key_resumes_where_the_rate_limit_stopped_it() {
    let (base, log) = nvd_server().await;
    let mut f = feed(
        "nvd-api",
        &format!("{base}/rest/json/cves/2.0?resultsPerPage=2"),
        "nvd",
    );
    f.timeout = Duration::from_secs(5);
    assert_eq!(feeds::nvd_interval(&f), Duration::from_secs(6));
    let started = Instant::now();
    let first = feeds::poll(&client(), &f, &FeedState::default(), Utc::now()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let p1 = first.result.expect("first poll").expect("content");
    assert_eq!(cves(&p1), ["CVE-2021-25992", "CVE-2022-0558"]);
    assert_eq!(first.state.cursor.as_deref(), Some("nvd:startIndex=2"));
    let second = feeds::poll(&client(), &f, &first.state, Utc::now()).await;
    let p2 = second.result.expect("second poll").expect("content");
    assert_eq!(cves(&p2), ["CVE-2017-7542", "CVE-2021-26855"]);
    assert_eq!(second.state.cursor, None);
    let starts: Vec<u64> = log.lock().unwrap().iter().map(|l| l.1).collect();
    assert_eq!(starts, [0, 2]);
    assert!(
        log.lock().unwrap().iter().all(|l| !l.2),
        "no key configured, none sent"
    );
}

/// Requests seen by a CSAF server: (path, apiKey sent).
type CsafLog = Arc<Mutex<Vec<(String, bool)>>>;

async fn static_server(files: HashMap<String, Value>, log: CsafLog) -> String {
    let files = Arc::new(files);
    let router = Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
        let files = files.clone();
        let log = log.clone();
        async move {
            log.lock()
                .unwrap()
                .push((uri.path().to_string(), headers.get("apiKey").is_some()));
            match files.get(uri.path()) {
                Some(v) => axum::Json(v.clone()).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    serve(router).await
}

/// OASIS's example provider-metadata.json lists its TLP:WHITE ROLIE feed (served here as
/// CISA's real IT feed, four entries, one of whose advisories is in the fixtures) and, added
/// for the test, a TLP:AMBER feed (OASIS's example feed) whose advisory lives on another host.
/// The walk stores both advisories, the AMBER one as AMBER although it says WHITE; the three
/// missing advisories are warnings and keep the cursor where it was; the feed's credentials
/// never reach the other host.
#[tokio::test(flavor = "multi_thread")]
async fn csaf_provider_metadata_walks_its_rolie_feeds() {
    set_key();
    let main_log: CsafLog = Arc::default();
    let other_log: CsafLog = Arc::default();
    // The other host: the AMBER feed's advisory.
    let other = static_server(
        HashMap::from([(
            "/advisories/csaf/2020/2020-ESA-001.json".to_string(),
            fixture("csaf/oasis-bsi-2022-0001.json"),
        )]),
        other_log.clone(),
    )
    .await;
    // The provider's host: metadata, both feeds, one CISA advisory.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut meta = fixture("csaf/oasis-example-01-provider-metadata.json");
    meta["distributions"][0]["rolie"]["feeds"][0]["url"] =
        json!(format!("{base}/.well-known/csaf/feed-tlp-white.json"));
    meta["distributions"][0]["rolie"]["feeds"]
        .as_array_mut()
        .unwrap()
        .push(json!({"summary": "AMBER", "tlp_label": "AMBER", "url": format!("{base}/amber/feed.json")}));
    let white = serde_json::from_str::<Value>(
        &fixture("csaf/cisa-csaf-it-feed-tlp-white.json")
            .to_string()
            .replace(
                "https://raw.githubusercontent.com/cisagov/CSAF/develop/csaf_files",
                &format!("{base}/cisa"),
            ),
    )
    .unwrap();
    let amber = serde_json::from_str::<Value>(
        &fixture("csaf/oasis-example-01-feed-tlp-white.json")
            .to_string()
            .replace("https://psirt.domain.tld", &other),
    )
    .unwrap();
    let files = HashMap::from([
        ("/.well-known/csaf/provider-metadata.json".to_string(), meta),
        ("/.well-known/csaf/feed-tlp-white.json".to_string(), white),
        ("/amber/feed.json".to_string(), amber),
        (
            "/cisa/IT/white/2024/va-24-262-01.json".to_string(),
            fixture("csaf/cisa-va-24-262-01.json"),
        ),
    ]);
    let files = Arc::new(files);
    let log2 = main_log.clone();
    let router = Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
        let files = files.clone();
        let log = log2.clone();
        async move {
            log.lock()
                .unwrap()
                .push((uri.path().to_string(), headers.get("apiKey").is_some()));
            match files.get(uri.path()) {
                Some(v) => axum::Json(v.clone()).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(base.trim_start_matches("http://"))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let mut f = feed(
        "csaf-provider",
        &format!("{base}/.well-known/csaf/provider-metadata.json"),
        "csaf",
    );
    f.timeout = Duration::from_secs(20);
    f.headers.push(HeaderFromEnv {
        name: "apiKey".into(),
        env_var: KEY_VAR.into(),
    });
    let o = feeds::poll(&client(), &f, &FeedState::default(), Utc::now()).await;
    let parsed = o.result.expect("poll").expect("content");
    let mut got: Vec<(String, Tlp)> = parsed
        .reports
        .iter()
        .map(|r| (r.title.split(':').next().unwrap().to_string(), r.tlp))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("BSI-2022-0001".to_string(), Tlp::Amber),
            ("VA-24-262-01".to_string(), Tlp::Clear)
        ],
        "{:?}",
        parsed.warnings
    );
    assert_eq!(parsed.warnings.len(), 3, "{:?}", parsed.warnings);
    assert!(
        parsed.warnings.iter().all(|w| w.contains("404")),
        "{:?}",
        parsed.warnings
    );
    assert_eq!(o.state.cursor, None, "a failed advisory keeps the cursor");
    let main_log = main_log.lock().unwrap().clone();
    assert!(main_log.iter().all(|(_, key)| *key), "{main_log:?}");
    assert_eq!(main_log.len(), 3 + 4, "{main_log:?}");
    let other_log = other_log.lock().unwrap().clone();
    assert_eq!(
        other_log,
        [("/advisories/csaf/2020/2020-ESA-001.json".to_string(), false)]
    );
}

/// `/metrics` counts each feed's polls, stored and skipped items, errors and last success,
/// labelled by the feed's name; the URL of a feed (whose query holds a key) never appears.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_polls_per_feed_name() {
    let data = crate::util::DataDir::new();
    let kev = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kev/known_exploited_vulnerabilities-2025.01.24.json"
    );
    // A port nobody listens on: the broken feed fails at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::write(
        data.path().join("feeds.toml"),
        format!(
            r#"
[[feed]]
name = "kev-sample"
url = "file://{kev}"
format = "kev"
schedule = "* * * * * * *"

[[feed]]
name = "broken-feed"
url = "https://127.0.0.1:{port}/feed.json?api_key=SECRETFEEDKEY42"
format = "kev"
schedule = "* * * * * * *"
allow_private = true
"#
        ),
    )
    .unwrap();
    let config = data.path().join("musubi.toml");
    std::fs::write(&config, "[feeds]\nfile = \"feeds.toml\"\n").unwrap();
    let daemon = crate::util::Daemon::start_with(&data, &["--config", config.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = crate::util::metrics(&daemon).await;
        let polled = |feed: &str| {
            text.lines().any(|l| {
                l.starts_with(&format!("musubi_feed_polls_total{{feed=\"{feed}\"}}"))
                    && !l.ends_with(" 0")
            })
        };
        if polled("kev-sample") && polled("broken-feed") {
            break text;
        }
        assert!(Instant::now() < deadline, "feeds not polled: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let value = |name: &str, feed: &str| -> f64 {
        let prefix = format!("{name}{{feed=\"{feed}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{prefix} missing: {text}"))
            .parse()
            .unwrap()
    };
    assert!(
        value("musubi_feed_items_stored_total", "kev-sample") >= 1000.0,
        "{text}"
    );
    assert_eq!(
        value("musubi_feed_errors_total", "kev-sample"),
        0.0,
        "{text}"
    );
    assert!(
        value("musubi_feed_last_success_timestamp_seconds", "kev-sample") > 1.7e9,
        "{text}"
    );
    assert!(
        value("musubi_feed_errors_total", "broken-feed") >= 1.0,
        "{text}"
    );
    assert_eq!(
        value("musubi_feed_last_success_timestamp_seconds", "broken-feed"),
        0.0,
        "{text}"
    );
    assert!(
        !text.contains("SECRETFEEDKEY42") && !text.contains("127.0.0.1:"),
        "{text}"
    );
}
