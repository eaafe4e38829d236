//! The council workflow over real HTTP: tiered release, review (dispositions, history,
//! pins), feedback requests, statistics and the audit log.

use serde_json::{Value, json};

use crate::leak::{ROSTER, get_text, token_of};
use crate::util::{Client, Daemon, DataDir, submission, wait_current};

#[tokio::test(flavor = "multi_thread")]
async fn release_review_feedback_stats_and_audit() {
    let data = DataDir::new();
    data.cli(&["member", "import", ROSTER]);
    let class1 = token_of(&data, "m150");
    let class2 = token_of(&data, "m010");
    let general = token_of(&data, "m030");
    let sec = data.add_member("Analyst One", "secretariat", None);
    let daemon = Daemon::start(&data);
    let url = |p: &str| daemon.url(p);
    let (c1, c2, g, s) = (
        Client::new(&class1),
        Client::new(&class2),
        Client::new(&general),
        Client::new(&sec),
    );

    let (status, sub) = c1
        .post_json(
            &url("/api/v1/reports?wait=campaign"),
            &submission("Fresh loader", "amber", &[("ipv4", "198.51.100.23")]),
        )
        .await;
    assert_eq!(status, 201, "{sub}");
    wait_current(&daemon).await;
    let report = sub["reports"][0]["id"].as_str().unwrap().to_string();
    let campaign = sub["reports"][0]["campaign"].as_str().unwrap().to_string();

    // Tiered release: class 1 sees new material at once, class 2 and general wait.
    assert_eq!(
        Client::new(&class1)
            .get(&url(&format!("/api/v1/reports/{report}")))
            .await
            .0,
        200
    );
    assert_eq!(
        c2.get(&url(&format!("/api/v1/reports/{report}"))).await.0,
        404
    );
    let (_, list) = g.get(&url("/api/v1/campaigns")).await;
    assert_eq!(
        list["campaigns"],
        json!([]),
        "an unreleased campaign does not exist for general members"
    );

    // Secretariat routes do not exist for members.
    for path in [
        "/api/v1/council/audit",
        "/api/v1/council/pins",
        &format!("/api/v1/council/dispositions/{campaign}"),
    ] {
        assert_eq!(c1.get(&url(path)).await.0, 404, "{path}");
    }
    let (status, _) = c1
        .post_json(
            &url(&format!("/api/v1/council/dispositions/{campaign}")),
            &json!({"disposition": "shared-public"}),
        )
        .await;
    assert_eq!(status, 404);

    let (status, body) = s
        .post_json(
            &url("/api/v1/council/releases"),
            &json!({"campaign": campaign}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        c2.get(&url(&format!("/api/v1/reports/{report}"))).await.0,
        200
    );
    let (_, list) = g.get(&url("/api/v1/campaigns")).await;
    assert_eq!(list["campaigns"].as_array().unwrap().len(), 1);

    // Feedback: class 2 and general members are asked; class 1 is not.
    let (status, req) = s
        .post_json(
            &url("/api/v1/council/feedback"),
            &json!({"campaign": campaign, "question": "Seen 198.51.100.23?"}),
        )
        .await;
    assert_eq!(status, 201, "{req}");
    let rid = req["id"].as_i64().unwrap();
    let (_, open) = g.get(&url("/api/v1/council/feedback")).await;
    assert_eq!(open["requests"].as_array().unwrap().len(), 1, "{open}");
    assert_eq!(open["requests"][0]["campaign"]["id"], json!(campaign));
    assert!(
        open["requests"][0]["request"].get("analyst").is_none(),
        "members do not see who asked"
    );
    let (_, open) = c1.get(&url("/api/v1/council/feedback")).await;
    assert_eq!(open["requests"], json!([]));
    let answer = url(&format!("/api/v1/council/feedback/{rid}/answer"));
    assert_eq!(
        g.post_json(&answer, &json!({"kind": "seen", "count": 2}))
            .await
            .0,
        201
    );
    assert_eq!(g.post_json(&answer, &json!({"kind": "seen"})).await.0, 409);
    assert_eq!(
        c2.post_json(&answer, &json!({"kind": "not-seen"})).await.0,
        201
    );
    let (_, progress) = s
        .get(&url(&format!("/api/v1/council/feedback/{rid}")))
        .await;
    assert_eq!(progress["progress"]["answered"], json!(2), "{progress}");
    assert_eq!(progress["progress"]["seen"], json!(1));

    // Review: two decisions, full history.
    let decide = url(&format!("/api/v1/council/dispositions/{campaign}"));
    assert_eq!(
        s.post_json(
            &decide,
            &json!({"disposition": "under-analysis", "note": "asked members"})
        )
        .await
        .0,
        201
    );
    let (status, bad) = s
        .post_json(&decide, &json!({"disposition": "shared-widely"}))
        .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(
        s.post_json(
            &decide,
            &json!({"disposition": "shared-limited", "note": "to finance ISAC"})
        )
        .await
        .0,
        201
    );
    let (_, history) = s.get(&decide).await;
    let h: Vec<(&str, &str)> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["disposition"].as_str().unwrap(),
                d["note"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        h,
        [
            ("under-analysis", "asked members"),
            ("shared-limited", "to finance ISAC")
        ]
    );

    let (status, pin) = s
        .post_json(
            &url("/api/v1/council/pins"),
            &json!({"kind": "split", "campaign": campaign, "reports": [report]}),
        )
        .await;
    assert_eq!(status, 201, "{pin}");
    let (_, pins) = s.get(&url("/api/v1/council/pins")).await;
    assert_eq!(pins["pins"][0]["kind"], json!("split"));

    // Statistics count the campaign once, as shared (members receive closed months only:
    // see council_leaks.rs).
    let today = chrono::Utc::now().date_naive();
    let (status, stats) = s
        .get(&url(&format!(
            "/api/v1/council/stats?from={today}&to={today}&format=json&lang=en"
        )))
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["rows"][0]["count"], json!(1));
    assert_eq!(stats["rows"][1]["count"], json!(1));
    let (status, md) = get_text(
        &sec,
        &url(&format!(
            "/api/v1/council/stats?from={today}&to={today}&format=md"
        )),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        md.contains("| 協議会に持ち込まれた攻撃活動の件数 | 1 |"),
        "{md}"
    );
    let cli = data.cli(&[
        "stats",
        "--from",
        &today.to_string(),
        "--to",
        &today.to_string(),
        "--lang",
        "en",
    ]);
    assert!(
        cli.contains(
            "| countermeasure info published widely or shared within a limited scope | 1 |"
        ),
        "{cli}"
    );

    // The audit log holds every decision and the secretariat-only reads, in order: first
    // the operator's token rotations (`musubi member token`) that gave the test its tokens.
    let (_, log) = s.get(&url("/api/v1/council/audit")).await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "token-rotate",
            "token-rotate",
            "token-rotate",
            "release",
            "feedback-request",
            "read",
            "decide",
            "decide",
            "read",
            "pin-split"
        ]
    );
    let cli = data.cli(&["audit", "--json"]);
    let v: Value = serde_json::from_str(&cli).unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), actions.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn expulsion_revokes_tokens_at_once_and_keeps_reports_marked() {
    let data = DataDir::new();
    data.cli(&["member", "import", ROSTER]);
    let member = token_of(&data, "m150");
    let sec = data.add_member("Analyst Two", "secretariat", None);
    let daemon = Daemon::start(&data);
    let m = Client::new(&member);
    let (status, sub) = m
        .post_json(
            &daemon.url("/api/v1/reports?wait=campaign"),
            &submission("Before expulsion", "green", &[("ipv4", "192.0.2.77")]),
        )
        .await;
    assert_eq!(status, 201, "{sub}");
    let report = sub["reports"][0]["id"].as_str().unwrap().to_string();
    let out = data.cli(&[
        "member",
        "status",
        "m150",
        "expelled",
        "--note",
        "breach of rules",
    ]);
    assert_eq!(out.trim(), "member m150 is now expelled");
    assert_eq!(m.get(&daemon.url("/api/v1/campaigns")).await.0, 401);
    let (status, view) = Client::new(&sec)
        .get(&daemon.url(&format!("/api/v1/reports/{report}")))
        .await;
    assert_eq!(status, 200, "the report stays: {view}");
    assert_eq!(
        view["provider_status"],
        json!("expelled"),
        "and is marked: {view}"
    );
    let bad = data.cli_output(&["member", "status", "m150", "approved"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("member m150 is expelled and cannot become approved")
    );
}
