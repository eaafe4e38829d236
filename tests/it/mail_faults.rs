//! SMTP faults against a tiny SMTP server on loopback (tokio, real sockets) whose behaviour
//! the test switches: a server that accepts TCP and never greets, one that answers 421 to
//! MAIL FROM or 554 to RCPT TO, one that drops the connection in the middle of DATA, and a
//! working one. A failing digest keeps its window open and is visible in the mail health;
//! once the server recovers, every recipient receives the digest exactly once, under the
//! Message-ID the window fixed; the daemon's API keeps serving throughout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use musubi::config::Config;
use musubi::config::mail::Language;
use musubi::model::{MemberClass, ObservableKind, Tlp};
use musubi::outputs::mail::digest::RunOptions;
use musubi::outputs::mail::render::message_id;
use musubi::store::Store;

use crate::mail::{MailWorld, address as email, cli_contacts, now_micros};
use crate::util::{Client, Daemon, DataDir, submission};

/// How the server behaves; read at every command, so a switch applies to open connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Accept TCP, never say anything.
    Hang,
    /// Answer MAIL FROM with this code (421 closes the connection, as servers do).
    RejectMail(u16),
    /// Answer RCPT TO with this code.
    RejectRcpt(u16),
    /// Read part of the message after DATA, then drop the connection.
    DropInData,
    /// Work.
    Accept,
}

/// A message the server accepted (answered 250 after the final dot).
#[derive(Debug, Clone)]
struct Accepted {
    rcpt: Vec<String>,
    message_id: String,
}

#[derive(Default)]
struct Shared {
    mode: Mutex<Option<Mode>>,
    /// Accept this many messages, then behave as `RejectMail(421)`.
    limit: Mutex<Option<usize>>,
    accepted: Mutex<Vec<Accepted>>,
    mail_commands: AtomicUsize,
    connections: AtomicUsize,
}

struct SmtpServer {
    port: u16,
    shared: Arc<Shared>,
}

impl SmtpServer {
    async fn start(mode: Mode) -> SmtpServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        *shared.mode.lock().unwrap() = Some(mode);
        let s2 = Arc::clone(&shared);
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let shared = Arc::clone(&s2);
                shared.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let _ = session(sock, &shared).await;
                });
            }
        });
        SmtpServer { port, shared }
    }

    fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = Some(mode);
    }

    fn limit(&self, n: Option<usize>) {
        *self.shared.limit.lock().unwrap() = n;
    }

    fn accepted(&self) -> Vec<Accepted> {
        self.shared.accepted.lock().unwrap().clone()
    }

    fn mail_commands(&self) -> usize {
        self.shared.mail_commands.load(Ordering::SeqCst)
    }
}

async fn session(sock: tokio::net::TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mode = || shared.mode.lock().unwrap().expect("mode set");
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    if mode() == Mode::Hang {
        // Hold the connection open, silent, until the client gives up.
        let mut sink = Vec::new();
        let _ = r.read_to_end(&mut sink).await;
        return Ok(());
    }
    w.write_all(b"220 faulty.test ESMTP\r\n").await?;
    let mut rcpt = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
            w.write_all(b"250-faulty.test\r\n250 8BITMIME\r\n").await?;
        } else if cmd.starts_with("MAIL FROM") {
            shared.mail_commands.fetch_add(1, Ordering::SeqCst);
            rcpt.clear();
            let over = shared
                .limit
                .lock()
                .unwrap()
                .is_some_and(|n| shared.accepted.lock().unwrap().len() >= n);
            let code = code_or(mode(), over);
            if code == 250 {
                w.write_all(b"250 2.1.0 ok\r\n").await?;
            } else {
                w.write_all(format!("{code} 4.3.2 service not available\r\n").as_bytes())
                    .await?;
                if code == 421 {
                    return Ok(());
                }
            }
        } else if cmd.starts_with("RCPT TO") {
            if let Mode::RejectRcpt(code) = mode() {
                w.write_all(format!("{code} 5.7.1 relaying denied\r\n").as_bytes())
                    .await?;
            } else {
                let addr = line.trim_end()[8..]
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string();
                rcpt.push(addr);
                w.write_all(b"250 2.1.5 ok\r\n").await?;
            }
        } else if cmd == "DATA" {
            w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut message = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                message.push_str(&line);
                if mode() == Mode::DropInData && message.len() > 200 {
                    // Gone mid-message, without an answer.
                    return Ok(());
                }
            }
            let message_id = message
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .starts_with("message-id:")
                        .then(|| l[11..].trim().to_string())
                })
                .unwrap_or_default();
            shared.accepted.lock().unwrap().push(Accepted {
                rcpt: std::mem::take(&mut rcpt),
                message_id,
            });
            w.write_all(b"250 2.0.0 queued\r\n").await?;
        } else if cmd == "QUIT" {
            w.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else {
            // RSET, NOOP.
            rcpt.clear();
            w.write_all(b"250 2.0.0 ok\r\n").await?;
        }
    }
}

/// The code MAIL FROM gets: the mode's rejection, 421 past the acceptance limit, else 250.
fn code_or(mode: Mode, over_limit: bool) -> u16 {
    match mode {
        Mode::RejectMail(code) => code,
        _ if over_limit => 421,
        _ => 250,
    }
}

const DIGEST: &str = r#"
[[digest]]
name = "daily"
schedule = "0 0 8 * * *"
classes = ["class1"]
language = "en"
"#;

fn smtp_section(port: u16) -> String {
    format!(
        "{}\n[alerts]\nenabled = false\n",
        crate::mail::smtp_toml(port, 2)
    )
}

fn config(port: u16) -> Config {
    Config::parse(
        &format!("{}{DIGEST}", smtp_section(port)),
        std::path::Path::new("/tmp/musubi.toml"),
    )
    .unwrap()
}

const RECIPIENTS: [&str; 3] = ["m001", "m002", "m003"];

/// A world over `server`: three class-1 members with addresses, one released report from
/// an hour ago, and the digest's last window ending two hours ago.
async fn digest_due(server: SmtpServer, now: DateTime<Utc>) -> MailWorld<SmtpServer> {
    let cfg = config(server.port);
    let w = MailWorld::over(server, cfg, "daily");
    for id in RECIPIENTS {
        w.member(id, MemberClass::Class1, Language::En).await;
    }
    let phishing = [(ObservableKind::Domain, "login-portal.example")];
    let an_hour_ago = now - chrono::Duration::hours(1);
    w.report("m001", "phishing wave", Tlp::Green, &phishing, an_hour_ago)
        .await;
    w.sent_until(now - chrono::Duration::hours(2)).await;
    w
}

/// Every recipient exactly once, under the Message-ID of its window, and nothing else.
fn assert_exactly_once(accepted: &[Accepted], window_end: DateTime<Utc>) {
    let mut got: Vec<(String, String)> = accepted
        .iter()
        .map(|a| (a.rcpt.join(","), a.message_id.clone()))
        .collect();
    got.sort();
    let batch = format!("daily.{}", window_end.timestamp_micros());
    let want: Vec<(String, String)> = RECIPIENTS
        .iter()
        .map(|id| {
            (
                email(id),
                message_id("digest", &batch, id, "council.example.jp"),
            )
        })
        .collect();
    assert_eq!(got, want);
}

/// One fault: the first run fails with `expect` in its error, keeps the window open and is
/// visible in the mail health; after recovery the window goes out once to everyone.
async fn fault_then_recovery(fault: Mode, expect: &[&str], mail_commands: Option<usize>) {
    let now = now_micros();
    let w = digest_due(SmtpServer::start(fault).await, now).await;
    let (server, stats, store) = (&w.smtp, &w.stats, &w.store);
    let set = w.campaigns();

    let started = Instant::now();
    let err = w
        .run_digest(&set, RunOptions::at(now))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{fault:?}: bounded by timeout × attempts, took {:?}",
        started.elapsed()
    );
    assert!(err.starts_with("smtp: "), "{fault:?}: {err}");
    for e in expect {
        assert!(err.contains(e), "{fault:?}: {err:?} lacks {e:?}");
    }
    if let Some(n) = mail_commands {
        assert_eq!(server.mail_commands(), n, "{fault:?}: attempts");
    }
    let health = stats.health();
    assert!(!health.ok, "{fault:?}");
    assert_eq!((health.sent, health.failures), (0, 1), "{fault:?}");
    assert_eq!(health.last_error.as_deref(), Some(&err["smtp: ".len()..]));
    assert!(server.accepted().is_empty(), "{fault:?}");
    assert_eq!(
        store
            .mail()
            .pending_blocking("daily")
            .unwrap()
            .map(|w| (w.start, w.end)),
        Some((now - chrono::Duration::hours(2), now)),
        "{fault:?}: window kept open"
    );

    server.set(Mode::Accept);
    let recovered = RunOptions::at(now + chrono::Duration::minutes(5));
    let out = w.run_digest(&set, recovered).await.unwrap();
    assert!(out.complete, "{fault:?}");
    assert_eq!(out.sent, RECIPIENTS.len(), "{fault:?}");
    assert_eq!(out.window_end, Some(now), "{fault:?}: the same window");
    assert!(stats.health().ok, "{fault:?}");
    // A further run opens a new, empty window: nothing is sent again.
    let further = RunOptions::at(now + chrono::Duration::minutes(10));
    let again = w.run_digest(&set, further).await.unwrap();
    assert_eq!(
        (again.sent, again.empty),
        (0, RECIPIENTS.len()),
        "{fault:?}"
    );
    assert_exactly_once(&server.accepted(), now);
}

#[tokio::test]
async fn a_silent_smtp_server_times_out_then_the_digest_goes_out_once() {
    // Two attempts of the 2 s timeout.
    fault_then_recovery(Mode::Hang, &["timed out"], Some(0)).await;
}

#[tokio::test]
async fn smtp_421_to_mail_from_is_retried_then_the_digest_goes_out_once() {
    fault_then_recovery(
        Mode::RejectMail(421),
        &["421", "service not available"],
        Some(2),
    )
    .await;
}

/// A permanent refusal (554 to RCPT TO) is not retried: one attempt per recipient, each
/// refusal recorded for that recipient, and the window completes — retrying a 5xx every
/// minute never ends (#14 finding 16). The next run starts a new window and sends nothing
/// more for the refused one.
#[tokio::test]
async fn smtp_554_to_rcpt_is_recorded_per_recipient_and_the_window_completes() {
    let now = now_micros();
    let w = digest_due(SmtpServer::start(Mode::RejectRcpt(554)).await, now).await;
    let (server, stats, store) = (&w.smtp, &w.stats, &w.store);
    let set = w.campaigns();
    let out = w.run_digest(&set, RunOptions::at(now)).await.unwrap();
    assert!(out.complete, "{out:?}");
    assert_eq!((out.sent, out.rejected), (0, RECIPIENTS.len()), "{out:?}");
    assert_eq!(server.mail_commands(), RECIPIENTS.len(), "one attempt each");
    assert_eq!(stats.health().failures, RECIPIENTS.len() as u64);
    assert_eq!(store.mail().pending_blocking("daily").unwrap(), None);
    let batch = format!("{}", now.timestamp_micros());
    let refused = store.mail().rejections("digest", &batch).await.unwrap();
    assert_eq!(refused.len(), RECIPIENTS.len());
    assert!(refused.values().all(|e| e.contains("554")), "{refused:?}");
    server.set(Mode::Accept);
    let later = RunOptions::at(now + chrono::Duration::minutes(5));
    let again = w.run_digest(&set, later).await.unwrap();
    assert_eq!(
        (again.sent, again.empty),
        (0, RECIPIENTS.len()),
        "{again:?}"
    );
    assert!(server.accepted().is_empty());
}

#[tokio::test]
async fn a_connection_dropped_mid_data_then_the_digest_goes_out_once() {
    fault_then_recovery(Mode::DropInData, &[], Some(2)).await;
}

/// The server takes one message and then refuses: the recovered run sends only to the
/// recipients not yet served, with the same Message-IDs.
#[tokio::test]
async fn a_partly_delivered_window_resumes_without_duplicates() {
    let server = SmtpServer::start(Mode::Accept).await;
    server.limit(Some(1));
    let now = now_micros();
    let w = digest_due(server, now).await;
    let server = &w.smtp;
    let set = w.campaigns();
    let err = w.run_digest(&set, RunOptions::at(now)).await.unwrap_err();
    assert!(err.to_string().contains("421"), "{err}");
    assert_eq!(server.accepted().len(), 1);
    server.limit(None);
    let out = w
        .run_digest(&set, RunOptions::at(Utc::now()))
        .await
        .unwrap();
    assert_eq!((out.sent, out.already_sent), (2, 1), "{out:?}");
    assert_exactly_once(&server.accepted(), now);
}

/// The real daemon with a silent SMTP server and a digest due at start-up: the API answers
/// and acknowledges submissions while the digest hangs; /healthz and /metrics show the
/// failure; after a restart with the server working, the digest goes out exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_serves_while_smtp_hangs_and_sends_once_after_recovery() {
    let server = SmtpServer::start(Mode::Hang).await;
    let data = DataDir::new();
    let conf = tempfile::tempdir().unwrap();
    let cfg_path = conf.path().join("musubi.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "{}{}",
            smtp_section(server.port),
            DIGEST.replace("0 0 8 * * *", "0 0 * * * *")
        ),
    )
    .unwrap();
    let cfg = cfg_path.to_str().unwrap().to_string();
    let token = data.add_member("Member 0", "class1", None);
    data.add_member("Member 1", "class1", None);
    data.add_member("Member 2", "class1", None);
    cli_contacts(&data, &cfg, &RECIPIENTS.map(|id| (id, "en")));
    let client = Client::new(&token);
    // A report in the window, then the digest's last window set to two hours ago so that a
    // window is due the moment the daemon starts.
    let path = data.path().to_path_buf();
    let window_start = Utc::now() - chrono::Duration::hours(2);
    {
        let daemon = Daemon::start(&data);
        let (status, body) = client
            .post_json(
                &daemon.url("/api/v1/reports"),
                &submission(
                    "before the digest",
                    "green",
                    &[("domain", "login-portal.example")],
                ),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        daemon.terminate(Duration::from_secs(10));
    }
    crate::util::release_all(&data);
    std::thread::spawn(move || {
        let store = Store::open(&path).unwrap();
        store
            .mail()
            .set_sent_until_blocking("daily", window_start)
            .unwrap();
        store.close();
    })
    .join()
    .unwrap();

    let daemon = Daemon::start_with(&data, &["--config", &cfg]);
    // The digest is hanging on the silent server; the API does not wait for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.shared.connections.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the digest did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let h = crate::util::health(&daemon).await;
    assert_eq!(h["status"], json!("ok"), "{h}");
    let (status, body) = client
        .post_json(
            &daemon.url("/api/v1/reports"),
            &submission("while mail hangs", "green", &[("ipv4", "192.0.2.44")]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "API waited on SMTP"
    );

    // Two attempts of 2 s each, then the failure shows.
    let deadline = Instant::now() + Duration::from_secs(15);
    let h = loop {
        let h = crate::util::health(&daemon).await;
        if h["mail"]["failures"] == json!(1) {
            break h;
        }
        assert!(Instant::now() < deadline, "failure not visible: {h}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(h["mail"]["ok"], json!(false), "{h}");
    assert!(
        h["mail"]["last_error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{h}"
    );
    let metrics = crate::util::metrics(&daemon).await;
    assert!(
        metrics.contains("musubi_mail_failures_total 1")
            && metrics.contains("musubi_mail_sent_total 0"),
        "{metrics}"
    );
    // A silent SMTP connection does not hold up shutdown.
    let status = daemon.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");

    // The server recovers; the restarted daemon resumes the open window.
    server.set(Mode::Accept);
    let daemon = Daemon::start_with(&data, &["--config", &cfg]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.accepted().len() < RECIPIENTS.len() {
        assert!(
            Instant::now() < deadline,
            "digest not delivered: {:?}",
            server.accepted()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let accepted = server.accepted();
    let mut rcpts: Vec<String> = accepted.iter().map(|a| a.rcpt.join(",")).collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        RECIPIENTS.iter().map(|id| email(id)).collect::<Vec<_>>()
    );
    let mut ids: Vec<&str> = accepted.iter().map(|a| a.message_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), RECIPIENTS.len(), "{accepted:?}");
    assert!(
        ids.iter().all(|id| id.starts_with("<digest.daily.")),
        "{ids:?}"
    );
    let h = crate::util::health(&daemon).await;
    assert_eq!(h["mail"]["sent"], json!(3), "{h}");
    assert_eq!(h["mail"]["ok"], json!(true), "{h}");
}
