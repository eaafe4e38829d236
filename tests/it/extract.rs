//! Free-text extraction against the msticpy test cases (tests/fixtures/ioc-extraction).
//!
//! msticpy counts distinct *strings*; musubi counts distinct *normalised* observables, so
//! three spellings of one IPv6 address are one observable here. Path types
//! (windows_path, linux_path) have no musubi kind and are left out of the score. The floor
//! below is what this extractor achieves, set just under it so that regressions fail.

use std::path::PathBuf;

use musubi::formats::extract::extract;
use musubi::model::ObservableKind;

fn kind_of(msticpy: &str) -> Option<ObservableKind> {
    Some(match msticpy {
        "ipv4" => ObservableKind::Ipv4,
        "ipv6" => ObservableKind::Ipv6,
        "url" => ObservableKind::Url,
        "dns" => ObservableKind::Domain,
        "md5_hash" => ObservableKind::Md5,
        "sha1_hash" => ObservableKind::Sha1,
        "sha256_hash" => ObservableKind::Sha256,
        "email" => ObservableKind::Email,
        _ => return None,
    })
}

#[test]
fn msticpy_cases_meet_the_floor() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ioc-extraction/msticpy_ioc_extract_cases.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    let (mut expected, mut found, mut false_pos) = (0usize, 0usize, 0usize);
    let mut misses = Vec::new();
    for case in v["cases"].as_array().unwrap() {
        let Some(counts) = case["expected_counts"].as_object() else {
            continue;
        };
        let obs = extract(case["input"].as_str().unwrap());
        for (ty, n) in counts {
            let Some(kind) = kind_of(ty) else { continue };
            let want = n.as_u64().unwrap() as usize;
            let got = obs.iter().filter(|o| o.kind() == kind).count();
            expected += want;
            found += got.min(want);
            false_pos += got.saturating_sub(want);
            if got != want {
                misses.push(format!("{}: {ty} expected {want}, got {got}", case["id"]));
            }
        }
    }
    let recall = found as f64 / expected as f64;
    eprintln!("recall {found}/{expected} = {recall:.3}, false positives {false_pos}; {misses:?}");
    // Achieved: 26/27 = 0.963 (the one miss is the IPv6 spelling counted once after normalisation), 0 FP.
    assert!(recall >= 0.95, "recall {recall:.3}: {misses:?}");
    assert!(false_pos == 0, "{false_pos} false positives: {misses:?}");
}

#[test]
fn long_article_finds_its_indicators_without_noise() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ioc-extraction/ioc-finder-long-article-1.txt");
    let text = std::fs::read_to_string(p).unwrap();
    let obs = extract(&text);
    let keys: Vec<String> = obs.iter().map(|o| o.key()).collect();
    eprintln!("{keys:#?}");
    assert!(keys.contains(
        &"url:https://threatconnect.com/blog/guccifer-2-all-roads-lead-russia/".to_string()
    ));
    // No version-like or date-like dotted numbers (07.26.16) become addresses.
    assert!(!keys.iter().any(|k| k.starts_with("ipv4:07")));
}
