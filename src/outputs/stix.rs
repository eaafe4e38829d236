//! STIX 2.1 export of campaigns.
//!
//! Built only from [`CampaignExport`]s (the policy's views). One campaign becomes:
//! - a `campaign`, or a `grouping` (context `suspicious-activity`) while every visible
//!   report is unconfirmed — unconfirmed information is marked as such;
//! - an `indicator` per observable that has a STIX pattern, `indicates` the campaign;
//! - a `vulnerability` per CVE, an `attack-pattern` per ATT&CK technique and a `malware`
//!   (family) per malware family, tied to the campaign by `targets` / `uses`;
//! - a `report` per visible report (its title, text and the objects it carries).
//!
//! Every object is created by one council `identity` (never the providing member) and
//! marked with the official TLP 2.0 marking-definitions (embedded from OASIS
//! cti-stix-common-objects, see `tlp2/SOURCES.md`) and, when the campaign's visible
//! reports carry a sharing scope, with the council's own statement marking for that scope
//! ([`scope_marking`]) beside it: TLP alone would let a recipient pass on what the
//! provider kept to council members. Ids are UUIDv5 over stable keys and
//! timestamps come from the data, so a re-export updates objects instead of duplicating
//! them. Analysts' dispositions are not exported yet: the store has no dispositions table.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use super::{COUNCIL_NAME, CampaignExport, stable_uuid};
use crate::council::read::TaxiiObject;
use crate::model::{Confidence, ObservableKind, Scope, Tlp};

/// The media type of a STIX 2.1 document.
pub const MEDIA_TYPE: &str = "application/stix+json;version=2.1";

/// One STIX object with what TAXII needs to serve it.
#[derive(Debug, Clone)]
pub struct StixObject {
    pub id: String,
    /// When the object entered the council's view: the report's received time, the
    /// campaign's last activity.
    pub date_added: DateTime<Utc>,
    /// The object's version (`modified`, or `created` for objects without one).
    pub version: DateTime<Utc>,
    pub object: Value,
}

impl StixObject {
    pub fn kind(&self) -> &str {
        self.id.split("--").next().unwrap_or_default()
    }
}

/// STIX timestamps: RFC 3339, UTC, millisecond precision.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses a STIX / TAXII timestamp.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn sid(kind: &str, key: &str) -> String {
    format!("{kind}--{}", stable_uuid(&format!("{kind}|{key}")))
}

/// The council's identity id, the `created_by_ref` of every exported object.
pub fn council_identity_id() -> String {
    sid("identity", "council")
}

/// When the council identity was first described: the date of the council's roster.
fn council_since() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 6, 5, 0, 0, 0)
        .single()
        .expect("a valid constant date")
}

/// The TLP 2.0 marking-definitions published by OASIS, verbatim (each file is a bundle).
const TLP_FILES: [(Tlp, &str); 5] = [
    (Tlp::Clear, include_str!("tlp2/clear.json")),
    (Tlp::Green, include_str!("tlp2/green.json")),
    (Tlp::Amber, include_str!("tlp2/amber.json")),
    (Tlp::AmberStrict, include_str!("tlp2/amber-strict.json")),
    (Tlp::Red, include_str!("tlp2/red.json")),
];

/// The TLP 2.0 extension-definition the markings refer to.
const TLP_EXTENSION: &str = include_str!("tlp2/extension-definition.json");

fn first_object(bundle: &str) -> Value {
    let v: Value = serde_json::from_str(bundle).expect("embedded TLP file is valid JSON");
    v["objects"][0].clone()
}

/// The official TLP 2.0 marking-definition object for a label.
pub fn tlp_marking(tlp: Tlp) -> Value {
    let (_, file) = TLP_FILES
        .iter()
        .find(|(t, _)| *t == tlp)
        .expect("every TLP has a file");
    first_object(file)
}

/// The official id of the TLP 2.0 marking-definition for a label.
pub fn tlp_marking_id(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
    }
}

/// The id of the council's marking-definition for a sharing scope (stable: UUIDv5).
pub fn scope_marking_id(scope: Scope) -> String {
    sid("marking-definition", &format!("scope|{}", scope.as_str()))
}

/// The sharing scope of one of the council's scope marking ids.
pub fn scope_of_marking(id: &str) -> Option<Scope> {
    Scope::ALL.into_iter().find(|s| scope_marking_id(*s) == id)
}

/// What a scope marking says, in words a recipient's analyst can act on.
fn scope_statement(scope: Scope) -> &'static str {
    match scope {
        Scope::ProviderAndSecretariat => {
            "musubi sharing scope provider-and-secretariat: the providing member and the council \
             secretariat only; do not share further."
        }
        Scope::CouncilMembers => {
            "musubi sharing scope council-members: council members only; do not pass on to \
             organisations outside the council."
        }
        Scope::MembersAndSupported => {
            "musubi sharing scope members-and-supported: council members and the organisations \
             they support only."
        }
    }
}

/// The council's marking-definition of a sharing scope: a STIX 2.1 statement marking
/// created by the council identity. Sharing scope is the council's own restriction on top
/// of TLP, and no published marking expresses it.
pub fn scope_marking(scope: Scope) -> Value {
    let since = council_since();
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": scope_marking_id(scope),
        "created": timestamp(since),
        "created_by_ref": council_identity_id(),
        "name": format!("musubi scope: {}", scope.as_str()),
        "definition_type": "statement",
        "definition": {"statement": scope_statement(scope)},
    })
}

/// The `object_marking_refs` of a campaign's objects: its TLP, and its scope if it has one.
pub fn marking_refs(tlp: Tlp, scope: Option<Scope>) -> Value {
    let mut refs = vec![json!(tlp_marking_id(tlp))];
    if let Some(s) = scope {
        refs.push(json!(scope_marking_id(s)));
    }
    Value::Array(refs)
}

/// Objects every bundle or collection carries: the council identity, the TLP 2.0
/// extension-definition, the marking-definitions of the labels in `tlps` and the council's
/// marking-definitions of the scopes in `scopes`.
pub fn common_objects(
    tlps: impl IntoIterator<Item = Tlp>,
    scopes: impl IntoIterator<Item = Scope>,
) -> Vec<StixObject> {
    let since = council_since();
    let mut out = vec![StixObject {
        id: council_identity_id(),
        date_added: since,
        version: since,
        object: json!({
            "type": "identity",
            "spec_version": "2.1",
            "id": council_identity_id(),
            "created": timestamp(since),
            "modified": timestamp(since),
            "name": COUNCIL_NAME,
            "identity_class": "organization",
        }),
    }];
    let ext = first_object(TLP_EXTENSION);
    let ext_time = ext["created"]
        .as_str()
        .and_then(parse_timestamp)
        .unwrap_or(since);
    let mut tlps: Vec<Tlp> = tlps.into_iter().collect();
    tlps.sort();
    tlps.dedup();
    if !tlps.is_empty() {
        out.push(StixObject {
            id: ext["id"].as_str().unwrap_or_default().to_string(),
            date_added: ext_time,
            version: ext_time,
            object: ext,
        });
    }
    for t in tlps {
        let m = tlp_marking(t);
        out.push(StixObject {
            id: tlp_marking_id(t).to_string(),
            date_added: ext_time,
            version: ext_time,
            object: m,
        });
    }
    let mut scopes: Vec<Scope> = scopes.into_iter().collect();
    scopes.sort();
    scopes.dedup();
    for s in scopes {
        out.push(StixObject {
            id: scope_marking_id(s),
            date_added: since,
            version: since,
            object: scope_marking(s),
        });
    }
    out
}

/// Escapes a string literal of a STIX pattern.
fn pattern_literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The STIX pattern of an observable, for kinds that have one.
pub fn pattern(kind: ObservableKind, value: &str) -> Option<String> {
    let v = pattern_literal(value);
    Some(match kind {
        ObservableKind::Ipv4 => format!("[ipv4-addr:value = '{v}']"),
        ObservableKind::Ipv6 => format!("[ipv6-addr:value = '{v}']"),
        ObservableKind::Cidr if value.contains(':') => format!("[ipv6-addr:value = '{v}']"),
        ObservableKind::Cidr => format!("[ipv4-addr:value = '{v}']"),
        ObservableKind::Domain => format!("[domain-name:value = '{v}']"),
        ObservableKind::Url => format!("[url:value = '{v}']"),
        ObservableKind::Email => format!("[email-addr:value = '{v}']"),
        ObservableKind::Md5 => format!("[file:hashes.MD5 = '{v}']"),
        ObservableKind::Sha1 => format!("[file:hashes.'SHA-1' = '{v}']"),
        ObservableKind::Sha256 => format!("[file:hashes.'SHA-256' = '{v}']"),
        ObservableKind::Ssdeep => format!("[file:hashes.SSDEEP = '{v}']"),
        ObservableKind::Filename => format!("[file:name = '{v}']"),
        ObservableKind::Asn => {
            let n: u64 = value.trim_start_matches("AS").parse().ok()?;
            format!("[autonomous-system:number = {n}]")
        }
        ObservableKind::Cve | ObservableKind::AttackTechnique | ObservableKind::MalwareFamily => {
            return None;
        }
    })
}

/// What one observable looks like across the campaign's visible reports.
struct Seen {
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    unconfirmed: bool,
}

/// The STIX objects of one campaign (without the common objects).
pub fn campaign_objects(export: &CampaignExport) -> Vec<StixObject> {
    let view = &export.view;
    let cid = view.id.to_string();
    let marking = marking_refs(view.tlp, view.scope);
    let author = council_identity_id();
    let head_kind = if view.unconfirmed {
        "grouping"
    } else {
        "campaign"
    };
    let head_id = sid(head_kind, &cid);
    let mut out = Vec::new();

    // Per observable: when it was first and last reported, whether only unconfirmed.
    let mut seen: BTreeMap<(ObservableKind, String), Seen> = BTreeMap::new();
    for r in &export.reports {
        let at = r.summary.received_at;
        let unconfirmed = r.summary.unconfirmed;
        for i in &r.indicators {
            let key = (i.observable.kind(), i.observable.value().to_string());
            let e = seen.entry(key).or_insert(Seen {
                first: at,
                last: at,
                unconfirmed,
            });
            e.first = e.first.min(at);
            e.last = e.last.max(at);
            e.unconfirmed &= unconfirmed;
        }
    }

    let mut object_id: BTreeMap<(ObservableKind, String), String> = BTreeMap::new();
    let mut refs: Vec<String> = Vec::new();
    for ((kind, value), s) in &seen {
        let key = format!("{cid}|{}|{value}", kind.as_str());
        let (created, modified) = (timestamp(s.first), timestamp(s.last));
        let mut labels = Vec::new();
        if s.unconfirmed {
            labels.push("unconfirmed");
        }
        let (obj, relation) = if let Some(p) = pattern(*kind, value) {
            let id = sid("indicator", &key);
            let indicator_type = if s.unconfirmed {
                "anomalous-activity"
            } else {
                "malicious-activity"
            };
            let mut o = json!({
                "type": "indicator",
                "spec_version": "2.1",
                "id": id,
                "created_by_ref": author,
                "created": created,
                "modified": modified,
                "name": format!("{}: {value}", kind.as_str()),
                "indicator_types": [indicator_type],
                "pattern": p,
                "pattern_type": "stix",
                "pattern_version": "2.1",
                "valid_from": created,
                "object_marking_refs": marking,
            });
            if !labels.is_empty() {
                o["labels"] = json!(labels);
            }
            (o, (id, "indicates", false))
        } else {
            let (kind_name, rel) = match kind {
                ObservableKind::Cve => ("vulnerability", "targets"),
                ObservableKind::AttackTechnique => ("attack-pattern", "uses"),
                _ => ("malware", "uses"),
            };
            let id = sid(kind_name, &key);
            let mut o = json!({
                "type": kind_name,
                "spec_version": "2.1",
                "id": id,
                "created_by_ref": author,
                "created": created,
                "modified": modified,
                "name": value,
                "object_marking_refs": marking,
            });
            match kind {
                ObservableKind::Cve => {
                    o["external_references"] =
                        json!([{"source_name": "cve", "external_id": value}]);
                }
                ObservableKind::AttackTechnique => {
                    let path = value.replace('.', "/");
                    o["external_references"] = json!([{
                        "source_name": "mitre-attack",
                        "external_id": value,
                        "url": format!("https://attack.mitre.org/techniques/{path}/"),
                    }]);
                }
                _ => {
                    o["is_family"] = json!(true);
                }
            }
            (o, (id, rel, true))
        };
        let (id, verb, from_head) = relation;
        object_id.insert((*kind, value.clone()), id.clone());
        refs.push(id.clone());
        out.push(StixObject {
            id: id.clone(),
            date_added: s.last,
            version: s.last,
            object: obj,
        });
        // A grouping has no relationships of its own: its object_refs tie it together.
        if head_kind == "campaign" {
            let (src, dst) = if from_head {
                (head_id.clone(), id.clone())
            } else {
                (id.clone(), head_id.clone())
            };
            let rid = sid("relationship", &format!("{src}|{verb}|{dst}"));
            refs.push(rid.clone());
            out.push(StixObject {
                id: rid.clone(),
                date_added: s.last,
                version: s.last,
                object: json!({
                    "type": "relationship",
                    "spec_version": "2.1",
                    "id": rid,
                    "created_by_ref": author,
                    "created": created,
                    "modified": modified,
                    "relationship_type": verb,
                    "source_ref": src,
                    "target_ref": dst,
                    "object_marking_refs": marking,
                }),
            });
        }
    }

    for r in &export.reports {
        let at = r.summary.received_at;
        let rid = sid("report", &r.summary.id.to_string());
        let mut object_refs = vec![head_id.clone()];
        for i in &r.indicators {
            if let Some(id) =
                object_id.get(&(i.observable.kind(), i.observable.value().to_string()))
            {
                object_refs.push(id.clone());
            }
        }
        object_refs.sort();
        object_refs.dedup();
        let mut external =
            vec![json!({"source_name": "musubi", "external_id": r.summary.id.to_string()})];
        if let Some(link) = &r.link {
            external.push(json!({"source_name": "original", "url": link}));
        }
        let mut o = json!({
            "type": "report",
            "spec_version": "2.1",
            "id": rid,
            "created_by_ref": author,
            "created": timestamp(at),
            "modified": timestamp(at),
            "name": r.summary.title,
            "report_types": ["threat-report"],
            "published": timestamp(at),
            "object_refs": object_refs,
            "external_references": external,
            "confidence": confidence_score(r.summary.confidence),
            "object_marking_refs": marking,
        });
        if !r.description.is_empty() {
            o["description"] = json!(r.description);
        }
        let mut labels: Vec<String> = Vec::new();
        if r.summary.unconfirmed {
            labels.push("unconfirmed".into());
        }
        labels.extend(r.tags.iter().filter(|t| !t.is_empty()).cloned());
        labels.dedup();
        if !labels.is_empty() {
            o["labels"] = json!(labels);
        }
        refs.push(rid.clone());
        out.push(StixObject {
            id: rid,
            date_added: at,
            version: at,
            object: o,
        });
    }

    let description = format!(
        "{} report(s) shared with the council, first seen {}, last seen {}.{}",
        view.report_count,
        timestamp(view.first_seen),
        timestamp(view.last_seen),
        if view.unconfirmed {
            " Unconfirmed: every report of this activity is unconfirmed."
        } else {
            ""
        }
    );
    let mut head = json!({
        "type": head_kind,
        "spec_version": "2.1",
        "id": head_id,
        "created_by_ref": author,
        "created": timestamp(view.first_seen),
        "modified": timestamp(view.last_seen),
        "name": format!("musubi campaign {cid}"),
        "description": description,
        "external_references": [{"source_name": "musubi", "external_id": cid}],
        "object_marking_refs": marking,
    });
    if view.unconfirmed {
        head["context"] = json!("suspicious-activity");
        head["labels"] = json!(["unconfirmed"]);
        refs.sort();
        refs.dedup();
        head["object_refs"] = json!(refs);
    } else {
        head["first_seen"] = json!(timestamp(view.first_seen));
        head["last_seen"] = json!(timestamp(view.last_seen));
    }
    if !view.flags.is_empty() {
        let mut labels = head["labels"].as_array().cloned().unwrap_or_default();
        labels.extend(view.flags.iter().map(|f| json!(f.name)));
        head["labels"] = Value::Array(labels);
    }
    out.insert(
        0,
        StixObject {
            id: head_id,
            date_added: view.last_seen,
            version: view.last_seen,
            object: head,
        },
    );
    out
}

/// One object of a TAXII page (`council::read::taxii`): an observable of a report as an
/// `indicator` (or a `vulnerability`, `attack-pattern`, `malware` for kinds without a
/// pattern), or the report itself as a `report`. The id is the log's: the provider's own
/// STIX id where it sent one. Author, markings and labels are the council's, as in
/// [`campaign_objects`]; the object is versioned by the report's date added.
pub fn taxii_object(o: &TaxiiObject) -> StixObject {
    let r = &o.report;
    let at = timestamp(o.added_at);
    let marking = marking_refs(r.summary.tlp, r.summary.scope);
    let author = council_identity_id();
    let unconfirmed = r.summary.unconfirmed;
    let object = match &o.observable {
        Some((kind, value)) => {
            let mut obj = match pattern(*kind, value) {
                Some(p) => json!({
                    "type": "indicator",
                    "name": format!("{}: {value}", kind.as_str()),
                    "indicator_types": [if unconfirmed { "anomalous-activity" } else { "malicious-activity" }],
                    "pattern": p,
                    "pattern_type": "stix",
                    "pattern_version": "2.1",
                    "valid_from": at,
                }),
                None => {
                    let mut obj = json!({"name": value});
                    match kind {
                        ObservableKind::Cve => {
                            obj["type"] = json!("vulnerability");
                            obj["external_references"] =
                                json!([{"source_name": "cve", "external_id": value}]);
                        }
                        ObservableKind::AttackTechnique => {
                            obj["type"] = json!("attack-pattern");
                            let path = value.replace('.', "/");
                            obj["external_references"] = json!([{
                                "source_name": "mitre-attack",
                                "external_id": value,
                                "url": format!("https://attack.mitre.org/techniques/{path}/"),
                            }]);
                        }
                        _ => {
                            obj["type"] = json!("malware");
                            obj["is_family"] = json!(true);
                        }
                    }
                    obj
                }
            };
            if unconfirmed {
                obj["labels"] = json!(["unconfirmed"]);
            }
            obj
        }
        None => {
            let mut external =
                vec![json!({"source_name": "musubi", "external_id": r.summary.id.to_string()})];
            if let Some(c) = &r.campaign {
                external
                    .push(json!({"source_name": "musubi-campaign", "external_id": c.to_string()}));
            }
            if let Some(link) = &r.link {
                external.push(json!({"source_name": "original", "url": link}));
            }
            // A report refers to at least one object (STIX 2.1 §7.4): the council
            // identity when it carries no observable.
            let refs = if o.refs.is_empty() {
                vec![author.clone()]
            } else {
                o.refs.clone()
            };
            let mut obj = json!({
                "type": "report",
                "name": r.summary.title,
                "report_types": ["threat-report"],
                "published": at,
                "object_refs": refs,
                "external_references": external,
                "confidence": confidence_score(r.summary.confidence),
            });
            if !r.description.is_empty() {
                obj["description"] = json!(r.description);
            }
            let mut labels: Vec<String> = Vec::new();
            if unconfirmed {
                labels.push("unconfirmed".into());
            }
            labels.extend(r.tags.iter().filter(|t| !t.is_empty()).cloned());
            labels.dedup();
            if !labels.is_empty() {
                obj["labels"] = json!(labels);
            }
            obj
        }
    };
    let mut object = object;
    object["spec_version"] = json!("2.1");
    object["id"] = json!(o.id);
    object["created_by_ref"] = json!(author);
    object["created"] = json!(at);
    object["modified"] = json!(at);
    object["object_marking_refs"] = marking;
    StixObject {
        id: o.id.clone(),
        date_added: o.added_at,
        version: o.added_at,
        object,
    }
}

/// Objects every TAXII collection carries whatever it holds: the council identity and
/// every marking an object may refer to (constant, so they say nothing about content).
pub fn taxii_common_objects() -> Vec<StixObject> {
    common_objects(Tlp::ALL, Scope::ALL)
}

/// STIX confidence (0–100) for the provider's own confidence.
fn confidence_score(c: Confidence) -> u8 {
    match c {
        Confidence::Unconfirmed => 15,
        Confidence::Suspected => 50,
        Confidence::Confirmed => 85,
    }
}

/// Every object of the given campaigns, with the common objects first.
pub fn objects(exports: &[CampaignExport]) -> Vec<StixObject> {
    let mut out = common_objects(
        exports.iter().map(|e| e.view.tlp),
        exports.iter().filter_map(|e| e.view.scope),
    );
    for e in exports {
        out.extend(campaign_objects(e));
    }
    out
}

/// A bundle of the given campaigns. Its id is derived from the ids and versions of its
/// objects, so the same content yields the same bundle.
pub fn bundle(exports: &[CampaignExport]) -> Value {
    bundle_of(objects(exports))
}

/// A bundle of objects.
pub fn bundle_of(objects: Vec<StixObject>) -> Value {
    let mut key = String::new();
    for o in &objects {
        key.push_str(&o.id);
        key.push('@');
        key.push_str(&timestamp(o.version));
        key.push('|');
    }
    json!({
        "type": "bundle",
        "id": sid("bundle", &key),
        "objects": objects.into_iter().map(|o| o.object).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_and_cover_kinds() {
        assert_eq!(
            pattern(ObservableKind::Ipv4, "192.0.2.1").unwrap(),
            "[ipv4-addr:value = '192.0.2.1']"
        );
        assert_eq!(
            pattern(ObservableKind::Filename, "o'neil\\x.exe").unwrap(),
            "[file:name = 'o\\'neil\\\\x.exe']"
        );
        assert_eq!(
            pattern(ObservableKind::Cidr, "2001:db8::/32").unwrap(),
            "[ipv6-addr:value = '2001:db8::/32']"
        );
        assert_eq!(
            pattern(ObservableKind::Asn, "AS64496").unwrap(),
            "[autonomous-system:number = 64496]"
        );
        assert!(pattern(ObservableKind::Cve, "CVE-2024-3400").is_none());
    }

    #[test]
    fn embedded_markings_carry_the_official_ids() {
        for t in Tlp::ALL {
            let m = tlp_marking(t);
            assert_eq!(m["id"], tlp_marking_id(t));
            assert_eq!(m["name"], t.label());
            // The reader (`formats::stix21`) knows every marking the exporter writes.
            let read_back = crate::formats::stix21::TLP_MARKINGS
                .iter()
                .find(|(id, _)| *id == tlp_marking_id(t))
                .map(|(_, tlp)| *tlp);
            assert_eq!(read_back, Some(t));
        }
    }

    #[test]
    fn scope_markings_are_stable_statements() {
        for s in Scope::ALL {
            let m = scope_marking(s);
            assert_eq!(m["id"], scope_marking_id(s));
            assert_eq!(m["definition_type"], "statement");
            assert!(
                m["definition"]["statement"]
                    .as_str()
                    .unwrap()
                    .contains(s.as_str())
            );
            assert_eq!(scope_of_marking(&scope_marking_id(s)), Some(s));
        }
        assert_eq!(
            marking_refs(Tlp::Green, Some(Scope::CouncilMembers)),
            json!([
                tlp_marking_id(Tlp::Green),
                scope_marking_id(Scope::CouncilMembers)
            ])
        );
        assert_eq!(marking_refs(Tlp::Clear, None).as_array().unwrap().len(), 1);
    }

    #[test]
    fn ids_are_stable() {
        assert_eq!(council_identity_id(), council_identity_id());
        assert_ne!(sid("indicator", "a"), sid("indicator", "b"));
    }

    /// What musubi exports as an indicator pattern is read back by `formats::stix_pattern` as
    /// exactly the observable it came from, for every kind that has a pattern.
    #[test]
    fn exported_patterns_read_back_as_the_same_observable() {
        let samples = [
            (ObservableKind::Ipv4, "192.0.2.1"),
            (ObservableKind::Ipv6, "2001:db8::1"),
            (ObservableKind::Cidr, "198.51.100.0/24"),
            (ObservableKind::Cidr, "2001:db8::/32"),
            (ObservableKind::Domain, "evil.example.com"),
            (ObservableKind::Url, "http://x.example.org/a?b='c'"),
            (ObservableKind::Email, "a@example.org"),
            (ObservableKind::Md5, "d41d8cd98f00b204e9800998ecf8427e"),
            (
                ObservableKind::Sha1,
                "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            ),
            (
                ObservableKind::Sha256,
                "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c",
            ),
            (
                ObservableKind::Ssdeep,
                "3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C",
            ),
            (ObservableKind::Filename, "o'neil\\x.exe"),
            (ObservableKind::Asn, "AS64496"),
        ];
        let mut kinds = std::collections::HashSet::new();
        for (kind, raw) in samples {
            let o = crate::model::Observable::parse(kind, raw).unwrap();
            let p = pattern(o.kind(), o.value()).unwrap();
            let back = crate::formats::stix_pattern::parse(&p).unwrap();
            assert_eq!(back.observables, std::slice::from_ref(&o), "{p}");
            assert!(back.unsupported.is_empty(), "{p}: {:?}", back.unsupported);
            kinds.insert(kind);
        }
        for kind in ObservableKind::ALL {
            let has_pattern = pattern(kind, "x").is_some() || kind == ObservableKind::Asn;
            assert_eq!(has_pattern, kinds.contains(&kind), "{kind:?}");
        }
    }
}
