//! Issue 14, findings 10 (feeds page), 12, 13 and 14: health, metrics, feeds, sightings,
//! feedback answers and statistics tell a member nothing about what it may not see.
//!
//! Each test is differential where it can be: it asks the same question with and without
//! hidden material and demands the same answer, byte for byte.

use chrono::{Datelike, Duration as Days, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};

use crate::leak::{ROSTER, get_text, token_of};
use crate::util::{Client, Daemon, DataDir, submission, wait_current};

/// The last day of the last month that has ended (UTC): the newest period a member may ask
/// statistics for.
pub fn last_closed_month_end() -> NaiveDate {
    let today = Utc::now().date_naive();
    today.with_day(1).expect("day 1 exists") - Days::days(1)
}

/// Raw GET without any token.
async fn anonymous(url: &str) -> (u16, String) {
    let r = reqwest::Client::new().get(url).send().await.expect("GET");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// Finding 12. Checked on main before the fix: the anonymous `/healthz` answered the
/// sequence numbers and the mail block, and `/metrics` answered anyone.
#[tokio::test(flavor = "multi_thread")]
async fn healthz_and_metrics_say_nothing_to_members_or_strangers() {
    let data = DataDir::new();
    data.cli(&["member", "import", ROSTER]);
    let provider = token_of(&data, "m150"); // class 1
    let general = token_of(&data, "m030");
    let daemon = Daemon::start(&data);
    wait_current(&daemon).await;

    let before_anon = anonymous(&daemon.url("/healthz")).await;
    let before_member = get_text(&general, &daemon.url("/healthz")).await;
    assert_eq!(before_anon, (200, r#"{"status":"ok"}"#.to_string()));
    assert_eq!(before_member, before_anon, "a member learns no more");

    // A report the general member may not see (AMBER, not released).
    let (status, body) = Client::new(&provider)
        .post_json(
            &daemon.url("/api/v1/reports"),
            &submission("Hidden loader", "amber", &[("ipv4", "198.51.100.61")]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let details = wait_current(&daemon).await;
    assert_eq!(
        details["committed_seq"],
        json!(1),
        "the secretariat sees details"
    );
    assert!(details["mail"].is_object(), "{details}");

    // The same answers as before the hidden report.
    assert_eq!(anonymous(&daemon.url("/healthz")).await, before_anon);
    assert_eq!(
        get_text(&general, &daemon.url("/healthz")).await,
        before_member
    );

    // /metrics is the operators': nothing for strangers or members.
    let (status, text) = anonymous(&daemon.url("/metrics")).await;
    assert_eq!(status, 401, "{text}");
    assert!(!text.contains("musubi_"), "{text}");
    for token in [&general, &provider] {
        let (status, text) = get_text(token, &daemon.url("/metrics")).await;
        assert_eq!(status, 404, "{text}");
        assert!(!text.contains("musubi_"), "{text}");
    }
    let metrics = crate::util::metrics(&daemon).await;
    assert!(
        metrics.contains("musubi_store_committed_seq 1"),
        "{metrics}"
    );
    // No member, no TLP in any label.
    for needle in ["m150", "m030", "amber", "tlp", "member="] {
        assert!(
            !metrics.to_lowercase().contains(needle),
            "{needle}: {metrics}"
        );
    }
}

/// Finding 13. Checked on main before the fix: sightings and the answer on the hidden
/// campaign were accepted (201), and so were a count of 4e9 and the year 9999.
#[tokio::test(flavor = "multi_thread")]
async fn sightings_and_answers_only_for_what_the_member_sees_and_within_bounds() {
    let data = DataDir::new();
    data.cli(&["member", "import", ROSTER]);
    let provider = token_of(&data, "m150"); // class 1
    let general = token_of(&data, "m030");
    let sec = data.add_member("Analyst Leaks", "secretariat", None);
    let daemon = Daemon::start(&data);
    let url = |p: &str| daemon.url(p);
    let (p, g, s) = (
        Client::new(&provider),
        Client::new(&general),
        Client::new(&sec),
    );

    let submit = |c: Client, title: &'static str, ip: &'static str| {
        let u = url("/api/v1/reports?wait=campaign");
        async move {
            let (status, body) = c
                .post_json(&u, &submission(title, "amber", &[("ipv4", ip)]))
                .await;
            assert_eq!(status, 201, "{body}");
            body["reports"][0]["campaign"]
                .as_str()
                .expect("campaign id")
                .to_string()
        }
    };
    let hidden = submit(p.clone(), "Hidden loader", "198.51.100.71").await;
    let own = submit(g.clone(), "My own sighting", "203.0.113.72").await;
    assert_ne!(hidden, own);
    wait_current(&daemon).await;
    let absent = "C-2099-0999";

    let now = Utc::now().to_rfc3339();
    let sight = |target: Value, count: u64, seen_at: &str| json!({"target": target, "kind": "seen", "count": count, "seen_at": seen_at});
    let post = |c: &Client, path: &str, body: Value| {
        let (c, u) = (c.clone(), url(path));
        async move { c.post_json(&u, &body).await }
    };

    // Hidden and absent campaigns: the same 404, byte for byte.
    let on_hidden = post(
        &g,
        "/api/v1/sightings",
        sight(json!({"campaign": hidden}), 1, &now),
    )
    .await;
    let on_absent = post(
        &g,
        "/api/v1/sightings",
        sight(json!({"campaign": absent}), 1, &now),
    )
    .await;
    assert_eq!(on_hidden.0, 404, "{}", on_hidden.1);
    assert_eq!(on_hidden, on_absent);
    // Hidden and absent observables: the same.
    let obs = |v: &str| json!({"observable": {"type": "ipv4", "value": v}});
    let on_hidden = post(
        &g,
        "/api/v1/sightings",
        sight(obs("198.51.100.71"), 1, &now),
    )
    .await;
    let on_absent = post(
        &g,
        "/api/v1/sightings",
        sight(obs("198.51.100.99"), 1, &now),
    )
    .await;
    assert_eq!(on_hidden.0, 404, "{}", on_hidden.1);
    assert_eq!(on_hidden, on_absent);
    // What the member sees is fine.
    let (status, body) = post(
        &g,
        "/api/v1/sightings",
        sight(json!({"campaign": own}), 3, &now),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(&g, "/api/v1/sightings", sight(obs("203.0.113.72"), 1, &now)).await;
    assert_eq!(status, 201, "{body}");
    // The provider (class 1) sees its own campaign.
    let (status, body) = post(
        &p,
        "/api/v1/sightings",
        sight(json!({"campaign": hidden}), 1, &now),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Bounds, named; checked before visibility (the same for hidden targets).
    for target in [json!({"campaign": own}), json!({"campaign": hidden})] {
        let cases = [
            (sight(target.clone(), 4_000_000_000, &now), "count"),
            (sight(target.clone(), 0, &now), "count"),
            (sight(target.clone(), 1, "9999-12-31T00:00:00Z"), "seen_at"),
            (sight(target.clone(), 1, "1980-01-01T00:00:00Z"), "seen_at"),
            (
                sight(
                    target.clone(),
                    1,
                    &(Utc::now() + Days::days(2)).to_rfc3339(),
                ),
                "seen_at",
            ),
        ];
        for (body, field) in cases {
            let (status, answer) = post(&g, "/api/v1/sightings", body.clone()).await;
            assert_eq!(status, 400, "{body}: {answer}");
            assert!(
                answer["message"].as_str().unwrap().starts_with(field),
                "{body}: {answer}"
            );
        }
    }
    let edge = (Utc::now() + Days::hours(12)).to_rfc3339();
    let (status, body) = post(
        &g,
        "/api/v1/sightings",
        sight(json!({"campaign": own}), 1_000_000, &edge),
    )
    .await;
    assert_eq!(status, 201, "within bounds: {body}");
    let old = Utc
        .with_ymd_and_hms(1990, 1, 1, 0, 0, 0)
        .unwrap()
        .to_rfc3339();
    let (status, body) = post(
        &g,
        "/api/v1/sightings",
        sight(json!({"campaign": own}), 1, &old),
    )
    .await;
    assert_eq!(status, 201, "within bounds: {body}");

    // Feedback: a request about the hidden campaign does not exist for the member.
    let ask = |campaign: &str| json!({"campaign": campaign, "question": "Seen it?", "classes": ["general"]});
    let (status, req) = post(&s, "/api/v1/council/feedback", ask(&hidden)).await;
    assert_eq!(status, 201, "{req}");
    let on_hidden_req = req["id"].as_i64().unwrap();
    let (status, req) = post(&s, "/api/v1/council/feedback", ask(&own)).await;
    assert_eq!(status, 201, "{req}");
    let on_own_req = req["id"].as_i64().unwrap();
    let (_, open) = g.get(&url("/api/v1/council/feedback")).await;
    let ids: Vec<i64> = open["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["request"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [on_own_req], "{open}");

    let answer =
        |id: i64, body: Value| post(&g, &format!("/api/v1/council/feedback/{id}/answer"), body);
    let hidden_answer = answer(on_hidden_req, json!({"kind": "seen"})).await;
    let absent_answer = answer(999_999, json!({"kind": "seen"})).await;
    assert_eq!(hidden_answer.0, 404, "{}", hidden_answer.1);
    assert_eq!(hidden_answer, absent_answer);
    let (status, body) = answer(
        on_own_req,
        json!({"kind": "seen", "count": 4_000_000_000u64}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with("count"),
        "{body}"
    );
    let (status, body) = answer(on_own_req, json!({"kind": "seen", "count": 2})).await;
    assert_eq!(status, 201, "{body}");

    // The secretariat's view of the hidden request: nobody answered it.
    let (_, progress) = s
        .get(&url(&format!("/api/v1/council/feedback/{on_hidden_req}")))
        .await;
    assert_eq!(progress["progress"]["answered"], json!(0), "{progress}");
}

/// Finding 14. Checked on main before the fix: a general member got per-day counts of the
/// current day, and last month's undecided hidden campaign was counted for it.
#[tokio::test(flavor = "multi_thread")]
async fn members_get_published_statistics_of_closed_months_only() {
    use musubi::model::{MemberId, ReportDraft, Tlp};

    let data = DataDir::new();
    data.cli(&["member", "import", ROSTER]);
    let general = token_of(&data, "m030");
    let sec = data.add_member("Analyst Stats", "secretariat", None);
    // A class 1 member's AMBER report of last month, unreleased: hidden from the general
    // member. Stored with last month's time, as if it had arrived then.
    let last_end = last_closed_month_end();
    let last_start = last_end.with_day(1).unwrap();
    let when = last_start.and_hms_opt(10, 0, 0).unwrap().and_utc();
    let path = data.path().to_path_buf();
    std::thread::spawn(move || {
        let store = musubi::store::Store::open(&path).expect("open store");
        let mut draft = ReportDraft::new("Last month's loader", Tlp::Amber);
        draft.description = "hidden".into();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(musubi::sources::submission::store(
                &store,
                &MemberId("m150".into()),
                vec![draft],
                when,
            ))
            .expect("insert");
        store.close();
    })
    .join()
    .unwrap();
    let daemon = Daemon::start(&data);
    wait_current(&daemon).await;
    let (g, s) = (Client::new(&general), Client::new(&sec));
    let stats = |from: NaiveDate, to: NaiveDate| {
        daemon.url(&format!(
            "/api/v1/council/stats?from={from}&to={to}&format=json&lang=en"
        ))
    };
    let today = Utc::now().date_naive();

    // Per day, or a month not yet over: refused, naming the field.
    for (from, to, field) in [
        (today, today, if today.day() == 1 { "to" } else { "from" }),
        (today.with_day(1).unwrap(), today, "to"),
        (last_start, last_end - Days::days(1), "to"),
        (last_start + Days::days(1), last_end, "from"),
    ] {
        let (status, body) = g.get(&stats(from, to)).await;
        assert_eq!(status, 400, "{from}..{to}: {body}");
        assert!(
            body["message"].as_str().unwrap().starts_with(field),
            "{from}..{to}: {body}"
        );
    }
    // The secretariat may ask for any period and sees the undecided campaign.
    let (status, all) = s.get(&stats(last_start, last_end)).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["rows"][0]["count"], json!(1), "{all}");
    assert_eq!(all["counted"], json!("all-campaigns"));
    let (status, _) = s.get(&stats(today, today)).await;
    assert_eq!(status, 200);

    // A member gets the closed month, counting decided campaigns only: none yet.
    let (status, published) = g.get(&stats(last_start, last_end)).await;
    assert_eq!(status, 200, "{published}");
    assert_eq!(published["counted"], json!("decided-campaigns"));
    assert_eq!(published["rows"][0]["count"], json!(0), "{published}");

    // Once the secretariat decides it, the decision counts — in the months that end after
    // it; last month's published figures stay as they were when the month closed.
    let (_, list) = s.get(&daemon.url("/api/v1/campaigns")).await;
    let campaign = list["campaigns"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = s
        .post_json(
            &daemon.url(&format!("/api/v1/council/dispositions/{campaign}")),
            &json!({"disposition": "low-need-transient"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, again) = g.get(&stats(last_start, last_end)).await;
    assert_eq!(again, published, "a closed month's figures do not move");
    let (_, all) = s.get(&stats(last_start, today)).await;
    assert_eq!(all["rows"][0]["count"], json!(1), "{all}");
}

/// Finding 10, the page: feed health details are the secretariat's. Checked on main before
/// the fix: the member saw `last_error` (with the URL's credentials) and the failure count.
#[tokio::test(flavor = "multi_thread")]
async fn feed_health_details_for_the_secretariat_only() {
    let data = DataDir::new();
    // A port nothing listens on: the poll fails and records an error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        data.path().join("feeds.toml"),
        format!(
            "[[feed]]\nname = \"private-blocklist\"\n\
             url = \"http://feeduser:s3cretpass@127.0.0.1:{port}/list?apikey=k3ysecret\"\n\
             format = \"kev\"\nschedule = \"0 0 0 1 1 * *\"\ntimeout = \"2s\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        data.path().join("musubi.toml"),
        "[feeds]\nfile = \"feeds.toml\"\n",
    )
    .unwrap();
    let member = data.add_member("Feed Watcher", "class1", None);
    let sec = data.add_member("Feed Analyst", "secretariat", None);
    let cfg = data.path().join("musubi.toml");
    let daemon = Daemon::start_with(&data, &["--config", cfg.to_str().unwrap()]);

    // The secretariat sees the failure once the poll has run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = Client::new(&sec).get(&daemon.url("/api/v1/feeds")).await;
        assert_eq!(status, 200, "{body}");
        if body["feeds"][0]["last_error"].is_string() {
            assert_eq!(body["feeds"][0]["consecutive_failures"], json!(1), "{body}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no poll: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, text) = get_text(&member, &daemon.url("/api/v1/feeds")).await;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        json!({"feeds": [{"name": "private-blocklist", "last_success": null}]}),
        "name and last success only"
    );
    for secret in ["s3cretpass", "k3ysecret", "feeduser", "127.0.0.1"] {
        assert!(!text.contains(secret), "{secret}: {text}");
    }
}
