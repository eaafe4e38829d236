//! Digests and alerts against a real SMTP server on loopback (aiosmtpd, see
//! `tests/fixtures/mail/smtp_sink.py`). Messages are asserted as the server received them,
//! decoded by Python's `email` package.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use musubi::config::Config;
use musubi::config::mail::Language;
use musubi::correlate::CampaignSet;
use musubi::correlate::catchup::Correlator;
use musubi::model::{
    Category, Member, MemberClass, MemberId, Observable, ObservableKind, Origin, ReportDraft,
    Sector, Seq, Tlp,
};
use musubi::outputs::mail::digest::{self, RunOptions};
use musubi::outputs::mail::{MailStats, Mailer, state};
use musubi::store::{self, Store};

use crate::util::{Client, DataDir, Daemon, wait_current};

fn python() -> PathBuf {
    std::env::var_os("MUSUBI_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/musubi-ci/venv/bin/python"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real SMTP server (aiosmtpd) that stores what it receives.
struct Sink {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sink {
    fn start() -> Sink {
        let mut s = Sink {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        };
        s.up();
        s
    }

    /// A sink whose server is not running yet (an SMTP outage).
    fn down() -> Sink {
        Sink {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn up(&mut self) {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mail");
        let child = Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "smtp_sink.Sink"])
            .arg(self.dir.path())
            .env("PYTHONPATH", fixtures)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start aiosmtpd with {} ({e}); run .ci/install or set MUSUBI_TEST_PYTHON",
                    python().display()
                )
            });
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn messages(&self) -> Vec<Value> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    fn to(&self, email: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| m["rcpt_tos"][0] == email)
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn config(port: u16, digests: &str) -> Config {
    let text = format!(
        r#"
[server]
public_url = "https://musubi.example.jp"

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
from = "musubi <musubi@council.example.jp>"
retry_attempts = 2
retry_backoff_ms = 50
timeout_seconds = 5
{digests}
"#
    );
    Config::parse(&text, std::path::Path::new("/tmp/musubi.toml")).unwrap()
}

const DAILY: &str = r#"
[[digest]]
name = "daily"
schedule = "0 0 8 * * *"
classes = ["class1", "class2"]
secretariat = true
language = "member"
"#;

fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap() + chrono::Duration::hours(h)
}

async fn add_member(
    store: &Store,
    id: &str,
    name: &str,
    class: MemberClass,
    sector: Option<Sector>,
    lang: Language,
) -> String {
    let email = format!("{id}@members.example.jp");
    let m = Member {
        id: MemberId(id.into()),
        name: name.into(),
        category: if sector.is_some() {
            Category::CriticalInfrastructure
        } else {
            Category::Other
        },
        sector,
        class,
    };
    let c = state::Contact {
        member: m.id.clone(),
        email: email.clone(),
        language: lang,
    };
    store
        .writer()
        .write(move |conn| {
            store::members::add(conn, &m)?;
            state::set_contact(conn, &c)
        })
        .await
        .unwrap();
    email
}

async fn report(
    store: &Store,
    member: &str,
    title: &str,
    tlp: Tlp,
    obs: &[(ObservableKind, &str)],
    at: DateTime<Utc>,
) -> Seq {
    let mut d = ReportDraft::new(title, tlp);
    for (k, v) in obs {
        d.push_observable(Observable::parse(*k, v).unwrap(), None);
    }
    let origin = Origin::Submission {
        member: MemberId(member.into()),
    };
    store
        .writer()
        .write(move |conn| Ok(store::reports::insert(conn, &origin, &d, at)?.seq()))
        .await
        .unwrap()
}

fn campaigns(store: &Store) -> Arc<CampaignSet> {
    let (c, _) = Correlator::start(store).unwrap();
    Arc::new(c.engine().snapshot())
}

const SHA_A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SHA_B: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

fn all_text(m: &Value) -> String {
    format!(
        "{}\n{}\n{}",
        m["subject"].as_str().unwrap_or(""),
        m["text"].as_str().unwrap_or(""),
        m["html"].as_str().unwrap_or("")
    )
}

/// Per-recipient policy: an AMBER+STRICT report reaches only its provider's organisation
/// (and the secretariat); providers are never named to members; Japanese subjects arrive
/// RFC 2047-encoded and decode correctly; an empty digest is not sent.
#[tokio::test]
async fn digest_follows_the_policy_per_recipient() {
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).unwrap();
    let cfg = config(sink.port, DAILY);
    let a = add_member(&store, "m001", "東京通信株式会社", MemberClass::Class1, Some(Sector::Telecom), Language::Ja).await;
    let b = add_member(&store, "m002", "Osaka Bank", MemberClass::Class1, Some(Sector::Finance), Language::En).await;
    let c = add_member(&store, "m003", "Kyoto University", MemberClass::Class2, None, Language::Ja).await;
    let s = add_member(&store, "s001", "Secretariat Analyst", MemberClass::Secretariat, None, Language::En).await;
    // Not in the audience (general members are not listed in the digest).
    let g = add_member(&store, "m004", "General Member", MemberClass::General, None, Language::Ja).await;
    report(&store, "m001", "秘密の侵入 strict-only", Tlp::AmberStrict,
        &[(ObservableKind::Sha256, SHA_A), (ObservableKind::Domain, "strict-only.example.com")], t(1)).await;
    report(&store, "m002", "Phishing wave green", Tlp::Green,
        &[(ObservableKind::Sha256, SHA_A), (ObservableKind::Domain, "green.example.net")], t(2)).await;
    let set = campaigns(&store);
    assert_eq!(set.campaigns.len(), 1);
    let cid = set.campaigns[0].id.to_string();
    let mailer = Mailer::new(cfg.mail.smtp.as_ref().unwrap(), Arc::new(MailStats::default())).unwrap();
    let d = cfg.mail.digest("daily").unwrap();
    store.writer().write(|conn| state::set_sent_until(conn, "daily", t(0))).await.unwrap();
    let out = digest::run(&store, &cfg, &mailer, d, &set, RunOptions::at(t(3))).await.unwrap();
    assert!(out.complete);
    assert_eq!(out.sent, 4, "{out:?}");
    assert_eq!(sink.messages().len(), 4);
    assert!(sink.to(&g).is_empty(), "general members are not in the audience");

    // The provider's organisation sees its own AMBER+STRICT report.
    let ma = &sink.to(&a)[0];
    let subject = ma["subject"].as_str().unwrap();
    assert!(subject.starts_with("[TLP:AMBER+STRICT] musubi ダイジェスト「daily」"), "{subject}");
    assert!(ma["raw_subject"].as_str().unwrap().to_ascii_lowercase().contains("=?utf-8?"), "{}", ma["raw_subject"]);
    let text_a = ma["text"].as_str().unwrap();
    assert!(text_a.starts_with("TLP:AMBER+STRICT"), "TLP first: {text_a}");
    assert!(text_a.contains("秘密の侵入"));
    assert!(text_a.contains(&format!("https://musubi.example.jp/console/campaigns/{cid}")));
    assert!(text_a.contains(SHA_A), "observables to check");
    assert!(ma["html"].as_str().unwrap().contains("秘密の侵入"));
    assert_eq!(ma["content_type"], "multipart/alternative");

    // Other organisations never see it, and see only what is visible to them.
    for (email, lang_marker) in [(&b, "New and updated campaigns"), (&c, "新規・更新キャンペーン")] {
        let m = &sink.to(email)[0];
        let all = all_text(m);
        assert!(m["subject"].as_str().unwrap().starts_with("[TLP:GREEN]"), "{}", m["subject"]);
        assert!(!all.contains("秘密の侵入") && !all.contains("strict-only"), "AMBER+STRICT leaked to {email}: {all}");
        assert!(all.contains("Phishing wave green"));
        assert!(all.contains(lang_marker), "language of {email}");
    }
    // No member copy names a provider (by name or id).
    for email in [&a, &b, &c] {
        let all = all_text(&sink.to(email)[0]);
        for name in ["東京通信株式会社", "Osaka Bank", "m001", "m002"] {
            assert!(!all.contains(name), "{email} was told the provider {name}");
        }
    }
    // The secretariat sees everything.
    let all_s = all_text(&sink.to(&s)[0]);
    assert!(all_s.contains("秘密の侵入") && all_s.contains("Phishing wave green"));

    // Message-IDs are per digest, window and recipient.
    let mut ids: Vec<_> = sink.messages().iter().map(|m| m["message_id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);

    // Next window: only an AMBER+STRICT report. Only its provider and the secretariat get
    // a digest; for the others it would be empty and is not sent.
    report(&store, "m001", "二件目 strict", Tlp::AmberStrict, &[(ObservableKind::Sha256, SHA_B)], t(4)).await;
    let set = campaigns(&store);
    let out = digest::run(&store, &cfg, &mailer, d, &set, RunOptions::at(t(5))).await.unwrap();
    assert_eq!((out.sent, out.empty), (2, 2), "{out:?}");
    assert_eq!(sink.to(&a).len(), 2);
    assert_eq!(sink.to(&s).len(), 2);
    assert_eq!(sink.to(&b).len(), 1);
    assert_eq!(sink.to(&c).len(), 1);
}
