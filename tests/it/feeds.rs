//! The feed fetcher and scheduler against real HTTP servers on loopback.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::Utc;
use musubi::config::feeds::{FeedConfig, FeedUrl, FeedsConfig};
use musubi::formats::Format;
use musubi::sources::feeds::{self, FeedError, FeedState, PollOutcome};
use tokio::io::AsyncWriteExt;

const KEV_MINI: &str = r#"{"vulnerabilities":[{"cveID":"CVE-2024-3400","vendorProject":"Palo Alto Networks","product":"PAN-OS","vulnerabilityName":"PAN-OS Command Injection","dateAdded":"2024-04-12"}]}"#;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn app(hits: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route(
            "/kev",
            get(move |headers: HeaderMap| {
                let hits = Arc::clone(&hits);
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    if headers
                        .get(header::IF_NONE_MATCH)
                        .and_then(|v| v.to_str().ok())
                        == Some("\"v1\"")
                    {
                        return (
                            StatusCode::NOT_MODIFIED,
                            [(header::ETAG, "\"v1\"")],
                            String::new(),
                        );
                    }
                    (
                        StatusCode::OK,
                        [(header::ETAG, "\"v1\"")],
                        KEV_MINI.to_string(),
                    )
                }
            }),
        )
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        )
        .route(
            "/garbage",
            get(|| async { "<html>this is not a KEV catalogue".into_response() }),
        )
}

/// A feed polled over HTTP with a 5 s timeout (also used by `feed_faults`); its servers are
/// on loopback, so it opts in to private addresses.
pub(crate) fn feed(name: &str, url: &str, format: &str) -> FeedConfig {
    let mut f = FeedConfig::new(
        name,
        FeedUrl::Http(url.parse().unwrap()),
        format.parse::<Format>().unwrap(),
    );
    f.timeout = Duration::from_secs(5);
    f.allow_private = true;
    f
}

pub(crate) fn client() -> feeds::FeedClient {
    feeds::build_client().unwrap()
}

#[tokio::test]
async fn etag_gives_304_on_the_second_poll() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(app(Arc::clone(&hits))).await;
    let f = feed("kev", &format!("{base}/kev"), "kev");
    let c = client();
    let first = feeds::poll(&c, &f, &FeedState::default(), Utc::now()).await;
    let parsed = first.result.unwrap().expect("content on the first poll");
    assert_eq!(parsed.reports.len(), 1);
    assert_eq!(first.state.etag.as_deref(), Some("\"v1\""));
    assert_eq!(first.state.items_added, 1);
    assert!(first.state.last_success.is_some());

    let second = feeds::poll(&c, &f, &first.state, Utc::now()).await;
    assert!(second.result.unwrap().is_none(), "304 means not modified");
    assert_eq!(second.state.etag.as_deref(), Some("\"v1\""));
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn server_error_records_backoff() {
    let base = serve(app(Arc::new(AtomicUsize::new(0)))).await;
    let f = feed("broken", &format!("{base}/fail"), "kev");
    let c = client();
    let now = Utc::now();
    let o1 = feeds::poll(&c, &f, &FeedState::default(), now).await;
    assert!(
        matches!(o1.result, Err(FeedError::Status { status: 500, .. })),
        "{:?}",
        o1.result
    );
    assert_eq!(o1.state.consecutive_failures, 1);
    let wait1 = o1.state.next_attempt_after.unwrap() - now;
    assert!(
        wait1 >= chrono::Duration::seconds(48) && wait1 <= chrono::Duration::seconds(72),
        "{wait1}"
    );
    assert!(
        o1.state
            .last_error
            .as_deref()
            .unwrap()
            .contains("status 500")
    );
    let o2 = feeds::poll(&c, &f, &o1.state, now).await;
    assert_eq!(o2.state.consecutive_failures, 2);
    let wait2 = o2.state.next_attempt_after.unwrap() - now;
    assert!(wait2 >= chrono::Duration::seconds(96), "{wait2}");
    // A success resets the failure count.
    let good = feed("broken", &format!("{base}/kev"), "kev");
    let o3 = feeds::poll(&c, &good, &o2.state, now).await;
    assert!(o3.result.is_ok());
    assert_eq!(o3.state.consecutive_failures, 0);
    assert_eq!(o3.state.next_attempt_after, None);
    assert_eq!(o3.state.last_error, None);
}

#[tokio::test]
async fn garbage_is_a_recorded_feed_error() {
    let base = serve(app(Arc::new(AtomicUsize::new(0)))).await;
    let f = feed("junk", &format!("{base}/garbage"), "kev");
    let o = feeds::poll(&client(), &f, &FeedState::default(), Utc::now()).await;
    let err = o.result.unwrap_err();
    assert!(matches!(err, FeedError::Format { .. }), "{err}");
    let recorded = o.state.last_error.unwrap();
    assert!(
        recorded.starts_with("feed junk: kev: invalid JSON at line 1"),
        "{recorded}"
    );
    assert_eq!(o.state.consecutive_failures, 1);
}

/// A server that streams a chunked body without Content-Length, forever.
async fn endless_chunked_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .await;
                let chunk = format!("{:x}\r\n{}\r\n", 8192, "1".repeat(8192));
                for _ in 0..10_000 {
                    if sock.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}/")
}

#[tokio::test]
async fn oversized_body_is_capped_while_streaming() {
    let url = endless_chunked_server().await;
    let mut f = feed("huge", &url, "blocklist");
    f.max_bytes = 100_000;
    let started = Instant::now();
    let o = feeds::poll(&client(), &f, &FeedState::default(), Utc::now()).await;
    let err = o.result.unwrap_err();
    assert!(
        matches!(
            err,
            FeedError::TooLarge {
                max_bytes: 100_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("exceeds max_bytes (100000 bytes)"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stopped early, not at the timeout"
    );
}

#[tokio::test]
async fn hanging_feed_times_out_while_another_completes() {
    let base = serve(app(Arc::new(AtomicUsize::new(0)))).await;
    let mut slow = feed("slow", &format!("{base}/hang"), "kev");
    slow.timeout = Duration::from_secs(2);
    // Once a year: only the start-up poll happens during the test.
    slow.schedule = "0 0 0 1 1 * *".parse().unwrap();
    let mut fast = feed("fast", &format!("{base}/kev"), "kev");
    fast.schedule = slow.schedule.clone();

    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, PollOutcome, Instant)>(8);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let sched = tokio::spawn(feeds::run_scheduler(
        vec![slow, fast],
        client(),
        HashMap::new(),
        move |name, outcome| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((name, outcome, Instant::now())).await;
            }
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let (name, outcome, at) = rx.recv().await.unwrap();
    assert_eq!(name, "fast");
    assert!(outcome.result.unwrap().is_some());
    assert!(
        at - started < Duration::from_millis(1500),
        "fast feed was not delayed by the slow one"
    );
    let (name, outcome, at) = rx.recv().await.unwrap();
    assert_eq!(name, "slow");
    assert!(
        matches!(outcome.result, Err(FeedError::Timeout { .. })),
        "{:?}",
        outcome.result
    );
    assert!(at - started >= Duration::from_secs(2));
    assert_eq!(outcome.state.consecutive_failures, 1);
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), sched)
        .await
        .expect("scheduler stops")
        .unwrap();
}

#[tokio::test]
async fn project_feeds_toml_is_valid_and_offline_samples_parse() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("feeds.toml");
    let cfg = FeedsConfig::load(&path).unwrap();
    assert_eq!(cfg.feeds.len(), 22);
    let enabled: Vec<&FeedConfig> = cfg.enabled().collect();
    assert_eq!(enabled.len(), 10);
    let c = client();
    for f in enabled {
        assert!(matches!(f.url, FeedUrl::File(_)), "{}", f.name);
        let o = feeds::poll(&c, f, &FeedState::default(), Utc::now()).await;
        let parsed = o.result.unwrap_or_else(|e| panic!("{e}")).unwrap();
        assert!(!parsed.reports.is_empty(), "{}", f.name);
        // Unchanged file: the second poll is "not modified".
        let again = feeds::poll(&c, f, &o.state, Utc::now()).await;
        assert!(again.result.unwrap().is_none(), "{}", f.name);
        if f.name == "sample-misp-digitalside" {
            assert_eq!(parsed.reports.len(), 1);
            assert_eq!(o.state.cursor.as_deref(), Some("1599626526"));
        }
    }
}

/// #14 finding 10: credentials in a feed URL never reach an error, whether musubi builds
/// the message (a status error) or reqwest does (a connection error embeds the URL).
#[tokio::test]
async fn feed_url_credentials_are_redacted_in_every_error() {
    let base = serve(app(Arc::new(AtomicUsize::new(0)))).await;
    let with_secrets = |url: &str| {
        url.replacen("http://", "http://alice:s3cretpw@", 1)
            + "?apikey=K123456&token=T654321&secret=S1&password=P1&page=2"
    };
    let refused_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for url in [
        with_secrets(&format!("{base}/fail")),
        with_secrets(&format!("http://127.0.0.1:{refused_port}/x")),
    ] {
        let f = feed("creds", &url, "kev");
        let o = feeds::poll(&client(), &f, &FeedState::default(), Utc::now()).await;
        let shown = format!(
            "{} | {}",
            o.result.unwrap_err(),
            o.state.last_error.unwrap()
        );
        for secret in ["alice", "s3cretpw", "K123456", "T654321", "S1", "P1"] {
            assert!(!shown.contains(secret), "{secret}: {shown}");
        }
        assert!(
            shown.contains("REDACTED") && shown.contains("page=2"),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn missing_file_and_missing_env_are_errors() {
    let f = FeedConfig::new(
        "gone",
        FeedUrl::File("/nonexistent/musubi/feed.json".into()),
        Format::Kev,
    );
    let o = feeds::poll(&client(), &f, &FeedState::default(), Utc::now()).await;
    assert!(matches!(o.result, Err(FeedError::File { .. })));
    let cfg = FeedsConfig::parse(
        r#"
        [[feed]]
        name = "nvd"
        url = "http://127.0.0.1:9/x"
        format = "nvd"
        schedule = "0 0 * * * *"
        headers = { apiKey = "env:MUSUBI_TEST_UNSET_VARIABLE_1234" }
        "#,
        std::path::Path::new("."),
    )
    .unwrap();
    let o = feeds::poll(&client(), &cfg.feeds[0], &FeedState::default(), Utc::now()).await;
    let err = o.result.unwrap_err().to_string();
    assert!(err.contains("MUSUBI_TEST_UNSET_VARIABLE_1234"), "{err}");
}

/// The project's own configuration polls the offline sample feeds: through the CLI once,
/// and through the daemon at start-up, without duplicates.
#[tokio::test(flavor = "multi_thread")]
async fn shipped_sample_feeds_are_polled_stored_and_reported() {
    let data = crate::util::DataDir::new();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/musubi.toml");
    let check = data.cli(&["--config", config, "check"]);
    assert!(check.contains("feeds.toml: ok"), "{check}");
    let first = data.cli(&["--config", config, "feeds", "poll", "sample-feodo"]);
    let added: u64 = first.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(added >= 1, "{first}");
    let again = data.cli(&["--config", config, "feeds", "poll", "sample-feodo"]);
    assert!(
        again.contains(": 0 new report(s)"),
        "re-polling never duplicates: {again}"
    );

    let token = data.add_member("Feed Reader", "class1", None);
    let daemon = crate::util::Daemon::start_with(&data, &["--config", config]);
    let client = crate::util::Client::new(&token);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, body) = client.get(&daemon.url("/api/v1/feeds")).await;
        assert_eq!(status, 200, "{body}");
        let feeds = body["feeds"].as_array().unwrap();
        let ok = feeds
            .iter()
            .filter(|f| f["last_success"].is_string())
            .count();
        if ok >= 8 {
            assert!(feeds.iter().all(|f| f["last_error"].is_null()), "{body}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sample feeds not all polled: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    crate::util::wait_current(&daemon).await;
    let (_, list) = client
        .get(&daemon.url("/api/v1/campaigns?limit=1000"))
        .await;
    let kinds: std::collections::HashSet<&str> = list["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["reports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["kind"].as_str().unwrap())
        })
        .collect();
    // Feed items no member reported are advisories (public context), not campaigns.
    assert!(!kinds.contains("feed_item"), "{kinds:?}");
    let (_, advisories) = client
        .get(&daemon.url("/api/v1/advisories?limit=1000"))
        .await;
    let items = advisories["advisories"].as_array().unwrap();
    assert!(
        items
            .iter()
            .flat_map(|a| a["reports"].as_array().unwrap())
            .all(|r| r["kind"] == "feed_item")
            && !items.is_empty(),
        "{advisories}"
    );
}
