//! Nothing silently dropped (issue #18, item 4): every format says per item what it kept,
//! normalised or skipped, and why; the import summary, the API's answer and TAXII's status
//! carry it. Real fixture files.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::util::{BIN, Client, Daemon, DataDir};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A MISP `url` attribute without a scheme was dropped as invalid. The real DigitalSide
/// event carries 14 URLs; no real event among the fixtures carries a scheme-less one, so
/// this test writes the same event with the scheme taken off (the shape MISP instances
/// hold, e.g. `adstore.example.com/x`): each is kept with `http://` assumed, and said so.
/// Fails before the outcomes (the 14 URLs were dropped, the summary had no item counts).
#[test]
fn a_misp_url_without_scheme_is_kept_normalised_and_said_so() {
    let data = DataDir::new();
    data.add_member("Misp Member", "class1", None);
    let real = std::fs::read_to_string(fixture(
        "misp-feed/digitalside/5ef26e32-c718-49f2-b994-1a14c0a80102.json",
    ))
    .unwrap();
    assert_eq!(
        real.matches("\"http://98.159.").count(),
        14,
        "the real event"
    );
    let event = data.path().join("event.json");
    std::fs::write(&event, real.replace("\"http://98.159.", "\"98.159.")).unwrap();
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "import",
            event.to_str().unwrap(),
            "--as",
            "Misp Member",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let file = &v["files"][0];
    assert_eq!(file["items"]["normalised"], 14, "{v}");
    let notes = file["notes"].as_array().unwrap();
    let normalised: Vec<&Value> = notes
        .iter()
        .filter(|n| n["outcome"] == "normalised")
        .collect();
    assert_eq!(normalised.len(), 14, "{v}");
    assert!(
        normalised[0]["at"]
            .as_str()
            .unwrap()
            .starts_with("$.Event.Attribute["),
        "{v}"
    );
    assert!(
        normalised[0]["why"]
            .as_str()
            .unwrap()
            .contains("http:// assumed"),
        "{v}"
    );
    // Attribute types without an observable kind (text, datetime, mime-type, ...) are
    // skipped by name, not silently.
    assert!(
        notes
            .iter()
            .any(|n| n["outcome"] == "skipped" && n["why"].as_str().unwrap().contains("text")),
        "{v}"
    );
    assert!(file["items"]["kept"].as_u64().unwrap() > 14, "{v}");
    // The URLs are stored as indicators: a search for one finds the report.
    let hits: Value =
        serde_json::from_str(&data.cli(&["search", "\"http://98.159.99.70/3307\"", "--json"]))
            .unwrap();
    assert_eq!(hits["hits"].as_array().unwrap().len(), 1, "{hits}");

    // The text summary shows the counts per file and in the total.
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data.path())
        .args(["import", event.to_str().unwrap(), "--as", "Misp Member"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" normalised, "), "{stdout}");
    assert!(stdout.contains("14 normalised"), "{stdout}");
}

/// The API's answer says what became of each object of a STIX bundle: a course of action
/// carries nothing musubi keeps and is named as skipped, the indicators are kept. Fails
/// before the outcomes (the answer held the report ids only).
#[tokio::test(flavor = "multi_thread")]
async fn the_api_answer_names_skipped_objects() {
    let data = DataDir::new();
    let token = data.add_member("Stix Member", "class1", None);
    let daemon = Daemon::start(&data);
    let client = Client::new(&token);
    let bundle = std::fs::read(fixture("stix21/indicators-for-C2-with-COA.json")).unwrap();
    let (status, body) = client
        .post_raw(
            &daemon.url("/api/v1/reports"),
            "application/stix+json;version=2.1",
            bundle.clone(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["items"]["kept"], 7, "{body}");
    assert_eq!(body["items"]["skipped"], 1, "{body}");
    assert_eq!(
        body["notes"][0]["at"], "course-of-action--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "{body}"
    );
    assert_eq!(body["notes"][0]["outcome"], "skipped", "{body}");

    // TAXII: the same bundle posted as an envelope; the status counts the outcomes and the
    // skipped object's success says why.
    let doc: Value = serde_json::from_slice(&bundle).unwrap();
    let envelope = serde_json::json!({ "objects": doc["objects"] });
    let (status, st) = client
        .post_raw(
            &daemon.url("/taxii2/api/collections/members/objects/"),
            "application/taxii+json;version=2.1",
            envelope.to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 202, "{st}");
    assert_eq!(st["x_musubi_items"]["skipped"], 1, "{st}");
    let coa = st["successes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "course-of-action--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f")
        .expect("the course of action is listed");
    assert!(
        coa["message"].as_str().unwrap().starts_with("skipped: "),
        "{st}"
    );
}
