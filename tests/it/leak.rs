//! Source confidentiality over real HTTP: a report from the only water utility of the
//! roster must not let anyone outside the secretariat learn or infer who provided it.

use serde_json::{Value, json};

use crate::util::{Client, Daemon, DataDir, submission, wait_current};

const SHA: &str = "5d41402abc4b2a76b9719d911017c592aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const ROSTER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/council/roster-2020-06-05.json"
);

/// Raw text of a GET (status, body): the scanner reads bytes, not parsed JSON.
pub async fn get_text(token: &str, url: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// Rotates a roster member's token with the CLI and returns it.
pub fn token_of(data: &DataDir, member: &str) -> String {
    let out = data.cli(&["member", "token", member]);
    out.split_whitespace()
        .find(|w| w.starts_with("msb_"))
        .expect("token printed")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_output_outside_the_secretariat_names_the_provider() {
    let data = DataDir::new();
    let imported = data.cli(&["member", "import", ROSTER]);
    assert_eq!(
        imported.trim(),
        "roster imported: 225 added, 0 updated, 0 unchanged"
    );
    // m121 水道セプター事務局((公社)日本水道協会): the only member of the water sector.
    let provider = token_of(&data, "m121");
    let telecom = token_of(&data, "m079");
    let class1 = token_of(&data, "m150");
    let class2 = token_of(&data, "m010");
    let general = token_of(&data, "m030");
    let secretariat = data.add_member("Secretariat Analyst", "secretariat", None);
    let daemon = Daemon::start(&data);

    let p = Client::new(&provider);
    let amber = submission("Loader on a SCADA historian", "amber", &[("sha256", SHA)]);
    let (status, first) = p
        .post_json(&daemon.url("/api/v1/reports?wait=campaign"), &amber)
        .await;
    assert_eq!(status, 201, "{first}");
    let mut red = submission(
        "Targeted spear-phishing",
        "red",
        &[("domain", "bill-pay-example.net")],
    );
    red["recipients"] = json!(["m150"]);
    let (status, second) = p
        .post_json(&daemon.url("/api/v1/reports?wait=campaign"), &red)
        .await;
    assert_eq!(status, 201, "{second}");
    let mut private = submission("Analysis only", "amber", &[("ipv4", "203.0.113.9")]);
    private["scope"] = json!("provider-and-secretariat");
    let (status, third) = p
        .post_json(&daemon.url("/api/v1/reports?wait=campaign"), &private)
        .await;
    assert_eq!(status, 201, "{third}");
    let (status, other) = Client::new(&telecom)
        .post_json(
            &daemon.url("/api/v1/reports?wait=campaign"),
            &submission("Same loader at a carrier", "green", &[("sha256", SHA)]),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    wait_current(&daemon).await;

    let ids: Vec<String> = [&first, &second, &third, &other]
        .iter()
        .map(|v| v["reports"][0]["id"].as_str().unwrap().to_string())
        .collect();
    let campaign = first["reports"][0]["campaign"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        other["reports"][0]["campaign"].as_str(),
        Some(campaign.as_str())
    );

    // Release the campaign so that class 2 and general members see it too.
    let (status, body) = Client::new(&secretariat)
        .post_json(
            &daemon.url("/api/v1/council/releases"),
            &json!({"campaign": campaign}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let needles = [
        "水道セプター事務局((公社)日本水道協会)",
        "日本水道協会",
        "水道",
        "m121",
        provider.as_str(),
        "water",
    ];
    let mut urls: Vec<String> = ids
        .iter()
        .map(|id| format!("/api/v1/reports/{id}"))
        .collect();
    urls.extend([
        "/api/v1/campaigns".to_string(),
        format!("/api/v1/campaigns/{campaign}"),
        "/api/v1/search?q=loader".to_string(),
        "/api/v1/search?q=phishing".to_string(),
        "/api/v1/reports/R-99999".to_string(),
        "/api/v1/campaigns/C-2099-0001".to_string(),
        "/api/v1/council/feedback".to_string(),
        "/api/v1/council/audit".to_string(),
        // Members receive closed whole months only.
        format!(
            "/api/v1/council/stats?from=2000-01-01&to={}&format=json",
            crate::council_leaks::last_closed_month_end()
        ),
        format!("/api/v1/council/dispositions/{campaign}"),
    ]);
    let mut scanned = 0;
    for (who, token) in [
        ("provider", &provider),
        ("class1", &class1),
        ("class2", &class2),
        ("general", &general),
        ("telecom", &telecom),
    ] {
        for url in &urls {
            let (status, text) = get_text(token, &daemon.url(url)).await;
            assert!(
                status == 200 || status == 404,
                "{who} {url}: {status} {text}"
            );
            let found = musubi::council::anonymity::leak_scan(&text, &needles);
            assert!(found.is_empty(), "{who} {url} leaks {found:?}: {text}");
            scanned += 1;
        }
    }
    assert_eq!(scanned, 5 * urls.len());

    // What each may see: class 1 (a RED recipient) sees the RED report, the others do not;
    // nobody but the provider sees the provider-and-secretariat report.
    let see = |token: &str, id: &str| {
        let (token, url) = (
            token.to_string(),
            daemon.url(&format!("/api/v1/reports/{id}")),
        );
        async move { get_text(&token, &url).await.0 }
    };
    assert_eq!(see(&class1, &ids[1]).await, 200);
    assert_eq!(see(&class2, &ids[1]).await, 404);
    assert_eq!(see(&general, &ids[2]).await, 404);
    assert_eq!(see(&provider, &ids[2]).await, 200);
    assert_eq!(
        see(&general, &ids[0]).await,
        200,
        "released with its campaign"
    );

    // The scanner is not blind: the secretariat's view names the provider.
    let (_, text) = get_text(
        &secretariat,
        &daemon.url(&format!("/api/v1/reports/{}", ids[0])),
    )
    .await;
    assert_eq!(
        musubi::council::anonymity::leak_scan(&text, &["m121"]),
        ["m121"]
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["unconfirmed"],
        json!(true),
        "unconfirmed material is marked: {v}"
    );
}
