//! Regression tests for the mail findings of #14: suspended and expelled members received
//! digests and alerts (finding 2); one permanently refused recipient kept a digest retrying
//! for ever, `musubi digest send` aborted with "no reactor running", and alert webhooks
//! carried the ids of campaigns made only of RED or provider-only reports, unsigned
//! (finding 16). Real SMTP (aiosmtpd) and a real HTTP webhook receiver on loopback.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use musubi::config::mail::Language;
use musubi::council::commands;
use musubi::model::{MemberClass, MemberId, Tlp};
use musubi::outputs::mail::digest::RunOptions;
use musubi::store::mail::Contact;
use musubi::store::{Store, members::MemberStatus};

use crate::mail::{
    DAILY, FILE_A, MailWorld, SHA_A, Sink, all_text, cli_contacts, config_file, now_micros,
    smtp_toml,
};
use crate::util::{Client, Daemon, DataDir, submission, wait_current};

async fn set_status(store: &Store, id: &str, to: MemberStatus) {
    store
        .writer()
        .run(commands::set_member_status(
            id.into(),
            to,
            "secretariat".into(),
            "test".into(),
            Utc::now(),
        ))
        .await
        .unwrap();
}

/// Finding 2: a suspended and an expelled member of the digest's audience, with addresses,
/// receive nothing; the approved ones do. (On main every audience member was mailed.)
#[tokio::test]
async fn suspended_and_expelled_members_receive_no_digest() {
    let w = MailWorld::start(DAILY, "daily");
    let active = w.member("m001", MemberClass::Class1, Language::En).await;
    let suspended = w.member("m002", MemberClass::Class1, Language::En).await;
    let expelled = w.member("m003", MemberClass::Class2, Language::En).await;
    set_status(&w.store, "m002", MemberStatus::Suspended).await;
    set_status(&w.store, "m003", MemberStatus::Expelled).await;
    let now = now_micros();
    let an_hour_ago = now - chrono::Duration::hours(1);
    let title = "green for everyone";
    w.report("m001", title, Tlp::Green, FILE_A, an_hour_ago)
        .await;
    w.sent_until(now - chrono::Duration::hours(2)).await;
    let set = w.campaigns();
    let out = w.run_digest(&set, RunOptions::at(now)).await.unwrap();
    let sink = &w.smtp;
    assert!(out.complete);
    assert_eq!(sink.to(&active).len(), 1, "{out:?}");
    assert!(
        sink.to(&suspended).is_empty(),
        "a suspended member got a digest"
    );
    assert!(
        sink.to(&expelled).is_empty(),
        "an expelled member got a digest"
    );
    assert_eq!(out.sent, 1, "{out:?}");
}

/// Finding 16 (a): the server refuses one recipient for good (550 at RCPT TO). The digest
/// completes for everyone else in one run, the refusal is recorded for that recipient and
/// not retried, and the secretariat's next digest names it. (On main the run failed and the
/// window stayed open, to be retried every minute for ever.)
#[tokio::test]
async fn a_permanently_refused_recipient_does_not_hold_back_the_digest() {
    let w = MailWorld::start(DAILY, "daily");
    let a = w.member("m001", MemberClass::Class1, Language::En).await;
    w.member("m002", MemberClass::Class1, Language::En).await;
    let c = w.member("m003", MemberClass::Class1, Language::En).await;
    let s = w
        .member("s001", MemberClass::Secretariat, Language::En)
        .await;
    // m002's mailbox no longer exists.
    w.store
        .mail()
        .set_contact(Contact {
            member: MemberId("m002".into()),
            email: "refused-m002@members.example.jp".into(),
            language: "en".into(),
        })
        .await
        .unwrap();
    let now = now_micros();
    let an_hour_ago = now - chrono::Duration::hours(1);
    w.report("m001", "green wave", Tlp::Green, FILE_A, an_hour_ago)
        .await;
    w.sent_until(now - chrono::Duration::hours(2)).await;
    let set = w.campaigns();
    let (sink, stats, store) = (&w.smtp, &w.stats, &w.store);
    let out = w
        .run_digest(&set, RunOptions::at(now))
        .await
        .expect("a refused recipient does not fail the digest");
    assert!(out.complete, "{out:?}");
    assert_eq!((out.sent, out.rejected), (3, 1), "{out:?}");
    for e in [&a, &c, &s] {
        assert_eq!(sink.to(e).len(), 1, "{e}");
    }
    assert_eq!(store.mail().pending_blocking("daily").unwrap(), None);
    assert_eq!(stats.health().failures, 1);

    // The next run is a new window: the refused recipient is not tried again for the old
    // one, and the secretariat (only) is told.
    let later = Utc::now() + chrono::Duration::seconds(1);
    let out = w.run_digest(&set, RunOptions::at(later)).await.unwrap();
    assert_eq!(out.window_start, Some(now), "{out:?}");
    assert_eq!(stats.health().failures, 1, "not retried");
    let to_s = sink.to(&s);
    assert_eq!(to_s.len(), 2, "the secretariat hears of the refusal");
    let health = to_s[1]["text"].as_str().unwrap();
    assert!(
        health.contains("Feed and delivery health")
            && health.contains("m002")
            && health.contains("refused permanently")
            && health.contains("550"),
        "{health}"
    );
    for e in [&a, &c] {
        assert_eq!(sink.to(e).len(), 1, "members are not told of others' mail");
    }
}

/// The daemon's configuration: the SMTP server on `port` (the default 30 s timeout), a
/// yearly digest, and `extra` sections.
fn write_config(data: &DataDir, port: u16, extra: &str) -> String {
    config_file(
        data,
        &format!(
            r#"{}
[[digest]]
name = "daily"
schedule = "0 0 8 1 1 *"
classes = ["class1", "class2"]
{extra}
"#,
            smtp_toml(port, 30)
        ),
    )
}

/// Finding 16 (b) and finding 2 through the binary: `musubi digest send` delivers the
/// digest (it used to abort: the mailer's pool was built outside the runtime), not to a
/// suspended member; `digest preview --as` says the suspended member receives nothing.
#[test]
fn digest_send_works_from_the_cli() {
    let sink = Sink::start();
    let data = DataDir::new();
    let cfg = write_config(&data, sink.port, "");
    let cfg = cfg.as_str();
    data.add_member("Active Member", "class1", None);
    data.add_member("Suspended Member", "class1", None);
    cli_contacts(&data, cfg, &[("m001", "en"), ("m002", "en")]);
    data.cli(&["member", "status", "m002", "suspended"]);
    let file = data.path().join("r.json");
    std::fs::write(
        &file,
        submission("cli digest report", "green", &[("sha256", SHA_A)]).to_string(),
    )
    .unwrap();
    data.cli(&["import", file.to_str().unwrap(), "--as", "m001"]);
    crate::util::release_all(&data);

    let preview = data.cli(&[
        "--config", cfg, "digest", "preview", "daily", "--as", "m002",
    ]);
    assert!(preview.contains("not an active member"), "{preview}");

    let out = data.cli_output(&["--config", cfg, "digest", "send", "daily"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "digest send failed: {stderr}\n{stdout}"
    );
    assert!(stdout.contains("digest daily: sent 1"), "{stdout}");
    let got = sink.to("m001@members.example.jp");
    assert_eq!(got.len(), 1, "{:#?}", sink.messages());
    assert!(all_text(&got[0]).contains("cli digest report"));
    assert!(sink.to("m002@members.example.jp").is_empty());
    // Sent once: the window is complete.
    let again = data.cli(&["--config", cfg, "digest", "send", "daily"]);
    assert!(again.contains("sent 0"), "{again}");
    assert_eq!(sink.messages().len(), 1);
}

/// A POST as received: the body and the signature header.
type Post = (Vec<u8>, Option<String>);

/// A loopback HTTP receiver that keeps every POST.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Post>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        use axum::body::Bytes;
        use axum::http::HeaderMap;
        let got: Arc<Mutex<Vec<Post>>> = Arc::default();
        let g = got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let g = g.clone();
                async move {
                    let sig = headers
                        .get("x-musubi-signature")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    g.lock().unwrap().push((body.to_vec(), sig));
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, got }
    }

    fn posts(&self) -> Vec<Post> {
        self.got.lock().unwrap().clone()
    }
}

fn verify(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Finding 16 (c) and finding 2 for alerts, through the daemon: three campaigns spread to
/// a second sector at once — one of released TLP:GREEN reports, one of TLP:RED reports, one
/// of reports scoped to provider and secretariat (all released). The webhook receives the
/// GREEN campaign only, signed with the configured secret; a suspended class-1 member gets
/// no alert mail, an approved one does. (On main the webhook got all three ids, unsigned,
/// and the suspended member was mailed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_carry_only_their_audience_signed_and_suspended_members_get_no_alert() {
    const SECRET: &str = "s3cret-webhook-key";
    let sink = Sink::start();
    let hook = Receiver::start().await;
    let data = DataDir::new();
    std::fs::write(data.path().join("hook.key"), format!("{SECRET}\n")).unwrap();
    let cfg = write_config(
        &data,
        sink.port,
        &format!(
            r#"
[alerts]
classes = ["class1"]
coalesce_seconds = 1
min_interval_seconds = 1
webhooks = ["{}"]
webhook_secret_file = "hook.key"
"#,
            hook.url
        ),
    );
    let cfg = cfg.as_str();
    let a = data.add_member("Telecom One", "class1", Some("telecom"));
    let b = data.add_member("Bank Two", "class1", Some("finance"));
    data.add_member("Suspended Three", "class1", Some("water"));
    data.add_member("Analyst", "secretariat", None);
    cli_contacts(
        &data,
        cfg,
        &[("m001", "en"), ("m002", "en"), ("m003", "en")],
    );
    data.cli(&["member", "status", "m003", "suspended"]);
    let daemon = Daemon::start_with(&data, &["--config", cfg]);
    let (ca, cb) = (Client::new(&a), Client::new(&b));
    let url = daemon.url("/api/v1/reports");
    let hash = |n: u32| format!("{:064x}", 0x5eed_0000 + n);
    let mut green_ids = Vec::new();
    for (client, who) in [(&ca, "one"), (&cb, "two")] {
        let (st, body) = client
            .post_json(
                &url,
                &submission(&format!("green {who}"), "green", &[("sha256", &hash(1))]),
            )
            .await;
        assert_eq!(st, 201, "{body}");
        green_ids.push(body["reports"][0]["id"].as_str().unwrap().to_string());
        let (st, body) = client
            .post_json(
                &url,
                &submission(&format!("red {who}"), "red", &[("sha256", &hash(2))]),
            )
            .await;
        assert_eq!(st, 201, "{body}");
        let mut scoped = submission(&format!("scoped {who}"), "green", &[("sha256", &hash(3))]);
        scoped["scope"] = "provider-and-secretariat".into();
        let (st, body) = client.post_json(&url, &scoped).await;
        assert_eq!(st, 201, "{body}");
    }
    crate::util::release_all(&data);
    wait_current(&daemon).await;
    // Everyone outside the secretariat (members, the webhooks' audience) is shown the
    // campaign's opaque id (`council::read::ids`): read it as the provider sees it.
    let (st, report) = ca
        .get(&daemon.url(&format!("/api/v1/reports/{}", green_ids[0])))
        .await;
    assert_eq!(st, 200, "{report}");
    let green_campaign = report["campaign"].as_str().expect("campaign").to_string();
    assert!(!green_campaign.starts_with("C-20"), "{report}");

    // Wait for the alert, then a little longer for any further batch.
    let deadline = Instant::now() + Duration::from_secs(30);
    while (hook.posts().is_empty() || sink.messages().is_empty()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;

    let posts = hook.posts();
    assert!(!posts.is_empty(), "the webhook got nothing");
    let mut ids = Vec::new();
    for (body, sig) in &posts {
        assert!(
            verify(SECRET, body, sig.as_deref()),
            "bad or missing signature {sig:?} on {}",
            String::from_utf8_lossy(body)
        );
        let v: Value = serde_json::from_slice(body).unwrap();
        for c in v["campaigns"].as_array().unwrap() {
            ids.push(c["id"].as_str().unwrap().to_string());
            assert_eq!(c["tlp"], "TLP:GREEN", "{v}");
        }
        let text = String::from_utf8_lossy(body);
        for secret in [
            "red ",
            "scoped ",
            "Telecom One",
            "Bank Two",
            "m001",
            "m002",
            "telecom",
            "finance",
        ] {
            assert!(!text.contains(secret), "webhook carried {secret:?}: {text}");
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids, vec![green_campaign.clone()], "{posts:?}");

    // Mail: the approved class-1 members are alerted (to what they see whole: the GREEN
    // campaign), the suspended one is not.
    assert!(
        sink.to("m003@members.example.jp").is_empty(),
        "suspended member alerted"
    );
    let to_a = sink.to("m001@members.example.jp");
    assert!(!to_a.is_empty(), "{:#?}", sink.messages());
    let text = all_text(&to_a[0]);
    assert!(text.contains(&green_campaign), "{text}");
    daemon.terminate(Duration::from_secs(10));
}
