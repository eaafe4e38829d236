//! Every fixture format parses to the drafts its file implies; counts were computed from the
//! files with independent Python/jq scripts (see the comments), not from this parser.

use std::path::PathBuf;

use musubi::formats::{self, Format, FormatError, ParseContext, Parsed};
use musubi::model::{ObservableKind, Tlp};

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse(format: &str, rel: &str) -> Parsed {
    let f: Format = format.parse().unwrap();
    formats::parse(&f, &fixture(rel), &ParseContext::default())
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn count_kind(p: &Parsed, kind: ObservableKind) -> usize {
    p.reports
        .iter()
        .flat_map(|r| &r.indicators)
        .filter(|i| i.observable.kind() == kind)
        .count()
}

#[test]
fn kev_json_and_csv_agree() {
    // jq '.vulnerabilities | length' → 1252 (also "count": 1252 in the file).
    let json = parse("kev", "kev/known_exploited_vulnerabilities-2025.01.24.json");
    let csv = parse(
        "kev-csv",
        "kev/known_exploited_vulnerabilities-2025.01.24.csv",
    );
    assert_eq!(json.reports.len(), 1252);
    assert_eq!(csv.reports.len(), 1252);
    let first = &json.reports[0];
    assert_eq!(first.external_id.as_deref(), Some("kev:CVE-2025-23006"));
    assert_eq!(first.indicators[0].observable.key(), "cve:CVE-2025-23006");
    assert!(first.tags.contains(&"CWE-502".to_string()));
    for (a, b) in json.reports.iter().zip(&csv.reports) {
        assert_eq!(a.external_id, b.external_id);
        assert_eq!(a.indicators, b.indicators);
    }
}

#[test]
fn nvd_api2_and_feed_11() {
    assert_eq!(
        parse("nvd", "nvd/api2-CVE-2021-26855.json").reports.len(),
        1
    );
    assert_eq!(parse("nvd", "nvd/api2-CVE-2017-7542.json").reports.len(), 1);
    // python: len(d['vulnerabilities']) → 2
    assert_eq!(parse("nvd", "nvd/api2-simple_search.json").reports.len(), 2);
    // python: len(d['CVE_Items']) → 633 (CVE_data_numberOfCVEs says the same)
    let feed = parse("nvd", "nvd/nvdcve-1.1-recent-2021-07-20.json");
    assert_eq!(feed.reports.len(), 633);
    assert_eq!(count_kind(&feed, ObservableKind::Cve), 633);
    let proxylogon = &parse("nvd", "nvd/api2-CVE-2021-26855.json").reports[0];
    assert!(proxylogon.tags.contains(&"CWE-918".to_string()));
    assert!(
        proxylogon
            .tags
            .contains(&"cpe:microsoft:exchange_server".to_string())
    );
    assert!(
        proxylogon.tags.contains(&"kev".to_string()),
        "cisaExploitAdd marks KEV"
    );
    // The CVSS severity and vector, for the campaign's public context (#15 item 2).
    for tag in [
        "cvss-severity:CRITICAL",
        "cvss-score:9.8",
        "cvss-vector:CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    ] {
        assert!(proxylogon.tags.contains(&tag.to_string()), "{tag}");
    }
}

#[test]
fn stix_apt1_report_collects_referenced_objects() {
    // The one report references all 12 indicators: 4 ipv4 CIDRs, 3 domains, 3 MD5s and
    // 2 x509-certificate:issuer patterns (unsupported), plus 6 malware objects.
    let p = parse("stix", "stix21/apt1.json");
    assert_eq!(p.reports.len(), 1);
    let r = &p.reports[0];
    assert_eq!(
        r.title,
        "APT1: Exposing One of China's Cyber Espionage Units"
    );
    assert_eq!(count_kind(&p, ObservableKind::Cidr), 4);
    assert_eq!(count_kind(&p, ObservableKind::Domain), 3);
    assert_eq!(count_kind(&p, ObservableKind::Md5), 3);
    assert_eq!(count_kind(&p, ObservableKind::MalwareFamily), 6);
    assert_eq!(r.indicators.len(), 16);
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    assert!(
        p.warnings
            .iter()
            .all(|w| w.contains("x509-certificate:issuer"))
    );
    assert!(
        r.description.contains("[x509-certificate:issuer = "),
        "unsupported pattern kept as text"
    );
    assert!(
        r.tags.iter().any(|t| t == "intrusion-set:APT1"),
        "{:?}",
        r.tags
    );
}

#[test]
fn stix_small_examples() {
    let p = parse("stix", "stix21/indicator-for-malicious-url.json");
    assert_eq!(p.reports.len(), 1);
    assert_eq!(
        p.reports[0].indicators[0].observable.key(),
        "url:http://x4z9arb.cn/4712/"
    );
    assert!(
        p.reports[0].tags.iter().any(|t| t.starts_with("malware:")),
        "{:?}",
        p.reports[0].tags
    );

    let p = parse("stix", "stix21/indicators-for-C2-with-COA.json");
    assert_eq!(p.reports.len(), 1);
    assert_eq!(
        p.reports[0].indicators.len(),
        3,
        "ipv4 + sha256 + malware family"
    );

    // Two MATCHES patterns: no observable, both kept as text and warned about.
    let p = parse(
        "stix",
        "stix21/malicious-email-indicator-with-attachment.json",
    );
    assert_eq!(p.warnings.len(), 2);
    assert_eq!(p.reports.len(), 1);
    assert!(p.reports[0].description.contains("MATCHES"));

    // infrastructure.json: SCOs not referenced by observed-data carry no report.
    let p = parse("stix", "stix21/sighting-of-an-indicator.json");
    assert_eq!(p.sightings.len(), 1);
    assert_eq!(p.sightings[0].count, 1);
    assert_eq!(
        p.sightings[0].seen_at.to_rfc3339(),
        "2017-02-27T21:37:11.214+00:00"
    );

    let p = parse("stix", "stix21/mobile-attack-2.0.json");
    assert!(p.reports.is_empty() && !p.warnings.is_empty());
}

#[test]
fn stix_tlp_marking_ids_match_the_oasis_definitions() {
    // Every TLP 2.0 marking-definition object in the fixtures maps to the TLP its name says.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stix21/tlp2/objects/marking-definition");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        let md = &v["objects"][0];
        let id = md["id"].as_str().unwrap();
        let want: Tlp = md["name"].as_str().unwrap().parse().unwrap();
        let bundle = serde_json::json!({"type": "bundle", "id": "bundle--1", "objects": [{
            "type": "indicator", "id": "indicator--1", "pattern": "[ipv4-addr:value = '198.51.100.1']",
            "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z", "object_marking_refs": [id]}]});
        let p = formats::parse(
            &Format::Stix21,
            bundle.to_string().as_bytes(),
            &ParseContext::default(),
        )
        .unwrap();
        assert_eq!(p.reports[0].tlp, want, "{id}");
        seen += 1;
    }
    assert_eq!(seen, 3);
    for (file, want) in [
        ("tlp-amber.json", Tlp::Amber),
        ("tlp-clear.json", Tlp::Clear),
        ("tlp-amber+strict.json", Tlp::AmberStrict),
    ] {
        let raw = fixture(&format!(
            "stix21/tlp2/extension-definition-specifications/tlp-2.0/examples/{file}"
        ));
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let id = v["objects"][0]["id"].as_str().unwrap();
        assert!(
            musubi::formats::stix21::TLP_MARKINGS.contains(&(id, want)),
            "{file}: {id}"
        );
    }
}

#[test]
fn misp_events() {
    // python (attributes of the event and its objects, mapped to observable kinds, distinct):
    // xorist 9 attributes → 4, sunorcal 75 → 54, signsight 13 → 12, powerpool 18 → 11,
    // cloudmensis 22 → 11 (+ 12 ATT&CK ids from galaxy tags), pubg 10 → 3 (+ 2 malware
    // families from galaxies), digitalside 36 → 32.
    for (file, observables) in [
        ("misp-events/circl-57c4445b-xorist-ransomware.json", 4),
        ("misp-events/circl-sunorcal-malware.json", 54),
        ("misp-events/eset-signsight.json", 12),
        ("misp-events/eset-powerpool.json", 11),
        ("misp-events/eset-cloudmensis.json", 11),
        ("misp-events/circl-pubg-ransomware-with-galaxies.json", 3),
        (
            "misp-feed/digitalside/5ef26e32-c718-49f2-b994-1a14c0a80102.json",
            32,
        ),
    ] {
        let p = parse("misp", file);
        assert_eq!(p.reports.len(), 1, "{file}");
        let n = p.reports[0]
            .indicators
            .iter()
            .filter(|i| {
                !matches!(
                    i.observable.kind(),
                    ObservableKind::AttackTechnique | ObservableKind::MalwareFamily
                )
            })
            .count();
        assert_eq!(n, observables, "{file}");
        assert_eq!(p.reports[0].tlp, Tlp::Clear, "tlp:white tag or no tag");
    }
    let p = parse("misp", "misp-events/eset-cloudmensis.json");
    assert_eq!(count_kind(&p, ObservableKind::AttackTechnique), 12);
    let p = parse(
        "misp",
        "misp-events/circl-pubg-ransomware-with-galaxies.json",
    );
    let fam: Vec<&str> = p.reports[0]
        .indicators
        .iter()
        .filter(|i| i.observable.kind() == ObservableKind::MalwareFamily)
        .map(|i| i.observable.value())
        .collect();
    assert_eq!(fam, ["androidos_anserver.a", "backspace"]);
    assert!(p.reports[0].tags.iter().any(|t| t == "actor:APT1 - G0006"));
}

#[test]
fn misp_manifest_lists_events_to_fetch() {
    let m = fixture("misp-feed/digitalside/manifest.json");
    assert_eq!(
        formats::misp::events_to_fetch(&m, 0).unwrap(),
        ["5ef26e32-c718-49f2-b994-1a14c0a80102"]
    );
    assert!(
        formats::misp::events_to_fetch(&m, 1599626526)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn rss_atom_and_malformed_rdf() {
    // python ElementTree: ./channel/item → 4; atom:entry → 2.
    let p = parse("rss", "rss/ubuntu-usn-rss20-2020-09-16.xml");
    assert_eq!(p.reports.len(), 4);
    assert!(p.reports[0].title.starts_with("USN-4504-1"));
    assert!(
        p.reports[0]
            .indicators
            .iter()
            .any(|i| i.observable.key() == "cve:CVE-2020-1968")
    );
    let p = parse("rss", "rss/ipa-myjvn-alertlist-atom.xml");
    assert_eq!(p.reports.len(), 2);
    assert_eq!(
        p.reports[0].external_id.as_deref(),
        Some("MYJVN-ALT-2025-0000")
    );
    assert_eq!(p.reports[0].tlp, Tlp::Clear);

    let err = formats::parse(
        &Format::Rss,
        &fixture("rss/jvndb-new-entry-rss10.rdf"),
        &ParseContext::default(),
    )
    .unwrap_err();
    assert!(matches!(err, FormatError::Xml { line: 116, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with("rss: malformed XML at line 116"), "{msg}");
    assert!(msg.contains("status:Status"), "{msg}");
}

/// 8 MB of empty elements in an RSS document.
pub(crate) fn xml_flood() -> Vec<u8> {
    let mut doc = b"<rss version=\"2.0\"><channel><title>flood</title>".to_vec();
    while doc.len() < 8 * 1024 * 1024 {
        doc.extend_from_slice(b"<a/>");
    }
    doc.extend_from_slice(b"</channel></rss>");
    doc
}

/// #14 (XML cap): 8 MB of empty elements built a tree of two million nodes (288 MB). The
/// parser stops at its element cap with a clear error, quickly; a large real feed (10,000
/// items) is still read.
#[test]
fn xml_element_flood_is_refused_and_large_feeds_still_parse() {
    let started = std::time::Instant::now();
    let err = formats::parse(&Format::Rss, &xml_flood(), &ParseContext::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FormatError::Xml { line: 1, .. }), "{msg}");
    assert!(
        msg.contains("more than 250000 elements and attributes"),
        "{msg}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // The same cap counts attributes: one element with a flood of them.
    let mut attrs = b"<rss version=\"2.0\"><channel ".to_vec();
    for i in 0..300_000 {
        attrs.extend_from_slice(format!("a{i}=\"\" ").as_bytes());
    }
    attrs.extend_from_slice(b"/></rss>");
    let err = formats::parse(&Format::Rss, &attrs, &ParseContext::default()).unwrap_err();
    assert!(err.to_string().contains("more than 250000"), "{err}");

    let mut big = b"<rss version=\"2.0\"><channel><title>big</title>".to_vec();
    for i in 0..10_000 {
        big.extend_from_slice(
            format!(
                "<item><title>Advisory {i}</title><link>https://example.org/a/{i}</link>\
                 <guid isPermaLink=\"false\">adv-{i}</guid><pubDate>Mon, 30 Nov 2026 00:00:00 GMT</pubDate>\
                 <description>CVE-2026-{n:04} fixed</description><category>x</category></item>",
                n = 1000 + i
            )
            .as_bytes(),
        );
    }
    big.extend_from_slice(b"</channel></rss>");
    let p = formats::parse(&Format::Rss, &big, &ParseContext::default()).unwrap();
    assert_eq!(p.reports.len(), 10_000);
}

#[test]
fn rss_well_formed_jvn_items_carry_their_cves() {
    // The same document with the one unquoted attribute fixed.
    let raw = String::from_utf8(fixture("rss/jvndb-new-entry-rss10.rdf")).unwrap();
    let fixed = raw.replace("retCd= 0", "retCd=\"0\"");
    let p = formats::parse(&Format::Rss, fixed.as_bytes(), &ParseContext::default()).unwrap();
    // grep -c '<item rdf:about' → 4
    assert_eq!(p.reports.len(), 4);
    let r = &p.reports[0];
    assert_eq!(r.external_id.as_deref(), Some("JVNDB-2023-028579"));
    assert_eq!(r.indicators[0].observable.key(), "cve:CVE-2023-29001");
    assert!(
        r.indicators
            .iter()
            .all(|i| i.observable.kind() == ObservableKind::Cve),
        "reference URLs are not IOCs: {:?}",
        r.indicators
    );
}

#[test]
fn csaf_advisories_and_discovery() {
    // python: distinct vulnerabilities[].cve per document.
    for (file, cves) in [
        ("csaf/cisa-icsa-24-156-01.json", 1),
        ("csaf/cisa-icsa-24-284-05.json", 3),
        ("csaf/cisa-va-24-262-01.json", 1),
        ("csaf/oasis-2022-evd-uc-01-a-001.json", 1),
        ("csaf/oasis-2022-evd-uc-02-na-001.json", 19),
        ("csaf/oasis-bsi-2022-0001.json", 1),
        ("csaf/oasis-rhsa-2019_1862.json", 0),
        ("csaf/oasis-rhsa-2021_5217.json", 1),
    ] {
        let p = parse("csaf", file);
        assert_eq!(p.reports.len(), 1);
        assert_eq!(count_kind(&p, ObservableKind::Cve), cves, "{file}");
    }
    let r = &parse("csaf", "csaf/cisa-icsa-24-156-01.json").reports[0];
    assert!(
        r.tags.contains(&"vendor:Uniview".to_string()),
        "{:?}",
        r.tags
    );
    assert!(r.tags.contains(&"product:NVR301-04S2-P4".to_string()));
    assert_eq!(
        r.link.as_deref(),
        Some("https://www.cisa.gov/news-events/ics-advisories/icsa-24-156-01")
    );

    let m = formats::csaf::parse_provider_metadata(&fixture(
        "csaf/oasis-example-01-provider-metadata.json",
    ))
    .unwrap();
    assert_eq!(
        m.rolie_feeds,
        [(
            "https://www.example.com/.well-known/csaf/feed-tlp-white.json".to_string(),
            Some(Tlp::Clear)
        )]
    );
    let m =
        formats::csaf::parse_provider_metadata(&fixture("csaf/clouditor-provider-metadata.json"))
            .unwrap();
    assert_eq!(
        m.directories,
        ["https://clouditor.io/.well-known/csaf/white/"]
    );
    let urls =
        formats::csaf::rolie_advisory_urls(&fixture("csaf/cisa-csaf-it-feed-tlp-white.json"))
            .unwrap();
    assert_eq!(urls.len(), 4);
    assert!(urls[0].ends_with("/2024/va-24-254-02.json"));
}

#[test]
fn blocklists() {
    let n = |format: &str, file: &str| {
        let p = parse(format, file);
        assert_eq!(p.reports.len(), 1, "one batch report for {file}");
        p.reports[0].indicators.len()
    };
    // 28 data lines after the header; 192.9.135.73 … python: 27 distinct dst_ip.
    assert_eq!(
        n(
            "blocklist:feodo",
            "blocklists/feodotracker-ipblocklist-2024-04-03.csv"
        ),
        27
    );
    assert_eq!(
        n(
            "blocklist:spamhaus-drop",
            "blocklists/intelmq-spamhaus-drop.txt"
        ),
        2
    );
    assert_eq!(
        n(
            "blocklist:spamhaus-asndrop",
            "blocklists/intelmq-spamhaus-asndrop.txt"
        ),
        2
    );
    assert_eq!(
        n("blocklist:dshield", "blocklists/intelmq-dshield-block.txt"),
        2
    );
    assert_eq!(
        n(
            "blocklist:bambenek",
            "blocklists/intelmq-bambenek-c2-ipmasterlist.txt"
        ),
        1
    );
    // 26 URL lines (http://<ip>), detected per value.
    assert_eq!(n("blocklist", "blocklists/maltrail-ipikabot.txt"), 26);
    let p = parse("blocklist:dshield", "blocklists/intelmq-dshield-block.txt");
    let keys: Vec<String> = p.reports[0]
        .indicators
        .iter()
        .map(|i| i.observable.key())
        .collect();
    assert_eq!(keys, ["cidr:43.229.53.0/24", "cidr:194.63.140.0/24"]);
    let p = parse(
        "blocklist:spamhaus-drop",
        "blocklists/intelmq-spamhaus-drop.txt",
    );
    assert_eq!(
        p.reports[0].indicators[1].observable.key(),
        "cidr:2a06:e480::/29"
    );
}

#[test]
fn detect_recognises_every_fixture() {
    let cases: &[(&str, &str)] = &[
        ("kev/known_exploited_vulnerabilities-2025.01.24.json", "kev"),
        (
            "kev/known_exploited_vulnerabilities-2025.01.24.csv",
            "kev-csv",
        ),
        ("nvd/api2-CVE-2021-26855.json", "nvd"),
        ("nvd/api2-simple_search.json", "nvd"),
        ("nvd/nvdcve-1.1-recent-2021-07-20.json", "nvd"),
        ("stix21/apt1.json", "stix"),
        ("stix21/indicator-for-c2-ip-address.json", "stix"),
        ("stix21/mobile-attack-2.0.json", "stix"),
        ("misp-events/circl-sunorcal-malware.json", "misp"),
        ("misp-events/eset-powerpool.json", "misp"),
        ("misp-feed/digitalside/manifest.json", "misp-manifest"),
        ("rss/jvndb-new-entry-rss10.rdf", "rss"),
        ("rss/ipa-myjvn-alertlist-atom.xml", "rss"),
        ("rss/ubuntu-usn-rss20-2020-09-16.xml", "rss"),
        ("csaf/cisa-icsa-24-156-01.json", "csaf"),
        ("csaf/oasis-rhsa-2021_5217.json", "csaf"),
        ("blocklists/intelmq-spamhaus-drop.txt", "blocklist"),
        ("blocklists/maltrail-ipikabot.txt", "blocklist"),
        (
            "blocklists/intelmq-bambenek-c2-ipmasterlist.txt",
            "blocklist",
        ),
    ];
    for (file, want) in cases {
        let got = formats::detect(&fixture(file)).map(|f| f.name());
        assert_eq!(got, Some(*want), "{file}");
    }
    assert_eq!(
        formats::detect(&fixture("ioc-extraction/ioc-finder-long-article-1.txt")),
        None
    );
}

#[test]
fn errors_say_where() {
    let err = formats::parse(
        &Format::Kev,
        b"{\"vulnerabilities\": [1,",
        &ParseContext::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("kev: invalid JSON at line 1"),
        "{err}"
    );
    let err = formats::parse(&Format::Csaf, b"{}", &ParseContext::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "csaf: $.document: missing: not a CSAF document"
    );
    let err = formats::parse(
        &Format::Stix21,
        br#"{"type":"bundle","objects":[{"type":"indicator"}]}"#,
        &ParseContext::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "stix: $.objects[0].id: missing or not a string"
    );
    // Binary garbage never panics.
    for f in [
        "stix",
        "misp",
        "rss",
        "csaf",
        "kev",
        "kev-csv",
        "nvd",
        "blocklist",
        "text",
    ] {
        let _ = formats::parse(
            &f.parse().unwrap(),
            &[0xff, 0xfe, 0x00, 0x3c, 0x7b],
            &ParseContext::default(),
        );
    }
}
