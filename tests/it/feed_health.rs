//! Feed health (#18 item 4, "in the feed health") and member feeds as the secretariat's
//! business. A real STIX bundle with a `course-of-action` (nothing musubi keeps) is polled as
//! a `file://` feed by `musubi feeds poll`; a member's own MISP (`misp-api`) feed is polled
//! too (its MISP unreachable: the poll fails and is recorded). Then `feeds list`, the API and
//! the console are read by the secretariat, the feed's own member and another member.

use serde_json::Value;

use crate::console::ConsoleClient;
use crate::util::{Client, Daemon, DataDir};

const COA_BUNDLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/stix21/indicators-for-C2-with-COA.json"
);
const COA_ID: &str = "course-of-action--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f";
const OWNER: &str = "Test Railway Operator";
/// The member feed's name: as operators name them, it points at the provider.
const MEMBER_FEED: &str = "misp-railway-operator";

/// Writes `feeds.toml` and a configuration naming it; returns the `--config` path. Both
/// feeds are disabled so the daemon does not poll them again: what it shows is what the
/// CLI's polls recorded.
fn configure(data: &DataDir) -> String {
    std::fs::write(
        data.path().join("feeds.toml"),
        format!(
            r#"
[[feed]]
name = "stix-coa"
url = "file://{COA_BUNDLE}"
format = "stix"
enabled = false
schedule = "0 0 0 1 1 * *"

[[feed]]
name = "{MEMBER_FEED}"
url = "http://127.0.0.1:9"
format = "misp-api"
member = "{OWNER}"
headers = {{ Authorization = "env:FEED_HEALTH_MISP_KEY" }}
allow_private = true
timeout = "2s"
enabled = false
schedule = "0 0 0 1 1 * *"
"#
        ),
    )
    .unwrap();
    let cfg = data.path().join("feedhealth.toml");
    std::fs::write(&cfg, "[feeds]\nfile = \"feeds.toml\"\n").unwrap();
    cfg.to_str().unwrap().to_string()
}

fn cli_env(data: &DataDir, args: &[&str]) -> std::process::Output {
    std::process::Command::new(crate::util::BIN)
        .current_dir(data.path())
        .arg("--data-dir")
        .arg(data.path())
        .args(args)
        .env("FEED_HEALTH_MISP_KEY", "misp-key-feed-health")
        .env("MUSUBI_LOG", "warn")
        .output()
        .expect("run musubi")
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_health_keeps_the_last_polls_outcome_and_hides_member_feeds() {
    let data = DataDir::new();
    let owner = data.add_member(OWNER, "general", Some("railway"));
    let other = data.add_member("Test Water Utility", "class1", Some("water"));
    let sec = data.add_member("Test Secretariat Analyst", "secretariat", None);
    let cfg = configure(&data);

    // The public feed: seven objects kept, the course of action skipped, by `feeds poll`.
    let out = cli_env(
        &data,
        &["--config", &cfg, "feeds", "poll", "stix-coa", "--json"],
    );
    assert!(out.status.success(), "{out:?}");
    let polled: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(polled["items"]["skipped"], 1, "{polled}");
    // The member's feed: its MISP cannot be reached; the failure is recorded all the same.
    let out = cli_env(&data, &["--config", &cfg, "feeds", "poll", MEMBER_FEED]);
    assert!(!out.status.success(), "{out:?}");

    // `feeds list`: the counts and the skip reason, as text and JSON.
    let out = cli_env(&data, &["--config", &cfg, "feeds", "list", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let coa = list["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "stix-coa")
        .expect("stix-coa listed")
        .clone();
    assert_eq!(coa["last_items"]["kept"], 7, "{list}");
    assert_eq!(coa["last_items"]["skipped"], 1, "{list}");
    let why = coa["skip_reasons"][0].as_str().unwrap_or_default();
    assert!(why.starts_with(&format!("{COA_ID}: ")), "{list}");
    let out = cli_env(&data, &["--config", &cfg, "feeds", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kept:7 normalised:0 skipped:1"), "{text}");
    assert!(text.contains(&format!("skipped {COA_ID}: ")), "{text}");

    let daemon = Daemon::start_with(&data, &["--config", &cfg]);

    // The secretariat: both feeds, the counts, the reasons, whose feed it is.
    let (status, feeds) = Client::new(&sec).get(&daemon.url("/api/v1/feeds")).await;
    assert_eq!(status, 200, "{feeds}");
    let feeds = feeds["feeds"].as_array().unwrap().clone();
    assert_eq!(feeds.len(), 2, "{feeds:?}");
    let coa = feeds.iter().find(|f| f["name"] == "stix-coa").unwrap();
    assert_eq!(coa["last_items"]["kept"], 7, "{coa}");
    assert_eq!(coa["last_items"]["skipped"], 1, "{coa}");
    assert!(
        coa["skip_reasons"][0].as_str().unwrap().starts_with(COA_ID),
        "{coa}"
    );
    assert!(coa["member"].is_null(), "{coa}");
    let mine = feeds.iter().find(|f| f["name"] == MEMBER_FEED).unwrap();
    assert!(mine["member"].is_string(), "{mine}");
    assert_eq!(mine["consecutive_failures"], 1, "{mine}");

    // Any member, the feed's own included: the public feed only, the member feed absent.
    for token in [&other, &owner] {
        let (status, feeds) = Client::new(token).get(&daemon.url("/api/v1/feeds")).await;
        assert_eq!(status, 200, "{feeds}");
        assert_eq!(
            feeds,
            serde_json::json!({"feeds": [{"name": "stix-coa", "last_success": coa["last_success"]}]})
        );
    }

    // The console: the secretariat sees the health and the member feed; another member
    // sees the public feed and no trace of the member's.
    let mut console = ConsoleClient::new(&daemon.base);
    console.sign_in(&sec).await;
    let (status, html) = console.get("/console/feeds").await;
    assert_eq!(status, 200);
    assert!(html.contains(MEMBER_FEED), "{html}");
    assert!(html.contains(COA_ID), "{html}");
    let mut console = ConsoleClient::new(&daemon.base);
    console.sign_in(&other).await;
    let (status, html) = console.get("/console/feeds").await;
    assert_eq!(status, 200);
    assert!(html.contains("stix-coa"), "{html}");
    for trace in [MEMBER_FEED, "misp", OWNER, "Railway", COA_ID] {
        assert!(
            !html.contains(trace),
            "{trace} on a member's console: {html}"
        );
    }
}

/// A member's feed polled by a version before feed states recorded their member: the daemon
/// marks it from `feeds.toml` as it starts, before anyone can list it.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_feed_saved_before_the_upgrade_is_hidden_at_once() {
    let data = DataDir::new();
    let _owner = data.add_member(OWNER, "general", Some("railway"));
    let other = data.add_member("Test Water Utility", "class1", Some("water"));
    let cfg = configure(&data);
    // The row as an older version saved it: polled, then its member forgotten.
    let out = cli_env(&data, &["--config", &cfg, "feeds", "poll", MEMBER_FEED]);
    assert!(!out.status.success(), "{out:?}");
    let conn = rusqlite::Connection::open(data.path().join(musubi::store::DB_FILE)).unwrap();
    let n = conn
        .execute(
            "UPDATE feed_state SET member = NULL WHERE feed = ?1",
            [MEMBER_FEED],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);
    let daemon = Daemon::start_with(&data, &["--config", &cfg]);
    let (status, feeds) = Client::new(&other).get(&daemon.url("/api/v1/feeds")).await;
    assert_eq!(
        (status, feeds.clone()),
        (200, serde_json::json!({"feeds": []})),
        "{feeds}"
    );
}
