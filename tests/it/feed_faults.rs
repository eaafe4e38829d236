//! Feed faults against real servers on loopback: a slow drip, a redirect loop, a
//! self-signed certificate, a gzip bomb (as transfer encoding and as a `.gz` file) and a
//! body declared as 1 GB. Each poll ends with a recorded error that says what happened,
//! within the feed's timeout; and the daemon keeps ingesting and serving meanwhile.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use chrono::Utc;
use musubi::sources::feeds::{self, FeedError, FeedState};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::feeds::{client, feed};
use crate::util::{Client, Daemon, DataDir, submission, wait_current};

const KEV_MINI: &str = r#"{"vulnerabilities":[{"cveID":"CVE-2024-3400","vendorProject":"Palo Alto Networks","product":"PAN-OS","vulnerabilityName":"PAN-OS Command Injection","dateAdded":"2024-04-12"}]}"#;

const CERT: &str = include_str!("../fixtures/tls/self_signed.cert.pem");
const KEY: &str = include_str!("../fixtures/tls/self_signed.key.pem");

/// Bytes a gzip bomb inflates to: 1 + 258 × this (a little over 1 GB).
const BOMB_MATCHES: u64 = 4_200_000;

/// Reads the request head (up to the blank line) so that the client sees a normal exchange.
async fn read_head(sock: &mut tokio::net::TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
}

/// A raw HTTP server: each connection gets `head`, then one byte of `drip` every `every`,
/// forever (or until the client leaves). Counts open connections.
async fn raw_server(head: &'static str, every: Option<Duration>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let open2 = Arc::clone(&open);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let open = Arc::clone(&open2);
            tokio::spawn(async move {
                open.fetch_add(1, Ordering::SeqCst);
                read_head(&mut sock).await;
                if sock.write_all(head.as_bytes()).await.is_ok() {
                    match every {
                        Some(every) => loop {
                            tokio::time::sleep(every).await;
                            if sock.write_all(b" ").await.is_err() {
                                break;
                            }
                        },
                        // Declared but never sent: hold the connection until the client
                        // gives up.
                        None => {
                            let mut buf = [0u8; 64];
                            let _ = sock.read(&mut buf).await;
                        }
                    }
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (format!("http://{addr}/feed.json"), open)
}

const DRIP_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n";
const GIGABYTE_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{";

/// A gzip stream of a little over 1 GB of zeros in about 6.8 MB: one fixed-Huffman deflate
/// block with a literal zero followed by [`BOMB_MATCHES`] copies of (length 258, distance 1).
fn gzip_bomb() -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        fn put(&mut self, value: u64, bits: u32) {
            self.acc |= value << self.n;
            self.n += bits;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// Huffman codes go most significant bit first.
        fn code(&mut self, code: u64, bits: u32) {
            let mut rev = 0;
            for i in 0..bits {
                rev |= ((code >> i) & 1) << (bits - 1 - i);
            }
            self.put(rev, bits);
        }
    }
    let mut b = Bits {
        out: vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff],
        acc: 0,
        n: 0,
    };
    b.put(1, 1); // final block
    b.put(1, 2); // fixed Huffman codes
    b.code(0x30, 8); // literal 0
    for _ in 0..BOMB_MATCHES {
        b.code(0xc5, 8); // length code 285: 258 bytes
        b.code(0, 5); // distance code 0: distance 1
    }
    b.code(0, 7); // end of block
    if b.n > 0 {
        b.put(0, 8 - b.n);
    }
    let size = 1 + 258 * BOMB_MATCHES;
    let mut crc = flate2::Crc::new();
    let zeros = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        crc.update(&zeros[..n]);
        left -= n as u64;
    }
    let mut out = b.out;
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out
}

/// Serves the bomb as `Content-Encoding: gzip` (`/bomb`) and as a `.gz` file (`/bomb.json.gz`),
/// a redirect loop (`/loop/a` ⇄ `/loop/b`), and a small good KEV catalogue (`/kev`).
async fn app_server(bomb: axum::body::Bytes, redirects: Arc<AtomicUsize>) -> String {
    let b2 = bomb.clone();
    let r2 = Arc::clone(&redirects);
    let router = Router::new()
        .route(
            "/bomb",
            get(move || {
                let body = bomb.clone();
                async move {
                    (
                        [
                            (header::CONTENT_TYPE, "application/json"),
                            (header::CONTENT_ENCODING, "gzip"),
                        ],
                        body,
                    )
                }
            }),
        )
        .route(
            "/bomb.json.gz",
            get(move || {
                let body = b2.clone();
                async move { ([(header::CONTENT_TYPE, "application/gzip")], body) }
            }),
        )
        .route(
            "/loop/a",
            get(move || {
                redirects.fetch_add(1, Ordering::SeqCst);
                async { Redirect::temporary("/loop/b") }
            }),
        )
        .route(
            "/loop/b",
            get(move || {
                r2.fetch_add(1, Ordering::SeqCst);
                async { Redirect::temporary("/loop/a") }
            }),
        )
        .route(
            "/kev",
            get(|| async { (StatusCode::OK, KEV_MINI).into_response() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// An HTTPS server on loopback with a self-signed certificate for 127.0.0.1 that would serve
/// a valid KEV catalogue to anyone who completed the handshake. Counts completed handshakes.
async fn tls_server() -> (String, Arc<AtomicUsize>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    feeds::install_crypto_provider();
    let certs = vec![CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let h2 = Arc::clone(&handshakes);
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let handshakes = Arc::clone(&h2);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                handshakes.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{KEV_MINI}",
                    KEV_MINI.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (
        format!("https://127.0.0.1:{}/kev.json", addr.port()),
        handshakes,
    )
}

#[tokio::test]
async fn a_slow_drip_ends_with_a_timeout_within_the_feeds_timeout() {
    let (url, open) = raw_server(DRIP_HEAD, Some(Duration::from_millis(300))).await;
    let mut f = feed("drip", &url, "kev");
    f.timeout = Duration::from_secs(2);
    let started = Instant::now();
    let o = feeds::poll(&client(), &f, &FeedState::default(), Utc::now()).await;
    let took = started.elapsed();
    assert!(
        matches!(o.result, Err(FeedError::Timeout { .. })),
        "{:?}",
        o.result
    );
    assert_eq!(
        o.state.last_error.as_deref(),
        Some("feed drip: no complete answer within the timeout of 2s")
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(3500),
        "{took:?}"
    );
    assert_eq!(o.state.consecutive_failures, 1);
    // The connection is dropped, not left dripping.
    let deadline = Instant::now() + Duration::from_secs(3);
    while open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open.load(Ordering::SeqCst), 0, "dripping connection kept");
}

#[tokio::test]
async fn a_redirect_loop_is_a_bounded_clear_error() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = app_server(axum::body::Bytes::new(), Arc::clone(&hits)).await;
    let f = feed("loop", &format!("{base}/loop/a"), "kev");
    let started = Instant::now();
    let o = feeds::poll(&client(), &f, &FeedState::default(), Utc::now()).await;
    let err = o.result.unwrap_err();
    assert!(matches!(err, FeedError::Refused { .. }), "{err}");
    let recorded = o.state.last_error.unwrap();
    assert!(
        recorded.starts_with("feed loop: refused to fetch ")
            && recorded.contains("too many redirects (more than 5)"),
        "{recorded}"
    );
    // At most MAX_REDIRECTS (5) redirects are followed: 6 requests.
    let n = hits.load(Ordering::SeqCst);
    assert_eq!(n, feeds::MAX_REDIRECTS + 1, "{n} requests");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_self_signed_certificate_is_never_accepted() {
    let (url, handshakes) = tls_server().await;
    let f = feed("selfsigned", &url, "kev");
    let o = feeds::poll(&client(), &f, &FeedState::default(), Utc::now()).await;
    let err = o.result.unwrap_err();
    assert!(matches!(err, FeedError::Request { .. }), "{err}");
    let recorded = o.state.last_error.unwrap();
    assert!(
        recorded.starts_with(&format!("feed selfsigned: request to {url} failed:"))
            && recorded.contains("invalid peer certificate"),
        "{recorded}"
    );
    assert_eq!(handshakes.load(Ordering::SeqCst), 0);

    // Control: the server itself works for a client that trusts its certificate, so the
    // refusal above is the certificate's, not a broken server's.
    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(CERT.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let body = trusting
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, KEV_MINI);
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);
}

#[test]
fn the_bomb_is_a_valid_gzip_of_more_than_a_gigabyte() {
    let bomb = gzip_bomb();
    assert!(bomb.len() < 8_000_000, "{} compressed bytes", bomb.len());
    // Decompress the first megabyte of it: already far more than the caps below.
    let mut dec = flate2::read::GzDecoder::new(&bomb[..]).take(64 << 20);
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = dec.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        assert!(buf[..k].iter().all(|&b| b == 0));
        n += k as u64;
    }
    assert_eq!(n, 64 << 20);
}

#[tokio::test]
async fn a_gzip_bomb_stops_at_the_cap_measured_after_decompression() {
    let bomb = axum::body::Bytes::from(gzip_bomb());
    let compressed = bomb.len() as u64;
    let base = app_server(bomb, Arc::new(AtomicUsize::new(0))).await;
    for path in ["/bomb", "/bomb.json.gz"] {
        let mut f = feed("bomb", &format!("{base}{path}"), "kev");
        // Larger than the compressed body, so only the inflated size can trip it.
        f.max_bytes = 16_000_000;
        assert!(compressed < f.max_bytes);
        let started = Instant::now();
        let o = feeds::poll(&client(), &f, &FeedState::default(), Utc::now()).await;
        let err = o.result.unwrap_err();
        assert!(
            matches!(
                err,
                FeedError::TooLarge {
                    max_bytes: 16_000_000,
                    ..
                }
            ),
            "{path}: {err}"
        );
        assert_eq!(
            o.state.last_error.as_deref(),
            Some(
                "feed bomb: body exceeds max_bytes (16000000 bytes); raise max_bytes in feeds.toml if the feed really is this large"
            ),
            "{path}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{path}: stopped at the cap, not after inflating a gigabyte"
        );
    }
}

#[tokio::test]
async fn a_declared_gigabyte_is_refused_before_reading() {
    let (url, _) = raw_server(GIGABYTE_HEAD, None).await;
    let mut f = feed("gigabyte", &url, "kev");
    f.max_bytes = 50_000_000;
    let started = Instant::now();
    let o = feeds::poll(&client(), &f, &FeedState::default(), Utc::now()).await;
    let err = o.result.unwrap_err();
    assert!(
        matches!(
            err,
            FeedError::TooLarge {
                max_bytes: 50_000_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        o.state
            .last_error
            .unwrap()
            .starts_with("feed gigabyte: body exceeds max_bytes (50000000 bytes)")
    );
    // Refused on the header: the server never sends the body, so anything but an early
    // refusal would end in the 5 s timeout.
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// Peak resident memory of a process (kB), from /proc.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The real daemon with every faulty feed and one good one: while the drip and the declared
/// gigabyte hold their connections, /healthz answers and a submission is acknowledged; the
/// good feed's report is stored; each faulty feed records what went wrong; the bomb does
/// not blow up the daemon's memory.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_keeps_serving_while_its_feeds_misbehave() {
    let bomb = axum::body::Bytes::from(gzip_bomb());
    let base = app_server(bomb, Arc::new(AtomicUsize::new(0))).await;
    let (drip, drip_open) = raw_server(DRIP_HEAD, Some(Duration::from_millis(300))).await;
    let (gigabyte, _) = raw_server(GIGABYTE_HEAD, None).await;
    let (tls, handshakes) = tls_server().await;

    let data = DataDir::new();
    let feeds: Vec<(&str, String)> = vec![
        ("good", format!("{base}/kev")),
        ("drip", drip),
        ("loop", format!("{base}/loop/a")),
        ("selfsigned", tls),
        ("bomb", format!("{base}/bomb")),
        ("bombfile", format!("{base}/bomb.json.gz")),
        ("gigabyte", gigabyte),
    ];
    let mut toml = String::new();
    for (name, url) in &feeds {
        toml.push_str(&format!(
            "[[feed]]\nname = \"{name}\"\nurl = \"{url}\"\nformat = \"kev\"\n\
             schedule = \"0 0 0 1 1 * *\"\ntimeout = \"6s\"\nmax_bytes = \"16MB\"\n\
             allow_private = true\n\n"
        ));
    }
    std::fs::write(data.path().join("feeds.toml"), toml).unwrap();
    std::fs::write(
        data.path().join("musubi.toml"),
        "[feeds]\nfile = \"feeds.toml\"\n",
    )
    .unwrap();
    let cfg = data.path().join("musubi.toml");
    let token = data.add_member("Busy Member", "class1", None);
    let daemon = Daemon::start_with(&data, &["--config", cfg.to_str().unwrap()]);
    let client = Client::new(&token);

    // Wait until the drip is under way, then use the API.
    let deadline = Instant::now() + Duration::from_secs(5);
    while drip_open.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the drip feed was not polled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let (status, health) = client.get(&daemon.url("/healthz")).await;
    assert_eq!(status, 200, "{health}");
    let (status, body) = client
        .post_json(
            &daemon.url("/api/v1/reports"),
            &submission("during the drip", "green", &[("ipv4", "192.0.2.77")]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the API waited for the feeds"
    );
    assert_eq!(drip_open.load(Ordering::SeqCst), 1, "drip still hanging");

    // Every feed has an outcome after its 6 s timeout at most.
    let deadline = Instant::now() + Duration::from_secs(15);
    // Feed health details are the secretariat's.
    let ops = Client::new(&crate::util::operator_token(&daemon));
    let list = loop {
        let (status, body) = ops.get(&daemon.url("/api/v1/feeds")).await;
        assert_eq!(status, 200, "{body}");
        let done = body["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["last_success"].is_string() || f["last_error"].is_string())
            .count();
        if done == feeds.len() {
            break body;
        }
        assert!(Instant::now() < deadline, "feeds not all polled: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let state = |name: &str| -> Value {
        list["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no feed {name}: {list}"))
    };
    let good = state("good");
    assert!(good["last_error"].is_null(), "{good}");
    assert_eq!(good["items_added"], json!(1), "{good}");
    let error = |name: &str| state(name)["last_error"].as_str().unwrap().to_string();
    assert_eq!(
        error("drip"),
        "feed drip: no complete answer within the timeout of 6s"
    );
    assert!(
        error("loop").contains("too many redirects"),
        "{}",
        error("loop")
    );
    assert!(
        error("selfsigned").contains("invalid peer certificate"),
        "{}",
        error("selfsigned")
    );
    assert_eq!(handshakes.load(Ordering::SeqCst), 0);
    for name in ["bomb", "bombfile", "gigabyte"] {
        assert!(
            error(name).starts_with(&format!(
                "feed {name}: body exceeds max_bytes (16000000 bytes)"
            )),
            "{}",
            error(name)
        );
    }
    for name in ["drip", "loop", "selfsigned", "bomb", "bombfile", "gigabyte"] {
        assert_eq!(state(name)["consecutive_failures"], json!(1), "{name}");
    }

    // The submission and the good feed's report are both stored and searchable.
    let health = wait_current(&daemon).await;
    assert_eq!(health["committed_seq"], json!(2), "{health}");
    let peak = peak_rss_kb(daemon.child.id());
    eprintln!("daemon peak RSS with a gzip bomb feed: {} MB", peak / 1024);
    assert!(peak < 400 * 1024, "daemon peak RSS {peak} kB");
}

/// An "internal" service on loopback that serves a KEV catalogue at `/kev` and counts every
/// request, and a second server whose routes redirect to it: `/to-literal` (its literal
/// address), `/to-name` (`localhost`), `/to-mapped` (the IPv4-mapped IPv6 address), and
/// `/redirect` (a relative redirect to its own `/kev`).
async fn internal_and_redirector() -> (std::net::SocketAddr, std::net::SocketAddr, Arc<AtomicUsize>)
{
    let hits = Arc::new(AtomicUsize::new(0));
    let h2 = Arc::clone(&hits);
    let internal = Router::new().route(
        "/kev",
        get(move || {
            h2.fetch_add(1, Ordering::SeqCst);
            async { (StatusCode::OK, KEV_MINI).into_response() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let internal_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, internal).await.unwrap() });
    let p = internal_addr.port();
    let h3 = Arc::clone(&hits);
    let redirector = Router::new()
        .route(
            "/to-literal",
            get(move || async move { Redirect::to(&format!("http://127.0.0.1:{p}/kev")) }),
        )
        .route(
            "/to-name",
            get(move || async move { Redirect::to(&format!("http://localhost:{p}/kev")) }),
        )
        .route(
            "/to-mapped",
            get(move || async move { Redirect::to(&format!("http://[::ffff:127.0.0.1]:{p}/kev")) }),
        )
        .route("/redirect", get(|| async { Redirect::to("/kev") }))
        .route(
            "/kev",
            get(move || {
                h3.fetch_add(1, Ordering::SeqCst);
                async { (StatusCode::OK, KEV_MINI).into_response() }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirector_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, redirector).await.unwrap() });
    (internal_addr, redirector_addr, hits)
}

/// #14 finding 11: a feed's redirect to loopback was followed and its answer stored. Here
/// the redirecting server has a public-looking name (pinned to its loopback address, as an
/// /etc/hosts entry would), so only the redirect target decides: a literal loopback
/// address, a name resolving to loopback and an IPv4-mapped loopback address are all
/// refused, the internal service never sees a request, and the error names the feed and
/// the refused target. With `allow_private = true` the same redirect is followed.
#[tokio::test]
async fn redirects_to_internal_addresses_are_refused_unless_the_feed_opts_in() {
    let (internal, redirector, hits) = internal_and_redirector().await;
    let client = feeds::build_client_pinned(&[("feeds.example.test", redirector)]).unwrap();
    let base = format!("http://feeds.example.test:{}", redirector.port());
    let p = internal.port();
    let strict = |path: &str| {
        let mut f = feed("public-feed", &format!("{base}{path}"), "kev");
        f.allow_private = false;
        f
    };

    // Control: the pinned name itself is reachable, so a refusal below is the redirect's.
    let o = feeds::poll(&client, &strict("/kev"), &FeedState::default(), Utc::now()).await;
    assert_eq!(o.result.unwrap().unwrap().reports.len(), 1);
    hits.store(0, Ordering::SeqCst);

    for (path, target, says) in [
        (
            "/to-literal",
            format!("http://127.0.0.1:{p}/kev"),
            "127.0.0.1 is a loopback",
        ),
        ("/to-name", "localhost".to_string(), "localhost resolves to"),
        (
            "/to-mapped",
            format!("http://[::ffff:7f00:1]:{p}/kev"),
            "is a loopback",
        ),
    ] {
        let o = feeds::poll(&client, &strict(path), &FeedState::default(), Utc::now()).await;
        let err = o.result.unwrap_err();
        assert!(matches!(err, FeedError::Refused { .. }), "{path}: {err}");
        let recorded = o.state.last_error.unwrap();
        assert!(
            recorded.starts_with(&format!("feed public-feed: refused to fetch {target}"))
                && recorded.contains(says)
                && recorded.contains("allow_private = true"),
            "{path}: {recorded}"
        );
        assert_eq!(o.state.consecutive_failures, 1);
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the internal service was reached"
    );

    // The feed's own URL is held to the same rule.
    let direct = {
        let mut f = feed("direct", &format!("http://127.0.0.1:{p}/kev"), "kev");
        f.allow_private = false;
        f
    };
    let o = feeds::poll(&client, &direct, &FeedState::default(), Utc::now()).await;
    assert!(
        matches!(o.result, Err(FeedError::Refused { .. })),
        "{:?}",
        o.result
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    // Opted in: followed.
    let mut opted = strict("/to-literal");
    opted.allow_private = true;
    let o = feeds::poll(&client, &opted, &FeedState::default(), Utc::now()).await;
    assert_eq!(o.result.unwrap().unwrap().reports.len(), 1);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

/// #14 findings 10 and 11 through the real daemon, configured only by feeds.toml: a feed
/// URL with credentials (user info, `apikey`, `token`) shows none of them in
/// `GET /api/v1/feeds`, and a feed on loopback that redirects to its own catalogue is
/// refused (it was fetched and stored as a TLP:CLEAR item).
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_shows_no_feed_credentials_and_stores_nothing_from_loopback() {
    let (_internal, redirector, hits) = internal_and_redirector().await;
    let data = DataDir::new();
    let feeds_toml = format!(
        "[[feed]]\nname = \"secret-feed\"\n\
         url = \"http://alice:s3cretpw@127.0.0.1:{p}/missing?apikey=K123456&token=T654321&page=1\"\n\
         format = \"kev\"\nschedule = \"0 0 0 1 1 * *\"\ntimeout = \"5s\"\n\n\
         [[feed]]\nname = \"looping-back\"\nurl = \"http://127.0.0.1:{p}/redirect\"\n\
         format = \"kev\"\nschedule = \"0 0 0 1 1 * *\"\ntimeout = \"5s\"\n",
        p = redirector.port()
    );
    std::fs::write(data.path().join("feeds.toml"), feeds_toml).unwrap();
    std::fs::write(
        data.path().join("musubi.toml"),
        "[feeds]\nfile = \"feeds.toml\"\n",
    )
    .unwrap();
    let cfg = data.path().join("musubi.toml");
    let token = data.add_member("Curious Member", "general", None);
    let daemon = Daemon::start_with(&data, &["--config", cfg.to_str().unwrap()]);
    let client = Client::new(&token);
    // The secretariat sees the full health, last errors included: even there, no secret.
    let ops = Client::new(&crate::util::operator_token(&daemon));

    let deadline = Instant::now() + Duration::from_secs(15);
    let list = loop {
        let (status, body) = ops.get(&daemon.url("/api/v1/feeds")).await;
        assert_eq!(status, 200, "{body}");
        let done = body["feeds"].as_array().map_or(0, |f| {
            f.iter()
                .filter(|f| f["last_success"].is_string() || f["last_error"].is_string())
                .count()
        });
        if done == 2 {
            break body;
        }
        assert!(Instant::now() < deadline, "feeds not polled: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (status, member_view) = client.get(&daemon.url("/api/v1/feeds")).await;
    assert_eq!(status, 200, "{member_view}");
    let text = format!("{list} {member_view}");
    for secret in ["alice", "s3cretpw", "K123456", "T654321"] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    let looping = list["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "looping-back")
        .unwrap();
    let error = looping["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(&format!(
            "feed looping-back: refused to fetch http://127.0.0.1:{}/redirect",
            redirector.port()
        )),
        "{looping}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "loopback was fetched");
    wait_current(&daemon).await;
    let (status, found) = client.get(&daemon.url("/api/v1/search?q=PAN-OS")).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["hits"],
        json!([]),
        "an item from loopback was stored: {found}"
    );
}

/// #14 (XML cap) through the daemon: a feed of 8 MB of empty XML elements ends with the
/// parser's element-cap error, and the daemon's memory stays far below the 288 MB that the
/// element tree alone took before the cap.
#[tokio::test(flavor = "multi_thread")]
async fn an_xml_element_flood_feed_is_refused_without_the_memory() {
    let data = DataDir::new();
    std::fs::write(data.path().join("flood.xml"), crate::formats::xml_flood()).unwrap();
    std::fs::write(
        data.path().join("feeds.toml"),
        "[[feed]]\nname = \"flood\"\nurl = \"file://flood.xml\"\nformat = \"rss\"\n\
         schedule = \"0 0 0 1 1 * *\"\nmax_bytes = \"16MB\"\n",
    )
    .unwrap();
    std::fs::write(
        data.path().join("musubi.toml"),
        "[feeds]\nfile = \"feeds.toml\"\n",
    )
    .unwrap();
    let cfg = data.path().join("musubi.toml");
    let daemon = Daemon::start_with(&data, &["--config", cfg.to_str().unwrap()]);
    let client = Client::new(&crate::util::operator_token(&daemon));
    let deadline = Instant::now() + Duration::from_secs(20);
    let flood = loop {
        let (status, body) = client.get(&daemon.url("/api/v1/feeds")).await;
        assert_eq!(status, 200, "{body}");
        if let Some(f) = body["feeds"].as_array().and_then(|f| {
            f.iter()
                .find(|f| f["last_success"].is_string() || f["last_error"].is_string())
                .cloned()
        }) {
            break f;
        }
        assert!(Instant::now() < deadline, "flood feed not polled: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let peak = peak_rss_kb(daemon.child.id());
    eprintln!(
        "daemon peak RSS with an XML element flood feed: {} MB",
        peak / 1024
    );
    let error = flood["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("feed flood: rss: malformed XML at line 1")
            && error.contains("more than 250000 elements and attributes"),
        "{flood}"
    );
    assert!(peak < 160 * 1024, "daemon peak RSS {peak} kB");
}
