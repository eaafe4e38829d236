//! The walking skeleton over real HTTP: submit, store, index, correlate, answer; restart;
//! bad input.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Client, Daemon, DataDir, submission, wait_current};

const SHA: &str = "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68";

#[tokio::test(flavor = "multi_thread")]
async fn submission_is_searchable_and_correlated() {
    let data = DataDir::new();
    let token = data.add_member("Test Telecom Operator", "class1", Some("telecom"));
    let other = data.add_member("Test Bank", "class2", Some("finance"));
    let secretariat = data.add_member("Test Secretariat", "secretariat", None);
    let daemon = Daemon::start(&data);
    let a = Client::new(&token);
    let b = Client::new(&other);

    let (status, first) = a
        .post_json(
            &daemon.url("/api/v1/reports?wait=campaign"),
            &submission(
                "Quokka loader beaconing",
                "green",
                &[("sha256", SHA), ("domain", "Update.Quokka-Example.NET.")],
            ),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let (status, second) = b
        .post_json(
            &daemon.url("/api/v1/reports?wait=campaign"),
            &submission(
                "Same hash on a teller PC",
                "green",
                &[("sha256", &SHA.to_uppercase())],
            ),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    let (status, third) = b
        .post_json(
            &daemon.url("/api/v1/reports"),
            &submission("Unrelated scan", "green", &[("ipv4", "198.51.100.7")]),
        )
        .await;
    assert_eq!(status, 201, "{third}");

    let id1 = first["reports"][0]["id"].as_str().unwrap().to_string();
    let c1 = first["reports"][0]["campaign"]
        .as_str()
        .expect("campaign assigned within a second")
        .to_string();
    let c2 = second["reports"][0]["campaign"]
        .as_str()
        .unwrap()
        .to_string();
    // Without `?wait=campaign` the answer goes out once the report is durable, before
    // correlation: the campaign is read afterwards.
    assert!(third["reports"][0]["id"].is_string(), "{third}");
    assert!(third["reports"][0].get("campaign").is_none(), "{third}");
    wait_current(&daemon).await;
    let id3 = third["reports"][0]["id"].as_str().unwrap();
    let (_, report3) = b.get(&daemon.url(&format!("/api/v1/reports/{id3}"))).await;
    let c3 = report3["campaign"]
        .as_str()
        .expect("placed after correlation")
        .to_string();
    assert_eq!(c1, c2, "reports sharing a sha256 are one campaign");
    assert_ne!(c1, c3, "an unrelated report is its own campaign");
    // Members are shown opaque ids (`C-` + 13 base32 characters), never `C-YYYY-NNNN`.
    assert!(c1.starts_with("C-") && c1.len() == 15, "{c1}");

    // The report, normalised, with its campaign.
    let (status, report) = a.get(&daemon.url(&format!("/api/v1/reports/{id1}"))).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["campaign"], json!(c1));
    assert_eq!(
        report["indicators"][1]["value"],
        json!("update.quokka-example.net")
    );
    assert_eq!(report["unconfirmed"], json!(true));

    // Class 2 sees the class 1 member's report once the secretariat releases the campaign
    // (tiered release).
    assert_eq!(
        b.get(&daemon.url(&format!("/api/v1/reports/{id1}")))
            .await
            .0,
        404
    );
    let (status, released) = Client::new(&secretariat)
        .post_json(
            &daemon.url("/api/v1/council/releases"),
            &json!({ "campaign": c1 }),
        )
        .await;
    assert_eq!(status, 201, "{released}");

    // The campaign, through the other member's eyes: both reports, no provider named.
    let (status, campaign) = b.get(&daemon.url(&format!("/api/v1/campaigns/{c1}"))).await;
    assert_eq!(status, 200, "{campaign}");
    assert_eq!(campaign["report_count"], json!(2));
    let text = campaign.to_string();
    assert!(
        !text.contains("Test Telecom Operator") && !text.contains("telecom"),
        "{text}"
    );
    let shared = campaign["observables"].as_array().unwrap();
    assert!(
        shared
            .iter()
            .any(|o| o["value"] == json!(SHA) && o["reports"] == json!(2)),
        "{campaign}"
    );

    // Search by a word of the title and by an observable value.
    wait_current(&daemon).await;
    for q in ["quokka", "update.quokka-example.net", SHA] {
        let (status, hits) = b.get(&daemon.url(&format!("/api/v1/search?q={q}"))).await;
        assert_eq!(status, 200, "{hits}");
        let ids: Vec<&str> = hits["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["report"]["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&id1.as_str()), "query {q} found {ids:?}");
        assert!(
            hits["hits"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["campaign"].is_string())
        );
    }

    // The campaign list shows both campaigns.
    let (_, list) = a.get(&daemon.url("/api/v1/campaigns")).await;
    assert_eq!(list["campaigns"].as_array().unwrap().len(), 2, "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_reports_campaigns_and_search() {
    let data = DataDir::new();
    let token = data.add_member("Restart Member", "class1", None);
    let daemon = Daemon::start(&data);
    let client = Client::new(&token);
    let mut campaigns = Vec::new();
    for i in 0..6 {
        // Pairs of reports share a domain: three campaigns.
        let domain = format!("pair{}.restart-example.org", i / 2);
        let (status, body) = client
            .post_json(
                &daemon.url("/api/v1/reports?wait=campaign"),
                &submission(
                    &format!("restart report {i} zebrafish"),
                    "amber",
                    &[("domain", &domain)],
                ),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        campaigns.push(body["reports"][0]["campaign"].as_str().unwrap().to_string());
    }
    wait_current(&daemon).await;
    let (_, before_list) = client.get(&daemon.url("/api/v1/campaigns")).await;
    let (_, before_search) = client
        .get(&daemon.url("/api/v1/search?q=zebrafish&limit=50"))
        .await;
    let status = daemon.terminate(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM exit: {status:?}");

    let daemon = Daemon::start(&data);
    wait_current(&daemon).await;
    let (_, after_list) = client.get(&daemon.url("/api/v1/campaigns")).await;
    let (_, after_search) = client
        .get(&daemon.url("/api/v1/search?q=zebrafish&limit=50"))
        .await;
    assert_eq!(
        before_list, after_list,
        "campaigns changed across a restart"
    );
    let ids = |v: &Value| {
        let mut ids: Vec<String> = v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| format!("{}@{}", h["report"]["id"], h["campaign"]))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&before_search).len(), 6);
    assert_eq!(ids(&before_search), ids(&after_search));
    assert_eq!(campaigns[0], campaigns[1]);
    assert_ne!(campaigns[1], campaigns[2]);
    drop(daemon);

    // A full rebuild of the projections gives the same answers.
    let before = data.cli(&["campaigns", "--json"]);
    let out = data.cli(&["reindex"]);
    assert!(
        out.contains("reindexed 6 report(s) into 3 campaign(s)"),
        "{out}"
    );
    assert_eq!(before, data.cli(&["campaigns", "--json"]));
    let found = data.cli(&["search", "zebrafish", "--json"]);
    let found: Value = serde_json::from_str(&found).unwrap();
    assert_eq!(found["hits"].as_array().unwrap().len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_clear_errors_and_the_server_keeps_serving() {
    let data = DataDir::new();
    let token = data.add_member("Careless Member", "general", None);
    let daemon = Daemon::start(&data);
    let client = Client::new(&token);
    let url = daemon.url("/api/v1/reports");

    // Malformed JSON.
    let (status, body) = client
        .post_raw(&url, "application/json", b"{\"title\": \"x\",".to_vec())
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], json!("invalid_submission"));
    assert!(
        body["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("malformed JSON"),
        "{body}"
    );

    // Wrong types and invalid observables: every bad item listed, nothing stored.
    let bad = json!({
        "title": 42,
        "tlp": "purple",
        "indicators": [
            {"type": "ipv4", "value": "192.0.2.1"},
            {"type": "ipv4", "value": "192.0.2.300"},
            {"type": "sha256", "value": "abc"},
            {"type": "colour", "value": "red"},
            {"type": "cve", "value": "CVE-99"}
        ]
    });
    let (status, body) = client.post_json(&url, &bad).await;
    assert_eq!(status, 400, "{body}");
    let errors = body["errors"].as_array().unwrap();
    let fields: Vec<&str> = errors
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "title",
            "tlp",
            "indicators[1].value",
            "indicators[2].value",
            "indicators[3].type",
            "indicators[4].value"
        ]
    );
    assert_eq!(errors[2]["index"], json!(1));
    assert!(
        errors[3]["reason"]
            .as_str()
            .unwrap()
            .contains("64 hexadecimal digits")
    );

    // Not a JSON object, an unsupported media type, an oversized body.
    let (status, body) = client.post_json(&url, &json!("just a string")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_submission"))
    );
    let (status, body) = client.post_raw(&url, "text/csv", b"a,b".to_vec()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let huge = vec![b' '; 17 * 1024 * 1024];
    let (status, body) = client.post_raw(&url, "application/json", huge).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );

    // Missing and wrong tokens.
    let anonymous = reqwest::Client::new();
    let r = anonymous
        .post(&url)
        .json(&submission("x", "green", &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], json!("unauthorized"));
    let wrong = Client::new("msb_0000");
    let (status, _) = wrong.get(&daemon.url("/api/v1/campaigns")).await;
    assert_eq!(status, 401);

    // Unknown things answer 404 in JSON; a query type error is a 400.
    let (status, body) = client.get(&daemon.url("/api/v1/reports/R-999999")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = client.get(&daemon.url("/api/v1/nothing-here")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("no_route")));
    let (status, body) = client
        .get(&daemon.url("/api/v1/campaigns?limit=many"))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, _) = client.get(&daemon.url("/api/v1/search?q=")).await;
    assert_eq!(status, 400);

    // Nothing of the rejected submissions was stored, and the server still works.
    let health = wait_current(&daemon).await;
    assert_eq!(health["committed_seq"], json!(0), "{health}");
    let (status, _) = client
        .post_json(&url, &submission("fine", "green", &[("ipv4", "192.0.2.1")]))
        .await;
    assert_eq!(status, 201);
    let metrics = crate::util::metrics(&daemon).await;
    assert!(
        metrics.contains("musubi_submissions_rejected_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("musubi_submissions_accepted_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn amber_strict_stays_with_its_provider() {
    let data = DataDir::new();
    let provider = data.add_member("Provider Org", "class1", None);
    let other = data.add_member("Other Org", "class1", None);
    let daemon = Daemon::start(&data);
    let p = Client::new(&provider);
    let o = Client::new(&other);
    let (_, body) = p
        .post_json(
            &daemon.url("/api/v1/reports?wait=campaign"),
            &submission(
                "strict only narwhal",
                "amber+strict",
                &[("domain", "strict.example.com")],
            ),
        )
        .await;
    let id = body["reports"][0]["id"].as_str().unwrap().to_string();
    let campaign = body["reports"][0]["campaign"].as_str().unwrap().to_string();
    wait_current(&daemon).await;
    assert_eq!(
        p.get(&daemon.url(&format!("/api/v1/reports/{id}"))).await.0,
        200
    );
    assert_eq!(
        o.get(&daemon.url(&format!("/api/v1/reports/{id}"))).await.0,
        404
    );
    assert_eq!(
        o.get(&daemon.url(&format!("/api/v1/campaigns/{campaign}")))
            .await
            .0,
        404
    );
    let (_, hits) = o.get(&daemon.url("/api/v1/search?q=narwhal")).await;
    assert_eq!(hits["hits"], json!([]));
    let (_, list) = o.get(&daemon.url("/api/v1/campaigns")).await;
    assert_eq!(list["campaigns"], json!([]));
}

#[test]
fn cli_import_and_campaign_listing() {
    let data = DataDir::new();
    data.add_member("CLI Member", "class2", Some("medical"));
    let dir = data.path().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    let one = dir.join("one.json");
    let many = dir.join("many.json");
    let broken = dir.join("broken.json");
    std::fs::write(
        &one,
        submission(
            "cli one",
            "green",
            &[("url", "HTTP://Bad.Quokka-Test.NET:80/x")],
        )
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        &many,
        json!([
            submission(
                "cli two",
                "green",
                &[("url", "http://bad.quokka-test.net/x")]
            ),
            submission("cli three", "amber", &[("email", "phish@lure.example.net")]),
        ])
        .to_string(),
    )
    .unwrap();
    std::fs::write(&broken, "{\"title\": 1}").unwrap();

    let out = data.cli_output(&[
        "import",
        one.to_str().unwrap(),
        many.to_str().unwrap(),
        broken.to_str().unwrap(),
        "--as",
        "CLI Member",
    ]);
    // Partly rejected input: the good files are stored, the run exits with 3.
    assert_eq!(out.status.code(), Some(3), "a broken file fails the run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.json:1: title: expected a string"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("total: 3 reports from 3 files"), "{stdout}");

    let listing: Value = serde_json::from_str(&data.cli(&["campaigns", "--json"])).unwrap();
    let campaigns = listing["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 2, "{listing}");
    let sizes: Vec<usize> = campaigns
        .iter()
        .map(|c| c["reports"].as_array().unwrap().len())
        .collect();
    assert!(sizes.contains(&2) && sizes.contains(&1), "{sizes:?}");
    for c in campaigns {
        assert!(c["id"].as_str().unwrap().starts_with("C-"));
        assert!(c["flags"].is_array());
        for r in c["reports"].as_array().unwrap() {
            assert_eq!(r["kind"], json!("submission"));
            assert!(r["id"].as_str().unwrap().starts_with("R-") && r["title"].is_string());
        }
    }
    let id = campaigns[0]["id"].as_str().unwrap();
    let detail: Value = serde_json::from_str(&data.cli(&["campaign", id, "--json"])).unwrap();
    assert_eq!(detail["id"], json!(id));
    let members: Value = serde_json::from_str(&data.cli(&["member", "list", "--json"])).unwrap();
    assert_eq!(members["members"][0]["name"], json!("CLI Member"));
    assert!(
        !data.cli(&["member", "list", "--json"]).contains("msb_"),
        "tokens are never listed"
    );
}

#[test]
fn demo_shows_campaigns_offline() {
    let data = DataDir::new();
    let daemon = Daemon::start_with(&data, &["--demo"]);
    drop(daemon);
    let listing: Value = serde_json::from_str(&data.cli(&["campaigns", "--json"])).unwrap();
    let campaigns = listing["campaigns"].as_array().unwrap();
    // Three members' pieces of one activity are one campaign; the two Xorist reports another;
    // the ELF report and the Cleo report (two KEV-listed CVEs, which do not link) stand alone.
    let mut sizes: Vec<usize> = campaigns
        .iter()
        .map(|c| c["reports"].as_array().unwrap().len())
        .collect();
    sizes.sort();
    assert_eq!(sizes, [1, 1, 2, 3], "{listing}");
    let members: Value = serde_json::from_str(&data.cli(&["member", "list", "--json"])).unwrap();
    assert_eq!(members["members"].as_array().unwrap().len(), 226);
}

fn fixture(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

#[test]
fn extract_reads_defanged_japanese_text() {
    let mut child = std::process::Command::new(crate::util::BIN)
        .args(["extract", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all("通信先【hxxp://evil[.]quokka-test[.]jp/gate.php】と１９２．０．２．１０へ。CVE-2021-26855 を悪用（T1566.001）。".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pairs: Vec<(String, String)> = lines
        .iter()
        .map(|v| {
            (
                v["type"].as_str().unwrap().to_string(),
                v["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("url", "http://evil.quokka-test.jp/gate.php"),
        ("ipv4", "192.0.2.10"),
        ("cve", "CVE-2021-26855"),
        ("attack-technique", "T1566.001"),
    ] {
        assert!(
            pairs.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} not in {pairs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn import_detects_formats_and_the_api_takes_stix_bundles() {
    let data = DataDir::new();
    let token = data.add_member("Format Member", "class1", None);
    // --format auto: a STIX bundle and a KEV catalogue, each detected from its content.
    let out = data.cli_output(&[
        "import",
        fixture("stix21/apt1.json").to_str().unwrap(),
        fixture("kev/known_exploited_vulnerabilities-2025.01.24.json")
            .to_str()
            .unwrap(),
        "--as",
        "Format Member",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing: Value = serde_json::from_str(&data.cli(&["campaigns", "--json"])).unwrap();
    let titles: Vec<String> = listing["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["reports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["title"].as_str().unwrap().to_string())
        })
        .collect();
    assert!(titles.iter().any(|t| t.contains("APT1")), "{titles:?}");
    assert!(
        titles.len() > 1000,
        "every KEV entry is a report: {}",
        titles.len()
    );

    let daemon = Daemon::start(&data);
    let client = Client::new(&token);
    let bundle = std::fs::read(fixture("stix21/indicator-for-malicious-url.json")).unwrap();
    let (status, body) = client
        .post_raw(
            &daemon.url("/api/v1/reports"),
            "application/stix+json;version=2.1",
            bundle,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["reports"][0]["id"].as_str().unwrap();
    let (_, report) = client
        .get(&daemon.url(&format!("/api/v1/reports/{id}")))
        .await;
    assert!(
        report["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"] == json!("url")),
        "{report}"
    );
    let (status, body) = client
        .post_raw(
            &daemon.url("/api/v1/reports"),
            "application/stix+json",
            b"{\"type\": \"bundle\", \"objects\": 3}".to_vec(),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], json!("invalid_submission"));
}
