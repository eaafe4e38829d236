//! Inquiries on advisories (#15 item 8): the secretariat asks class 1 about a KEV advisory;
//! a class-1 member answers with a report that shares no value with it; the answer is a
//! campaign whose public context is that advisory; the inquiry shows the answers as they
//! arrive, through the policy and without providers; members of other classes are told
//! "not found", exactly as for an inquiry that does not exist.

use serde_json::json;

use crate::console::ConsoleClient;
use crate::util::{Client, Daemon, DataDir, submission, wait_current};

/// In the real KEV catalogue (Cleo file transfer).
const KEV_CVE: &str = "CVE-2024-55956";

fn kev_feed(data: &DataDir) -> String {
    let kev = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kev/known_exploited_vulnerabilities-2025.01.24.json"
    );
    std::fs::write(
        data.path().join("feeds.toml"),
        format!(
            "[[feed]]\nname = \"kev\"\nurl = \"file://{kev}\"\nformat = \"kev\"\n\
             schedule = \"0 0 0 1 1 * *\"\n"
        ),
    )
    .unwrap();
    let cfg = data.path().join("inquiries.toml");
    std::fs::write(&cfg, "[feeds]\nfile = \"feeds.toml\"\n").unwrap();
    let cfg = cfg.to_str().unwrap().to_string();
    data.cli(&["--config", &cfg, "feeds", "poll", "kev"]);
    cfg
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_to_an_advisory_inquiry_is_a_campaign_with_the_advisory_as_context() {
    let data = DataDir::new();
    let cfg = kev_feed(&data);
    let a = Client::new(&data.add_member("Test Task Force Water", "class1", Some("water")));
    let b = Client::new(&data.add_member("Test Task Force Rail", "class1", Some("railway")));
    let g_token = data.add_member("Test General Member", "general", Some("finance"));
    let g = Client::new(&g_token);
    let sec_token = data.add_member("Test Secretariat", "secretariat", None);
    let sec = Client::new(&sec_token);
    let d = Daemon::start_with(&data, &["--config", &cfg]);
    wait_current(&d).await;

    // The advisory: the KEV entry, as the secretariat finds it.
    let (status, adv) = sec
        .get(&d.url(&format!("/api/v1/advisories?q={KEV_CVE}")))
        .await;
    assert_eq!(status, 200, "{adv}");
    let advisory = &adv["advisories"][0];
    let advisory_id = advisory["id"].as_str().unwrap().to_string();
    let advisory_title = advisory["title"].as_str().unwrap().to_string();

    // Only the secretariat opens inquiries.
    let body = json!({"advisory": advisory_id, "question": "Seen Cleo exploitation?", "classes": ["class1"]});
    let (status, _) = a.post_json(&d.url("/api/v1/inquiries"), &body).await;
    assert_eq!(status, 404);
    let (status, bad) = sec
        .post_json(
            &d.url("/api/v1/inquiries"),
            &json!({"advisory": "R-999999", "question": "?", "classes": ["class1"]}),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    let (status, opened) = sec.post_json(&d.url("/api/v1/inquiries"), &body).await;
    assert_eq!(status, 201, "{opened}");
    let id = opened["id"].as_str().unwrap().to_string();

    // Class 1 sees it; a general member is told "not found", as for an absent inquiry.
    let (_, mine) = a.get(&d.url("/api/v1/inquiries")).await;
    assert_eq!(mine["inquiries"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(
        mine["inquiries"][0]["about"]["title"],
        advisory_title.as_str()
    );
    assert!(mine["inquiries"][0].get("classes").is_none(), "{mine}");
    let (_, theirs) = g.get(&d.url("/api/v1/inquiries")).await;
    assert_eq!(theirs["inquiries"], json!([]), "{theirs}");
    let (s1, hidden) = g.get(&d.url(&format!("/api/v1/inquiries/{id}"))).await;
    let (s2, absent) = g.get(&d.url("/api/v1/inquiries/I-999")).await;
    assert_eq!((s1, s2), (404, 404));
    assert_eq!(hidden, absent);
    let answer = submission(
        "Cleo exploitation at a water utility",
        "green",
        &[("ipv4", "45.61.170.12")],
    );
    let (status, refused) = g
        .post_json(&d.url(&format!("/api/v1/inquiries/{id}/answers")), &answer)
        .await;
    assert_eq!(status, 404, "{refused}");

    // A class-1 member answers with a report sharing no value with the advisory.
    let (status, answered) = a
        .post_json(&d.url(&format!("/api/v1/inquiries/{id}/answers")), &answer)
        .await;
    assert_eq!(status, 201, "{answered}");
    wait_current(&d).await;

    // It is a campaign, with the advisory as its public context.
    let (_, list) = sec.get(&d.url("/api/v1/campaigns")).await;
    let campaigns = list["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1, "{list}");
    let cid = campaigns[0]["id"].as_str().unwrap();
    let (_, detail) = sec.get(&d.url(&format!("/api/v1/campaigns/{cid}"))).await;
    let context = detail["context"].as_array().unwrap();
    assert!(
        context
            .iter()
            .any(|c| c["feed"] == "kev" && c["title"] == advisory_title.as_str()),
        "{detail}"
    );

    // The inquiry shows the answer as it arrived, without a provider.
    let (_, inq) = sec.get(&d.url(&format!("/api/v1/inquiries/{id}"))).await;
    let answers = inq["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 1, "{inq}");
    assert_eq!(answers[0]["campaign"], cid, "{inq}");
    assert_eq!(inq["organisations"], "1");
    assert_eq!(inq["classes"], json!(["class1"]));
    let text = inq.to_string();
    for name in ["Test Task Force Water", "m-"] {
        assert!(!text.contains(name), "{name} in {text}");
    }

    // Another class-1 member's TLP:RED answer: the secretariat sees two answers; member A
    // sees exactly what it saw before.
    let (_, before) = a.get(&d.url(&format!("/api/v1/inquiries/{id}"))).await;
    let red = submission(
        "Rail operator: red detail",
        "red",
        &[("ipv4", "45.61.170.13")],
    );
    let (status, _) = b
        .post_json(&d.url(&format!("/api/v1/inquiries/{id}/answers")), &red)
        .await;
    assert_eq!(status, 201);
    wait_current(&d).await;
    let (_, after) = a.get(&d.url(&format!("/api/v1/inquiries/{id}"))).await;
    assert_eq!(
        before, after,
        "a hidden answer changes nothing member A sees"
    );
    let (_, inq) = sec.get(&d.url(&format!("/api/v1/inquiries/{id}"))).await;
    assert_eq!(inq["answers"].as_array().unwrap().len(), 2, "{inq}");
    assert_eq!(inq["organisations"], "2-4");

    // The console: the secretariat opens an inquiry on the campaign for class 1 and general
    // members with the form; the general member sees that one and not the first.
    let mut console = ConsoleClient::new(&d.base);
    let csrf = console.sign_in(&sec_token).await;
    let (status, html) = console.get("/console/inquiries").await;
    assert_eq!(status, 200);
    assert!(html.contains("Seen Cleo exploitation?"), "{html}");
    let (status, _) = console
        .post(
            "/console/inquiries",
            &[
                ("csrf", &csrf),
                ("campaign", cid),
                ("question", "Who else sees 45.61.170.12?"),
                ("class1", "on"),
                ("general", "on"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (status, html) = console.get("/console/inquiries/I-2").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Who else sees 45.61.170.12?"), "{html}");
    let (status, html) = console.get(&format!("/console/inquiries/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"answers\""), "{html}");
    assert!(
        !html.contains("Test Task Force"),
        "no provider names: {html}"
    );

    let mut general = ConsoleClient::new(&d.base);
    general.sign_in(&g_token).await;
    let (_, html) = general.get("/console/inquiries").await;
    assert!(html.contains("Who else sees"), "{html}");
    assert!(!html.contains("Seen Cleo exploitation?"), "{html}");
    let (status, _) = general.get(&format!("/console/inquiries/{id}")).await;
    assert_eq!(status, 404);
}
