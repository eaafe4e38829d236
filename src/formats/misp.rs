//! MISP events (`{"Event": ...}`, a bare event, or a `{"response": [...]}` search result)
//! and MISP feeds (`manifest.json` + one `<uuid>.json` per event).
//!
//! One event becomes one report. Attributes of the event and of its objects become
//! observables (composite types such as `ip-dst|port`, `domain|ip`, `filename|sha256` give
//! each part); attributes with `to_ids = false` are kept but their comment says so, since
//! MISP uses them for context (a sinkhole, a legitimate host). Attribute types with no
//! observable kind (`link`, `text`, `regkey`, ...) are counted in one warning. `tlp:*` tags
//! set the TLP; galaxy clusters become `malware:` / `actor:` / `attack-pattern:` tags, with
//! malware-family and ATT&CK technique observables.

use std::collections::BTreeMap;

use serde_json::Value;

use super::json::{self, array, parse_time, str_field};
use super::{FormatError, ParseContext, Parsed};
use crate::model::{Confidence, Observable, ObservableKind, ReportDraft, Tlp};

const FORMAT: &str = "misp";

/// Parses one or more MISP events.
pub fn parse(bytes: &[u8], ctx: &ParseContext) -> Result<Parsed, FormatError> {
    let v = json::parse(FORMAT, bytes)?;
    let mut events: Vec<(String, &Value)> = Vec::new();
    if let Some(e) = v.get("Event") {
        events.push(("$.Event".into(), e));
    } else if let Some(r) = v.get("response") {
        let list: Vec<&Value> = match r {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for (i, item) in list.into_iter().enumerate() {
            let e = item.get("Event").unwrap_or(item);
            events.push((format!("$.response[{i}].Event"), e));
        }
    } else if v.get("Attribute").is_some() || v.get("info").is_some() {
        events.push(("$".into(), &v));
    } else {
        return Err(FormatError::structure(
            FORMAT,
            "$",
            "no Event, response or Attribute key: not a MISP event",
        ));
    }
    let mut parsed = Parsed::default();
    for (path, e) in events {
        let d = event(e, &path, ctx, &mut parsed)?;
        parsed.reports.push(d);
    }
    Ok(parsed)
}

/// The observables of one attribute; `None` when its type has no observable kind.
pub fn attribute_observables(ty: &str, value: &str) -> Option<Vec<Observable>> {
    use ObservableKind::*;
    let ip = |v: &str| {
        let k = if v.contains('/') {
            Cidr
        } else if v.contains(':') {
            Ipv6
        } else {
            Ipv4
        };
        Observable::parse(k, v).ok()
    };
    let one = |k: ObservableKind, v: &str| Observable::parse(k, v).ok();
    let (first, second) = match value.split_once('|') {
        Some((a, b)) => (a, Some(b)),
        None => (value, None),
    };
    let out: Vec<Option<Observable>> = match ty {
        "ip-src" | "ip-dst" => vec![ip(value)],
        "ip-src|port" | "ip-dst|port" => vec![ip(first)],
        "domain" | "hostname" => vec![one(Domain, value)],
        "hostname|port" => vec![one(Domain, first)],
        "domain|ip" => vec![one(Domain, first), second.and_then(ip)],
        "url" | "uri" => vec![one(Url, value)],
        "email" | "email-src" | "email-dst" | "email-reply-to" | "whois-registrant-email" => {
            vec![one(Email, value)]
        }
        "md5" | "sha1" | "sha256" | "ssdeep" | "filename" => {
            let k = match ty {
                "md5" => Md5,
                "sha1" => Sha1,
                "sha256" => Sha256,
                "ssdeep" => Ssdeep,
                _ => Filename,
            };
            vec![one(k, value)]
        }
        "filename|md5" | "filename|sha1" | "filename|sha256" | "filename|ssdeep" => {
            let k = match ty {
                "filename|md5" => Md5,
                "filename|sha1" => Sha1,
                "filename|sha256" => Sha256,
                _ => Ssdeep,
            };
            vec![one(Filename, first), second.and_then(|h| one(k, h))]
        }
        "vulnerability" => vec![one(Cve, value)],
        "AS" => vec![one(Asn, value)],
        _ => return None,
    };
    Some(out.into_iter().flatten().collect())
}

fn tlp_of_tag(tag: &str) -> Option<Tlp> {
    tag.to_ascii_lowercase()
        .strip_prefix("tlp:")
        .and_then(|t| t.parse().ok())
}

/// `misp-galaxy:mitre-attack-pattern="Launch Daemon - T1543.004"` → (type, value).
fn galaxy_tag(tag: &str) -> Option<(&str, &str)> {
    let rest = tag.strip_prefix("misp-galaxy:")?;
    let (ty, value) = rest.split_once('=')?;
    Some((ty, value.trim_matches('"')))
}

fn add_cluster(d: &mut ReportDraft, ty: &str, value: &str) {
    let malware = [
        "mitre-malware",
        "malpedia",
        "ransomware",
        "android",
        "banker",
        "botnet",
        "rat",
        "stealer",
        "backdoor",
        "exploit-kit",
        "mitre-mobile-malware",
    ];
    let actor = [
        "threat-actor",
        "mitre-intrusion-set",
        "microsoft-activity-group",
        "mitre-mobile-intrusion-set",
    ];
    let tag = if malware.contains(&ty) {
        // MITRE clusters append their id ("BACKSPACE - S0031"); the family is the name.
        let family = match value.rsplit_once(" - ") {
            Some((name, id)) if id.len() == 5 && id.starts_with('S') => name,
            _ => value,
        };
        if let Ok(o) = Observable::parse(ObservableKind::MalwareFamily, family) {
            d.push_observable(o, Some(format!("MISP galaxy {ty}")));
        }
        format!("malware:{value}")
    } else if actor.contains(&ty) {
        format!("actor:{value}")
    } else if ty.contains("attack-pattern") {
        if let Some((_, id)) = value.rsplit_once(" - ")
            && let Ok(o) = Observable::parse(ObservableKind::AttackTechnique, id)
        {
            d.push_observable(o, Some(value.to_string()));
        }
        format!("attack-pattern:{value}")
    } else {
        format!("{ty}:{value}")
    };
    if !d.tags.contains(&tag) {
        d.tags.push(tag);
    }
}

fn event(
    e: &Value,
    path: &str,
    ctx: &ParseContext,
    parsed: &mut Parsed,
) -> Result<ReportDraft, FormatError> {
    let info = str_field(e, "info").ok_or_else(|| {
        FormatError::structure(FORMAT, format!("{path}.info"), "missing or not a string")
    })?;
    let mut d = ReportDraft::new(info, ctx.default_tlp);
    let uuid = str_field(e, "uuid");
    d.external_id = uuid.map(str::to_string);
    d.observed_at = str_field(e, "date").and_then(parse_time);
    d.confidence = match str_field(e, "analysis") {
        Some("2") => Confidence::Confirmed,
        Some("1") => Confidence::Suspected,
        _ => Confidence::Unconfirmed,
    };
    // The organisations name the provider: secretariat-only provenance, never content.
    let org_name = |key: &str| {
        e.get(key)
            .and_then(|o| str_field(o, "name"))
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    };
    let (orgc, org) = (org_name("Orgc"), org_name("Org"));
    if orgc.is_some() || org.is_some() {
        let p = d.provenance_mut();
        p.misp_orgc = orgc;
        p.misp_org = org;
    }
    let mut tlps = Vec::new();
    for t in array(e, "Tag") {
        let Some(name) = str_field(t, "name") else {
            continue;
        };
        if let Some(tlp) = tlp_of_tag(name) {
            tlps.push(tlp);
        } else if let Some((ty, value)) = galaxy_tag(name) {
            add_cluster(&mut d, ty, value);
        } else if !d.tags.iter().any(|x| x == name) {
            d.tags.push(name.to_string());
        }
    }
    if let Some(t) = tlps.into_iter().max() {
        d.tlp = t;
    }
    for g in array(e, "Galaxy") {
        let ty = str_field(g, "type").unwrap_or("galaxy");
        for c in array(g, "GalaxyCluster") {
            if let Some(value) = str_field(c, "value") {
                add_cluster(&mut d, ty, value);
            }
        }
    }
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut invalid = 0usize;
    let mut attrs: Vec<(String, &Value, Option<&str>)> = array(e, "Attribute")
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("{path}.Attribute[{i}]"), a, None))
        .collect();
    for (j, o) in array(e, "Object").iter().enumerate() {
        let name = str_field(o, "name");
        attrs.extend(
            array(o, "Attribute")
                .iter()
                .enumerate()
                .map(|(k, a)| (format!("{path}.Object[{j}].Attribute[{k}]"), a, name)),
        );
    }
    for (at, a, object) in attrs {
        let (Some(ty), Some(value)) = (str_field(a, "type"), str_field(a, "value")) else {
            invalid += 1;
            parsed.skipped(at, "no type or value");
            continue;
        };
        if ty == "link" && d.link.is_none() {
            d.link = Some(value.to_string());
        }
        let mut observables = attribute_observables(ty, value);
        // Real events often carry a URL without its scheme (`adstore.example.com/x`):
        // kept with `http://` assumed, and said so, rather than dropped as invalid.
        if matches!(ty, "url" | "uri")
            && observables.as_ref().is_some_and(Vec::is_empty)
            && !value.contains("://")
            && let Some(obs) = attribute_observables(ty, &format!("http://{}", value.trim()))
            && !obs.is_empty()
        {
            parsed.normalised(
                at.clone(),
                format!("{ty} {value:?} has no scheme; http:// assumed"),
            );
            observables = Some(obs);
        } else {
            match &observables {
                None => parsed.skipped(
                    at.clone(),
                    format!("attribute type {ty} has no observable kind"),
                ),
                Some(obs) if obs.is_empty() => {
                    parsed.skipped(at.clone(), format!("{ty} {value:?} is not a valid {ty}"))
                }
                Some(_) => parsed.kept(at.clone()),
            }
        }
        match observables {
            None => *skipped.entry(ty.to_string()).or_default() += 1,
            Some(obs) if obs.is_empty() => invalid += 1,
            Some(obs) => {
                let to_ids = a.get("to_ids").and_then(Value::as_bool).unwrap_or(true);
                let mut parts: Vec<String> = Vec::new();
                if let Some(c) = str_field(a, "comment") {
                    parts.push(c.to_string());
                }
                if let Some(o) = object {
                    parts.push(format!("object {o}"));
                }
                if !to_ids {
                    parts.push("context only (to_ids=false)".to_string());
                }
                let comment = (!parts.is_empty()).then(|| parts.join("; "));
                for o in obs {
                    d.push_observable(o, comment.clone());
                }
            }
        }
    }
    let label = uuid.unwrap_or(path);
    if !skipped.is_empty() {
        let list: Vec<String> = skipped.iter().map(|(t, n)| format!("{t}×{n}")).collect();
        parsed.warnings.push(format!(
            "event {label}: attribute types without an observable kind skipped: {}",
            list.join(", ")
        ));
    }
    if invalid > 0 {
        parsed.warnings.push(format!(
            "event {label}: {invalid} attribute(s) with an invalid value skipped"
        ));
    }
    Ok(d)
}

/// One entry of a MISP feed `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub uuid: String,
    pub info: String,
    /// Unix seconds of the event's last change.
    pub timestamp: i64,
}

/// Parses a MISP feed manifest (`{uuid: {info, timestamp, ...}}`), oldest first.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<ManifestEntry>, FormatError> {
    let v = json::parse("misp-manifest", bytes)?;
    let map = v.as_object().ok_or_else(|| {
        FormatError::structure(
            "misp-manifest",
            "$",
            "expected an object keyed by event uuid",
        )
    })?;
    let mut out = Vec::with_capacity(map.len());
    for (uuid, e) in map {
        let ts = e.get("timestamp").and_then(|t| {
            t.as_i64()
                .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
        });
        let Some(timestamp) = ts else {
            return Err(FormatError::structure(
                "misp-manifest",
                format!("$[\"{uuid}\"].timestamp"),
                "missing or not a unix time",
            ));
        };
        out.push(ManifestEntry {
            uuid: uuid.clone(),
            info: str_field(e, "info").unwrap_or_default().to_string(),
            timestamp,
        });
    }
    out.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.uuid.cmp(&b.uuid)));
    Ok(out)
}

/// The uuids of the events changed after `last_seen` (unix seconds), oldest first: the
/// events a poller must fetch (`<feed base>/<uuid>.json`).
pub fn events_to_fetch(manifest: &[u8], last_seen: i64) -> Result<Vec<String>, FormatError> {
    Ok(parse_manifest(manifest)?
        .into_iter()
        .filter(|e| e.timestamp > last_seen)
        .map(|e| e.uuid)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_types_give_each_part() {
        let keys = |t, v| {
            attribute_observables(t, v)
                .unwrap()
                .iter()
                .map(Observable::key)
                .collect::<Vec<_>>()
        };
        assert_eq!(keys("ip-dst|port", "192.0.2.1|443"), ["ipv4:192.0.2.1"]);
        assert_eq!(
            keys("domain|ip", "evil.example.com|2001:db8::1"),
            ["domain:evil.example.com", "ipv6:2001:db8::1"]
        );
        assert_eq!(
            keys("filename|md5", "a.exe|d41d8cd98f00b204e9800998ecf8427e"),
            ["filename:a.exe", "md5:d41d8cd98f00b204e9800998ecf8427e"]
        );
        assert!(attribute_observables("regkey", "HKLM\\x").is_none());
    }

    /// Each attribute has its outcome: a URL without a scheme kept with `http://` assumed
    /// (it was dropped as invalid), a type without an observable kind skipped by name, a
    /// value that is no observable skipped, the rest kept.
    #[test]
    fn every_attribute_has_an_outcome_and_a_schemeless_url_is_normalised() {
        let p = parse(
            br#"{"Event":{"info":"x","uuid":"u1","Attribute":[
                {"type":"url","value":"adstore.example.com/x.php"},
                {"type":"domain","value":"evil.example.net"},
                {"type":"text","value":"hello"},
                {"type":"ip-dst","value":"not an address"}],
              "Object":[{"name":"url","Attribute":[{"type":"url","value":"https://a.example.org/"}]}]}}"#,
            &ParseContext::default(),
        )
        .unwrap();
        let urls: Vec<&str> = p.reports[0]
            .indicators
            .iter()
            .map(|i| i.observable.value())
            .collect();
        assert!(
            urls.contains(&"http://adstore.example.com/x.php"),
            "{urls:?}"
        );
        assert_eq!(
            p.counts(),
            crate::formats::OutcomeCounts {
                kept: 2,
                normalised: 1,
                skipped: 2
            }
        );
        assert_eq!(p.items[0].at, "$.Event.Attribute[0]");
        assert!(
            matches!(&p.items[0].outcome, crate::formats::Outcome::Normalised { why } if why.contains("http:// assumed"))
        );
        assert_eq!(p.items[4].at, "$.Event.Object[0].Attribute[0]");
        assert!(
            p.warnings.iter().any(|w| w.contains("http:// assumed")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn to_ids_false_is_marked_and_tlp_tag_applies() {
        let p = parse(
            br#"{"Event":{"info":"x","uuid":"u1","Tag":[{"name":"tlp:amber"}],"Attribute":[
                {"type":"ip-dst","value":"192.0.2.1","to_ids":false},
                {"type":"text","value":"hello"}]}}"#,
            &ParseContext::default(),
        )
        .unwrap();
        let d = &p.reports[0];
        assert_eq!(d.tlp, Tlp::Amber);
        assert_eq!(
            d.indicators[0].comment.as_deref(),
            Some("context only (to_ids=false)")
        );
        assert!(p.warnings[0].contains("text×1"), "{:?}", p.warnings);
    }

    #[test]
    fn organisations_are_provenance_not_content() {
        let p = parse(
            br#"{"Event":{"info":"Phishing wave","uuid":"u2",
                "Orgc":{"name":"Acme Power Co"},"Org":{"name":"Acme Sharing Hub"},
                "Attribute":[{"type":"ip-dst","value":"192.0.2.1"}]}}"#,
            &ParseContext::default(),
        )
        .unwrap();
        let d = &p.reports[0];
        let shown = format!(
            "{} {} {:?} {:?}",
            d.title, d.description, d.tags, d.indicators
        );
        assert!(!shown.contains("Acme"), "{shown}");
        let prov = d.provenance.as_ref().unwrap();
        assert_eq!(prov.misp_orgc.as_deref(), Some("Acme Power Co"));
        assert_eq!(prov.misp_org.as_deref(), Some("Acme Sharing Hub"));
    }

    #[test]
    fn manifest_lists_newer_events() {
        let m = br#"{"b":{"info":"B","timestamp":"200"},"a":{"info":"A","timestamp":100},"c":{"info":"C","timestamp":"300"}}"#;
        assert_eq!(events_to_fetch(m, 150).unwrap(), ["b", "c"]);
        assert_eq!(events_to_fetch(m, 0).unwrap(), ["a", "b", "c"]);
        let err = events_to_fetch(br#"{"a":{}}"#, 0).unwrap_err().to_string();
        assert!(err.contains("$[\"a\"].timestamp"), "{err}");
    }
}
