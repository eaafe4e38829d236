//! Reports: one submission by a member, or one item of a public feed.
//!
//! A [`ReportDraft`] is what a format produces and a member submits; it becomes a [`Report`]
//! when the store has made it durable and given it a sequence number. Reports are immutable
//! once stored.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::member::MemberId;
use super::observable::Observable;
use super::scope::Scope;
use super::tlp::Tlp;

/// The store's sequence number: the order in which reports became durable. Projections
/// record the last `Seq` they have applied so that they can catch up after a crash.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

/// The public identifier of a report (`R-` followed by the sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportId(pub Seq);

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R-{}", self.0.0)
    }
}

impl FromStr for ReportId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix("R-").unwrap_or(s);
        digits.parse().map(|n| ReportId(Seq(n))).map_err(|_| ())
    }
}

impl Serialize for ReportId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How sure the provider is. Unconfirmed information is welcome and is marked as such
/// wherever it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    #[default]
    Unconfirmed,
    Suspected,
    Confirmed,
}

impl Confidence {
    /// Whether material of this confidence is marked "unconfirmed" wherever it is shown:
    /// exactly what the provider called unconfirmed. A "suspected" report carries its own
    /// label; marking it unconfirmed as well would contradict it.
    ///
    /// The one definition: a report is unconfirmed when its confidence is, and a group of
    /// reports (a campaign, the reports carrying an observable) when every report of it
    /// that the viewer sees is ([`Confidence::all_unconfirmed`]), so a campaign is never
    /// marked unconfirmed while none of its reports are.
    pub fn is_unconfirmed(self) -> bool {
        self == Confidence::Unconfirmed
    }

    /// Whether a group of reports with these confidences is unconfirmed: all of them are
    /// ([`Confidence::is_unconfirmed`]). Callers pass the visible reports only.
    pub fn all_unconfirmed(confidences: impl IntoIterator<Item = Confidence>) -> bool {
        confidences.into_iter().all(Confidence::is_unconfirmed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Unconfirmed => "unconfirmed",
            Confidence::Suspected => "suspected",
            Confidence::Confirmed => "confirmed",
        }
    }
}

impl FromStr for Confidence {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unconfirmed" => Ok(Confidence::Unconfirmed),
            "suspected" => Ok(Confidence::Suspected),
            "confirmed" => Ok(Confidence::Confirmed),
            _ => Err(()),
        }
    }
}

/// One observable of a report, with the provider's optional comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    #[serde(flatten)]
    pub observable: Observable,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The STIX id of the indicator object the provider sent it as, if any: TAXII serves
    /// the object back under that id, as TAXII clients expect of their own objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stix_id: Option<String>,
}

/// Where a report came from. The member is known only inside the store and to the
/// secretariat; every output goes through the council policy, which hides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// Submitted by a member (API, CLI import on the member's behalf, TAXII).
    Submission { member: MemberId },
    /// An item of a public feed.
    FeedItem { feed: String },
}

impl Origin {
    /// `submission` or `feed_item`, the shape used by listings.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Origin::Submission { .. } => "submission",
            Origin::FeedItem { .. } => "feed_item",
        }
    }
}

/// A report before it is stored: the common output of every format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportDraft {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub tlp: Tlp,
    #[serde(default)]
    pub confidence: Confidence,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub indicators: Vec<Indicator>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The item's own id in its source (a STIX id, a feed item guid, an advisory id): with
    /// the content hash it keeps re-polled feeds from creating duplicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// A link to the original (advisory page, feed item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// A restriction on top of TLP (the narrower applies); see `council::policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The named recipients of a TLP:RED report (member ids). Shown only to the provider
    /// and the secretariat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<MemberId>,
    /// What the source format says about who produced the input (file name, MISP
    /// organisations, STIX identities). It names the provider, so it is kept out of the
    /// title, description, tags and index, and only the secretariat is shown it
    /// (`council::views`). Serialised only so that the store keeps it in the report body;
    /// outputs build their own views and never serialise a draft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// Where a report's content came from, as its source format says: secretariat-only.
///
/// Formats put everything that identifies a provider here instead of into content: a
/// provider's organisation name in a MISP event or the name of a STIX identity would
/// otherwise reach every member who may see the report, defeating source confidentiality.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The file the report was imported from (`musubi import`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// MISP `Orgc`: the organisation that created the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misp_orgc: Option<String>,
    /// MISP `Org`: the organisation that owns the event on the exporting instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misp_org: Option<String>,
    /// Names of the STIX identities in `created_by_ref` of the objects the report was
    /// built from (the identity id when the bundle does not describe it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stix_created_by: Vec<String>,
    /// Header comments of an imported list (often "generated by ...").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Provenance {
    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        *self == Provenance::default()
    }
}

impl ReportDraft {
    pub fn new(title: impl Into<String>, tlp: Tlp) -> ReportDraft {
        ReportDraft {
            title: title.into(),
            description: String::new(),
            tlp,
            confidence: Confidence::default(),
            observed_at: None,
            indicators: Vec::new(),
            tags: Vec::new(),
            external_id: None,
            link: None,
            scope: None,
            recipients: Vec::new(),
            provenance: None,
        }
    }

    /// The draft's provenance, created empty on first use.
    pub fn provenance_mut(&mut self) -> &mut Provenance {
        self.provenance.get_or_insert_with(Provenance::default)
    }

    /// Adds an observable unless the draft already carries it.
    pub fn push_observable(&mut self, observable: Observable, comment: Option<String>) {
        if !self.indicators.iter().any(|i| i.observable == observable) {
            self.push_new_observable(observable, comment);
        }
    }

    /// Adds an indicator the caller knows the draft does not hold yet (a parser of large
    /// documents keeps its own index rather than scanning the list for every value).
    pub fn push_new_observable(&mut self, observable: Observable, comment: Option<String>) {
        self.indicators.push(Indicator {
            observable,
            comment,
            stix_id: None,
        });
    }

    /// A SHA-256 over the content that defines the report, used to deduplicate re-polled
    /// feed items that carry no stable id of their own.
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.title.as_bytes());
        h.update([0]);
        h.update(self.description.as_bytes());
        h.update([0]);
        for i in &self.indicators {
            h.update(i.observable.key().as_bytes());
            h.update([0]);
        }
        hex::encode(h.finalize())
    }
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub id: ReportId,
    pub origin: Origin,
    pub received_at: DateTime<Utc>,
    #[serde(flatten)]
    pub draft: ReportDraft,
}

impl Report {
    pub fn seq(&self) -> Seq {
        self.id.0
    }
}

/// What outputs and the access policy need to know of a report, without its body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportMeta {
    pub id: ReportId,
    pub origin: Origin,
    pub received_at: DateTime<Utc>,
    pub title: String,
    pub tlp: Tlp,
    pub confidence: Confidence,
    /// A restriction on top of TLP (see `council::policy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Named recipients of a TLP:RED report.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<MemberId>,
    /// Whether the secretariat has released the report (itself or through its campaign) to
    /// class 2 and general members (`store::releases`).
    pub released: bool,
}

impl Report {
    /// The report's metadata, counted as not released: class 2 and general members wait
    /// unless the caller knows better ([`Report::meta_released`]).
    pub fn meta(&self) -> ReportMeta {
        self.meta_released(false)
    }

    /// The report's metadata with its release state (`store::releases::is_released`).
    pub fn meta_released(&self, released: bool) -> ReportMeta {
        ReportMeta {
            id: self.id,
            origin: self.origin.clone(),
            received_at: self.received_at,
            title: self.draft.title.clone(),
            tlp: self.draft.tlp,
            confidence: self.draft.confidence,
            scope: self.draft.scope,
            recipients: self.draft.recipients.clone(),
            released,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Confidence::{self, *};

    /// One definition of "unconfirmed" for reports and groups of them: a group is
    /// unconfirmed exactly when each of its reports is, so a campaign of suspected reports
    /// is no more unconfirmed than any of them.
    #[test]
    fn unconfirmed_means_the_same_for_a_report_and_a_campaign() {
        assert!(Unconfirmed.is_unconfirmed());
        assert!(!Suspected.is_unconfirmed());
        assert!(!Confirmed.is_unconfirmed());
        let groups: [&[Confidence]; 6] = [
            &[Unconfirmed],
            &[Suspected],
            &[Suspected, Suspected],
            &[Unconfirmed, Unconfirmed],
            &[Unconfirmed, Suspected],
            &[Unconfirmed, Confirmed],
        ];
        for g in groups {
            let group = Confidence::all_unconfirmed(g.iter().copied());
            assert_eq!(group, g.iter().all(|c| c.is_unconfirmed()), "{g:?}");
            // A group is marked only if none of its parts carries a stronger label.
            assert_eq!(group, !g.iter().any(|c| !c.is_unconfirmed()), "{g:?}");
        }
        assert!(!Confidence::all_unconfirmed([Suspected, Suspected]));
        assert!(Confidence::all_unconfirmed([Unconfirmed, Unconfirmed]));
    }
}
