//! Correlation quality on a labelled evaluation built from real MISP events.
//!
//! Each event's observables are split into partial submissions by roster members of
//! different sectors (neighbouring submissions share one value), mixed with public feed noise
//! (CISA KEV CVEs, Feodo Tracker C2 addresses) and with values that appear everywhere (public
//! resolvers, big-provider domains, private addresses). The campaigns the engine finds are
//! scored against the event each submission came from: pairwise precision, recall, F1 and
//! the adjusted Rand index.

use std::collections::HashMap;
use std::path::Path;

use chrono::{Duration, TimeZone, Utc};
use musubi::correlate::{Engine, IdBook, ReportFacts, Source};
use musubi::model::{MemberId, Observable, ObservableKind, Sector, Seq};

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// Usable observables of one MISP event (attributes and object attributes), in file order.
fn misp_observables(path: &Path) -> Vec<Observable> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let events: Vec<&serde_json::Value> = match doc.get("response") {
        Some(r) => r.as_array().unwrap().iter().map(|e| &e["Event"]).collect(),
        None => vec![doc.get("Event").unwrap_or(&doc)],
    };
    let mut out = Vec::new();
    for event in events {
        let mut attrs: Vec<&serde_json::Value> = Vec::new();
        if let Some(a) = event["Attribute"].as_array() {
            attrs.extend(a);
        }
        for object in event["Object"].as_array().into_iter().flatten() {
            attrs.extend(object["Attribute"].as_array().into_iter().flatten());
        }
        for a in attrs {
            let (Some(t), Some(v)) = (a["type"].as_str(), a["value"].as_str()) else {
                continue;
            };
            let kinds: Vec<&str> = t.split('|').collect();
            let values: Vec<&str> = v.split('|').collect();
            for (k, v) in kinds.iter().zip(values) {
                let kind = match *k {
                    "md5" => ObservableKind::Md5,
                    "sha1" => ObservableKind::Sha1,
                    "sha256" => ObservableKind::Sha256,
                    "domain" | "hostname" => ObservableKind::Domain,
                    "url" => ObservableKind::Url,
                    "ip-dst" | "ip-src" => {
                        if v.contains(':') {
                            ObservableKind::Ipv6
                        } else {
                            ObservableKind::Ipv4
                        }
                    }
                    "filename" => ObservableKind::Filename,
                    _ => continue,
                };
                if let Ok(o) = Observable::parse(kind, v)
                    && !out.contains(&o)
                {
                    out.push(o);
                }
            }
        }
    }
    out
}

/// Roster members of critical-infrastructure sectors.
fn sector_members() -> Vec<(MemberId, Sector)> {
    let text = std::fs::read_to_string(fixtures().join("council/roster-2020-06-05.json")).unwrap();
    let roster: serde_json::Value = serde_json::from_str(&text).unwrap();
    roster
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            let sector: Sector = m["sector"].as_str()?.parse().ok()?;
            Some((MemberId(m["id"].as_str()?.to_string()), sector))
        })
        .collect()
}

fn o(kind: &str, v: &str) -> Observable {
    Observable::parse_named(kind, v).unwrap()
}

struct Eval {
    reports: Vec<ReportFacts>,
    /// Label (event of origin, or a unique noise label) per seq.
    labels: HashMap<Seq, usize>,
    events: usize,
    submissions: usize,
}

fn evaluation() -> Eval {
    let mut dir: Vec<_> = std::fs::read_dir(fixtures().join("misp-events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    dir.sort();
    let members = sector_members();
    let common = [
        o("ipv4", "8.8.8.8"),
        o("ipv4", "1.1.1.1"),
        o("domain", "google.com"),
        o("domain", "microsoft.com"),
        o("domain", "www.google.com"),
        o("ipv4", "192.168.1.1"),
        o("ipv4", "10.0.0.5"),
        o("ipv4", "172.16.3.4"),
    ];
    let t0 = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
    let mut reports = Vec::new();
    let mut labels = HashMap::new();
    let mut seq = 0u64;
    let mut next = |labels: &mut HashMap<Seq, usize>, label: usize| {
        seq += 1;
        labels.insert(Seq(seq), label);
        Seq(seq)
    };
    let mut events = 0;
    let mut submissions = 0;
    for (e, path) in dir.iter().enumerate() {
        let obs = misp_observables(path);
        if obs.len() < 2 {
            continue;
        }
        events += 1;
        // 2 to 5 submissions, each a chunk plus the first value of the next chunk, so
        // neighbours share exactly one value — preferably a strong one.
        let parts = (obs.len() / 3).clamp(2, 5);
        let chunk = obs.len().div_ceil(parts);
        let chunks: Vec<Vec<Observable>> = obs.chunks(chunk).map(|c| c.to_vec()).collect();
        for (i, c) in chunks.iter().enumerate() {
            let mut values = c.clone();
            if let Some(nextc) = chunks.get(i + 1) {
                let strong = nextc
                    .iter()
                    .find(|v| {
                        !matches!(
                            v.kind(),
                            ObservableKind::Ipv4 | ObservableKind::Ipv6 | ObservableKind::Filename
                        )
                    })
                    .unwrap_or(&nextc[0]);
                values.push(strong.clone());
            }
            // Everyone also reports the everyday values their tools saw.
            values.push(common[(e + i) % common.len()].clone());
            values.push(common[(e + i + 3) % common.len()].clone());
            let (member, sector) = members[(e * 7 + i * 11) % members.len()].clone();
            let s = next(&mut labels, e);
            reports.push(ReportFacts {
                seq: s,
                at: t0 + Duration::hours(s.0 as i64),
                source: Source::Member {
                    member,
                    sector: Some(sector),
                },
                observables: values,
            });
            submissions += 1;
        }
    }
    // Feed noise: KEV CVEs in batches of 5, Feodo C2 addresses in batches of 3.
    let kev = std::fs::read_to_string(
        fixtures().join("kev/known_exploited_vulnerabilities-2025.01.24.csv"),
    )
    .unwrap();
    let cves: Vec<Observable> = kev
        .lines()
        .skip(1)
        .filter_map(|l| Observable::parse(ObservableKind::Cve, l.split(',').next()?).ok())
        .take(60)
        .collect();
    let feodo = std::fs::read_to_string(
        fixtures().join("blocklists/feodotracker-ipblocklist-2024-04-03.csv"),
    )
    .unwrap();
    let ips: Vec<Observable> = feodo
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("\"first"))
        .filter_map(|l| {
            Observable::parse(ObservableKind::Ipv4, l.split(',').nth(1)?.trim_matches('"')).ok()
        })
        .collect();
    for (noise_label, batch) in (1000..).zip(
        cves.chunks(5)
            .map(|c| ("cisa-kev", c))
            .chain(ips.chunks(3).map(|c| ("feodotracker", c))),
    ) {
        let s = next(&mut labels, noise_label);
        let mut values = batch.1.to_vec();
        values.push(o("ipv4", "8.8.8.8"));
        reports.push(ReportFacts {
            seq: s,
            at: t0 + Duration::hours(s.0 as i64),
            source: Source::Feed {
                feed: batch.0.to_string(),
            },
            observables: values,
        });
    }
    Eval {
        reports,
        labels,
        events,
        submissions,
    }
}

fn choose2(n: u64) -> f64 {
    (n * n.saturating_sub(1) / 2) as f64
}

/// Pairwise precision, recall, F1 and adjusted Rand index of `found` against `truth`.
fn score(truth: &HashMap<Seq, usize>, found: &HashMap<Seq, usize>) -> (f64, f64, f64, f64) {
    let mut table: HashMap<(usize, usize), u64> = HashMap::new();
    let mut rows: HashMap<usize, u64> = HashMap::new();
    let mut cols: HashMap<usize, u64> = HashMap::new();
    for (seq, t) in truth {
        let f = found[seq];
        *table.entry((*t, f)).or_default() += 1;
        *rows.entry(*t).or_default() += 1;
        *cols.entry(f).or_default() += 1;
    }
    let together: f64 = table.values().map(|&n| choose2(n)).sum();
    let same_truth: f64 = rows.values().map(|&n| choose2(n)).sum();
    let same_found: f64 = cols.values().map(|&n| choose2(n)).sum();
    let precision = if same_found == 0.0 {
        1.0
    } else {
        together / same_found
    };
    let recall = if same_truth == 0.0 {
        1.0
    } else {
        together / same_truth
    };
    let f1 = 2.0 * precision * recall / (precision + recall);
    let all = choose2(truth.len() as u64);
    let expected = same_truth * same_found / all;
    let max = (same_truth + same_found) / 2.0;
    let ari = (together - expected) / (max - expected);
    (precision, recall, f1, ari)
}

#[test]
fn campaigns_recover_the_events_behind_partial_submissions() {
    let eval = evaluation();
    // Six fixture events, each with at least two usable observables.
    assert_eq!(eval.events, 6);
    let noise = eval.reports.len() - eval.submissions;
    assert_eq!(
        noise,
        12 + 9,
        "12 KEV batches of 5 CVEs and 9 Feodo batches of 3 addresses"
    );

    for incremental in [false, true] {
        let engine = if incremental {
            let mut e = Engine::new(IdBook::default());
            for r in eval.reports.clone() {
                e.add(r);
            }
            e
        } else {
            Engine::build(IdBook::default(), eval.reports.clone()).0
        };
        let snap = engine.snapshot();
        let mut found = HashMap::new();
        for (i, c) in snap.campaigns.iter().enumerate() {
            for s in &c.reports {
                found.insert(*s, i);
            }
        }
        // Groups of feed items alone are advisories: groups all the same for the score.
        for (i, a) in snap.advisories.iter().enumerate() {
            for s in &a.reports {
                found.insert(*s, snap.campaigns.len() + i);
            }
        }
        let (p, r, f1, ari) = score(&eval.labels, &found);
        println!(
            "correlation quality ({}): {} reports ({} submissions from {} events, {} noise) -> {} campaigns; precision {:.3} recall {:.3} F1 {:.3} ARI {:.3}",
            if incremental { "incremental" } else { "build" },
            eval.reports.len(),
            eval.submissions,
            eval.events,
            noise,
            snap.len(),
            p,
            r,
            f1,
            ari
        );
        assert!(
            f1 >= 0.9,
            "F1 {f1:.3} below 0.9 (precision {p:.3}, recall {r:.3})"
        );
        assert!(ari >= 0.9, "ARI {ari:.3} below 0.9");
        for v in ["8.8.8.8", "1.1.1.1", "192.168.1.1"] {
            assert!(engine.suppressed(&o("ipv4", v)).is_some(), "{v} links");
        }
        assert!(engine.suppressed(&o("domain", "microsoft.com")).is_some());
    }
}
