//! One view module, one definition of "unconfirmed" (#17): a campaign is marked exactly
//! when every report of it that the viewer sees is, in the list and the detail alike.

use serde_json::{Value, json};

use crate::util::{Client, Daemon, DataDir, submission, wait_current};

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn with_confidence(mut body: Value, confidence: &str) -> Value {
    body["confidence"] = json!(confidence);
    body
}

/// Two "suspected" reports sharing a hash form a campaign: none of its reports is
/// unconfirmed, so neither is the campaign (main marked it unconfirmed because none was
/// *confirmed*). One of them unconfirmed and the other suspected: still not. Both
/// unconfirmed: marked, like each of its reports.
#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_is_unconfirmed_exactly_when_its_reports_are() {
    let data = DataDir::new();
    let token = data.add_member("Test Telecom Operator", "class1", Some("telecom"));
    let daemon = Daemon::start(&data);
    let a = Client::new(&token);
    let url = daemon.url("/api/v1/reports?wait=campaign");
    let cases: [(&str, [&str; 2], bool); 3] = [
        ("1", ["suspected", "suspected"], false),
        ("2", ["unconfirmed", "suspected"], false),
        ("3", ["unconfirmed", "unconfirmed"], true),
    ];
    for (n, confidences, marked) in cases {
        let hash = format!("{}{n}", &SHA[..63]);
        let mut campaign = None;
        for (i, confidence) in confidences.iter().enumerate() {
            let body = with_confidence(
                submission(
                    &format!("case {n} report {i}"),
                    "green",
                    &[("sha256", &hash)],
                ),
                confidence,
            );
            let (status, answer) = a.post_json(&url, &body).await;
            assert_eq!(status, 201, "{answer}");
            campaign = answer["reports"][0]["campaign"].as_str().map(String::from);
        }
        let campaign = campaign.expect("campaign assigned");
        wait_current(&daemon).await;

        let (status, detail) = a
            .get(&daemon.url(&format!("/api/v1/campaigns/{campaign}")))
            .await;
        assert_eq!(status, 200, "{detail}");
        let reports = detail["reports"].as_array().unwrap();
        assert_eq!(reports.len(), 2, "{detail}");
        for r in reports {
            assert_eq!(
                r["unconfirmed"],
                json!(r["confidence"] == json!("unconfirmed")),
                "{r}"
            );
        }
        let all = reports.iter().all(|r| r["unconfirmed"] == json!(true));
        assert_eq!(detail["unconfirmed"], json!(all), "case {n}: {detail}");
        assert_eq!(detail["unconfirmed"], json!(marked), "case {n}: {detail}");

        let (status, list) = a.get(&daemon.url("/api/v1/campaigns")).await;
        assert_eq!(status, 200, "{list}");
        let listed = list
            .as_array()
            .or_else(|| list["campaigns"].as_array())
            .unwrap_or_else(|| panic!("{list}"))
            .iter()
            .find(|c| c["id"] == json!(campaign))
            .unwrap_or_else(|| panic!("{campaign} listed: {list}"))
            .clone();
        assert_eq!(listed["unconfirmed"], json!(marked), "case {n}: {listed}");
    }
}
