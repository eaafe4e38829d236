//! Flags read the same everywhere: one label table (`model::FlagKind::label`) for the
//! console and mail. Before it, a cross-sector campaign was 複数業種 in the Japanese console,
//! 分野横断 in the digest's section title, and `cross-sector` in the digest's flag line.

use std::sync::Arc;

use musubi::config::mail::Language;
use musubi::model::{MemberClass, ObservableKind, Sector, Tlp};
use musubi::outputs::mail::digest::{self, RunOptions};
use musubi::outputs::mail::{MailStats, Mailer};
use musubi::store::Store;

use crate::console::{ConsoleClient, add_member as add_cli_member};
use crate::mail::{self as m, Sink, all_text};
use crate::util::{Client, Daemon, DataDir, submission, wait_current};

const SHA: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

/// The secretariat's console, in Japanese and in English, labels the cross-sector flag of
/// a campaign reported from two sectors with the table's word, on the campaign page, in
/// the list and its flag filter, and on the dashboard.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_labels_flags_from_the_one_table() {
    let data = DataDir::new();
    let (_, telecom) = add_cli_member(&data, "Test Telecom", "class1", Some("telecom"));
    let (_, finance) = add_cli_member(&data, "Test Bank", "class1", Some("finance"));
    let (_, secretariat) = add_cli_member(&data, "Test Analyst", "secretariat", None);
    let daemon = Daemon::start(&data);
    for (token, title) in [
        (&telecom, "Loader at a carrier"),
        (&finance, "Loader at a bank"),
    ] {
        let (status, v) = Client::new(token)
            .post_json(
                &daemon.url("/api/v1/reports?wait=campaign"),
                &submission(title, "amber", &[("sha256", SHA)]),
            )
            .await;
        assert_eq!(status, 201, "{v}");
    }
    wait_current(&daemon).await;
    let (_, all) = Client::new(&secretariat)
        .get(&daemon.url("/api/v1/campaigns"))
        .await;
    let campaigns = all["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1, "{all}");
    // The API keeps the names, each flag with its evidence.
    let flags = &campaigns[0]["flags"];
    assert!(
        flags
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "cross-sector"
                && f["evidence"]["sectors"].as_u64() >= Some(2)
                && f["evidence"]["window_days"].as_i64().is_some()),
        "{flags}"
    );
    let id = campaigns[0]["id"].as_str().unwrap();

    for (lang, word, not) in [
        ("ja", "分野横断", "複数業種"),
        ("en", "cross-sector", "複数業種"),
    ] {
        let mut sec = ConsoleClient::new(&daemon.base);
        sec.lang = lang;
        sec.sign_in(&secretariat).await;
        for page in [
            format!("/console/campaigns/{id}"),
            "/console/campaigns".to_string(),
            "/console/campaigns?flag=cross-sector".to_string(),
            "/console/".to_string(),
        ] {
            let (status, html) = sec.get(&page).await;
            assert_eq!(status, 200, "{page} ({lang})");
            assert!(
                html.contains(&format!(r#"<span class="flag">{word}</span>"#)),
                "{page} ({lang}) does not label the flag {word}"
            );
            assert!(!html.contains(not), "{page} ({lang}) still says {not}");
        }
        // The filter keeps the name as its key and the label as its text.
        let (_, html) = sec.get("/console/campaigns?flag=cross-sector").await;
        assert!(
            html.contains(&format!(
                r#"<option value="cross-sector" selected>{word}</option>"#
            )),
            "{lang}: the flag picker"
        );
        assert!(html.contains("Loader at a"), "{lang}: the filter keeps it");
    }
}

/// A digest's flag line uses the same table as the console: 分野横断 in Japanese (the word
/// of the section title), the name in English.
#[tokio::test]
async fn the_digest_labels_flags_from_the_one_table() {
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).unwrap();
    let cfg = m::config(sink.port, m::DAILY);
    m::add_member(
        &store,
        "m001",
        "Test Telecom",
        MemberClass::Class1,
        Some(Sector::Telecom),
        Language::Ja,
    )
    .await;
    m::add_member(
        &store,
        "m002",
        "Test Bank",
        MemberClass::Class1,
        Some(Sector::Finance),
        Language::En,
    )
    .await;
    let ja = m::add_member(
        &store,
        "s001",
        "Analyst (ja)",
        MemberClass::Secretariat,
        None,
        Language::Ja,
    )
    .await;
    let en = m::add_member(
        &store,
        "s002",
        "Analyst (en)",
        MemberClass::Secretariat,
        None,
        Language::En,
    )
    .await;
    for (member, title, h) in [
        ("m001", "Loader at a carrier", 1),
        ("m002", "Loader at a bank", 2),
    ] {
        m::report(
            &store,
            member,
            title,
            Tlp::Green,
            &[(ObservableKind::Sha256, SHA)],
            m::t(h),
        )
        .await;
    }
    let set = m::campaigns(&store);
    assert_eq!(set.campaigns.len(), 1);
    let mailer = Mailer::new(
        cfg.mail.smtp.as_ref().unwrap(),
        Arc::new(MailStats::default()),
    )
    .unwrap();
    store.mail().set_sent_until("daily", m::t(0)).await.unwrap();
    let out = digest::run(
        &m::rp(&store, &set),
        &store.mail(),
        &cfg,
        &mailer,
        cfg.mail.digest("daily").unwrap(),
        RunOptions::at(m::t(3)),
    )
    .await
    .unwrap();
    assert!(out.complete, "{out:?}");

    let text_ja = all_text(&sink.to(&ja)[0]);
    assert!(text_ja.contains("分野横断アラート"), "{text_ja}");
    assert!(text_ja.contains("フラグ: 分野横断"), "{text_ja}");
    assert!(!text_ja.contains("cross-sector"), "{text_ja}");
    let text_en = all_text(&sink.to(&en)[0]);
    assert!(text_en.contains("Cross-sector alerts"), "{text_en}");
    assert!(text_en.contains("flags: cross-sector"), "{text_en}");
}
