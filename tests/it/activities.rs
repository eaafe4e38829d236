//! Campaigns are attack activities: feed-only groups are advisories (public context), a
//! campaign shows what the public feeds say about its visible values, and every flag
//! carries its evidence. The real KEV catalogue is loaded as a `file://` feed.

use serde_json::Value;

use crate::console::ConsoleClient;
use crate::util::{Client, Daemon, DataDir, submission, wait_current};

/// In the real KEV catalogue, with `knownRansomwareCampaignUse: Known`, added 2024-12-17,
/// due 2025-01-07.
const KEV_CVE: &str = "CVE-2024-55956";
const MEMBER_IP: &str = "91.92.242.17";

fn kev_fixture() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kev/known_exploited_vulnerabilities-2025.01.24.json"
    )
    .to_string()
}

/// A data directory whose configuration polls the real KEV catalogue from a file, polled
/// once with the CLI; returns the `--config` path.
fn with_kev_feed(data: &DataDir) -> String {
    std::fs::write(
        data.path().join("feeds.toml"),
        format!(
            "[[feed]]\nname = \"kev\"\nurl = \"file://{}\"\nformat = \"kev\"\n\
             schedule = \"0 0 0 1 1 * *\"\n",
            kev_fixture()
        ),
    )
    .unwrap();
    let cfg = data.path().join("activities.toml");
    std::fs::write(&cfg, "[feeds]\nfile = \"feeds.toml\"\n").unwrap();
    let cfg = cfg.to_str().unwrap().to_string();
    data.cli(&["--config", &cfg, "feeds", "poll", "kev"]);
    cfg
}

struct World {
    _data: DataDir,
    daemon: Daemon,
    sec: Client,
    member: Client,
    sec_token: String,
}

async fn world() -> World {
    let data = DataDir::new();
    let cfg = with_kev_feed(&data);
    let member_token = data.add_member("Test Newcomer Water", "class1", Some("water"));
    let sec_token = data.add_member("Test Secretariat", "secretariat", None);
    let daemon = Daemon::start_with(&data, &["--config", &cfg]);
    let member = Client::new(&member_token);
    let (status, body) = member
        .post_json(
            &daemon.url("/api/v1/reports"),
            &submission(
                "Cleo file transfer exploited at a water utility",
                "green",
                &[("cve", KEV_CVE), ("ipv4", MEMBER_IP)],
            ),
        )
        .await;
    assert!(
        status == 200 || status == 201 || status == 202,
        "{status} {body}"
    );
    wait_current(&daemon).await;
    World {
        _data: data,
        daemon,
        sec: Client::new(&sec_token),
        member,
        sec_token,
    }
}

fn campaigns(list: &Value) -> &Vec<Value> {
    list["campaigns"].as_array().expect("campaigns array")
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_items_are_advisories_and_the_members_campaign_shows_its_kev_context() {
    let w = world().await;
    let d = &w.daemon;

    // Only the member's report makes a campaign; 1,252 KEV entries are advisories.
    let (status, list) = w.sec.get(&d.url("/api/v1/campaigns?limit=1000")).await;
    assert_eq!(status, 200, "{list}");
    let list = campaigns(&list);
    assert_eq!(list.len(), 1, "{list:?}");
    let campaign = &list[0];
    for r in campaign["reports"].as_array().unwrap() {
        assert_eq!(r["kind"], "submission", "{campaign}");
    }
    let id = campaign["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("C-"), "{id}");

    let (status, adv) = w.sec.get(&d.url("/api/v1/advisories?limit=1000")).await;
    assert_eq!(status, 200, "{adv}");
    let advisories = adv["advisories"].as_array().unwrap();
    assert_eq!(advisories.len(), 1000, "paged at the limit");
    for a in advisories {
        assert!(!a["id"].as_str().unwrap().starts_with("C-"), "{a}");
        assert!(a.get("flags").is_none(), "an advisory has no flags: {a}");
    }
    let (_, rest) = w
        .sec
        .get(&d.url("/api/v1/advisories?limit=1000&offset=1000"))
        .await;
    assert_eq!(rest["advisories"].as_array().unwrap().len(), 252, "{rest}");
    let (_, found) = w
        .sec
        .get(&d.url(&format!("/api/v1/advisories?q={KEV_CVE}&feed=kev")))
        .await;
    let found = found["advisories"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0]["title"].as_str().unwrap().contains(KEV_CVE));
    let (_, none) = w
        .sec
        .get(&d.url(&format!("/api/v1/advisories?q={KEV_CVE}&feed=nvd")))
        .await;
    assert_eq!(none["advisories"].as_array().unwrap().len(), 0, "{none}");

    // A feed item's report view names no campaign.
    let item = found[0]["reports"][0]["id"].as_str().unwrap();
    let (status, report) = w.sec.get(&d.url(&format!("/api/v1/reports/{item}"))).await;
    assert_eq!(status, 200, "{report}");
    assert!(
        report.get("campaign").is_none_or(Value::is_null),
        "{report}"
    );

    // The campaign's public context: the KEV listing of the CVE it names.
    for (who, client) in [("secretariat", &w.sec), ("provider", &w.member)] {
        let (_, mine) = client.get(&d.url("/api/v1/campaigns")).await;
        let shown = campaigns(&mine)[0]["id"].as_str().unwrap().to_string();
        let (status, detail) = client
            .get(&d.url(&format!("/api/v1/campaigns/{shown}")))
            .await;
        assert_eq!(status, 200, "{who}: {detail}");
        let context = detail["context"].as_array().expect("context");
        let kev = context
            .iter()
            .find(|c| c["feed"] == "kev" && c["value"]["value"] == KEV_CVE)
            .unwrap_or_else(|| panic!("{who}: no KEV context in {detail}"));
        assert_eq!(kev["details"]["kev"], "listed", "{kev}");
        assert_eq!(kev["details"]["date_added"], "2024-12-17", "{kev}");
        assert_eq!(kev["details"]["due_date"], "2025-01-07", "{kev}");
        assert_eq!(kev["details"]["ransomware"], "known", "{kev}");
        assert!(kev["link"].as_str().unwrap().contains(KEV_CVE), "{kev}");
        assert!(
            kev["date"].as_str().unwrap().starts_with("2024-12-17"),
            "{kev}"
        );
    }

    // The CLI lists advisories apart too.
    let _ = &w.sec_token;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_flag_in_the_api_has_its_evidence() {
    let w = world().await;
    let d = &w.daemon;
    let (_, list) = w.sec.get(&d.url("/api/v1/campaigns")).await;
    let id = campaigns(&list)[0]["id"].as_str().unwrap().to_string();
    let (_, detail) = w.sec.get(&d.url(&format!("/api/v1/campaigns/{id}"))).await;
    let flags = detail["flags"].as_array().expect("flags");
    // The member's address is in no feed: `novel`, with the value as its evidence.
    assert!(!flags.is_empty(), "{detail}");
    for f in flags
        .iter()
        .chain(campaigns(&list)[0]["flags"].as_array().unwrap())
    {
        let name = f["name"].as_str().expect("a flag has a name");
        let evidence = f["evidence"].as_object().expect("a flag has evidence");
        assert!(!evidence.is_empty(), "{name}: {f}");
    }
    let novel = flags
        .iter()
        .find(|f| f["name"] == "novel")
        .unwrap_or_else(|| panic!("{detail}"));
    assert_eq!(novel["evidence"]["share_percent"], 0.0, "{novel}");
    assert_eq!(
        novel["evidence"]["observables"][0]["value"], MEMBER_IP,
        "{novel}"
    );
    // Members see no flags (their presence would tell hidden parts apart).
    let (_, mine) = w.member.get(&d.url("/api/v1/campaigns")).await;
    assert!(
        campaigns(&mine)[0]["flags"].as_array().unwrap().is_empty(),
        "{mine}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_counts_campaigns_only_and_lists_advisories_apart() {
    let w = world().await;
    let d = &w.daemon;
    let mut console = ConsoleClient::new(&d.base);
    console.sign_in(&w.sec_token).await;
    for page in ["/console/", "/console/campaigns"] {
        let (status, html) = console.get(page).await;
        assert_eq!(status, 200);
        assert!(
            !html.contains("KEV:"),
            "{page} lists a feed item as a campaign"
        );
        assert!(html.contains("Cleo file transfer exploited"), "{page}");
    }
    // The review queue proposes a disposition with its reason, confirmed in one action.
    let (_, html) = console.get("/console/").await;
    assert!(html.contains("confirm-suggestion"), "{html}");
    assert!(
        html.contains(r#"name="disposition" value="under-analysis""#),
        "{html}"
    );
    let (status, html) = console
        .get(&format!("/console/advisories?q={KEV_CVE}"))
        .await;
    assert_eq!(status, 200);
    assert!(html.contains(KEV_CVE), "{html}");
    let (_, list) = w.sec.get(&d.url("/api/v1/campaigns")).await;
    let id = campaigns(&list)[0]["id"].as_str().unwrap().to_string();
    let (status, html) = console.get(&format!("/console/campaigns/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"public-context\""), "{html}");
    assert!(html.contains("date_added: 2024-12-17"), "{html}");
    assert!(html.contains("id=\"flag-evidence\""), "{html}");
}
