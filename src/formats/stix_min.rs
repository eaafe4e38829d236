//! A minimal STIX 2.1 reader for TAXII submissions — the FALLBACK until the full STIX 2.1
//! parser (`formats::stix21`, written in parallel) lands; at merge, TAXII POST should call
//! that parser instead and this module can go.
//!
//! It takes the objects of one TAXII envelope or STIX bundle and makes one report draft:
//! - `indicator`s give the observables of their pattern, read by the full pattern parser
//!   ([`super::stix_pattern`]); an indicator with any part that parser cannot represent is
//!   refused whole;
//! - `vulnerability` objects named `CVE-...` give CVEs;
//! - a `report` object gives the title, description and labels;
//! - the most restrictive TLP marking on the objects gives the TLP (TLP:AMBER if none).
//!
//! Every object gets an outcome, for the TAXII status resource: taken, used as context
//! (identity, marking-definition, relationship, report), or refused with the reason.

use serde_json::Value;

use super::stix_pattern;
use crate::model::{Confidence, Observable, ObservableKind, ReportDraft, Tlp};
use crate::outputs::stix::{parse_timestamp, tlp_of_marking};

/// The TLP of submissions that carry no TLP marking: AMBER (council members only), the
/// narrowest label that still lets the council correlate and share among members.
pub const DEFAULT_TLP: Tlp = Tlp::Amber;

const MAX_TITLE: usize = 1_000;

/// What happened to one object of the submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub id: String,
    /// The object's `modified` (or `created`), if it has one.
    pub version: Option<String>,
    /// Why it was refused, or how it was used.
    pub message: Option<String>,
}

/// The result of converting one envelope.
#[derive(Debug, Clone, Default)]
pub struct Converted {
    /// The report draft, if any object gave an observable.
    pub draft: Option<ReportDraft>,
    pub successes: Vec<Outcome>,
    pub failures: Vec<Outcome>,
}

/// The observables of a STIX pattern, or why the indicator cannot be taken. Strict, like
/// the API's STIX submissions ([`crate::formats::stix21::object_problem`]): a pattern with
/// any part musubi cannot represent (another operator or object path, an invalid value)
/// fails whole, so that nothing of a failed object is stored and the status resource tells
/// the member exactly what was not taken.
pub fn observables_of_pattern(pattern: &str) -> Result<Vec<Observable>, String> {
    let out = stix_pattern::parse(pattern).map_err(|e| e.to_string())?;
    if !out.unsupported.is_empty() {
        return Err(format!(
            "pattern uses what musubi cannot store: {}",
            out.unsupported.join("; ")
        ));
    }
    if out.observables.is_empty() {
        return Err("pattern names no observable".into());
    }
    Ok(out.observables)
}

fn version_of(o: &Value) -> Option<String> {
    o.get("modified")
        .or_else(|| o.get("created"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn tlp_of(o: &Value) -> Option<Tlp> {
    o.get("object_marking_refs")?
        .as_array()?
        .iter()
        .filter_map(|m| m.as_str().and_then(tlp_of_marking))
        .max()
}

fn confidence_of(o: &Value) -> Option<Confidence> {
    let n = o.get("confidence")?.as_u64()?;
    Some(match n {
        85.. => Confidence::Confirmed,
        50..85 => Confidence::Suspected,
        _ => Confidence::Unconfirmed,
    })
}

/// Converts the objects of one envelope or bundle into (at most) one report draft.
pub fn convert(objects: &[Value]) -> Converted {
    let mut out = Converted::default();
    let mut observables: Vec<Observable> = Vec::new();
    let mut tlp: Option<Tlp> = None;
    let mut report: Option<&Value> = None;
    let mut first_name: Option<String> = None;
    let mut external_id: Option<String> = None;
    let mut observed_at = None;
    let mut confidence: Option<Confidence> = None;
    for (n, o) in objects.iter().enumerate() {
        let id = o
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("(object {n} without id)"));
        let outcome = |message: Option<String>| Outcome {
            id: id.clone(),
            version: version_of(o),
            message,
        };
        let kind = o.get("type").and_then(Value::as_str).unwrap_or_default();
        let taken = match kind {
            "indicator" => {
                let pattern_type = o.get("pattern_type").and_then(Value::as_str);
                match (pattern_type, o.get("pattern").and_then(Value::as_str)) {
                    (Some("stix"), Some(p)) => observables_of_pattern(p),
                    (Some(other), _) if other != "stix" => {
                        Err(format!("pattern_type {other:?} is not taken (only stix)"))
                    }
                    _ => Err("indicator without a pattern".into()),
                }
            }
            "vulnerability" => o
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| "vulnerability without a name".to_string())
                .and_then(|name| {
                    Observable::parse(ObservableKind::Cve, name)
                        .map(|o| vec![o])
                        .map_err(|e| e.to_string())
                }),
            "report" => {
                report = report.or(Some(o));
                out.successes
                    .push(outcome(Some("used as the report's title and text".into())));
                continue;
            }
            "identity"
            | "marking-definition"
            | "relationship"
            | "extension-definition"
            | "campaign"
            | "grouping" => {
                out.successes.push(outcome(Some("used as context".into())));
                continue;
            }
            "" => Err("object without a type".into()),
            other => Err(format!(
                "{other} objects are not taken by this server yet (indicators and vulnerabilities are)"
            )),
        };
        match taken {
            Ok(list) => {
                for ob in list {
                    if !observables.contains(&ob) {
                        observables.push(ob);
                    }
                }
                if let Some(t) = tlp_of(o) {
                    tlp = tlp.max(Some(t));
                }
                if first_name.is_none() {
                    first_name = o.get("name").and_then(Value::as_str).map(str::to_string);
                }
                external_id = external_id.or(Some(id.clone()));
                if let Some(t) = o
                    .get("valid_from")
                    .and_then(Value::as_str)
                    .and_then(parse_timestamp)
                {
                    observed_at = Some(observed_at.map_or(t, |o: chrono::DateTime<_>| o.min(t)));
                }
                if let Some(c) = confidence_of(o) {
                    confidence = Some(confidence.map_or(c, |o: Confidence| lower(o, c)));
                }
                out.successes.push(outcome(None));
            }
            Err(message) => out.failures.push(outcome(Some(message))),
        }
    }
    if observables.is_empty() {
        // Nothing is stored: objects that would only have been context for a report are
        // not "accepted" either (a status resource must not claim what is not there).
        for mut o in std::mem::take(&mut out.successes) {
            o.message = Some(
                "not stored: no indicator or vulnerability of this envelope could be taken".into(),
            );
            out.failures.push(o);
        }
        return out;
    }
    if let Some(r) = report {
        if let Some(t) = tlp_of(r) {
            tlp = tlp.max(Some(t));
        }
        if let Some(c) = confidence_of(r) {
            confidence = Some(c);
        }
        external_id = r.get("id").and_then(Value::as_str).map(str::to_string);
    }
    let title = report
        .and_then(|r| r.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(first_name)
        .unwrap_or_else(|| format!("TAXII submission of {} observable(s)", observables.len()));
    let mut title: String = title.trim().to_string();
    if title.is_empty() {
        title = "TAXII submission".into();
    }
    if title.len() > MAX_TITLE {
        let mut end = MAX_TITLE;
        while !title.is_char_boundary(end) {
            end -= 1;
        }
        title.truncate(end);
    }
    let mut draft = ReportDraft::new(title, tlp.unwrap_or(DEFAULT_TLP));
    if let Some(d) = report
        .and_then(|r| r.get("description"))
        .and_then(Value::as_str)
    {
        draft.description = d.to_string();
    }
    if let Some(labels) = report
        .and_then(|r| r.get("labels"))
        .and_then(Value::as_array)
    {
        draft.tags = labels
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
    }
    draft.confidence = confidence.unwrap_or_default();
    draft.observed_at = observed_at;
    draft.external_id = external_id;
    for ob in observables {
        draft.push_observable(ob, None);
    }
    out.draft = Some(draft);
    out
}

/// The less certain of two confidences.
fn lower(a: Confidence, b: Confidence) -> Confidence {
    let rank = |c| match c {
        Confidence::Unconfirmed => 0,
        Confidence::Suspected => 1,
        Confidence::Confirmed => 2,
    };
    if rank(a) <= rank(b) { a } else { b }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn takes_simple_patterns() {
        let obs = observables_of_pattern(
            "[ipv4-addr:value = '198.51.100.7' OR domain-name:value = 'Evil.EXAMPLE']",
        )
        .unwrap();
        assert_eq!(obs.len(), 2);
        assert_eq!(obs[0].kind(), ObservableKind::Ipv4);
        assert_eq!(obs[1].value(), "evil.example");
        let h = observables_of_pattern(
            "[file:hashes.'SHA-256' = 'AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F']",
        )
        .unwrap();
        assert_eq!(h[0].kind(), ObservableKind::Sha256);
        assert!(observables_of_pattern("[process:pid = '4']").is_err());
        assert!(observables_of_pattern("[ipv4-addr:value = 'not-an-ip']").is_err());
    }

    #[test]
    fn one_draft_with_outcomes_per_object() {
        let objects = vec![
            json!({"type": "indicator", "id": "indicator--1", "modified": "2024-01-01T00:00:00Z",
                   "pattern": "[url:value = 'http://bad.example/x']", "pattern_type": "stix",
                   "valid_from": "2024-01-01T00:00:00Z",
                   "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}),
            json!({"type": "indicator", "id": "indicator--2", "pattern": "[x:y = 'z']", "pattern_type": "stix"}),
            json!({"type": "threat-actor", "id": "threat-actor--3"}),
            json!({"type": "identity", "id": "identity--4"}),
        ];
        let c = convert(&objects);
        let d = c.draft.unwrap();
        assert_eq!(d.tlp, Tlp::Green);
        assert_eq!(d.indicators.len(), 1);
        assert_eq!(c.successes.len(), 2);
        assert_eq!(c.failures.len(), 2);
        assert_eq!(
            c.successes[0].version.as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
    }

    #[test]
    fn nothing_taken_gives_no_draft() {
        let c = convert(&[
            json!({"type": "malware", "id": "malware--1"}),
            json!({"type": "report", "id": "report--1", "name": "r"}),
            json!({"type": "indicator", "id": "indicator--1", "pattern_type": "stix",
                   "pattern": "[ipv4-addr:value = '198.51.100.1' AND process:pid = 4]"}),
        ]);
        assert!(c.draft.is_none());
        assert!(c.successes.is_empty(), "{:?}", c.successes);
        assert_eq!(c.failures.len(), 3);
    }
}
