//! TAXII 2.1 collections and paging, independent of HTTP (served by `http::taxii`).
//!
//! Collections are per audience: each collection names the one [`Viewer`] its objects are
//! computed for ([`Collection::viewer`]) — the requesting member (task force), every
//! council member ([`super::MEMBERS`]) or the public ([`Viewer::PUBLIC`]) — and every
//! report passes the council policy for that viewer in the read path
//! ([`crate::council::ReadPath::taxii_objects`]), inside the page query. Objects are
//! ordered by (date added, id); the `next` cursor is that pair, hex-encoded, and a page
//! reads the rows after it ([`Filter::query`]): walking a collection costs its size, and
//! pages stay stable while reports arrive. A collection holds each visible report (a STIX
//! `report`) and its observables (indicators under the provider's own STIX ids where it
//! sent them), plus the council identity and markings every object refers to.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::stable_uuid;
use super::stix::{StixObject, timestamp};
use crate::council::Viewer;
use crate::council::read::TaxiiQuery;
use crate::model::MemberClass;

/// The TAXII 2.1 media type (envelopes, collections, manifests, status, errors).
pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// The default and largest page sizes.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// One TAXII collection.
#[derive(Debug, Clone, Copy)]
pub struct Collection {
    pub alias: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// Who the collection's objects are for.
    pub audience: CollectionAudience,
    /// Which classes may read it.
    pub readers: &'static [MemberClass],
    /// Whether members may POST submissions to it.
    pub can_write: bool,
}

/// Who a collection is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionAudience {
    /// Exactly what the requesting member may see.
    Requester,
    /// What every council member may see ([`super::MEMBERS`]).
    Members,
    /// The public ([`Viewer::PUBLIC`]).
    Public,
}

const ALL_CLASSES: &[MemberClass] = &[
    MemberClass::Class1,
    MemberClass::Class2,
    MemberClass::General,
    MemberClass::Secretariat,
];

/// The council's collections.
pub static COLLECTIONS: [Collection; 3] = [
    Collection {
        alias: "task-force",
        title: "Task force",
        description: "Campaigns as the requesting task-force member may see them (class 1 and secretariat).",
        audience: CollectionAudience::Requester,
        readers: &[MemberClass::Class1, MemberClass::Secretariat],
        can_write: true,
    },
    Collection {
        alias: "members",
        title: "Council members",
        description: "Campaigns shareable with every council member: released, TLP:CLEAR, GREEN and AMBER, no narrower sharing scope.",
        audience: CollectionAudience::Members,
        readers: ALL_CLASSES,
        can_write: true,
    },
    Collection {
        alias: "public",
        title: "Public",
        description: "Campaigns built from released TLP:CLEAR information without sharing scope only.",
        audience: CollectionAudience::Public,
        readers: ALL_CLASSES,
        can_write: false,
    },
];

impl Collection {
    /// The collection's id: a UUID derived from its alias (stable across restarts).
    pub fn id(&self) -> String {
        stable_uuid(&format!("taxii-collection|{}", self.alias)).to_string()
    }

    /// The viewer the collection's objects are computed for when `requester` reads it.
    pub fn viewer(&self, requester: &Viewer) -> Viewer {
        match self.audience {
            CollectionAudience::Requester => requester.clone(),
            CollectionAudience::Members => super::MEMBERS,
            CollectionAudience::Public => Viewer::PUBLIC,
        }
    }

    pub fn can_read(&self, class: MemberClass) -> bool {
        self.readers.contains(&class)
    }

    /// The collection resource (TAXII 2.1 §5.2) for a member of `class`.
    pub fn resource(&self, class: MemberClass) -> Value {
        json!({
            "id": self.id(),
            "title": self.title,
            "description": self.description,
            "alias": self.alias,
            "can_read": self.can_read(class),
            "can_write": self.can_write,
            "media_types": [super::stix::MEDIA_TYPE],
        })
    }
}

/// The collection with this id or alias.
pub fn collection(id: &str) -> Option<&'static Collection> {
    COLLECTIONS.iter().find(|c| c.alias == id || c.id() == id)
}

/// A position in a collection: the last (date added, id) a page returned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub added: DateTime<Utc>,
    pub id: String,
}

impl Cursor {
    /// The opaque form handed to clients.
    pub fn encode(&self) -> String {
        hex::encode(format!(
            "{}|{}",
            self.added.timestamp_nanos_opt().unwrap_or_default(),
            self.id
        ))
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let text = String::from_utf8(hex::decode(s).ok()?).ok()?;
        let (nanos, id) = text.split_once('|')?;
        Some(Cursor {
            added: DateTime::from_timestamp_nanos(nanos.parse().ok()?),
            id: id.to_string(),
        })
    }
}

/// Which versions `match[version]` asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionMatch {
    First,
    Last,
    All,
    At(DateTime<Utc>),
}

/// The filters of a list request (TAXII 2.1 §3.4, §3.5).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub added_after: Option<DateTime<Utc>>,
    pub ids: Vec<String>,
    pub types: Vec<String>,
    /// Empty means the default, `last`.
    pub versions: Vec<VersionMatch>,
    pub spec_versions: Vec<String>,
    pub limit: usize,
    pub next: Option<Cursor>,
}

impl Filter {
    fn keeps(&self, o: &StixObject) -> bool {
        // Clients see millisecond timestamps: compare what they saw.
        if self.added_after.is_some_and(|t| ms(o.date_added) <= t) {
            return false;
        }
        if !self.ids.is_empty() && !self.ids.contains(&o.id) {
            return false;
        }
        if !self.types.is_empty() && !self.types.iter().any(|t| t == o.kind()) {
            return false;
        }
        // Objects have one version each: first, last and all all match it.
        if self
            .versions
            .iter()
            .all(|v| matches!(v, VersionMatch::At(t) if *t != ms(o.version)))
            && !self.versions.is_empty()
        {
            return false;
        }
        if !self.spec_versions.is_empty() && !self.spec_versions.iter().any(|v| v == "2.1") {
            return false;
        }
        if let Some(c) = &self.next
            && (o.date_added, o.id.as_str()) <= (c.added, c.id.as_str())
        {
            return false;
        }
        true
    }
}

impl Filter {
    /// The store query for one page under this filter: `limit + 1` rows (to know whether
    /// there is more), after the cursor, with every filter that can be a range or an
    /// equality inside the query. `None` when nothing can match.
    pub fn query(&self) -> Option<TaxiiQuery> {
        if !self.spec_versions.is_empty() && !self.spec_versions.iter().any(|v| v == "2.1") {
            return None;
        }
        let one_ms = chrono::TimeDelta::milliseconds(1);
        // Objects have one version each: first, last and all match it, a time matches the
        // objects whose version (as clients see it, in ms) is that time.
        let versions = if self
            .versions
            .iter()
            .all(|v| matches!(v, VersionMatch::At(_)))
        {
            self.versions
                .iter()
                .filter_map(|v| match v {
                    VersionMatch::At(t) => Some((ms(*t), ms(*t) + one_ms)),
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        Some(TaxiiQuery {
            after: self.next.as_ref().map(|c| (c.added, c.id.clone())),
            // Kept when its date added, in ms, is after the client's time.
            added_from: self.added_after.map(|t| ms(t) + one_ms),
            ids: self.ids.clone(),
            types: self.types.clone(),
            versions,
            limit: self.limit.clamp(1, MAX_LIMIT) + 1,
        })
    }
}

/// A time as clients see it (STIX timestamps carry milliseconds).
fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(3)
}

/// One page of a collection.
#[derive(Debug, Clone)]
pub struct Page {
    pub objects: Vec<StixObject>,
    pub more: bool,
    pub next: Option<String>,
}

impl Page {
    /// The `X-TAXII-Date-Added-First` and `-Last` values.
    pub fn added_range(&self) -> Option<(String, String)> {
        let first = self.objects.first()?.date_added;
        let last = self.objects.last()?.date_added;
        Some((timestamp(first), timestamp(last)))
    }
}

/// Orders a collection's objects (by date added, then id; one entry per id and date added:
/// an id a member posted again later is a later version of it) and cuts the page the
/// filter asks for.
pub fn page(mut objects: Vec<StixObject>, filter: &Filter) -> Page {
    objects.sort_by(|a, b| (a.date_added, &a.id).cmp(&(b.date_added, &b.id)));
    let mut seen = std::collections::HashSet::new();
    objects.retain(|o| seen.insert((o.id.clone(), o.date_added)));
    let limit = filter.limit.clamp(1, MAX_LIMIT);
    let mut kept: Vec<StixObject> = objects.into_iter().filter(|o| filter.keeps(o)).collect();
    let more = kept.len() > limit;
    kept.truncate(limit);
    let next = more.then(|| {
        let last = kept.last().expect("a full page is not empty");
        Cursor {
            added: last.date_added,
            id: last.id.clone(),
        }
        .encode()
    });
    Page {
        objects: kept,
        more,
        next,
    }
}

/// Parses a `match[version]` value list.
pub fn parse_versions(s: &str) -> Result<Vec<VersionMatch>, String> {
    s.split(',')
        .map(|v| match v.trim() {
            "first" => Ok(VersionMatch::First),
            "last" => Ok(VersionMatch::Last),
            "all" => Ok(VersionMatch::All),
            t => super::stix::parse_timestamp(t)
                .map(VersionMatch::At)
                .ok_or_else(|| {
                    format!("match[version] {t:?} is not first, last, all or a timestamp")
                }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn obj(id: &str, secs: i64) -> StixObject {
        let t = Utc.timestamp_opt(secs, 0).unwrap();
        StixObject {
            id: id.into(),
            date_added: t,
            version: t,
            object: json!({"id": id}),
        }
    }

    #[test]
    fn pages_follow_the_cursor_without_gaps_or_repeats() {
        let all: Vec<StixObject> = (0..7)
            .map(|i| obj(&format!("indicator--{i}"), 100 + i / 2))
            .collect();
        let mut filter = Filter {
            limit: 3,
            ..Filter::default()
        };
        let mut got = Vec::new();
        loop {
            let p = page(all.clone(), &filter);
            got.extend(p.objects.iter().map(|o| o.id.clone()));
            match p.next {
                Some(n) => filter.next = Some(Cursor::decode(&n).unwrap()),
                None => break,
            }
        }
        assert_eq!(got.len(), 7);
        got.dedup();
        assert_eq!(got.len(), 7);
    }

    #[test]
    fn filters_by_added_after_type_and_version() {
        let all = vec![obj("indicator--a", 10), obj("report--b", 20)];
        let f = Filter {
            limit: 10,
            added_after: Some(Utc.timestamp_opt(10, 0).unwrap()),
            ..Filter::default()
        };
        assert_eq!(page(all.clone(), &f).objects.len(), 1);
        let f = Filter {
            limit: 10,
            types: vec!["indicator".into()],
            ..Filter::default()
        };
        assert_eq!(page(all.clone(), &f).objects[0].id, "indicator--a");
        let f = Filter {
            limit: 10,
            versions: parse_versions("1970-01-01T00:00:20.000Z").unwrap(),
            ..Filter::default()
        };
        assert_eq!(page(all, &f).objects[0].id, "report--b");
        assert!(parse_versions("newest").is_err());
    }

    #[test]
    fn collections_resolve_by_alias_and_id() {
        let m = collection("members").unwrap();
        assert_eq!(collection(&m.id()).unwrap().alias, "members");
        assert!(
            !collection("task-force")
                .unwrap()
                .can_read(MemberClass::General)
        );
        assert!(collection("nope").is_none());
    }
}
