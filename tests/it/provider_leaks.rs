//! Provider identity never enters content (#14 findings 4 and 5, and STIX identities):
//! what a format says about who produced the input (MISP `Orgc`/`Org`, STIX `created_by_ref`
//! identities, the imported file's path) reaches the secretariat as `provenance` and nobody
//! else — not in titles, descriptions, tags, search, or STIX exports.

use serde_json::{Value, json};

use crate::util::{Client, Daemon, DataDir, wait_current};

/// A word that appears nowhere but in the provider's identity, so that any occurrence in
/// what another member receives is a leak.
const MARK: &str = "quetzalpower";

/// Everything a class 1 member (not the provider) receives about every campaign and report
/// it can see, plus search hits for the identity's word, as one lower-case text.
async fn what_another_member_sees(daemon: &Daemon, member: &Client) -> String {
    wait_current(daemon).await;
    let mut seen = Vec::new();
    let (status, list) = member
        .get(&daemon.url("/api/v1/campaigns?limit=1000"))
        .await;
    assert_eq!(status, 200, "{list}");
    let mut report_ids = Vec::new();
    for c in list["campaigns"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let (status, detail) = member
            .get(&daemon.url(&format!("/api/v1/campaigns/{id}")))
            .await;
        assert_eq!(status, 200, "{detail}");
        for r in detail["reports"].as_array().unwrap() {
            report_ids.push(r["id"].as_str().unwrap().to_string());
        }
        seen.push(detail);
    }
    assert!(
        !report_ids.is_empty(),
        "the other member sees no report at all, so the test proves nothing: {list}"
    );
    for id in &report_ids {
        let (status, r) = member
            .get(&daemon.url(&format!("/api/v1/reports/{id}")))
            .await;
        assert_eq!(status, 200, "{r}");
        seen.push(r);
    }
    let (status, hits) = member
        .get(&daemon.url(&format!("/api/v1/search?q={MARK}")))
        .await;
    assert_eq!(status, 200, "{hits}");
    assert_eq!(
        hits["hits"].as_array().map(Vec::len),
        Some(0),
        "the provider's identity is searchable: {hits}"
    );
    seen.push(list);
    Value::Array(seen).to_string().to_lowercase()
}

/// The secretariat's view of every report: `provenance` by report title.
async fn secretariat_provenance(daemon: &Daemon, secretariat: &Client) -> Vec<(String, Value)> {
    let (_, list) = secretariat
        .get(&daemon.url("/api/v1/campaigns?limit=1000"))
        .await;
    let mut out = Vec::new();
    for c in list["campaigns"].as_array().unwrap() {
        for r in c["reports"].as_array().unwrap() {
            let id = r["id"].as_str().unwrap();
            let (status, full) = secretariat
                .get(&daemon.url(&format!("/api/v1/reports/{id}")))
                .await;
            assert_eq!(status, 200, "{full}");
            out.push((
                full["title"].as_str().unwrap().to_string(),
                full["provenance"].clone(),
            ));
        }
    }
    out
}

fn misp_event() -> Value {
    json!({"Event": {
        "info": "Beaconing from a substation gateway",
        "uuid": "5f1c9f0e-5a4b-4a1e-9b1e-0c0ffee00001",
        "date": "2026-11-30",
        "analysis": "1",
        "Orgc": {"name": "Quetzalpower Electric Co"},
        "Org": {"name": "Quetzalpower Sharing Desk"},
        "Tag": [{"name": "tlp:green"}],
        "Attribute": [
            {"type": "domain", "value": "gw-update.beacon-example.com"},
            {"type": "sha256", "value": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
        ]
    }})
}

/// Finding 4: a MISP import wrote "MISP event by <Orgc>" into the description, which other
/// members saw in the API, in search and in STIX exports.
#[tokio::test(flavor = "multi_thread")]
async fn misp_organisations_reach_only_the_secretariat() {
    let data = DataDir::new();
    data.add_member("Quetzalpower Electric Co", "class1", Some("electricity"));
    let other = data.add_member("Other Operator", "class1", Some("telecom"));
    let secretariat = data.add_member("Council Secretariat", "secretariat", None);
    let file = data.path().join("event.json");
    std::fs::write(&file, misp_event().to_string()).unwrap();
    let out = data.cli(&[
        "import",
        "--as",
        "Quetzalpower Electric Co",
        "--format",
        "misp",
        file.to_str().unwrap(),
    ]);
    assert!(out.contains(": 1 report R-"), "{out}");

    // The STIX export for the other member: the report's description is in it.
    let stix = data
        .cli(&["export", "--format", "stix", "--as", "Other Operator"])
        .to_lowercase();
    assert!(stix.contains("beaconing from a substation"), "{stix}");
    assert!(
        !stix.contains(MARK),
        "STIX export names the provider: {stix}"
    );

    let daemon = Daemon::start(&data);
    let seen = what_another_member_sees(&daemon, &Client::new(&other)).await;
    assert!(seen.contains("beaconing from a substation"), "{seen}");
    assert!(!seen.contains(MARK), "a member sees the provider: {seen}");

    let prov = secretariat_provenance(&daemon, &Client::new(&secretariat)).await;
    assert_eq!(prov.len(), 1, "{prov:?}");
    let p = &prov[0].1;
    assert_eq!(p["misp_orgc"], json!("Quetzalpower Electric Co"), "{p}");
    assert_eq!(p["misp_org"], json!("Quetzalpower Sharing Desk"), "{p}");
    assert!(p["file"].as_str().unwrap().ends_with("event.json"), "{p}");
}

/// Finding 5: the import file's path became the title of blocklist and text imports (and
/// was searchable), and a path often names the provider.
#[tokio::test(flavor = "multi_thread")]
async fn import_paths_reach_only_the_secretariat() {
    let data = DataDir::new();
    data.add_member("Provider Member", "class1", Some("finance"));
    let other = data.add_member("Other Operator", "class1", Some("telecom"));
    let secretariat = data.add_member("Council Secretariat", "secretariat", None);
    let dir = data.path().join(format!("{MARK}-soc"));
    std::fs::create_dir(&dir).unwrap();
    let list = dir.join("blocklist.txt");
    std::fs::write(
        &list,
        format!("# {MARK} SOC export, do not share outside the council\n203.0.113.41\n203.0.113.42\nbad-host.beacon-example.com\n"),
    )
    .unwrap();
    // A text file whose content has no line of its own to title it.
    let text = dir.join("notes.txt");
    std::fs::write(&text, "\n   \n").unwrap();
    for (format, path) in [("blocklist", &list), ("text", &text)] {
        data.cli(&[
            "import",
            "--as",
            "Provider Member",
            "--format",
            format,
            path.to_str().unwrap(),
        ]);
    }

    let daemon = Daemon::start(&data);
    let seen = what_another_member_sees(&daemon, &Client::new(&other)).await;
    assert!(seen.contains("blocklist import, 3 entries"), "{seen}");
    assert!(
        !seen.contains(MARK),
        "a member sees the provider's path: {seen}"
    );

    let prov = secretariat_provenance(&daemon, &Client::new(&secretariat)).await;
    let files: Vec<&str> = prov
        .iter()
        .filter_map(|(_, p)| p["file"].as_str())
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with(&format!("{MARK}-soc/blocklist.txt"))),
        "{prov:?}"
    );
    let notes = prov
        .iter()
        .find(|(t, _)| t.starts_with("Blocklist import"))
        .map(|(_, p)| p["notes"].clone());
    assert_eq!(
        notes,
        Some(json!([format!(
            "{MARK} SOC export, do not share outside the council"
        )])),
        "{prov:?}"
    );
}

/// STIX `created_by_ref` identities are provenance too: a bundle submitted over the API
/// keeps the identity's name for the secretariat and shows it to nobody else.
#[tokio::test(flavor = "multi_thread")]
async fn stix_identities_reach_only_the_secretariat() {
    let data = DataDir::new();
    let provider = data.add_member("Provider Member", "class1", Some("finance"));
    let other = data.add_member("Other Operator", "class1", Some("telecom"));
    let secretariat = data.add_member("Council Secretariat", "secretariat", None);
    let identity = "identity--4b1a3d6e-0000-4000-8000-00000000cafe";
    let bundle = json!({
        "type": "bundle",
        "id": "bundle--4b1a3d6e-0000-4000-8000-000000000001",
        "objects": [
            {"type": "identity", "spec_version": "2.1", "id": identity,
             "created": "2026-11-30T00:00:00Z", "modified": "2026-11-30T00:00:00Z",
             "name": "Quetzalpower CERT", "identity_class": "organization"},
            {"type": "indicator", "spec_version": "2.1",
             "id": "indicator--4b1a3d6e-0000-4000-8000-000000000002",
             "created": "2026-11-30T00:00:00Z", "modified": "2026-11-30T00:00:00Z",
             "created_by_ref": identity,
             "name": "Loader download host",
             "pattern": "[domain-name:value = 'dl.loader-example.com']",
             "pattern_type": "stix", "valid_from": "2026-11-30T00:00:00Z"}
        ]
    });
    let daemon = Daemon::start(&data);
    let (status, body) = Client::new(&provider)
        .post_raw(
            &daemon.url("/api/v1/reports"),
            "application/stix+json",
            bundle.to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let seen = what_another_member_sees(&daemon, &Client::new(&other)).await;
    assert!(seen.contains("loader download host"), "{seen}");
    assert!(
        !seen.contains(MARK),
        "a member sees the STIX identity: {seen}"
    );

    let prov = secretariat_provenance(&daemon, &Client::new(&secretariat)).await;
    assert_eq!(prov.len(), 1, "{prov:?}");
    assert_eq!(
        prov[0].1["stix_created_by"],
        json!(["Quetzalpower CERT"]),
        "{prov:?}"
    );
}
