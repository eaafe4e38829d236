//! Digests and alerts against a real SMTP server on loopback (aiosmtpd, see
//! `tests/fixtures/mail/smtp_sink.py`). Messages are asserted as the server received them,
//! decoded by Python's `email` package.
//!
//! The in-process tests share one setup, [`MailWorld`] (also used by `mail_leaks` and
//! `mail_faults`): each test says only what differs — who the members are, what they
//! report, and when the digest runs.

use std::future::{Future, IntoFuture};
use std::net::TcpListener;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use musubi::config::Config;
use musubi::config::mail::{DigestConfig, Language};
use musubi::correlate::CampaignSet;
use musubi::correlate::catchup::Correlator;
use musubi::council::ReadPath;
use musubi::council::commands;
use musubi::model::ObservableKind::{Domain, Sha256};
use musubi::model::{
    Category, Member, MemberClass, MemberId, Observable, ObservableKind, ReportDraft, Sector, Seq,
    Tlp,
};
use musubi::outputs::mail::digest::{self, RunOptions, RunOutcome};
use musubi::outputs::mail::{MailError, MailStats, Mailer};
use musubi::sources::submission;
use musubi::store::Store;
use musubi::store::mail::Contact;

use crate::util::{Daemon, DataDir, wait_current};

pub(crate) fn python() -> PathBuf {
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
pub(crate) struct Sink {
    child: Option<Child>,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

impl Sink {
    pub(crate) fn start() -> Sink {
        let mut s = Sink {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        };
        s.up();
        s
    }

    /// A sink whose server is not running yet (an SMTP outage).
    pub(crate) fn down() -> Sink {
        Sink {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn up(&mut self) {
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
                    "cannot start aiosmtpd with {} ({e}); run ./.ci/install or set MUSUBI_TEST_PYTHON",
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

    pub(crate) fn messages(&self) -> Vec<Value> {
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

    pub(crate) fn to(&self, email: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| m["rcpt_tos"][0] == email)
            .collect()
    }

    /// Waits until `done` holds or `within` has passed, whichever comes first (the test
    /// then asserts what arrived, so a timeout shows as a failed assertion with the mail).
    pub(crate) async fn wait_until(&self, within: Duration, done: impl Fn(&Sink) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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

/// The `[server]` and `[smtp]` sections for a test SMTP server on loopback (also used by
/// `mail_faults`).
pub(crate) fn smtp_toml(port: u16, timeout_seconds: u64) -> String {
    format!(
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
timeout_seconds = {timeout_seconds}
"#
    )
}

pub(crate) fn config(port: u16, digests: &str) -> Config {
    let text = format!("{}{digests}\n", smtp_toml(port, 5));
    Config::parse(&text, std::path::Path::new("/tmp/musubi.toml")).unwrap()
}

pub(crate) const DAILY: &str = r#"
[[digest]]
name = "daily"
schedule = "0 0 8 * * *"
classes = ["class1", "class2"]
secretariat = true
language = "member"
"#;

pub(crate) fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap() + chrono::Duration::hours(h)
}

/// Now, to the microsecond the store keeps (a window end must read back as written).
pub(crate) fn now_micros() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

/// The mail address every test gives member `id`.
pub(crate) fn address(id: &str) -> String {
    format!("{id}@members.example.jp")
}

pub(crate) async fn add_member(
    store: &Store,
    id: &str,
    name: &str,
    class: MemberClass,
    sector: Option<Sector>,
    lang: Language,
) -> String {
    let email = address(id);
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
    let c = Contact {
        member: m.id.clone(),
        email: email.clone(),
        language: lang.as_str().into(),
    };
    store.writer().run(commands::enrol(m)).await.unwrap();
    store.mail().set_contact(c).await.unwrap();
    email
}

pub(crate) async fn report(
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
    // Released at once: these tests are about mail, not tiered release.
    let seq = submission::store(store, &MemberId(member.into()), vec![d], at)
        .await
        .unwrap()[0]
        .0;
    store
        .writer()
        .run(commands::release_report(
            musubi::model::ReportId(seq),
            "test-secretariat".into(),
            at,
        ))
        .await
        .unwrap();
    seq
}

/// The read path over one campaign snapshot, as the CLI builds it.
pub(crate) fn rp(store: &Store, set: &Arc<CampaignSet>) -> ReadPath {
    ReadPath::snapshot(store.clone(), set.clone(), None)
}

pub(crate) fn campaigns(store: &Store) -> Arc<CampaignSet> {
    let (c, _) = Correlator::start(store, musubi::correlate::rules::Rules::shipped()).unwrap();
    Arc::new(c.snapshot())
}

/// A council and its mail, in process: an SMTP server on loopback (`smtp`: the aiosmtpd
/// [`Sink`], or the scripted server of `mail_faults`), a store in a temporary data dir, the
/// configuration that names that server and the digest under test, and a mailer that counts
/// into `stats`. Real server, real store: only the clock is the test's.
pub(crate) struct MailWorld<S = Sink> {
    pub(crate) smtp: S,
    pub(crate) store: Store,
    pub(crate) cfg: Config,
    pub(crate) stats: Arc<MailStats>,
    pub(crate) mailer: Mailer,
    /// The digest the world runs (`cfg` may configure others).
    digest: String,
    data: tempfile::TempDir,
}

impl MailWorld<Sink> {
    /// A running aiosmtpd sink and the `digests` sections (one of them named `digest`).
    pub(crate) fn start(digests: &str, digest: &str) -> MailWorld {
        MailWorld::on(Sink::start(), digests, digest)
    }

    /// As [`MailWorld::start`] on a given sink (e.g. [`Sink::down`], an outage).
    pub(crate) fn on(sink: Sink, digests: &str, digest: &str) -> MailWorld {
        let cfg = config(sink.port, digests);
        MailWorld::over(sink, cfg, digest)
    }
}

impl<S> MailWorld<S> {
    /// A world over any SMTP server, with a configuration the caller wrote for its port.
    pub(crate) fn over(smtp: S, cfg: Config, digest: &str) -> MailWorld<S> {
        assert!(
            cfg.mail.digest(digest).is_some(),
            "the configuration has no digest named {digest:?}"
        );
        MailWorld::open(smtp, cfg, digest.to_string(), tempfile::tempdir().unwrap())
    }

    /// Opens the store in `data` (new or not) with a new mailer.
    fn open(smtp: S, cfg: Config, digest: String, data: tempfile::TempDir) -> MailWorld<S> {
        let store = Store::open(data.path()).unwrap();
        let stats = Arc::new(MailStats::default());
        let mailer = Mailer::new(cfg.mail.smtp.as_ref().unwrap(), stats.clone()).unwrap();
        MailWorld {
            smtp,
            store,
            cfg,
            stats,
            mailer,
            digest,
            data,
        }
    }

    /// A process restart: the store is closed and opened again from the same data dir,
    /// with a new mailer (and statistics); the SMTP server keeps running.
    pub(crate) fn restart(self) -> MailWorld<S> {
        let MailWorld {
            smtp,
            store,
            cfg,
            digest,
            data,
            ..
        } = self;
        store.close();
        MailWorld::open(smtp, cfg, digest, data)
    }

    /// The digest under test, as configured.
    pub(crate) fn digest(&self) -> &DigestConfig {
        self.cfg.mail.digest(&self.digest).unwrap()
    }

    /// Enrols member `id` with an address ([`address`]) in `lang`. Await it; name it or
    /// give it a sector first where the test is about them.
    pub(crate) fn member(&self, id: &str, class: MemberClass, lang: Language) -> NewMember<'_> {
        NewMember {
            store: &self.store,
            id: id.to_string(),
            class,
            lang,
            name: None,
            sector: None,
        }
    }

    /// Stores a report of `member` received `at`, released at once.
    pub(crate) async fn report(
        &self,
        member: &str,
        title: &str,
        tlp: Tlp,
        obs: &[(ObservableKind, &str)],
        at: DateTime<Utc>,
    ) -> Seq {
        report(&self.store, member, title, tlp, obs, at).await
    }

    /// Records that the digest's last window ended `at` (the next one starts there).
    pub(crate) async fn sent_until(&self, at: DateTime<Utc>) {
        self.store
            .mail()
            .set_sent_until(&self.digest, at)
            .await
            .unwrap();
    }

    /// The campaigns as the correlator sees them now.
    pub(crate) fn campaigns(&self) -> Arc<CampaignSet> {
        campaigns(&self.store)
    }

    /// One run of the digest over the campaign snapshot `set`.
    pub(crate) async fn run_digest(
        &self,
        set: &Arc<CampaignSet>,
        opts: RunOptions,
    ) -> Result<RunOutcome, MailError> {
        let book = self.store.mail();
        let read = rp(&self.store, set);
        digest::run(&read, &book, &self.cfg, &self.mailer, self.digest(), opts).await
    }

    /// What the daemon's scheduler does at `now`: every digest that is due, once.
    pub(crate) async fn run_due(
        &self,
        set: &Arc<CampaignSet>,
        now: DateTime<Utc>,
    ) -> Vec<(String, Result<RunOutcome, MailError>)> {
        let read = rp(&self.store, set);
        digest::run_due(&read, &self.store.mail(), &self.cfg, &self.mailer, now).await
    }

    /// Whether the digest is due at `now` (the first question starts its first window).
    pub(crate) async fn due(&self, now: DateTime<Utc>) -> bool {
        digest::due(&self.store.mail(), self.digest(), now)
            .await
            .unwrap()
    }
}

/// A member about to be enrolled ([`MailWorld::member`]); awaiting it enrols the member,
/// records the address and gives it back.
pub(crate) struct NewMember<'w> {
    store: &'w Store,
    id: String,
    class: MemberClass,
    lang: Language,
    name: Option<String>,
    sector: Option<Sector>,
}

impl NewMember<'_> {
    /// The organisation's name (names are unique; by default derived from the id, upper
    /// case so that a copy that shows the id is never explained by the name).
    pub(crate) fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// A critical-infrastructure member of `sector` (by default: no sector, category other).
    pub(crate) fn in_sector(mut self, sector: Sector) -> Self {
        self.sector = Some(sector);
        self
    }
}

impl<'w> IntoFuture for NewMember<'w> {
    type Output = String;
    type IntoFuture = Pin<Box<dyn Future<Output = String> + 'w>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let name = self
                .name
                .unwrap_or_else(|| format!("Member {}", self.id.to_ascii_uppercase()));
            add_member(
                self.store,
                &self.id,
                &name,
                self.class,
                self.sector,
                self.lang,
            )
            .await
        })
    }
}

/// Writes the daemon's and CLI's `musubi.toml` into `data`; gives its path.
pub(crate) fn config_file(data: &DataDir, text: &str) -> String {
    let path = data.path().join("musubi.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Gives each `(member id, language)` its [`address`], through the CLI.
pub(crate) fn cli_contacts(data: &DataDir, cfg: &str, contacts: &[(&str, &str)]) {
    for (id, lang) in contacts {
        data.cli(&[
            "--config",
            cfg,
            "member",
            "contact",
            id,
            "--email",
            &address(id),
            "--lang",
            lang,
        ]);
    }
}

pub(crate) const SHA_A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
pub(crate) const SHA_B: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
/// The observables of a report about file A (its SHA-256), and of one about file B.
pub(crate) const FILE_A: &[(ObservableKind, &str)] = &[(Sha256, SHA_A)];
pub(crate) const FILE_B: &[(ObservableKind, &str)] = &[(Sha256, SHA_B)];

/// How many distinct Message-IDs `messages` carry.
fn distinct_message_ids(messages: &[Value]) -> usize {
    let mut ids: Vec<_> = messages
        .iter()
        .map(|m| m["message_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    ids.len()
}

pub(crate) fn all_text(m: &Value) -> String {
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
    let w = MailWorld::start(DAILY, "daily");
    let a = w
        .member("m001", MemberClass::Class1, Language::Ja)
        .named("東京通信株式会社")
        .in_sector(Sector::Telecom)
        .await;
    let b = w
        .member("m002", MemberClass::Class1, Language::En)
        .named("Osaka Bank")
        .in_sector(Sector::Finance)
        .await;
    let c = w.member("m003", MemberClass::Class2, Language::Ja).await;
    let s = w
        .member("s001", MemberClass::Secretariat, Language::En)
        .await;
    // Not in the audience (general members are not listed in the digest).
    let g = w.member("m004", MemberClass::General, Language::Ja).await;
    let strict = [(Sha256, SHA_A), (Domain, "strict-only.example.com")];
    let title = "秘密の侵入 strict-only";
    w.report("m001", title, Tlp::AmberStrict, &strict, t(1))
        .await;
    let green = [(Sha256, SHA_A), (Domain, "green.example.net")];
    w.report("m002", "Phishing wave green", Tlp::Green, &green, t(2))
        .await;
    let set = w.campaigns();
    assert_eq!(set.campaigns.len(), 1);
    // Members are shown the campaign's opaque id (`council::read::ids`).
    let cid = musubi::council::read::ids::campaign(
        &musubi::council::Viewer::member(MemberId("m001".into()), MemberClass::Class1),
        set.campaigns[0].id,
    )
    .to_string();
    w.sent_until(t(0)).await;
    let out = w.run_digest(&set, RunOptions::at(t(3))).await.unwrap();
    let sink = &w.smtp;
    assert!(out.complete);
    assert_eq!(out.sent, 4, "{out:?}");
    assert_eq!(sink.messages().len(), 4);
    assert!(
        sink.to(&g).is_empty(),
        "general members are not in the audience"
    );

    // The provider's organisation sees its own AMBER+STRICT report.
    let ma = &sink.to(&a)[0];
    let subject = ma["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("[TLP:AMBER+STRICT] musubi ダイジェスト「daily」"),
        "{subject}"
    );
    assert!(
        ma["raw_subject"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("=?utf-8?"),
        "{}",
        ma["raw_subject"]
    );
    let text_a = ma["text"].as_str().unwrap();
    assert!(
        text_a.starts_with("TLP:AMBER+STRICT"),
        "TLP first: {text_a}"
    );
    assert!(text_a.contains("秘密の侵入"));
    assert!(text_a.contains(&format!(
        "https://musubi.example.jp/console/campaigns/{cid}"
    )));
    assert!(text_a.contains(SHA_A), "observables to check");
    assert!(ma["html"].as_str().unwrap().contains("秘密の侵入"));
    assert_eq!(ma["content_type"], "multipart/alternative");

    // Other organisations never see it, and see only what is visible to them.
    for (email, lang_marker) in [
        (&b, "New and updated campaigns"),
        (&c, "新規・更新キャンペーン"),
    ] {
        let m = &sink.to(email)[0];
        let all = all_text(m);
        assert!(
            m["subject"].as_str().unwrap().starts_with("[TLP:GREEN]"),
            "{}",
            m["subject"]
        );
        assert!(
            !all.contains("秘密の侵入") && !all.contains("strict-only"),
            "AMBER+STRICT leaked to {email}: {all}"
        );
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
    assert_eq!(distinct_message_ids(&sink.messages()), 4);

    // Next window: only an AMBER+STRICT report. Only its provider and the secretariat get
    // a digest; for the others it would be empty and is not sent.
    w.report("m001", "二件目 strict", Tlp::AmberStrict, FILE_B, t(4))
        .await;
    let out = w
        .run_digest(&w.campaigns(), RunOptions::at(t(5)))
        .await
        .unwrap();
    assert_eq!((out.sent, out.empty), (2, 2), "{out:?}");
    assert_eq!(sink.to(&a).len(), 2);
    assert_eq!(sink.to(&s).len(), 2);
    assert_eq!(sink.to(&b).len(), 1);
    assert_eq!(sink.to(&c).len(), 1);
}

/// A run interrupted after two messages (a crash mid-send) is resumed by a fresh process
/// with the same window: every recipient gets exactly one copy.
#[tokio::test]
async fn a_restart_mid_send_sends_no_duplicate() {
    let w = MailWorld::start(DAILY, "daily");
    let mut emails = Vec::new();
    for i in 1..=5 {
        let id = format!("m{i:03}");
        emails.push(w.member(&id, MemberClass::Class1, Language::En).await);
    }
    w.report("m001", "Shared green report", Tlp::Green, FILE_A, t(1))
        .await;
    w.sent_until(t(0)).await;
    let interrupted = RunOptions {
        now: t(3),
        max_messages: Some(2),
    };
    let out = w.run_digest(&w.campaigns(), interrupted).await.unwrap();
    assert_eq!(out.sent, 2);
    assert!(!out.complete);
    // "Restart": a new store handle and mailer; the clock moved on.
    let w = w.restart();
    assert_eq!(w.smtp.messages().len(), 2);
    let set = w.campaigns();
    let out = w.run_digest(&set, RunOptions::at(t(7))).await.unwrap();
    assert!(out.complete);
    assert_eq!((out.sent, out.already_sent), (3, 2), "{out:?}");
    assert_eq!(
        out.window_end,
        Some(t(3)),
        "the interrupted window is resumed, not a new one"
    );
    let msgs = w.smtp.messages();
    assert_eq!(msgs.len(), 5);
    for e in &emails {
        assert_eq!(w.smtp.to(e).len(), 1, "{e} got a duplicate or nothing");
    }
    assert_eq!(distinct_message_ids(&msgs), 5);
    // The window advanced: the next run finds nothing new and sends nothing.
    let out = w.run_digest(&set, RunOptions::at(t(8))).await.unwrap();
    assert_eq!((out.sent, out.empty), (0, 5));
    assert_eq!(w.smtp.messages().len(), 5);
}

/// Three missed 08:00 (Tokyo) schedule times produce one catch-up digest, and the next one
/// comes at the next schedule time.
#[tokio::test]
async fn missed_schedules_give_one_catch_up() {
    let w = MailWorld::start(DAILY, "daily");
    let e = w.member("m001", MemberClass::Class1, Language::Ja).await;
    // First sight: the digest starts its first window now and sends nothing.
    assert!(!w.due(t(0)).await);
    // t(0) = 2026-11-20 09:00 JST; schedule times at 08:00 JST = 23:00 UTC.
    w.report("m001", "one", Tlp::Green, FILE_A, t(1)).await;
    w.report("m001", "two", Tlp::Green, FILE_B, t(30)).await;
    let set = w.campaigns();
    // Down for three days: 08:00 on the 21st, 22nd and 23rd passed.
    let now = t(72 + 2);
    let runs = w.run_due(&set, now).await;
    assert_eq!(runs.len(), 1);
    let out = runs[0].1.as_ref().unwrap();
    assert_eq!(out.sent, 1);
    assert_eq!(out.window_start, Some(t(0)));
    assert_eq!(out.window_end, Some(now));
    // Running again (the scheduler's next checks) sends nothing until 08:00 on the 24th.
    for h in [0, 1, 20] {
        assert!(
            w.run_due(&set, now + chrono::Duration::hours(h))
                .await
                .is_empty()
        );
    }
    let m = &w.smtp.to(&e)[0];
    let text = m["text"].as_str().unwrap();
    assert!(
        text.contains("one") && text.contains("two"),
        "both reports in the catch-up: {text}"
    );
    let three = [(Domain, "three.example.org")];
    w.report("m001", "three", Tlp::Green, &three, t(80)).await;
    let set = w.campaigns();
    let next = digest::next_time(w.digest(), now).unwrap();
    assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 23, 23, 0, 0).unwrap());
    let runs = w.run_due(&set, next).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(w.smtp.to(&e).len(), 2);
    let second = w.smtp.to(&e)[1]["text"].as_str().unwrap().to_string();
    assert!(
        second.contains("three") && !second.contains("\n  two"),
        "{second}"
    );
}

/// A digest with the statistics section, to the secretariat and class-1 members, in English.
const COUNTED: &str = r#"
[[digest]]
name = "counted"
schedule = "0 0 8 * * *"
classes = ["class1"]
secretariat = true
language = "en"
sections = ["campaigns", "statistics"]
"#;

/// The "reports received: N" line of a copy.
fn received_line(text: &str) -> usize {
    text.lines()
        .find_map(|l| l.split_once("reports received: "))
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no 'reports received' line in {text}"))
}

/// The race of a window boundary with the writer queue, made deterministic: a report
/// stamped just before a window's end commits after the window was begun (while its copies
/// are going out), another after the next window was sent. Windows bounded by receipt time
/// put the first in the window it was stamped in for the copies sent after it committed
/// (and not for those sent before), and the second in no window at all. Bounded by commit
/// order, each report is in exactly one window: the one begun after it committed, where a
/// campaign it starts is new.
#[tokio::test]
async fn a_report_committed_after_its_window_began_is_in_the_next_window_once() {
    let w = MailWorld::start(COUNTED, "counted");
    let member = w.member("m001", MemberClass::Class1, Language::En).await;
    let secretariat = w
        .member("s001", MemberClass::Secretariat, Language::En)
        .await;
    // First sight, as the daemon's scheduler meets the digest.
    assert!(!w.due(t(0)).await);
    let early = w
        .report("m001", "early report", Tlp::Green, FILE_A, t(1))
        .await;

    // Window 1 ends at t(3); it is begun and interrupted before its first copy.
    let run = |now, max_messages| {
        let w = &w;
        async move {
            let opts = RunOptions { now, max_messages };
            w.run_digest(&w.campaigns(), opts).await.unwrap()
        }
    };
    // A report of its own campaign, stamped 1 ms before `end`.
    let just_before = |end: DateTime<Utc>, title: &'static str, domain: &'static str| {
        let w = &w;
        let at = end - chrono::Duration::milliseconds(1);
        async move {
            w.report("m001", title, Tlp::Green, &[(Domain, domain)], at)
                .await
        }
    };
    let out = run(t(3), Some(0)).await;
    assert!(!out.complete && out.sent == 0, "{out:?}");
    // Stamped 1 ms before window 1 ends, committed after it began: window 2's.
    let straddling = just_before(t(3), "straddling report", "straddling.example.org").await;
    let out = run(t(4), None).await;
    assert!(out.complete && out.sent == 2, "{out:?}");
    assert_eq!(
        out.window_end,
        Some(t(3)),
        "the interrupted window is resumed"
    );
    let out = run(t(5), None).await;
    assert!(out.complete && out.sent == 2, "{out:?}");
    // Stamped 1 ms before window 2 ends, committed after window 2 was sent: window 3's.
    let late = just_before(t(5), "late report", "late.example.org").await;
    let out = run(t(7), None).await;
    assert!(out.complete && out.sent == 2, "{out:?}");
    assert!(early < straddling && straddling < late);

    let titles = ["early report", "straddling report", "late report"];
    for who in [&secretariat, &member] {
        let copies = w.smtp.to(who);
        assert_eq!(copies.len(), 3, "{who}: one copy per window");
        let mut counted = 0;
        for (i, copy) in copies.iter().enumerate() {
            let text = copy["text"].as_str().unwrap();
            counted += received_line(text);
            for (j, title) in titles.iter().enumerate() {
                assert_eq!(
                    text.contains(&format!(" {title} [")),
                    i == j,
                    "{who}, window {}: {title} listed {}: {text}",
                    i + 1,
                    if i == j { "nowhere" } else { "too" }
                );
            }
            // Each report starts its own campaign, new in the window that covers it.
            assert!(
                copy["subject"]
                    .as_str()
                    .unwrap()
                    .ends_with(": 1 new, 0 updated campaigns"),
                "{who}, window {}: {}",
                i + 1,
                copy["subject"]
            );
        }
        assert_eq!(counted, 3, "{who}: every stored report counted once");
    }
    let sent = w
        .store
        .mail()
        .sent(&w.digest().name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((sent.at, sent.through), (t(7), Some(late)));
}

/// A window is not sent from a campaign snapshot that has not applied all its reports (the
/// campaigns of the missing ones would be in no window): the run fails, the window stays
/// open, and the next run with a snapshot that caught up sends it.
#[tokio::test]
async fn a_window_waits_for_the_correlator_to_apply_its_reports() {
    let w = MailWorld::start(COUNTED, "counted");
    let member = w.member("m001", MemberClass::Class1, Language::En).await;
    assert!(!w.due(t(0)).await);
    w.report("m001", "correlated report", Tlp::Green, FILE_A, t(1))
        .await;
    let stale = w.campaigns();
    w.report("m001", "not yet correlated", Tlp::Green, FILE_B, t(2))
        .await;
    let err = w
        .run_digest(&stale, RunOptions::at(t(3)))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("campaigns are correlated up to report 1, the digest window covers up to 2"),
        "{err}"
    );
    assert!(w.smtp.messages().is_empty());
    assert!(w.store.mail().pending("counted").await.unwrap().is_some());
    let out = w
        .run_digest(&w.campaigns(), RunOptions::at(t(4)))
        .await
        .unwrap();
    assert!(out.complete && out.window_end == Some(t(3)), "{out:?}");
    let text = w.smtp.to(&member)[0]["text"].as_str().unwrap().to_string();
    assert!(
        text.contains("not yet correlated") && received_line(&text) == 2,
        "{text}"
    );
}

/// With the SMTP server down, the run fails after its retries, the failure is counted and
/// the window stays open; once the server is up the same window is delivered, and the
/// secretariat's next digest reports the failure.
#[tokio::test]
async fn smtp_outage_is_retried_and_reported() {
    let mut w = MailWorld::on(Sink::down(), DAILY, "daily");
    let e = w.member("m001", MemberClass::Class1, Language::En).await;
    let s = w
        .member("s001", MemberClass::Secretariat, Language::En)
        .await;
    let now = now_micros();
    let hours = chrono::Duration::hours;
    w.report("m001", "green", Tlp::Green, FILE_A, now - hours(1))
        .await;
    w.sent_until(now - hours(2)).await;
    let set = w.campaigns();
    let err = w.run_digest(&set, RunOptions::at(now)).await.unwrap_err();
    assert!(err.to_string().starts_with("smtp:"), "{err}");
    let stats = w.stats.clone();
    assert_eq!(stats.health().failures, 1);
    assert!(!stats.health().ok);
    assert!(
        w.store.mail().pending_blocking("daily").unwrap().is_some(),
        "window kept open"
    );
    assert_eq!(
        w.store.mail().sent_until("daily").await.unwrap(),
        Some(now - hours(2))
    );

    w.smtp.up();
    let later = Utc::now();
    let out = w.run_digest(&set, RunOptions::at(later)).await.unwrap();
    assert!(out.complete);
    assert_eq!(out.sent, 2);
    assert_eq!(
        out.window_end.map(|t| t.timestamp_micros()),
        Some(now.timestamp_micros())
    );
    assert!(stats.health().ok);
    assert_eq!(stats.health().sent, 2);
    let mut out_metrics = String::new();
    stats.render(&mut out_metrics);
    assert!(
        out_metrics.contains("musubi_mail_sent_total 2")
            && out_metrics.contains("musubi_mail_failures_total 1"),
        "{out_metrics}"
    );

    // The next window has no reports: only the secretariat hears, about the failure.
    let next = RunOptions::at(Utc::now() + chrono::Duration::seconds(1));
    let out = w.run_digest(&set, next).await.unwrap();
    assert_eq!((out.sent, out.empty), (1, 1), "{out:?}");
    let health = w.smtp.to(&s)[1]["text"].as_str().unwrap().to_string();
    assert!(
        health.contains("Feed and delivery health") && health.contains("digest daily"),
        "{health}"
    );
    assert_eq!(w.smtp.to(&e).len(), 1);
}

/// Throughput of digests to the local server (reported by the test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_throughput() {
    const N: usize = 200;
    let w = MailWorld::start(DAILY, "daily");
    for i in 1..=N {
        let lang = if i % 2 == 0 {
            Language::Ja
        } else {
            Language::En
        };
        w.member(&format!("m{i:03}"), MemberClass::Class2, lang)
            .await;
    }
    for i in 0..20 {
        let dom = format!("host{i}.campaign.example");
        let obs = [(Sha256, SHA_A), (Domain, dom.as_str())];
        w.report("m001", &format!("report {i}"), Tlp::Green, &obs, t(1))
            .await;
    }
    w.sent_until(t(0)).await;
    let set = w.campaigns();
    let started = Instant::now();
    let out = w.run_digest(&set, RunOptions::at(t(2))).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(out.sent, N);
    w.smtp
        .wait_until(Duration::from_secs(10), |s| s.messages().len() >= N)
        .await;
    assert_eq!(w.smtp.messages().len(), N);
    eprintln!(
        "mail throughput: {N} digests in {secs:.2} s = {:.0} messages/s",
        N as f64 / secs
    );
}

/// A bulk import that spreads 30 campaigns to a new sector gives each class-1 member one
/// coalesced alert, through the real daemon; others get none.
#[tokio::test]
async fn a_bulk_import_gives_one_coalesced_alert() {
    const N: usize = 30;
    let sink = Sink::start();
    let data = DataDir::new();
    let cfg = config_file(
        &data,
        &format!(
            r#"
[server]
public_url = "https://musubi.example.jp"

[smtp]
host = "127.0.0.1"
port = {}
security = "none"
from = "musubi <musubi@council.example.jp>"

[[digest]]
name = "daily"
schedule = "0 0 8 1 1 *"
classes = ["class1", "class2"]

[alerts]
classes = ["class1"]
coalesce_seconds = 2
min_interval_seconds = 60
max_campaigns = 10
"#,
            sink.port
        ),
    );
    let cfg = cfg.as_str();
    data.add_member("東京通信", "class1", Some("telecom"));
    data.add_member("Osaka Bank", "class1", Some("finance"));
    data.add_member("Kyoto University", "class2", None);
    cli_contacts(
        &data,
        cfg,
        &[("m001", "ja"), ("m002", "en"), ("m003", "ja")],
    );
    let hashes: Vec<String> = (0..N).map(|i| format!("{:064x}", 0xabc000 + i)).collect();
    let batch = |title: &str| -> Value {
        Value::Array(
            hashes
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    crate::util::submission(&format!("{title} {i}"), "green", &[("sha256", h)])
                })
                .collect(),
        )
    };
    let a_file = data.path().join("a.json");
    let b_file = data.path().join("b.json");
    std::fs::write(&a_file, batch("sighting alpha").to_string()).unwrap();
    std::fs::write(&b_file, batch("sighting beta").to_string()).unwrap();
    let daemon = Daemon::start_with(&data, &["--config", cfg]);
    // One sector per campaign: no alert.
    data.cli(&["import", a_file.to_str().unwrap(), "--as", "m001"]);
    crate::util::release_all(&data);
    wait_current(&daemon).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        sink.messages().is_empty(),
        "single-sector campaigns alerted"
    );
    // The bank reports the same 30 hashes: 30 campaigns gain the finance sector.
    data.cli(&["import", b_file.to_str().unwrap(), "--as", "m002"]);
    crate::util::release_all(&data);
    wait_current(&daemon).await;
    sink.wait_until(Duration::from_secs(20), |s| s.messages().len() >= 2)
        .await;
    // Nothing more arrives: one summary each.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    let ja = &sink.to("m001@members.example.jp")[0];
    assert!(
        ja["subject"]
            .as_str()
            .unwrap()
            .contains(&format!("キャンペーン {N} 件")),
        "{}",
        ja["subject"]
    );
    let en = &sink.to("m002@members.example.jp")[0];
    let text = en["text"].as_str().unwrap();
    assert!(
        en["subject"]
            .as_str()
            .unwrap()
            .starts_with("[TLP:GREEN] musubi alert: 30 campaigns")
    );
    assert!(
        text.contains("reported from a new sector") && text.contains("20 more in the console"),
        "{text}"
    );
    for m in &msgs {
        let all = all_text(m);
        for secret in [
            "東京通信",
            "Osaka Bank",
            "m001",
            "m002",
            "telecom",
            "finance",
        ] {
            assert!(!all.contains(secret), "alert revealed {secret}");
        }
    }
    assert!(
        sink.to("m003@members.example.jp").is_empty(),
        "class 2 is not in the alert audience"
    );
    let health = crate::util::health(&daemon).await;
    assert_eq!(health["mail"]["sent"], 2, "{health}");
    let metrics = crate::util::metrics(&daemon).await;
    assert!(metrics.contains("musubi_mail_sent_total 2"), "{metrics}");

    // The CLI preview shows what a member would receive (policy applied).
    let preview = data.cli(&[
        "--config", cfg, "digest", "preview", "daily", "--as", "m003",
    ]);
    assert!(
        preview.starts_with("Subject: [TLP:GREEN] musubi ダイジェスト「daily」"),
        "{preview}"
    );
    assert!(
        preview.contains("sighting beta 0") && !preview.contains("Osaka Bank"),
        "{preview}"
    );
    let all = data.cli(&["--config", cfg, "digest", "preview", "daily"]);
    assert_eq!(all.lines().count(), 3, "{all}");
}

/// An upgrade (or a first start) over campaigns that already spread: the first pass records
/// the alert state without alerting (no mail storm); a later change to such a campaign is
/// alerted, naming only what is new. On a store where the state was never recorded, a pass
/// that alerted would mail the campaign below at once.
#[tokio::test]
async fn a_first_start_over_spread_campaigns_alerts_nothing_until_they_change() {
    let sink = Sink::start();
    let data = DataDir::new();
    let cfg = config_file(
        &data,
        &format!(
            r#"{}
[alerts]
classes = ["class1"]
secretariat = true
language = "en"
coalesce_seconds = 1
min_interval_seconds = 1
"#,
            smtp_toml(sink.port, 5)
        ),
    );
    let cfg = cfg.as_str();
    data.add_member("Upgrade Telecom", "class1", Some("telecom"));
    data.add_member("Upgrade Finance", "class1", Some("finance"));
    let water = data.add_member("Upgrade Water", "class1", Some("water"));
    data.add_member("Upgrade Operator", "secretariat", None);
    let contacts = ["m001", "m002", "m003", "m004"].map(|id| (id, "en"));
    cli_contacts(&data, cfg, &contacts);
    // Before the daemon ever ran: one campaign reported by telecom and finance (it is
    // cross-sector and has two sectors: both would alert).
    let hash = format!("{:064x}", 0x00f1_a99e_u64);
    for (member, title) in [("m001", "upgrade telecom"), ("m002", "upgrade finance")] {
        let file = data.path().join(format!("{member}.json"));
        let body = Value::Array(vec![crate::util::submission(
            title,
            "green",
            &[("sha256", &hash)],
        )]);
        std::fs::write(&file, body.to_string()).unwrap();
        data.cli(&["import", file.to_str().unwrap(), "--as", member]);
    }
    let daemon = Daemon::start_with(&data, &["--config", cfg]);
    wait_current(&daemon).await;
    // Well past the coalescing window and the rate limit.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        sink.messages().is_empty(),
        "the first start alerted what already existed: {:#?}",
        sink.messages()
    );

    // Water reports it too: alerted, and only the new sector is named (to the secretariat).
    let (st, body) = crate::util::Client::new(&water)
        .post_json(
            &daemon.url("/api/v1/reports"),
            &crate::util::submission("upgrade water", "green", &[("sha256", &hash)]),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    sink.wait_until(Duration::from_secs(20), |s| {
        !s.to(&address("m004")).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sec = sink.to("m004@members.example.jp");
    assert_eq!(sec.len(), 1, "{sec:#?}");
    let text = all_text(&sec[0]);
    assert!(
        text.contains("reported from new sectors: water") && !text.contains("flagged cross-sector"),
        "{text}"
    );
    for id in ["m001", "m002", "m003"] {
        assert_eq!(
            sink.to(&format!("{id}@members.example.jp")).len(),
            1,
            "{id}: {:#?}",
            sink.messages()
        );
    }
    daemon.terminate(Duration::from_secs(10));
}
