//! Regression tests of the read path's own rules over real HTTP: a release is a decision
//! about the reports a campaign holds at that moment (#14 finding 1), and a campaign list
//! is ordered by what the viewer can see (#14 finding 8).

use serde_json::{Value, json};

use crate::leak::{ROSTER, token_of};
use crate::util::{Client, Daemon, DataDir, submission, wait_current};

const SHA_X: &str = "1f2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5f60718293a4b5c6d7e8f9012";
const SHA_Y: &str = "2e3d4c5b6a79889706b5c4d3e2f1a0b1c2d3e4f5061728394a5b6c7d8e9f0123";

/// Every report title in a campaign listing, campaign by campaign, in list order.
fn titles(list: &Value) -> Vec<Vec<String>> {
    list["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["reports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["title"].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

async fn submit(client: &Client, daemon: &Daemon, body: Value) -> Value {
    let (status, answer) = client
        .post_json(&daemon.url("/api/v1/reports?wait=campaign"), &body)
        .await;
    assert_eq!(status, 201, "{answer}");
    answer["reports"][0].clone()
}

/// Finding 1: a general member bridges a released campaign and an unreleased one with one
/// report. The release covered only what the released campaign held when it was released,
/// so the bridged report stays hidden from class 2 (on main it became visible: release was
/// looked up through the report's *current* campaign).
#[tokio::test(flavor = "multi_thread")]
async fn a_bridging_report_does_not_widen_a_release() {
    let data = DataDir::new();
    data.cli(&["member", "import", ROSTER]);
    let (p1, p2) = (token_of(&data, "m150"), token_of(&data, "m151"));
    let (attacker, class2) = (token_of(&data, "m030"), token_of(&data, "m010"));
    let sec = data.add_member("Analyst One", "secretariat", None);
    let daemon = Daemon::start(&data);
    let s = Client::new(&sec);

    let released = submit(
        &Client::new(&p1),
        &daemon,
        submission("Released loader wave", "amber", &[("sha256", SHA_X)]),
    )
    .await;
    submit(
        &Client::new(&p2),
        &daemon,
        submission("Unreleased wiper sighting", "amber", &[("sha256", SHA_Y)]),
    )
    .await;
    wait_current(&daemon).await;
    let campaign = released["campaign"].as_str().unwrap();
    let (status, body) = s
        .post_json(
            &daemon.url("/api/v1/council/releases"),
            &json!({"campaign": campaign}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // The bridge: one report holding a value of each.
    submit(
        &Client::new(&attacker),
        &daemon,
        submission("Bridge", "green", &[("sha256", SHA_X), ("sha256", SHA_Y)]),
    )
    .await;
    wait_current(&daemon).await;
    // The secretariat sees one campaign of three reports: the bridge did join them.
    let (_, all) = s.get(&daemon.url("/api/v1/campaigns")).await;
    assert!(
        titles(&all).iter().any(|c| c.len() == 3),
        "the bridge should merge the campaigns: {all}"
    );
    let (_, seen) = Client::new(&class2)
        .get(&daemon.url("/api/v1/campaigns"))
        .await;
    let seen: Vec<String> = titles(&seen).into_iter().flatten().collect();
    assert!(
        seen.contains(&"Released loader wave".to_string()),
        "{seen:?}"
    );
    assert!(
        !seen.contains(&"Unreleased wiper sighting".to_string()),
        "the bridge released a report nobody released: {seen:?}"
    );
}

/// Finding 8: the list is ordered by the visible reports' times. A report the general
/// member cannot see (unreleased) joining the older campaign must not move it to the top.
#[tokio::test(flavor = "multi_thread")]
async fn hidden_activity_does_not_reorder_the_campaign_list() {
    let data = DataDir::new();
    data.cli(&["member", "import", ROSTER]);
    let (p1, p2) = (token_of(&data, "m150"), token_of(&data, "m151"));
    let general = token_of(&data, "m030");
    let sec = data.add_member("Analyst One", "secretariat", None);
    let daemon = Daemon::start(&data);
    let s = Client::new(&sec);
    let g = Client::new(&general);

    for (token, title, sha) in [(&p1, "Older wave", SHA_X), (&p2, "Newer wave", SHA_Y)] {
        let r = submit(
            &Client::new(token),
            &daemon,
            submission(title, "green", &[("sha256", sha)]),
        )
        .await;
        let (status, body) = s
            .post_json(
                &daemon.url("/api/v1/council/releases"),
                &json!({"report": r["id"]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    wait_current(&daemon).await;
    let (_, before) = g.get(&daemon.url("/api/v1/campaigns")).await;
    assert_eq!(
        titles(&before),
        [
            vec!["Newer wave".to_string()],
            vec!["Older wave".to_string()]
        ]
    );

    // Class 1 adds to the older campaign; unreleased, so hidden from general members.
    submit(
        &Client::new(&p1),
        &daemon,
        submission("Hidden follow-up", "green", &[("sha256", SHA_X)]),
    )
    .await;
    wait_current(&daemon).await;
    let (_, all) = s.get(&daemon.url("/api/v1/campaigns")).await;
    assert_eq!(
        titles(&all)[0].len(),
        2,
        "the follow-up joined the older campaign, now the most recent: {all}"
    );
    let (_, after) = g.get(&daemon.url("/api/v1/campaigns")).await;
    assert_eq!(
        after, before,
        "hidden activity changed the general member's list"
    );
}

/// Sighting ids are a council-wide sequence: a member shown them as numbers would count the
/// sightings everyone else recorded in between. Members get an opaque `S-…`; two sightings
/// by the same member with others' in between look no different from two in a row.
#[tokio::test(flavor = "multi_thread")]
async fn a_members_sighting_ids_count_nothing() {
    let data = DataDir::new();
    data.cli(&["member", "import", ROSTER]);
    let (p1, p2) = (token_of(&data, "m150"), token_of(&data, "m151"));
    let daemon = Daemon::start(&data);
    let (a, b) = (Client::new(&p1), Client::new(&p2));
    submit(
        &a,
        &daemon,
        submission("Seen loader", "green", &[("sha256", SHA_X)]),
    )
    .await;
    wait_current(&daemon).await;
    let sight = json!({
        "target": {"observable": {"type": "sha256", "value": SHA_X}},
        "kind": "seen",
        "count": 1,
        "seen_at": chrono::Utc::now().to_rfc3339(),
    });
    let url = daemon.url("/api/v1/sightings");
    let (status, first) = a.post_json(&url, &sight).await;
    assert_eq!(status, 201, "{first}");
    for _ in 0..3 {
        assert_eq!(b.post_json(&url, &sight).await.0, 201);
    }
    let (_, second) = a.post_json(&url, &sight).await;
    for id in [&first["id"], &second["id"]] {
        let id = id
            .as_str()
            .unwrap_or_else(|| panic!("a number counts sightings: {id}"));
        assert!(id.starts_with("S-") && id.len() == 15, "{id}");
    }
    assert_ne!(first["id"], second["id"]);
}
