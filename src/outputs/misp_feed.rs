//! A MISP feed of campaigns: the layout a MISP instance subscribes to ("Feeds" of format
//! "MISP Feed"): `manifest.json` (event uuid → event summary), one `{uuid}.json` per event
//! holding `{"Event": {...}}`, and `hashes.csv` (`md5(value),event uuid` per attribute, used
//! by MISP's feed correlation and caching).
//!
//! Built only from [`CampaignExport`]s (the policy's views). One campaign is one event;
//! the council is the event's creating organisation (`Orgc`), never the provider; the
//! campaign's TLP is a `tlp:*` tag; its sharing scope is a `musubi:scope` tag and sets the
//! event's MISP distribution ([`distribution`]); unconfirmed campaigns are tagged and stay
//! at analysis "initial". Uuids and timestamps come from the data, so a re-export updates events.
//!
//! [`read_feed`] is a strict round-trip reader of the same layout, used by the tests (and
//! by anyone checking a feed directory); the formats module's MISP reader can replace it
//! when merged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use super::{COUNCIL_NAME, CampaignExport, stable_uuid};
use crate::council::policy::Onward;
use crate::model::{Confidence, ObservableKind, Scope, Tlp};

/// What went wrong writing or reading a feed.
#[derive(Debug, thiserror::Error)]
pub enum MispFeedError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {what}")]
    Layout { path: PathBuf, what: String },
}

type Result<T> = std::result::Result<T, MispFeedError>;

/// The MISP tag of a TLP label (`tlp:amber+strict`, as in MISP's TLP taxonomy v2).
pub fn tlp_tag(tlp: Tlp) -> String {
    format!("tlp:{}", tlp.as_str())
}

/// The MISP distribution level of an event of this scope and TLP, from how far the
/// council lets the material travel ([`Onward`]): provider-and-secretariat (and
/// AMBER+STRICT, RED) → 0 "your organisation only"; council members (and TLP:GREEN) → 1
/// "this community only"; members and supported organisations (and TLP:AMBER) → 2
/// "connected communities"; TLP:CLEAR without scope → 3 "all communities".
pub fn distribution(scope: Option<Scope>, tlp: Tlp) -> &'static str {
    match Onward::of(scope, tlp) {
        Onward::ProviderAndSecretariat | Onward::OwnOrganisation | Onward::NamedRecipients => "0",
        Onward::CouncilMembers | Onward::Community => "1",
        Onward::SupportedOrganisations => "2",
        Onward::Public => "3",
    }
}

/// The MISP tag of a sharing scope.
pub fn scope_tag(scope: Scope) -> String {
    format!("musubi:scope=\"{}\"", scope.as_str())
}

/// The MISP attribute type and category of an observable kind.
pub fn attribute_type(kind: ObservableKind) -> (&'static str, &'static str) {
    match kind {
        ObservableKind::Ipv4 | ObservableKind::Ipv6 | ObservableKind::Cidr => {
            ("ip-dst", "Network activity")
        }
        ObservableKind::Domain => ("domain", "Network activity"),
        ObservableKind::Url => ("url", "Network activity"),
        ObservableKind::Email => ("email-src", "Payload delivery"),
        ObservableKind::Md5 => ("md5", "Payload delivery"),
        ObservableKind::Sha1 => ("sha1", "Payload delivery"),
        ObservableKind::Sha256 => ("sha256", "Payload delivery"),
        ObservableKind::Ssdeep => ("ssdeep", "Payload delivery"),
        ObservableKind::Filename => ("filename", "Payload delivery"),
        ObservableKind::Cve => ("vulnerability", "External analysis"),
        ObservableKind::Asn => ("AS", "Network activity"),
        ObservableKind::AttackTechnique => ("text", "External analysis"),
        ObservableKind::MalwareFamily => ("text", "Attribution"),
    }
}

/// Whether MISP should hand the attribute to detection (IDS) tools.
fn to_ids(kind: ObservableKind) -> bool {
    !matches!(
        kind,
        ObservableKind::Cve
            | ObservableKind::Asn
            | ObservableKind::AttackTechnique
            | ObservableKind::MalwareFamily
            | ObservableKind::Filename
    )
}

/// The council as a MISP organisation.
fn orgc() -> Value {
    json!({"name": COUNCIL_NAME, "uuid": stable_uuid("misp-org|council").to_string()})
}

/// The uuid of a campaign's event.
pub fn event_uuid(export: &CampaignExport) -> String {
    stable_uuid(&format!("misp-event|{}", export.view.id)).to_string()
}

fn tags(export: &CampaignExport) -> Vec<Value> {
    let mut tags = vec![json!({"name": tlp_tag(export.view.tlp)})];
    if let Some(scope) = export.view.scope {
        tags.push(json!({"name": scope_tag(scope)}));
    }
    if export.view.unconfirmed {
        tags.push(json!({"name": "workflow:state=\"incomplete\""}));
        tags.push(json!({"name": "musubi:unconfirmed"}));
    }
    for f in &export.view.flags {
        tags.push(json!({"name": format!("musubi:flag=\"{}\"", f.name)}));
    }
    tags
}

fn info(export: &CampaignExport) -> String {
    format!(
        "musubi campaign {}{}: {} report(s)",
        export.view.id,
        if export.view.unconfirmed {
            " [unconfirmed]"
        } else {
            ""
        },
        export.view.report_count
    )
}

/// One campaign as a MISP event (`{"Event": ...}`).
pub fn event(export: &CampaignExport) -> Value {
    let view = &export.view;
    let uuid = event_uuid(export);
    let mut attributes = Vec::new();
    // One attribute per observable, at the time it was last reported.
    let mut seen: BTreeMap<(ObservableKind, String), (i64, Vec<String>)> = BTreeMap::new();
    for r in &export.reports {
        let at = r.summary.received_at.timestamp();
        for i in &r.indicators {
            let e = seen
                .entry((i.observable.kind(), i.observable.value().to_string()))
                .or_insert((at, Vec::new()));
            e.0 = e.0.max(at);
            if !e.1.contains(&r.summary.id.to_string()) {
                e.1.push(r.summary.id.to_string());
            }
        }
    }
    for ((kind, value), (at, reports)) in &seen {
        let (ty, category) = attribute_type(*kind);
        let comment = match kind {
            ObservableKind::AttackTechnique => {
                format!("ATT&CK technique; in {}", reports.join(" "))
            }
            ObservableKind::MalwareFamily => format!("malware family; in {}", reports.join(" ")),
            _ => format!("in {}", reports.join(" ")),
        };
        attributes.push(json!({
            "uuid": stable_uuid(&format!("misp-attribute|{}|{}|{value}", view.id, kind.as_str())).to_string(),
            "type": ty,
            "category": category,
            "value": value,
            "to_ids": to_ids(*kind),
            "timestamp": at.to_string(),
            "comment": comment,
            "distribution": "5",
            "disable_correlation": false,
        }));
    }
    let confirmed = export
        .reports
        .iter()
        .any(|r| r.summary.confidence == Confidence::Confirmed);
    json!({"Event": {
        "uuid": uuid,
        "info": info(export),
        "date": view.first_seen.format("%Y-%m-%d").to_string(),
        "timestamp": view.last_seen.timestamp().to_string(),
        "publish_timestamp": view.last_seen.timestamp().to_string(),
        "published": true,
        "analysis": if confirmed { "2" } else { "0" },
        "threat_level_id": if confirmed { "2" } else { "3" },
        "distribution": distribution(view.scope, view.tlp),
        "Orgc": orgc(),
        "Tag": tags(export),
        "Attribute": attributes,
    }})
}

/// The manifest entry of a campaign's event.
fn manifest_entry(export: &CampaignExport, event: &Value) -> Value {
    let e = &event["Event"];
    json!({
        "Orgc": e["Orgc"],
        "Tag": e["Tag"],
        "info": e["info"],
        "date": e["date"],
        "analysis": e["analysis"],
        "threat_level_id": e["threat_level_id"],
        "timestamp": e["timestamp"],
        "uuid": event_uuid(export),
    })
}

/// What [`write_feed`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedWritten {
    pub events: usize,
    pub attributes: usize,
}

fn write(path: PathBuf, bytes: &[u8]) -> Result<()> {
    std::fs::write(&path, bytes).map_err(|source| MispFeedError::Io { path, source })
}

/// Writes the feed into `dir` (created if missing). Event files of campaigns no longer in
/// the feed are left alone: MISP reads only what the manifest lists.
pub fn write_feed(dir: &Path, exports: &[CampaignExport]) -> Result<FeedWritten> {
    std::fs::create_dir_all(dir).map_err(|source| MispFeedError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut manifest = serde_json::Map::new();
    let mut hashes = String::new();
    let mut attributes = 0;
    for export in exports {
        let ev = event(export);
        let uuid = event_uuid(export);
        for a in ev["Event"]["Attribute"].as_array().into_iter().flatten() {
            let value = a["value"].as_str().unwrap_or_default();
            hashes.push_str(&format!("{},{uuid}\n", md5_hex(value)));
            attributes += 1;
        }
        manifest.insert(uuid.clone(), manifest_entry(export, &ev));
        let body = serde_json::to_vec_pretty(&ev).expect("a JSON value serialises");
        write(dir.join(format!("{uuid}.json")), &body)?;
    }
    let body = serde_json::to_vec_pretty(&Value::Object(manifest)).expect("serialises");
    write(dir.join("manifest.json"), &body)?;
    write(dir.join("hashes.csv"), hashes.as_bytes())?;
    Ok(FeedWritten {
        events: exports.len(),
        attributes,
    })
}

/// A MISP event as [`read_feed`] returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedEvent {
    pub uuid: String,
    pub info: String,
    pub date: String,
    pub timestamp: String,
    #[serde(default)]
    pub distribution: Option<String>,
    #[serde(rename = "Orgc")]
    pub orgc: FeedOrg,
    #[serde(rename = "Tag", default)]
    pub tags: Vec<FeedTag>,
    #[serde(rename = "Attribute", default)]
    pub attributes: Vec<FeedAttribute>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FeedOrg {
    pub name: String,
    pub uuid: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FeedTag {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FeedAttribute {
    pub uuid: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub category: String,
    pub value: String,
    #[serde(default)]
    pub to_ids: bool,
}

fn read_json(path: PathBuf) -> Result<Value> {
    let bytes = std::fs::read(&path).map_err(|source| MispFeedError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| MispFeedError::Json { path, source })
}

/// Reads a MISP feed directory: every event the manifest lists, checked against its file
/// (same uuid, same timestamp) and, when `hashes.csv` is present, against its hashes.
pub fn read_feed(dir: &Path) -> Result<Vec<FeedEvent>> {
    let manifest_path = dir.join("manifest.json");
    let manifest = read_json(manifest_path.clone())?;
    let entries = manifest.as_object().ok_or_else(|| MispFeedError::Layout {
        path: manifest_path.clone(),
        what: "the manifest is not an object keyed by event uuid".into(),
    })?;
    let hashes_path = dir.join("hashes.csv");
    let hashes: Option<Vec<(String, String)>> = match std::fs::read_to_string(&hashes_path) {
        Ok(text) => Some(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(n, l)| {
                    l.split_once(',')
                        .map(|(h, u)| (h.to_string(), u.to_string()))
                        .ok_or_else(|| MispFeedError::Layout {
                            path: hashes_path.clone(),
                            what: format!("line {}: expected md5,event-uuid", n + 1),
                        })
                })
                .collect::<Result<_>>()?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(MispFeedError::Io {
                path: hashes_path,
                source,
            });
        }
    };
    let mut events = Vec::new();
    for (uuid, entry) in entries {
        let path = dir.join(format!("{uuid}.json"));
        let doc = read_json(path.clone())?;
        let event: FeedEvent =
            serde_json::from_value(doc["Event"].clone()).map_err(|source| MispFeedError::Json {
                path: path.clone(),
                source,
            })?;
        let layout = |what: String| MispFeedError::Layout {
            path: path.clone(),
            what,
        };
        if &event.uuid != uuid {
            return Err(layout(format!(
                "event uuid {} differs from its manifest key {uuid}",
                event.uuid
            )));
        }
        if entry["timestamp"].as_str() != Some(event.timestamp.as_str()) {
            return Err(layout("timestamp differs from the manifest entry".into()));
        }
        if let Some(hashes) = &hashes {
            for a in &event.attributes {
                let h = md5_hex(&a.value);
                if !hashes.iter().any(|(hh, u)| *hh == h && u == uuid) {
                    return Err(layout(format!(
                        "attribute {} has no line in hashes.csv",
                        a.uuid
                    )));
                }
            }
        }
        events.push(event);
    }
    Ok(events)
}

/// MD5 as MISP's `hashes.csv` uses it (of the attribute value), in lowercase hex.
fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_the_reference() {
        // RFC 1321 test vector.
        assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn distribution_follows_scope_then_tlp() {
        let d = distribution;
        assert_eq!(d(Some(Scope::ProviderAndSecretariat), Tlp::Clear), "0");
        assert_eq!(d(Some(Scope::CouncilMembers), Tlp::Clear), "1");
        assert_eq!(d(Some(Scope::MembersAndSupported), Tlp::Green), "2");
        assert_eq!(d(Some(Scope::MembersAndSupported), Tlp::Red), "0");
        assert_eq!(d(None, Tlp::Clear), "3");
        assert_eq!(d(None, Tlp::Green), "1");
        assert_eq!(d(None, Tlp::AmberStrict), "0");
        assert_eq!(
            scope_tag(Scope::CouncilMembers),
            "musubi:scope=\"council-members\""
        );
    }

    #[test]
    fn tlp_tags_follow_the_misp_taxonomy() {
        assert_eq!(tlp_tag(Tlp::AmberStrict), "tlp:amber+strict");
        assert_eq!(tlp_tag(Tlp::Clear), "tlp:clear");
    }
}
