//! The give-and-take ledger and time-to-share (#15 items 6 and 7) over real HTTP and the
//! real CLI: a member's ledger holds its own row only, the secretariat's every row (JSON
//! and CSV) with the task-force candidates; time-to-share on the dashboard and in
//! `musubi stats` matches the stored submission, release and decision times.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::console::ConsoleClient;
use crate::leak::{ROSTER, get_text, token_of};
use crate::util::{Client, Daemon, DataDir, submission, wait_current};

/// Submits one report naming one domain (which links on its own) and returns (report id, campaign id) as the submitter is shown them.
async fn submit(c: &Client, daemon: &Daemon, title: &str, value: &str) -> (String, String) {
    let (status, sub) = c
        .post_json(
            &daemon.url("/api/v1/reports?wait=campaign"),
            &submission(title, "amber", &[("domain", value)]),
        )
        .await;
    assert_eq!(status, 201, "{sub}");
    (
        sub["reports"][0]["id"].as_str().unwrap().to_string(),
        sub["reports"][0]["campaign"].as_str().unwrap().to_string(),
    )
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("a time stamp: {v}"))
        .parse()
        .unwrap()
}

/// What the secretariat is shown of a report: its received time and campaign (internal ids).
async fn report_facts(s: &Client, daemon: &Daemon, id: &str) -> (DateTime<Utc>, String) {
    let (status, r) = s.get(&daemon.url(&format!("/api/v1/reports/{id}"))).await;
    assert_eq!(status, 200, "{r}");
    (
        time(&r["received_at"]),
        r["campaign"].as_str().unwrap().to_string(),
    )
}

/// The scenario: members A (general, m030) and B (class 2, m010) and C (class 1, m150).
/// A reports three unrelated values; B reports A's first value later and one of its own;
/// C reports two values of its own. The secretariat releases the campaign A and B share,
/// decides A's second campaign `shared-public` and B's own `low-need-transient`. A gives a
/// sighting, B answers a feedback request.
#[tokio::test(flavor = "multi_thread")]
async fn ledger_and_time_to_share() {
    let data = DataDir::new();
    data.cli(&["member", "import", ROSTER]);
    let (ta, tb, tc) = (
        token_of(&data, "m030"),
        token_of(&data, "m010"),
        token_of(&data, "m150"),
    );
    let sec = data.add_member("Analyst Ledger", "secretariat", None);
    let daemon = Daemon::start(&data);
    let url = |p: &str| daemon.url(p);
    let (a, b, c, s) = (
        Client::new(&ta),
        Client::new(&tb),
        Client::new(&tc),
        Client::new(&sec),
    );

    let (ra1, _) = submit(&a, &daemon, "A shared loader", "ledger-61-relay.net").await;
    let (ra2, _) = submit(&a, &daemon, "A phishing kit", "ledger-62-relay.net").await;
    let (ra3, _) = submit(&a, &daemon, "A scanner", "ledger-63-relay.net").await;
    let (rb1, _) = submit(&b, &daemon, "B same loader", "ledger-61-relay.net").await;
    let (rb2, _) = submit(&b, &daemon, "B own botnet", "ledger-64-relay.net").await;
    submit(&c, &daemon, "C first", "ledger-65-relay.net").await;
    submit(&c, &daemon, "C second", "ledger-66-relay.net").await;
    wait_current(&daemon).await;

    let (a1_at, cx) = report_facts(&s, &daemon, &ra1).await;
    let (a2_at, cy) = report_facts(&s, &daemon, &ra2).await;
    let (_, cz) = report_facts(&s, &daemon, &ra3).await;
    let (_, cb1) = report_facts(&s, &daemon, &rb1).await;
    let (b2_at, cw) = report_facts(&s, &daemon, &rb2).await;
    assert_eq!(cb1, cx, "B's report of the same value joins A's campaign");

    // Let whole seconds pass so that the times are not all zero.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = s
        .post_json(&url("/api/v1/council/releases"), &json!({"campaign": cx}))
        .await;
    assert_eq!(status, 201, "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (campaign, d) in [(&cy, "shared-public"), (&cw, "low-need-transient")] {
        let (status, body) = s
            .post_json(
                &url(&format!("/api/v1/council/dispositions/{campaign}")),
                &json!({"disposition": d}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // A's sighting on its own campaign; B's answer to a feedback request on the released one.
    let (_, a_view) = a.get(&url("/api/v1/campaigns")).await;
    let a_campaign = a_view["campaigns"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = a
        .post_json(
            &url("/api/v1/sightings"),
            &json!({"target": {"campaign": a_campaign}, "kind": "seen", "count": 1,
                    "seen_at": Utc::now().to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, req) = s
        .post_json(
            &url("/api/v1/council/feedback"),
            &json!({"campaign": cx, "question": "Seen ledger-61-relay.net?", "classes": ["class2"]}),
        )
        .await;
    assert_eq!(status, 201, "{req}");
    let rid = req["id"].as_i64().unwrap();
    let (status, body) = b
        .post_json(
            &url(&format!("/api/v1/council/feedback/{rid}/answer")),
            &json!({"kind": "seen", "count": 1}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // --- The ledger -------------------------------------------------------------------
    let figures = |row: &Value| {
        [
            "reports_submitted",
            "campaigns_contributed",
            "contributed_shared",
            "first_reporter",
            "sightings",
            "feedback_answers",
            "campaigns_received",
        ]
        .map(|k| row[k].as_u64().unwrap_or_else(|| panic!("{k} in {row}")))
    };
    // A: 3 reports in 3 campaigns, first in all; shared: the released one and the one
    // decided shared-public; received: the released campaign, where B's report is now
    // visible to it (B's other campaign is unreleased: a general member does not see it).
    let a_expected = [3, 3, 2, 3, 1, 0, 1];
    // B: 2 reports in 2 campaigns, first only in its own; shared: its released report;
    // received: A's released report (A's shared-public campaign was not released).
    let b_expected = [2, 2, 1, 1, 0, 1, 1];

    let (status, mine) = a.get(&url("/api/v1/ledger")).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["rows"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["rows"][0]["member"], json!("m030"));
    assert_eq!(figures(&mine["rows"][0]), a_expected, "{mine}");
    assert!(mine.get("task_force_candidates").is_none(), "{mine}");
    let (status, theirs) = b.get(&url("/api/v1/ledger")).await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(theirs["rows"].as_array().unwrap().len(), 1, "{theirs}");
    assert_eq!(theirs["rows"][0]["member"], json!("m010"));
    assert_eq!(figures(&theirs["rows"][0]), b_expected, "{theirs}");
    // Neither answer names the other member or carries anything beyond its own row.
    let a_text = mine.to_string();
    let b_text = theirs.to_string();
    assert!(
        !a_text.contains("m010") && !a_text.contains("m150"),
        "{a_text}"
    );
    assert!(
        !b_text.contains("m030") && !b_text.contains("m150"),
        "{b_text}"
    );
    for row in [&mine["rows"][0], &theirs["rows"][0]] {
        assert!(
            row.get("name").is_none() && row.get("sector").is_none(),
            "{row}"
        );
    }
    let (status, csv_a) = get_text(&ta, &url("/api/v1/ledger?format=csv")).await;
    assert_eq!(status, 200);
    let mut rd = csv::Reader::from_reader(csv_a.as_bytes());
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 1, "{csv_a}");
    assert_eq!(&rows[0][0], "m030");

    // The secretariat sees both, with the same figures, and the candidates: A and B are
    // active outside class 1; C (class 1, two campaigns) is not a candidate.
    let (status, all) = s.get(&url("/api/v1/ledger")).await;
    assert_eq!(status, 200, "{all}");
    let row_of = |m: &str| {
        all["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["member"] == json!(m))
            .unwrap_or_else(|| panic!("{m} in {all}"))
            .clone()
    };
    assert_eq!(figures(&row_of("m030")), a_expected);
    assert_eq!(figures(&row_of("m010")), b_expected);
    assert_eq!(figures(&row_of("m150"))[..3], [2, 2, 0]);
    assert!(row_of("m030")["name"].is_string());
    assert_eq!(
        all["task_force_candidates"],
        json!(["m030", "m010"]),
        "{all}"
    );
    let (status, csv_all) = get_text(&sec, &url("/api/v1/ledger?format=csv")).await;
    assert_eq!(status, 200);
    let mut rd = csv::Reader::from_reader(csv_all.as_bytes());
    let header = rd.headers().unwrap().clone();
    assert_eq!(&header[0], "member");
    let records: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), all["rows"].as_array().unwrap().len());
    let a_csv = records.iter().find(|r| &r[0] == "m030").unwrap();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(&a_csv[col("campaigns_received")], "1");
    assert_eq!(&a_csv[col("task_force_candidate")], "true");
    assert_eq!(
        get_text(&ta, &url("/api/v1/ledger?format=xml")).await.0,
        400
    );
    assert_eq!(
        reqwest::get(url("/api/v1/ledger")).await.unwrap().status(),
        401
    );

    // The console: the secretariat's page lists both with the candidates, a member's its own.
    let mut console = ConsoleClient::new(&daemon.url(""));
    console.sign_in(&sec).await;
    let (status, html) = console.get("/console/ledger").await;
    assert_eq!(status, 200);
    assert!(html.contains("m030") && html.contains("m010"), "{html}");
    assert!(html.contains("id=\"task-force-candidates\""), "{html}");
    let mut member_console = ConsoleClient::new(&daemon.url(""));
    member_console.sign_in(&ta).await;
    let (status, html) = member_console.get("/console/ledger").await;
    assert_eq!(status, 200);
    assert!(html.contains("m030"), "{html}");
    assert!(
        !html.contains("m010") && !html.contains("task-force-candidates"),
        "{html}"
    );

    // --- Time-to-share ------------------------------------------------------------------
    // The stored facts: the release time from the audit log, dispositions from history.
    let (_, log) = s.get(&url("/api/v1/council/audit")).await;
    let released_at = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == json!("release"))
        .map(|e| time(&e["at"]))
        .expect("the release is audited");
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == json!("read") && e["target"] == json!("ledger")),
        "the secretariat's ledger reads are audited: {log}"
    );
    let decided_at = |campaign: &str| {
        let s = s.clone();
        let u = url(&format!("/api/v1/council/dispositions/{campaign}"));
        async move {
            let (_, h) = s.get(&u).await;
            time(&h["history"][0]["at"])
        }
    };
    let y_at = decided_at(&cy).await;
    let w_at = decided_at(&cw).await;
    let secs = |d: chrono::TimeDelta| d.num_seconds();
    // Shared: X by its release, Y by its disposition. Decided: Y and W.
    let mut to_share = [secs(released_at - a1_at), secs(y_at - a2_at)];
    to_share.sort();
    let mut to_decide = [secs(y_at - a2_at), secs(w_at - b2_at)];
    to_decide.sort();
    assert!(to_share[0] >= 1, "{to_share:?}");

    let today = Utc::now().date_naive().to_string();
    let out = data.cli(&[
        "stats", "--from", &today, "--to", &today, "--format", "json", "--lang", "en",
    ]);
    let stats: Value = serde_json::from_str(&out).unwrap();
    let t = &stats["time_to_share"];
    // Seven reports, six campaigns: X (A, B), Y, Z (A), W (B), two of C's.
    assert_eq!(
        (
            t["campaigns"].clone(),
            t["shared"].clone(),
            t["decided"].clone(),
            t["waiting"].clone()
        ),
        (json!(6), json!(2), json!(2), json!(4)),
        "{t}"
    );
    assert_eq!(
        t["to_share"],
        json!({"median_seconds": to_share[0], "p90_seconds": to_share[1]}),
        "{t}"
    );
    assert_eq!(
        t["to_decide"],
        json!({"median_seconds": to_decide[0], "p90_seconds": to_decide[1]}),
        "{t}"
    );
    let md = data.cli(&["stats", "--from", &today, "--to", &today, "--lang", "ja"]);
    assert!(md.contains("### 共有までの時間"), "{md}");
    let hours = |s: i64| format!("{:.1}時間", s as f64 / 3600.0);
    assert!(
        md.contains(&format!(
            "| 情報提供 → 第1類以外への共有 | {} | {} | 2 |",
            hours(to_share[0]),
            hours(to_share[1])
        )),
        "{md}"
    );
    assert!(md.contains("対応未決定: 4 件"), "{md}");
    let md = data.cli(&["stats", "--from", &today, "--to", &today, "--lang", "en"]);
    assert!(md.contains("Awaiting disposition: 4"), "{md}");

    // The dashboard: the secretariat's shows both windows and the waiting campaigns (X,
    // the oldest, first); a member's shows no time-to-share at all.
    let (status, html) = console.get("/console/").await;
    assert_eq!(status, 200);
    let section = html
        .split("id=\"time-to-share\"")
        .nth(1)
        .expect("the secretariat's dashboard shows time-to-share")
        .split("</section>")
        .next()
        .unwrap()
        .to_string();
    assert!(
        section.contains("Last 30 days") && section.contains("Last 90 days"),
        "{section}"
    );
    let fmt = |s: i64| format!("{:.1} h", s as f64 / 3600.0);
    assert!(section.contains(&fmt(to_share[0])), "{section}");
    let x_pos = section.find(&cx).expect("X waits (released, not decided)");
    let z_pos = section.find(&cz).expect("Z waits");
    assert!(x_pos < z_pos, "oldest first: {section}");
    assert!(
        !section.contains(&cy) && !section.contains(&cw),
        "decided ones do not wait"
    );
    let (_, html) = member_console.get("/console/").await;
    assert!(
        !html.contains("time-to-share"),
        "members see no time-to-share"
    );

    // The digests: A's line counts its two shared campaigns; the secretariat's lists the
    // campaigns waiting longest.
    let cfg = data.path().join("digest.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}{}",
            crate::mail::smtp_toml(9, 5),
            r#"
[[digest]]
name = "council"
schedule = "0 0 8 * * *"
classes = ["class1", "class2", "general"]
secretariat = true
language = "en"
first_window_hours = 48
"#
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let preview =
        |who: &str| data.cli(&["--config", cfg, "digest", "preview", "council", "--as", who]);
    let a_digest = preview("m030");
    assert!(
        a_digest.contains("your reports contributed to 2 campaigns shared with the council"),
        "{a_digest}"
    );
    assert!(!a_digest.contains("awaiting disposition"), "{a_digest}");
    let b_digest = preview("m010");
    assert!(
        b_digest.contains("your reports contributed to 1 campaigns shared with the council"),
        "{b_digest}"
    );
    let sec_digest = preview("Analyst Ledger");
    assert!(
        sec_digest.contains(&format!("awaiting disposition {cx}")),
        "{sec_digest}"
    );
    assert!(
        !sec_digest.contains("your reports contributed"),
        "{sec_digest}"
    );
}
