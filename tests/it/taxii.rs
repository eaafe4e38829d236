//! Sharing out through the standards: TAXII 2.1 (driven by the OASIS reference client,
//! taxii2-client), STIX 2.1 exports (checked by the OASIS validator, stix2-validator), the
//! MISP feed and CSV — and the leak and TLP checks over all of them.
//!
//! The Python tools come from `.ci/install`; the tests find Python through
//! `MUSUBI_TEST_PYTHON` (default `/opt/musubi-ci/venv/bin/python`) and FAIL if it is missing.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Client, Daemon, DataDir, wait_current};

/// The TAXII test scripts; the STIX and MISP data they read live in the shared fixture folders.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/taxii");
const STIX21: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stix21");
const MISP_FEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/misp-feed/digitalside"
);
const TAXII_MEDIA: &str = "application/taxii+json;version=2.1";

const PROVIDER: &str = "Kitakami Water Works";
const SHA: &str = "5f1a3c0e0d7b9a2e4c6f8a1b3d5e7f90123456789abcdef0fedcba9876543210";
const STRICT_TITLE: &str = "STRICTSECRET lateral movement";
const STRICT_IP: &str = "198.51.100.99";

fn python() -> PathBuf {
    let p = std::env::var_os("MUSUBI_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/musubi-ci/venv/bin/python"));
    assert!(
        p.exists(),
        "python with stix2-validator and taxii2-client not found at {} — run .ci/install \
         (python3 -m venv /opt/musubi-ci/venv && /opt/musubi-ci/venv/bin/pip install \
         stix2-validator taxii2-client) or set MUSUBI_TEST_PYTHON",
        p.display()
    );
    p
}

/// Runs a fixture script; returns stdout, panics with stderr on failure.
fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(Path::new(FIXTURES).join(script))
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Every line of validate.py's output says the file is valid.
pub(crate) fn assert_valid_stix(files: &[&Path]) {
    let args: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    let out = run_python("validate.py", &args);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), files.len(), "{out}");
    for l in &lines {
        assert_eq!(l["valid"], true, "STIX validator: {l}");
        assert_eq!(l["errors"], json!([]), "{l}");
    }
}

/// The provider's secrets, and the AMBER+STRICT report, must not appear in `text`.
fn assert_no_leak(what: &str, text: &str, secrets: &Secrets) {
    let lower = text.to_lowercase();
    for s in [
        PROVIDER,
        secrets.provider_id.as_str(),
        secrets.provider_token.as_str(),
        "water",
        STRICT_TITLE,
        STRICT_IP,
    ] {
        assert!(
            !lower.contains(&s.to_lowercase()),
            "{what} leaks {s:?}: {}",
            &text[..text.len().min(400)]
        );
    }
}

struct Secrets {
    provider_id: String,
    provider_token: String,
}

fn report(title: &str, tlp: &str, confidence: &str, indicators: &[(&str, &str)]) -> Value {
    json!({
        "title": title,
        "description": format!("{title}: observed on our perimeter"),
        "tlp": tlp,
        "confidence": confidence,
        "indicators": indicators.iter().map(|(t, v)| json!({"type": t, "value": v})).collect::<Vec<_>>(),
    })
}

fn objects_of(bundle: &Value) -> &Vec<Value> {
    bundle["objects"].as_array().expect("objects")
}

fn count_type(objects: &[Value], t: &str) -> usize {
    objects.iter().filter(|o| o["type"] == t).count()
}

async fn taxii_get(
    base: &str,
    path: &str,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = Client::new(token)
        .http
        .get(format!("{base}{path}"))
        .basic_auth("member", Some(token))
        .header("accept", TAXII_MEDIA)
        .send()
        .await
        .expect("GET");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn taxii_and_exports_share_without_leaking() {
    let py = python(); // fail early and clearly if the tools are missing
    let data = DataDir::new();
    // A member of a sector with one member: its sector alone would name it.
    let provider = data.add_member(PROVIDER, "class2", Some("water"));
    let other = data.add_member("Hoshi Railway", "general", Some("railway"));
    let task_force = data.add_member("Aozora Telecom", "class1", Some("telecom"));
    let secretariat = data.add_member("Council Analyst", "secretariat", None);
    let members: Value = serde_json::from_str(&data.cli(&["member", "list", "--json"])).unwrap();
    let provider_id = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == PROVIDER)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let secrets = Secrets {
        provider_id,
        provider_token: provider.clone(),
    };

    let daemon = Daemon::start(&data);
    let url = daemon.url("/api/v1/reports");
    let p = Client::new(&provider);
    for body in [
        report(
            "Invoice phishing against utilities",
            "green",
            "unconfirmed",
            &[
                ("domain", "evil-invoice.example"),
                ("url", "http://evil-invoice.example/pay"),
                ("email", "billing@evil-invoice.example"),
                ("ipv4", "203.0.113.45"),
                ("sha256", SHA),
                ("md5", "0123456789abcdef0123456789abcdef"),
                ("sha1", "0123456789abcdef0123456789abcdef01234567"),
                ("filename", "invoice.pdf.exe"),
                ("cve", "CVE-2024-3400"),
                ("attack-technique", "T1566.001"),
                ("malware-family", "emotet"),
            ],
        ),
        report(
            "Same dropper, confirmed",
            "clear",
            "confirmed",
            &[("ipv4", "203.0.113.45"), ("sha256", SHA)],
        ),
        report(
            STRICT_TITLE,
            "amber+strict",
            "confirmed",
            &[("sha256", SHA), ("ipv4", STRICT_IP)],
        ),
    ] {
        let (status, body) = p.post_json(&url, &body).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = Client::new(&other)
        .post_json(
            &url,
            &report(
                "Scanning from a lone host",
                "amber",
                "unconfirmed",
                &[("ipv4", "192.0.2.200"), ("domain", "scanner.example")],
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // The secretariat releases everything to class 2 and general members (tiered release is
    // tested in council.rs); AMBER+STRICT stays with its provider all the same.
    crate::util::release_all(&data);
    wait_current(&daemon).await;

    // --- TAXII, as a general member, through the reference client. ---
    let out = Command::new(&py)
        .arg(Path::new(FIXTURES).join("client.py"))
        .args([
            &daemon.base,
            &other,
            &format!("{STIX21}/indicators-for-C2-with-COA.json"),
        ])
        .output()
        .expect("run client.py");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "taxii2-client run failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(seen["versions"], json!([TAXII_MEDIA]));
    let cols = &seen["collections"];
    assert_eq!(cols["task-force"]["can_read"], false);
    assert_eq!(cols["members"]["can_write"], true);
    assert_eq!(cols["public"]["can_write"], false);
    // members: each report a general member may see there (the GREEN and CLEAR reports of
    // the provider, the AMBER one of the member itself, all released) with its
    // observables: 11 + 2 + 2 observables (12 indicators, a vulnerability, an
    // attack-pattern, a malware) and 3 reports = 18; the council identity, the TLP
    // extension-definition, 5 TLP and 3 scope markings = 10.
    let m = &cols["members"];
    let ids: Vec<&str> = m["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 28, "{m}");
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        28,
        "pages repeat objects"
    );
    assert_eq!(m["pages"], 14, "28 objects at 2 per page");
    let full: BTreeSet<&str> = m["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(full, ids.iter().copied().collect::<BTreeSet<_>>());
    let objs = m["objects"].as_array().unwrap();
    assert_eq!(count_type(objs, "indicator"), 12);
    assert_eq!(count_type(objs, "vulnerability"), 1);
    assert_eq!(count_type(objs, "attack-pattern"), 1);
    assert_eq!(count_type(objs, "malware"), 1);
    assert_eq!(count_type(objs, "report"), 3);
    let aa = &m["added_after"];
    let mut after: Vec<&str> = aa["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    after.sort();
    assert!(!after.is_empty() && after.len() < 28, "{aa}");
    assert_eq!(json!(after), aa["expected"]);
    assert_eq!(m["one"].as_array().unwrap().len(), 1);
    assert_eq!(m["one_versions"].as_array().unwrap().len(), 1);
    // public: only the CLEAR report: 1 report + 2 indicators, and the 10 common objects.
    assert_eq!(cols["public"]["ids"].as_array().unwrap().len(), 13);
    // The POST goes through the same STIX reader as file import: identity and
    // relationships are context, the 2 indicators give observables, the malware and the
    // course-of-action become the report's tags. Nothing is refused.
    assert_eq!(seen["status"]["status"], "complete");
    assert_eq!(seen["status"]["total_count"], 8);
    assert_eq!(seen["status"]["success_count"], 8);
    assert_eq!(seen["status"]["failure_count"], 0);
    assert_no_leak("TAXII pull of a general member", &stdout, &secrets);

    // The posted bundle became a report of the member.
    wait_current(&daemon).await;
    let (status, r5) = Client::new(&secretariat)
        .get(&daemon.url("/api/v1/reports/R-5"))
        .await;
    assert_eq!(status, 200, "{r5}");
    // Titled as the same bundle is by file import (`formats::stix21`): after its malware.
    assert_eq!(
        r5["title"],
        "STIX: Poison Ivy (2 indicator/observation object(s))"
    );
    assert_eq!(r5["tlp"], "amber");
    // The two indicators' addresses, and the malware family the bundle is about.
    let kinds: BTreeSet<&str> = r5["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(r5["indicators"].as_array().unwrap().len(), 3, "{r5}");
    assert!(kinds.contains("malware-family"), "{r5}");
    assert_eq!(r5["source"]["member"], "m002");

    // Raw HTTP: auth, headers, class and audience limits.
    let base = &daemon.base;
    let (status, _, _) = taxii_get(base, "/taxii2/", "msb_wrong").await;
    assert_eq!(status, 401);
    let (status, _, body) =
        taxii_get(base, "/taxii2/api/collections/task-force/objects/", &other).await;
    assert_eq!(status, 403, "{body}");
    let (status, headers, body) = taxii_get(
        base,
        "/taxii2/api/collections/members/objects/?limit=5&match[type]=indicator",
        &other,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], TAXII_MEDIA);
    assert!(headers.contains_key("x-taxii-date-added-first"));
    assert!(headers.contains_key("x-taxii-date-added-last"));
    assert_eq!(body["objects"].as_array().unwrap().len(), 5);
    assert_eq!(body["more"], true);
    // The task force sees what its class may see: not another member's AMBER+STRICT.
    let (status, _, tf) = taxii_get(
        base,
        "/taxii2/api/collections/task-force/objects/?limit=1000",
        &task_force,
    )
    .await;
    assert_eq!(status, 200);
    assert_no_leak("TAXII pull of a class-1 member", &tf.to_string(), &secrets);
    // The provider's own pull of the members collection: the ceiling holds even for them.
    let (_, _, own) = taxii_get(
        base,
        "/taxii2/api/collections/members/objects/?limit=1000",
        &provider,
    )
    .await;
    assert!(!own.to_string().contains(STRICT_TITLE));
    // The secretariat does see it (so the checks above can fail).
    let (_, _, sec) = taxii_get(
        base,
        "/taxii2/api/collections/task-force/objects/?limit=1000",
        &secretariat,
    )
    .await;
    assert!(sec.to_string().contains(STRICT_TITLE));
    assert!(sec.to_string().contains(STRICT_IP));

    // The pulled collection, as a bundle, passes the OASIS validator.
    let dir = tempfile::tempdir().unwrap();
    let pulled = dir.path().join("pulled.json");
    let bundle = json!({"type": "bundle", "id": "bundle--0d4e2f0a-2c1b-4a53-9b8e-2f7d2a3c4b5e", "objects": m["objects"]});
    std::fs::write(&pulled, bundle.to_string()).unwrap();
    assert_valid_stix(&[&pulled]);

    drop(daemon);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // --- Exports (CLI). ---
    let stix_other = dir.path().join("other.json");
    let stix_other2 = dir.path().join("other2.json");
    let stix_public = dir.path().join("public.json");
    let stix_sec = dir.path().join("sec.json");
    let stix_tf = dir.path().join("tf.json");
    let p = |x: &Path| x.to_str().unwrap().to_string();
    data.cli(&[
        "export",
        "--format",
        "stix",
        "--as",
        "Hoshi Railway",
        "--out",
        &p(&stix_other),
    ]);
    data.cli(&[
        "export",
        "--format",
        "stix",
        "--as",
        "Hoshi Railway",
        "--out",
        &p(&stix_other2),
    ]);
    data.cli(&[
        "export",
        "--format",
        "stix",
        "--audience",
        "public",
        "--out",
        &p(&stix_public),
    ]);
    data.cli(&[
        "export",
        "--format",
        "stix",
        "--as",
        "Council Analyst",
        "--out",
        &p(&stix_sec),
    ]);
    data.cli(&[
        "export",
        "--format",
        "stix",
        "--as",
        "Aozora Telecom",
        "--out",
        &p(&stix_tf),
    ]);
    assert_valid_stix(&[&stix_other, &stix_public, &stix_sec, &stix_tf]);

    let read = |x: &Path| std::fs::read_to_string(x).unwrap();
    assert_eq!(read(&stix_other), read(&stix_other2), "re-export differs");
    let other_bundle: Value = serde_json::from_str(&read(&stix_other)).unwrap();
    // 33 (the campaigns a general member may see, with the identity and markings), plus the posted report's campaign (grouping, 2 address
    // indicators, the malware-family indicator, 1 report).
    assert_eq!(objects_of(&other_bundle).len(), 38);
    // The council's identity and markings are the same objects in TAXII and exports
    // (TAXII serves reports and their observables, exports whole campaigns).
    let exported: BTreeSet<&str> = objects_of(&other_bundle)
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    for o in objs.iter().filter(|o| o["type"] == "identity") {
        assert!(exported.contains(o["id"].as_str().unwrap()));
    }
    let campaign = objects_of(&other_bundle)
        .iter()
        .find(|o| o["type"] == "campaign")
        .unwrap();
    assert_eq!(
        campaign["object_marking_refs"],
        json!(["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]),
        "TLP:GREEN: the most restrictive visible part"
    );
    let identities: Vec<&Value> = objects_of(&other_bundle)
        .iter()
        .filter(|o| o["type"] == "identity")
        .collect();
    assert_eq!(identities.len(), 1, "one council identity only");
    let public_bundle: Value = serde_json::from_str(&read(&stix_public)).unwrap();
    assert_eq!(objects_of(&public_bundle).len(), 9);
    let sec_bundle: Value = serde_json::from_str(&read(&stix_sec)).unwrap();
    // As the general member's plus the secretariat-only parts (the posted report carries a
    // malware-family indicator since TAXII POST reads bundles as file import does).
    assert_eq!(objects_of(&sec_bundle).len(), 41);
    assert!(read(&stix_sec).contains(STRICT_IP));
    for (what, path) in [
        ("STIX export of a general member", &stix_other),
        ("STIX public export", &stix_public),
        ("STIX export of a class-1 member", &stix_tf),
    ] {
        assert_no_leak(what, &read(path), &secrets);
    }

    // MISP feed: layout and round trip.
    let feed = dir.path().join("feed");
    data.cli(&[
        "export",
        "--format",
        "misp-feed",
        "--as",
        "Hoshi Railway",
        "--out",
        &p(&feed),
    ]);
    let events = musubi::outputs::misp_feed::read_feed(&feed).unwrap();
    assert_eq!(events.len(), 3);
    let attributes: usize = events.iter().map(|e| e.attributes.len()).sum();
    // Campaign A, the CLEAR report, and the TAXII-posted report (2 addresses and the
    // malware family).
    assert_eq!(attributes, 11 + 2 + 3);
    let hashes = std::fs::read_to_string(feed.join("hashes.csv")).unwrap();
    assert_eq!(hashes.lines().count(), 16);
    let a = events
        .iter()
        .find(|e| e.attributes.len() == 11)
        .expect("campaign A");
    assert!(a.tags.iter().any(|t| t.name == "tlp:green"));
    let types: BTreeSet<&str> = a.attributes.iter().map(|x| x.kind.as_str()).collect();
    for t in [
        "ip-dst",
        "domain",
        "url",
        "email-src",
        "md5",
        "sha1",
        "sha256",
        "filename",
        "vulnerability",
    ] {
        assert!(types.contains(t), "{t} missing from {types:?}");
    }
    let mut feed_text = String::new();
    for entry in std::fs::read_dir(&feed).unwrap() {
        feed_text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert_no_leak("MISP feed of a general member", &feed_text, &secrets);

    // CSV.
    let csv_path = dir.path().join("other.csv");
    data.cli(&[
        "export",
        "--format",
        "csv",
        "--as",
        "Hoshi Railway",
        "--out",
        &p(&csv_path),
    ]);
    let csv_text = read(&csv_path);
    assert_eq!(csv_text.lines().count(), 1 + 16);
    assert_no_leak("CSV export of a general member", &csv_text, &secrets);

    // No default audience.
    let out = data.cli_output(&["export", "--format", "stix"]);
    assert!(!out.status.success());
}

#[test]
fn feed_reader_reads_a_real_misp_feed() {
    let events = musubi::outputs::misp_feed::read_feed(Path::new(MISP_FEED)).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].uuid, "5ef26e32-c718-49f2-b994-1a14c0a80102");
    assert_eq!(events[0].attributes.len(), 33);
    assert!(events[0].tags.iter().any(|t| t.name == "tlp:white"));
}
