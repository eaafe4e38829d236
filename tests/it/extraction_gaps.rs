//! Spellings free-text extraction used to miss (#18 item 5), on real text: ASNs written
//! `AS 1234`/`asn1234`, CVE ids with a space, scheme-less URLs with a path, URLs carried
//! percent-encoded in another URL's query, and an address written with its network.

use std::path::PathBuf;

use musubi::formats::extract::extract;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn keys(text: &str) -> Vec<String> {
    extract(text).iter().map(|o| o.key()).collect()
}

/// ioc-finder's own ASN and CVE cases (transcribed in the fixture). Its ASN spelling
/// `ASN1234` is musubi's `AS1234`; CVE ids before 1999 do not exist and musubi refuses them.
#[test]
fn ioc_finder_asn_and_cve_cases() {
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture("ioc-extraction/ioc-finder-asn-cve-cases.json")).unwrap(),
    )
    .unwrap();
    for case in v["cases"].as_array().unwrap() {
        let got = keys(case["input"].as_str().unwrap());
        let mut want: Vec<String> = Vec::new();
        let exp = &case["expected"];
        for a in exp["asns"].as_array().into_iter().flatten() {
            want.push(format!("asn:AS{}", &a.as_str().unwrap()[3..]));
        }
        for c in exp["cves"].as_array().into_iter().flatten() {
            let c = c.as_str().unwrap();
            if &c[4..8] >= "1999" {
                want.push(format!("cve:{c}"));
            }
        }
        for d in exp["domains"].as_array().into_iter().flatten() {
            want.push(format!("domain:{}", d.as_str().unwrap()));
        }
        assert_eq!(got, want, "case {}", case["id"]);
    }
}

/// The ThreatConnect article names the hosting provider's AS twice ("the Autonomous System
/// AS196689"); its prose ("as well", "as a", dates, "AS IS") yields no other AS.
#[test]
fn article_names_its_autonomous_system_once() {
    let text =
        std::fs::read_to_string(fixture("ioc-extraction/ioc-finder-long-article-1.txt")).unwrap();
    let asns: Vec<String> = keys(&text)
        .into_iter()
        .filter(|k| k.starts_with("asn:"))
        .collect();
    assert_eq!(asns, ["asn:AS196689"]);
}

/// CISA's advisory ICSA-24-156-01 points readers to "the ICS webpage on cisa.gov/ics": a
/// URL without a scheme. The advisory's other prose yields no scheme-less URL.
#[test]
fn cisa_advisory_schemeless_url() {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("csaf/cisa-icsa-24-156-01.json")).unwrap())
            .unwrap();
    let notes: Vec<String> = v["document"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap().to_string())
        .collect();
    let text = notes.join("\n");
    let k = keys(&text);
    assert!(k.contains(&"url:http://cisa.gov/ics".to_string()), "{k:#?}");
    let schemeless: Vec<&String> = k
        .iter()
        .filter(|k| k.starts_with("url:http://") && !text.contains(&k[4..]))
        .collect();
    assert_eq!(schemeless, ["url:http://cisa.gov/ics"], "{k:#?}");
}

/// KEV's GLPI entry quotes a URL whose query carries a percent-encoded *path*
/// (`Sl=.%2Finternal_utilities%2FhtmLawed`): no embedded URL and no `2f…` domain comes of it.
#[test]
fn percent_encoded_path_is_not_a_url_or_domain() {
    let text = "https://glpi-project.org/fr/glpi-10-0-3-disponible/, http://www.bioinformatics.org/phplabware/sourceer/sourceer.php?&Sfs=htmLawedTest.php&Sl=.%2Finternal_utilities%2FhtmLawed.;  https://nvd.nist.gov/vuln/detail/CVE-2022-35914";
    let k = keys(text);
    assert!(!k.iter().any(|k| k.contains(":2f")), "{k:#?}");
    assert_eq!(
        k.iter().filter(|k| k.starts_with("url:")).count(),
        3,
        "{k:#?}"
    );
}

/// An open redirector's URL carries the destination percent-encoded in its query; both are
/// indicators. A URL nested unencoded is found too.
#[test]
fn url_inside_url_is_its_own_item() {
    let k = keys(
        "Victims clicked hxxps://www.google[.]com/url?q=https%3A%2F%2Fevil.example.net%2Flogin.php%3Fid%3D7&sa=D \
         and http://redirect.example.org/go?u=http://payload.example.com/a.exe today.",
    );
    assert!(
        k.contains(&"url:https://evil.example.net/login.php?id=7".to_string()),
        "{k:#?}"
    );
    assert!(k.contains(&"domain:evil.example.net".to_string()), "{k:#?}");
    assert!(
        k.contains(&"url:http://payload.example.com/a.exe".to_string()),
        "{k:#?}"
    );
    assert!(
        !k.iter().any(|k| k.contains(":2f") || k.contains(":3a")),
        "{k:#?}"
    );
}

/// `192.0.2.77/24` is the network 192.0.2.0/24 and the host 192.0.2.77; a network written
/// as such (`198.51.100.0/24`) is only the network.
#[test]
fn address_inside_a_cidr_is_its_own_item() {
    assert_eq!(
        keys("C2 at 192.0.2.77/24, block 198.51.100.0/24 and 2001:db8::5/64."),
        [
            "cidr:192.0.2.0/24",
            "ipv4:192.0.2.77",
            "cidr:198.51.100.0/24",
            "cidr:2001:db8::/64",
            "ipv6:2001:db8::5",
        ]
    );
}

/// What must not become an indicator: prose "as", "AS IS", versions, paths, fractions.
#[test]
fn no_false_positives_from_the_new_spellings() {
    for text in [
        "The software is provided AS IS, as well as documentation, as 2014 showed.",
        "Upgrade to version 2.4/3 or 10.0.3 as soon as possible.",
        "see /var/www/example.com/index.php and C:\\sites\\example.com\\x.php",
        "and/or, 50/50, 1/2 of hosts, http://static.as29550.net/x",
        "Contact security@example.com/ for details",
    ] {
        let k = keys(text);
        assert!(
            !k.iter().any(|k| k.starts_with("asn:")
                || k.starts_with("cidr:")
                || k.starts_with("url:http://example.com")),
            "{text}: {k:#?}"
        );
    }
}
