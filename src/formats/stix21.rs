//! STIX 2.1 bundles.
//!
//! How objects become reports:
//! - each `report` object becomes one report with the observables of the objects it
//!   references (indicator patterns, observed-data, SCOs) and the names of referenced
//!   campaigns, intrusion sets, threat actors, malware and tools as tags;
//! - the indicators, observed-data and SCOs that no report references become ONE report for
//!   the bundle (`external_id` = bundle id): a bundle without a report object is one act of
//!   sharing, and splitting it per indicator would only make correlation re-join the parts.
//!   Its title names the campaign / intrusion set / malware the bundle is about, found
//!   directly or through `relationship` objects;
//! - `sighting` objects of indicators become one [`SightingDraft`] per observable of the
//!   sighted indicator.
//!
//! TLP comes from `object_marking_refs` (TLP 1.0 and 2.0 marking-definition ids, or an
//! embedded `tlp` marking definition); the most restrictive marking of the report and its
//! referenced objects wins. Unsupported indicator patterns are kept verbatim in the report
//! description and listed in the warnings — for bundles from feeds and files. A member's
//! submission is checked first with [`problems`] and rejected whole if any object is
//! invalid, like a native submission: a member who sent a pattern expects it to be
//! correlated, not silently kept as text.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::json::{self, array, parse_time, str_field};
use super::stix_pattern;
use super::{FormatError, ParseContext, Parsed};
use crate::model::{
    Confidence, Observable, ObservableKind, ReportDraft, SightingDraft, SightingKind,
    SightingTarget, Tlp,
};

const FORMAT: &str = "stix";

/// The standard TLP marking-definition ids (TLP 1.0 from the STIX 2.1 specification,
/// TLP 2.0 from the OASIS cti-stix-common-objects extension).
pub const TLP_MARKINGS: &[(&str, Tlp)] = &[
    (
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        Tlp::Clear,
    ),
    (
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        Tlp::Green,
    ),
    (
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        Tlp::Amber,
    ),
    (
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        Tlp::Red,
    ),
    (
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        Tlp::Clear,
    ),
    (
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        Tlp::Green,
    ),
    (
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        Tlp::Amber,
    ),
    (
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        Tlp::AmberStrict,
    ),
    (
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        Tlp::Red,
    ),
];

const NAMED_TYPES: &[&str] = &[
    "campaign",
    "intrusion-set",
    "threat-actor",
    "malware",
    "tool",
];

struct Bundle<'a> {
    objects: Vec<&'a Value>,
    by_id: HashMap<&'a str, &'a Value>,
    /// TLP of marking definitions defined in the bundle itself.
    markings: HashMap<&'a str, Tlp>,
    /// The other end of every relationship, by object id, in bundle order: gathered once,
    /// so that pulling in what each of N indicators indicates costs its own relationships,
    /// not a scan of the whole bundle (a bundle of 10,000 indicators took seconds).
    related: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Bundle<'a> {
    fn tlp_of(&self, obj: &Value) -> Option<Tlp> {
        array(obj, "object_marking_refs")
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|id| {
                TLP_MARKINGS
                    .iter()
                    .find(|(m, _)| *m == id)
                    .map(|(_, t)| *t)
                    .or_else(|| self.markings.get(id).copied())
            })
            .max()
    }
}

fn marking_tlp(obj: &Value) -> Option<Tlp> {
    if let Some(t) = obj.get("definition").and_then(|d| str_field(d, "tlp")) {
        return t.parse().ok();
    }
    if let Some(ext) = obj.get("extensions").and_then(Value::as_object) {
        for e in ext.values() {
            if let Some(t) = str_field(e, "tlp_2_0") {
                return t.parse().ok();
            }
        }
    }
    str_field(obj, "name").and_then(|n| n.parse().ok())
}

/// Collects what an object contributes to a report.
#[derive(Default)]
struct Acc {
    observables: Vec<(Observable, Option<String>)>,
    tags: Vec<String>,
    unsupported_patterns: Vec<String>,
    tlp: Option<Tlp>,
    first_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Who the objects say created them (`created_by_ref` identity names): provenance for
    /// the secretariat, never content.
    created_by: Vec<String>,
    /// The ids of the indicator objects observables came from (first one wins).
    stix_ids: Vec<(Observable, String)>,
}

impl Acc {
    fn tag(&mut self, t: String) {
        if !self.tags.contains(&t) {
            self.tags.push(t);
        }
    }

    /// Records the creator of `obj`: the identity's name when the bundle describes it,
    /// else its id.
    fn creator(&mut self, bundle: &Bundle<'_>, obj: &Value) {
        let Some(id) = str_field(obj, "created_by_ref") else {
            return;
        };
        let name = bundle
            .by_id
            .get(id)
            .and_then(|i| str_field(i, "name"))
            .unwrap_or(id)
            .to_string();
        if !self.created_by.contains(&name) {
            self.created_by.push(name);
        }
    }

    fn time(&mut self, t: Option<chrono::DateTime<chrono::Utc>>) {
        if let Some(t) = t {
            self.first_time = Some(self.first_time.map_or(t, |f| f.min(t)));
        }
    }
}

/// The observable of a cyber-observable object, if it is one musubi understands.
fn sco_observables(obj: &Value) -> Vec<Observable> {
    let ty = str_field(obj, "type").unwrap_or_default();
    let value = str_field(obj, "value");
    let mut out = Vec::new();
    let mut push = |k: ObservableKind, v: Option<&str>| {
        if let Some(o) = v.and_then(|v| Observable::parse(k, v).ok()) {
            out.push(o);
        }
    };
    match ty {
        "ipv4-addr" | "ipv6-addr" => {
            let v = value.unwrap_or_default();
            let k = match (ty, v.contains('/')) {
                (_, true) => ObservableKind::Cidr,
                ("ipv4-addr", _) => ObservableKind::Ipv4,
                _ => ObservableKind::Ipv6,
            };
            push(k, value);
        }
        "domain-name" => push(ObservableKind::Domain, value),
        "url" => push(ObservableKind::Url, value),
        "email-addr" => push(ObservableKind::Email, value),
        "autonomous-system" => {
            let n = obj.get("number").map(|n| n.to_string());
            push(ObservableKind::Asn, n.as_deref());
        }
        "file" => {
            push(ObservableKind::Filename, str_field(obj, "name"));
            if let Some(h) = obj.get("hashes").and_then(Value::as_object) {
                for (k, v) in h {
                    let kind = match k.to_ascii_uppercase().replace('-', "").as_str() {
                        "MD5" => ObservableKind::Md5,
                        "SHA1" => ObservableKind::Sha1,
                        "SHA256" => ObservableKind::Sha256,
                        "SSDEEP" => ObservableKind::Ssdeep,
                        _ => continue,
                    };
                    push(kind, v.as_str());
                }
            }
        }
        _ => {}
    }
    out
}

fn add_object(bundle: &Bundle<'_>, obj: &Value, acc: &mut Acc, warnings: &mut Vec<String>) {
    let ty = str_field(obj, "type").unwrap_or_default();
    let id = str_field(obj, "id").unwrap_or("?");
    if let Some(t) = bundle.tlp_of(obj) {
        acc.tlp = acc.tlp.max(Some(t));
    }
    acc.creator(bundle, obj);
    match ty {
        "indicator" => {
            acc.time(str_field(obj, "valid_from").and_then(parse_time));
            let pattern = str_field(obj, "pattern").unwrap_or_default();
            let pattern_type = str_field(obj, "pattern_type").unwrap_or("stix");
            let comment = str_field(obj, "name").map(str::to_string);
            if pattern_type != "stix" {
                warnings.push(format!(
                    "{id}: pattern type {pattern_type} is not supported; pattern kept as text"
                ));
                acc.unsupported_patterns.push(pattern.to_string());
                return;
            }
            match stix_pattern::parse(pattern) {
                Ok(out) => {
                    for o in out.observables {
                        if id != "?" {
                            acc.stix_ids.push((o.clone(), id.to_string()));
                        }
                        acc.observables.push((o, comment.clone()));
                    }
                    if !out.unsupported.is_empty() {
                        warnings.push(format!(
                            "{id}: pattern {pattern} uses unsupported {}; kept as text",
                            out.unsupported.join(", ")
                        ));
                        acc.unsupported_patterns.push(pattern.to_string());
                    }
                }
                Err(e) => {
                    warnings.push(format!("{id}: {e}; pattern kept as text"));
                    acc.unsupported_patterns.push(pattern.to_string());
                }
            }
        }
        "observed-data" => {
            acc.time(str_field(obj, "first_observed").and_then(parse_time));
            for r in array(obj, "object_refs").iter().filter_map(Value::as_str) {
                if let Some(sco) = bundle.by_id.get(r) {
                    for o in sco_observables(sco) {
                        acc.observables.push((o, None));
                    }
                }
            }
            // STIX 2.0-style embedded objects.
            if let Some(embedded) = obj.get("objects").and_then(Value::as_object) {
                for sco in embedded.values() {
                    for o in sco_observables(sco) {
                        acc.observables.push((o, None));
                    }
                }
            }
        }
        t if NAMED_TYPES.contains(&t) => {
            if let Some(name) = str_field(obj, "name") {
                acc.tag(format!("{t}:{name}"));
                if t == "malware"
                    && let Ok(o) = Observable::parse(ObservableKind::MalwareFamily, name)
                {
                    acc.observables.push((o, None));
                }
            }
        }
        "attack-pattern" => {
            for r in array(obj, "external_references") {
                if str_field(r, "source_name").is_some_and(|s| s.starts_with("mitre"))
                    && let Some(o) = str_field(r, "external_id")
                        .and_then(|e| Observable::parse(ObservableKind::AttackTechnique, e).ok())
                {
                    acc.observables
                        .push((o, str_field(obj, "name").map(str::to_string)));
                }
            }
        }
        "vulnerability" => {
            if let Some(o) =
                str_field(obj, "name").and_then(|n| Observable::parse(ObservableKind::Cve, n).ok())
            {
                acc.observables.push((o, None));
            }
        }
        _ => {
            for o in sco_observables(obj) {
                acc.observables.push((o, None));
            }
        }
    }
}

/// What became of each object other than sightings (recorded as they are read): an
/// indicator whose pattern could not be converted is kept as text (normalised); objects of
/// a type musubi has no use for are skipped, by name, so that a submitter sees them.
fn object_outcomes(bundle: &Bundle<'_>, parsed: &mut Parsed) {
    // The indicators whose pattern was kept as text, from the warnings that said so.
    let as_text: HashMap<String, String> = parsed
        .warnings
        .iter()
        .filter(|w| w.contains("kept as text"))
        .filter_map(|w| w.split_once(": "))
        .map(|(id, why)| (id.to_string(), why.to_string()))
        .collect();
    for (i, obj) in bundle.objects.iter().enumerate() {
        let ty = str_field(obj, "type").unwrap_or_default();
        let at = str_field(obj, "id").map_or_else(|| format!("$.objects[{i}]"), str::to_string);
        match ty {
            "sighting" => {}
            "indicator" => match as_text.get(&at) {
                Some(why) => parsed.normalised_quietly(at, why.clone()),
                None => parsed.kept(at),
            },
            "report" | "observed-data" | "relationship" | "marking-definition" | "identity"
            | "attack-pattern" | "vulnerability" => parsed.kept(at),
            t if NAMED_TYPES.contains(&t) => parsed.kept(at),
            _ if !sco_observables(obj).is_empty() => parsed.kept(at),
            t => parsed.skipped(at, format!("type {t} carries nothing musubi keeps")),
        }
    }
}

fn finish(acc: Acc, mut draft: ReportDraft) -> ReportDraft {
    if let Some(t) = acc.tlp {
        draft.tlp = draft.tlp.max(t);
    }
    draft.observed_at = draft.observed_at.or(acc.first_time);
    // Where each observable sits in the draft: a bundle may carry thousands of indicators,
    // and a scan per observable would make parsing it quadratic.
    let mut at: HashMap<Observable, usize> = draft
        .indicators
        .iter()
        .enumerate()
        .map(|(i, ind)| (ind.observable.clone(), i))
        .collect();
    for (o, c) in acc.observables {
        if !at.contains_key(&o) {
            at.insert(o.clone(), draft.indicators.len());
            draft.push_new_observable(o, c);
        }
    }
    for (o, id) in acc.stix_ids {
        if let Some(&i) = at.get(&o)
            && draft.indicators[i].stix_id.is_none()
        {
            draft.indicators[i].stix_id = Some(id);
        }
    }
    for t in acc.tags {
        if !draft.tags.contains(&t) {
            draft.tags.push(t);
        }
    }
    if !acc.created_by.is_empty() {
        draft.provenance_mut().stix_created_by = acc.created_by;
    }
    if !acc.unsupported_patterns.is_empty() {
        if !draft.description.is_empty() {
            draft.description.push_str("\n\n");
        }
        draft
            .description
            .push_str("STIX patterns not converted to observables:\n");
        for p in acc.unsupported_patterns {
            draft.description.push_str(&format!("- {p}\n"));
        }
    }
    draft
}

/// Parses a STIX 2.1 bundle (or one bare object).
pub fn parse(bytes: &[u8], ctx: &ParseContext) -> Result<Parsed, FormatError> {
    let v = json::parse(FORMAT, bytes)?;
    let objects: Vec<&Value> = match str_field(&v, "type") {
        Some("bundle") => array(&v, "objects").iter().collect(),
        Some(_) => vec![&v],
        None => {
            return Err(FormatError::structure(
                FORMAT,
                "$.type",
                "missing: expected a bundle or a STIX object",
            ));
        }
    };
    let mut by_id = HashMap::new();
    let mut markings = HashMap::new();
    for (i, o) in objects.iter().enumerate() {
        let Some(id) = str_field(o, "id") else {
            return Err(FormatError::structure(
                FORMAT,
                format!("$.objects[{i}].id"),
                "missing or not a string",
            ));
        };
        if str_field(o, "type").is_none() {
            return Err(FormatError::structure(
                FORMAT,
                format!("$.objects[{i}].type"),
                "missing or not a string",
            ));
        }
        by_id.insert(id, *o);
        if str_field(o, "type") == Some("marking-definition")
            && let Some(t) = marking_tlp(o)
        {
            markings.insert(id, t);
        }
    }
    let mut related: HashMap<&str, Vec<&str>> = HashMap::new();
    for rel in objects
        .iter()
        .filter(|r| str_field(r, "type") == Some("relationship"))
    {
        if let (Some(src), Some(tgt)) = (str_field(rel, "source_ref"), str_field(rel, "target_ref"))
        {
            related.entry(src).or_default().push(tgt);
            if src != tgt {
                related.entry(tgt).or_default().push(src);
            }
        }
    }
    let bundle = Bundle {
        objects,
        by_id,
        markings,
        related,
    };
    let mut parsed = Parsed::default();
    let mut referenced: HashSet<&str> = HashSet::new();

    for obj in bundle
        .objects
        .iter()
        .filter(|o| str_field(o, "type") == Some("report"))
    {
        let id = str_field(obj, "id").unwrap_or_default();
        let mut acc = Acc {
            tlp: bundle.tlp_of(obj),
            ..Acc::default()
        };
        acc.creator(&bundle, obj);
        for r in array(obj, "object_refs").iter().filter_map(Value::as_str) {
            referenced.insert(r);
            if let Some(target) = bundle.by_id.get(r) {
                add_object(&bundle, target, &mut acc, &mut parsed.warnings);
            }
        }
        let mut d = ReportDraft::new(
            str_field(obj, "name").unwrap_or("STIX report"),
            ctx.default_tlp,
        );
        d.description = str_field(obj, "description")
            .unwrap_or_default()
            .to_string();
        d.observed_at = str_field(obj, "published").and_then(parse_time);
        d.external_id = Some(id.to_string());
        d.confidence = confidence(obj);
        d.link = first_url(obj);
        for t in array(obj, "report_types")
            .iter()
            .chain(array(obj, "labels"))
        {
            if let Some(t) = t.as_str() {
                d.tags.push(t.to_string());
            }
        }
        parsed.reports.push(finish(acc, d));
    }

    // Everything carrying observables that no report covered: one report for the bundle.
    let mut acc = Acc::default();
    let mut count = 0;
    for obj in &bundle.objects {
        let ty = str_field(obj, "type").unwrap_or_default();
        let id = str_field(obj, "id").unwrap_or_default();
        let carries = ty == "indicator" || ty == "observed-data";
        if !carries || referenced.contains(id) {
            continue;
        }
        count += 1;
        add_object(&bundle, obj, &mut acc, &mut parsed.warnings);
        // Pull in what the indicator indicates / is attributed to.
        for other in bundle.related.get(id).into_iter().flatten() {
            if let Some(o) = bundle.by_id.get(other)
                && NAMED_TYPES.contains(&str_field(o, "type").unwrap_or_default())
            {
                add_object(&bundle, o, &mut acc, &mut parsed.warnings);
            }
        }
    }
    if count > 0 {
        let bundle_id = str_field(&v, "id").unwrap_or("bundle");
        let title = acc
            .tags
            .first()
            .map(|t| t.split_once(':').map_or(t.as_str(), |(_, n)| n).to_string())
            .map(|n| format!("STIX: {n} ({count} indicator/observation object(s))"))
            .or_else(|| {
                bundle
                    .objects
                    .iter()
                    .find(|o| str_field(o, "type") == Some("indicator"))
                    .and_then(|o| str_field(o, "name"))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| format!("STIX bundle {bundle_id}"));
        let mut d = ReportDraft::new(title, ctx.default_tlp);
        d.external_id = Some(bundle_id.to_string());
        d.description = bundle
            .objects
            .iter()
            .filter(|o| str_field(o, "type") == Some("indicator"))
            .filter_map(|o| str_field(o, "description"))
            .collect::<Vec<_>>()
            .join("\n");
        parsed.reports.push(finish(acc, d));
    }

    for obj in bundle
        .objects
        .iter()
        .filter(|o| str_field(o, "type") == Some("sighting"))
    {
        let id = str_field(obj, "id").unwrap_or_default();
        let target = str_field(obj, "sighting_of_ref").and_then(|r| bundle.by_id.get(r));
        let Some(target) = target else {
            parsed.warnings.push(format!(
                "{id}: sighting_of_ref is not in the bundle; sighting skipped"
            ));
            parsed.skipped(id, "sighting_of_ref is not in the bundle");
            continue;
        };
        let mut acc = Acc::default();
        let mut scratch = Vec::new();
        add_object(&bundle, target, &mut acc, &mut scratch);
        let seen_at = ["last_seen", "first_seen", "modified", "created"]
            .iter()
            .find_map(|k| str_field(obj, k).and_then(parse_time));
        let (Some(seen_at), false) = (seen_at, acc.observables.is_empty()) else {
            parsed.warnings.push(format!(
                "{id}: sighting names no observable or time; skipped"
            ));
            parsed.skipped(id, "sighting names no observable or time");
            continue;
        };
        parsed.kept(id);
        let count = obj
            .get("count")
            .and_then(Value::as_u64)
            .map_or(1, |c| c.min(u32::MAX as u64) as u32);
        for (o, _) in acc.observables {
            parsed.sightings.push(SightingDraft {
                target: SightingTarget::Observable(o),
                kind: SightingKind::Seen,
                count,
                seen_at,
            });
        }
    }

    object_outcomes(&bundle, &mut parsed);
    if parsed.reports.is_empty() && parsed.sightings.is_empty() {
        parsed.warnings.push(
            "bundle holds no report, indicator, observed-data or sighting; nothing to import"
                .to_string(),
        );
    }
    Ok(parsed)
}

fn confidence(obj: &Value) -> Confidence {
    match obj.get("confidence").and_then(Value::as_u64) {
        Some(c) if c >= 70 => Confidence::Confirmed,
        Some(c) if c >= 30 => Confidence::Suspected,
        _ => Confidence::Unconfirmed,
    }
}

fn first_url(obj: &Value) -> Option<String> {
    array(obj, "external_references")
        .iter()
        .find_map(|r| str_field(r, "url"))
        .map(str::to_string)
}

/// Why one object of a STIX submission cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectProblem {
    /// The object's id (or its position, if it has none).
    pub id: String,
    pub reason: String,
}

/// What is wrong with one object that would give observables, strictly: an indicator whose
/// pattern is not STIX, does not parse, uses what musubi cannot represent (another
/// operator, another object path, an invalid value) or names no observable; an
/// observable object whose value is not valid for its type. `None` when it is fine (or
/// carries no observable at all).
pub fn object_problem(obj: &Value) -> Option<String> {
    let ty = str_field(obj, "type").unwrap_or_default();
    match ty {
        "indicator" => {
            let pattern_type = str_field(obj, "pattern_type").unwrap_or("stix");
            if pattern_type != "stix" {
                return Some(format!(
                    "pattern_type {pattern_type:?} is not taken (only stix)"
                ));
            }
            let Some(pattern) = str_field(obj, "pattern") else {
                return Some("pattern is missing or not a string".into());
            };
            match stix_pattern::parse(pattern) {
                Err(e) => Some(format!("pattern: {e}")),
                Ok(out) if !out.unsupported.is_empty() => Some(format!(
                    "pattern uses what musubi cannot store: {}",
                    out.unsupported.join("; ")
                )),
                Ok(out) if out.observables.is_empty() => Some("pattern names no observable".into()),
                Ok(_) => None,
            }
        }
        "ipv4-addr" | "ipv6-addr" | "domain-name" | "url" | "email-addr" => {
            let Some(value) = str_field(obj, "value") else {
                return Some("value is missing or not a string".into());
            };
            let kind = match ty {
                "ipv4-addr" if value.contains('/') => ObservableKind::Cidr,
                "ipv4-addr" => ObservableKind::Ipv4,
                "ipv6-addr" if value.contains('/') => ObservableKind::Cidr,
                "ipv6-addr" => ObservableKind::Ipv6,
                "domain-name" => ObservableKind::Domain,
                "url" => ObservableKind::Url,
                _ => ObservableKind::Email,
            };
            Observable::parse(kind, value)
                .err()
                .map(|e| format!("value: {e}"))
        }
        "file" => {
            let hashes = obj.get("hashes").and_then(Value::as_object);
            for (k, v) in hashes.into_iter().flatten() {
                let kind = match k.to_ascii_uppercase().replace('-', "").as_str() {
                    "MD5" => ObservableKind::Md5,
                    "SHA1" => ObservableKind::Sha1,
                    "SHA256" => ObservableKind::Sha256,
                    "SSDEEP" => ObservableKind::Ssdeep,
                    _ => continue,
                };
                let Some(v) = v.as_str() else {
                    return Some(format!("hashes.{k} is not a string"));
                };
                if let Err(e) = Observable::parse(kind, v) {
                    return Some(format!("hashes.{k}: {e}"));
                }
            }
            match str_field(obj, "name").map(|n| Observable::parse(ObservableKind::Filename, n)) {
                Some(Err(e)) => Some(format!("name: {e}")),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Every problem of a STIX submission (a bundle or one object), one per invalid object;
/// empty when the whole submission may be taken. Structural errors (not JSON, no type) are
/// the parser's own ([`parse`] reports them the same way).
pub fn problems(bytes: &[u8]) -> Result<Vec<ObjectProblem>, FormatError> {
    let v = json::parse(FORMAT, bytes)?;
    let objects: Vec<&Value> = match str_field(&v, "type") {
        Some("bundle") => array(&v, "objects").iter().collect(),
        Some(_) => vec![&v],
        None => {
            return Err(FormatError::structure(
                FORMAT,
                "$.type",
                "missing: expected a bundle or a STIX object",
            ));
        }
    };
    Ok(objects
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            object_problem(o).map(|reason| ObjectProblem {
                id: str_field(o, "id").map_or_else(|| format!("$.objects[{i}]"), str::to_string),
                reason,
            })
        })
        .collect())
}

#[cfg(test)]
mod strict_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn problems_name_each_invalid_object() {
        let bundle = json!({"type": "bundle", "id": "bundle--1", "objects": [
            {"type": "indicator", "id": "indicator--ok", "pattern_type": "stix",
             "pattern": "[domain-name:value = 'ok.example']"},
            {"type": "indicator", "id": "indicator--value", "pattern_type": "stix",
             "pattern": "[ipv4-addr:value = 'not-an-ip']"},
            {"type": "indicator", "id": "indicator--syntax", "pattern_type": "stix",
             "pattern": "[ipv4-addr:value = '198.51.100.1'"},
            {"type": "indicator", "id": "indicator--partly", "pattern_type": "stix",
             "pattern": "[ipv4-addr:value = '198.51.100.1' AND process:pid = 4]"},
            {"type": "indicator", "id": "indicator--sigma", "pattern_type": "sigma",
             "pattern": "title: x"},
            {"type": "ipv4-addr", "id": "ipv4-addr--bad", "value": "999.1.1.1"},
            {"type": "file", "id": "file--bad", "hashes": {"SHA-256": "xyz"}},
            {"type": "identity", "id": "identity--x", "name": "whoever"},
        ]});
        let got = problems(bundle.to_string().as_bytes()).unwrap();
        let ids: Vec<&str> = got.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "indicator--value",
                "indicator--syntax",
                "indicator--partly",
                "indicator--sigma",
                "ipv4-addr--bad",
                "file--bad"
            ]
        );
        assert!(got.iter().all(|p| !p.reason.is_empty()));
        assert!(problems(b"{}").is_err());
    }
}
