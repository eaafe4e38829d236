//! What outputs show of reports and campaigns: built only through [`Viewer`].
//!
//! Every view is computed from the parts the viewer may see, so that counts, times and
//! observables never betray the existence of a report the viewer may not see; sources are
//! shown only as [`SourceLabel`]s; unconfirmed material is marked.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::anonymity::SectorLabeler;
use super::policy::{Scope, SourceLabel, Viewer};
use super::read::ids::{self, ShownCampaignId, ShownReportId};
use crate::correlate::{Campaign, Flag};
use crate::model::{CampaignId, Confidence, FlagKind, Report, ReportMeta, Tlp};

/// A report in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct ReportSummary {
    /// As shown to the viewer: opaque outside the secretariat ([`ids`]).
    pub id: ShownReportId,
    pub title: String,
    /// `submission` or `feed_item`.
    pub kind: &'static str,
    pub tlp: Tlp,
    /// The provider's sharing scope, if it narrowed TLP: every output carries it so that
    /// a recipient knows how far the material may travel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    pub confidence: Confidence,
    /// [`Confidence::is_unconfirmed`]: marked wherever the report is shown.
    pub unconfirmed: bool,
    pub received_at: DateTime<Utc>,
    pub source: SourceLabel,
}

/// A report in full.
#[derive(Debug, Clone, Serialize)]
pub struct ReportView {
    #[serde(flatten)]
    pub summary: ReportSummary,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
    pub indicators: Vec<crate::model::Indicator>,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<ShownCampaignId>,
    /// Secretariat only: the provider's membership status, so that reports of suspended
    /// or expelled members stay visible but marked. Set by the caller, which knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_status: Option<crate::store::members::MemberStatus>,
    /// Secretariat only: what the source format said about who produced the report (file,
    /// MISP organisations, STIX identities); it names the provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<crate::model::Provenance>,
}

/// A campaign as one viewer may see it.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignView {
    /// As shown to the viewer: opaque outside the secretariat ([`ids`]).
    pub id: ShownCampaignId,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub report_count: usize,
    /// The most restrictive TLP among the visible reports: the campaign is never shown
    /// more widely than its parts allow.
    pub tlp: Tlp,
    /// The narrowest sharing scope among the visible reports, for the same reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// True while every visible report is unconfirmed ([`Confidence::all_unconfirmed`]):
    /// the same definition as a report's, so a campaign is never marked while none of its
    /// reports are.
    pub unconfirmed: bool,
    /// Flags, each with its evidence: for the secretariat only (empty for everyone else,
    /// see `campaign_view`).
    pub flags: Vec<FlagView>,
    pub reports: Vec<ReportSummary>,
    /// Observables of the visible reports with how many visible reports carry each
    /// (detail views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observables: Option<Vec<ObservableCount>>,
    /// What public feeds say about the values of the visible reports (detail views only):
    /// context by reference, never a link between reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<PublicContext>>,
    /// The early-stage picture (detail views only): organisations as a k-anonymous bucket
    /// over the visible reports, first and last seen, related earlier campaigns (those for
    /// the secretariat only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<super::explain::PictureView>,
    /// Why the campaign is one group (`?explain=true`, secretariat only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<super::explain::ExplainView>,
    /// The review queue's proposed disposition with its reason (secretariat only; a
    /// proposal records nothing until the analyst confirms it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<super::review::Suggestion>,
}

impl CampaignView {
    /// The kinds of the flags shown, in the order they were raised.
    pub fn flag_kinds(&self) -> Vec<FlagKind> {
        self.flags.iter().map(|f| f.name).collect()
    }

    pub fn has_flag(&self, kind: FlagKind) -> bool {
        self.flags.iter().any(|f| f.name == kind)
    }
}

/// One flag as shown: its name and why it was raised. Only the secretariat sees flags
/// (`Viewer::campaign_view`), and even there sectors appear only as k-anonymous labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagView {
    pub name: FlagKind,
    pub evidence: FlagEvidence,
    /// The disposition the finding suggests, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggests: Option<crate::model::Disposition>,
}

pub use crate::correlate::FlagEvidence;
pub use crate::model::ObservableRef;

impl FlagView {
    /// The view of a correlation finding; `labeler` turns sectors into k-anonymous labels.
    pub fn of(flag: &Flag, labeler: Option<&SectorLabeler>) -> FlagView {
        let label = labeler.map(|l| move |s| l.label(Some(s)));
        FlagView {
            name: flag.kind,
            evidence: FlagEvidence::of(flag, label.as_ref().map(|f| f as &dyn Fn(_) -> String)),
            suggests: flag.suggested,
        }
    }

    /// One line of evidence for people (console, digest).
    pub fn summary(&self) -> String {
        self.evidence.summary()
    }

    /// [`FlagView::summary`] in `lang`: mail to a Japanese recipient reads its evidence in
    /// Japanese (the API keeps the English summary and the structured evidence).
    pub fn summary_in(&self, lang: crate::model::Language) -> String {
        self.evidence.summary_in(lang)
    }
}

/// What one public feed item says about a value a campaign carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicContext {
    /// The campaign's value the item carries.
    pub value: ObservableRef,
    pub feed: String,
    pub title: String,
    /// The item's own date (KEV: date added; otherwise when it was observed or received).
    pub date: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// What the feed states beyond the title (KEV: `kev`, `ransomware`, `due_date`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// An observable and the number of (visible) reports that carry it.
#[derive(Debug, Clone, Serialize)]
pub struct ObservableCount {
    #[serde(rename = "type")]
    pub kind: crate::model::ObservableKind,
    pub value: String,
    pub reports: usize,
}

impl Viewer {
    /// The listing form of a report, if the viewer may see it.
    pub fn report_summary(&self, meta: &ReportMeta) -> Option<ReportSummary> {
        self.may_see(meta).then(|| ReportSummary {
            id: ids::report(self, meta.id),
            title: meta.title.clone(),
            kind: meta.origin.kind_str(),
            tlp: meta.tlp,
            scope: meta.scope,
            confidence: meta.confidence,
            unconfirmed: meta.confidence.is_unconfirmed(),
            received_at: meta.received_at,
            source: self.source_label(&meta.origin),
        })
    }

    /// The full form of a report, if the viewer may see it.
    /// `released`: whether the secretariat has released it (`store::releases::is_released`).
    pub fn report_view(
        &self,
        report: &Report,
        released: bool,
        campaign: Option<CampaignId>,
    ) -> Option<ReportView> {
        let summary = self.report_summary(&report.meta_released(released))?;
        let d = &report.draft;
        Some(ReportView {
            summary,
            description: d.description.clone(),
            observed_at: d.observed_at,
            indicators: d.indicators.clone(),
            tags: d.tags.clone(),
            // A member's link can point into the provider's own systems (a ticket, an
            // intranet page): like `external_id`, it is for the provider and the
            // secretariat. A feed item's link is the public advisory.
            link: match &report.origin {
                crate::model::Origin::FeedItem { .. } => d.link.clone(),
                origin if self.is_secretariat() || self.provided(origin) => d.link.clone(),
                _ => None,
            },
            campaign: campaign.map(|c| ids::campaign(self, c)),
            provider_status: None,
            provenance: d.provenance.clone().filter(|_| self.is_secretariat()),
        })
    }

    /// A campaign through the reports the viewer may see (`metas` are the campaign's
    /// reports). None if the viewer may see none of them.
    pub fn campaign_view(&self, campaign: &Campaign, metas: &[ReportMeta]) -> Option<CampaignView> {
        let reports: Vec<ReportSummary> = metas
            .iter()
            .filter_map(|m| self.report_summary(m))
            .collect();
        let first = reports.iter().map(|r| r.received_at).min()?;
        let last = reports.iter().map(|r| r.received_at).max()?;
        let tlp = reports.iter().map(|r| r.tlp).max().unwrap_or(Tlp::Clear);
        let scope = reports
            .iter()
            .fold(None, |acc, r| Scope::narrowest(acc, r.scope));
        let unconfirmed = Confidence::all_unconfirmed(reports.iter().map(|r| r.confidence));
        // Flags describe the whole campaign, hidden parts included; until they are
        // recomputed per viewer only the secretariat sees them. Not even a member who sees
        // every report: `cross-sector` would tell a provider whether the other providers
        // share its sector, `stale` depends on other members' sightings, and whether flags
        // appear at all would tell a member that a campaign holds parts it cannot see (a
        // report that joined a campaign of hidden reports must look exactly like one that
        // formed a campaign alone, `council::read::ids`).
        // Sector labels are filled in by the read path, which knows the membership
        // (`ReadPath::label_sectors`).
        let flags = if self.is_secretariat() {
            campaign
                .flags
                .iter()
                .map(|f| FlagView::of(f, None))
                .collect()
        } else {
            Vec::new()
        };
        Some(CampaignView {
            id: ids::campaign(self, campaign.id),
            first_seen: first,
            last_seen: last,
            report_count: reports.len(),
            tlp,
            scope,
            unconfirmed,
            flags,
            reports,
            observables: None,
            context: None,
            picture: None,
            explain: None,
            suggestion: None,
        })
    }

    /// The detail form: adds the observables of the visible reports (`reports` are the
    /// campaign's full reports; invisible ones are skipped).
    /// `released`: the released ones among `reports` (`store::releases::released`).
    pub fn campaign_detail(
        &self,
        campaign: &Campaign,
        reports: &[Report],
        released: &std::collections::HashSet<crate::model::Seq>,
    ) -> Option<CampaignView> {
        let metas: Vec<ReportMeta> = reports
            .iter()
            .map(|r| r.meta_released(released.contains(&r.seq())))
            .collect();
        let mut view = self.campaign_view(campaign, &metas)?;
        let mut counts: BTreeMap<&crate::model::Observable, usize> = BTreeMap::new();
        for (r, _) in reports.iter().zip(&metas).filter(|(_, m)| self.may_see(m)) {
            for i in &r.draft.indicators {
                *counts.entry(&i.observable).or_default() += 1;
            }
        }
        let mut observables: Vec<ObservableCount> = counts
            .into_iter()
            .map(|(o, n)| ObservableCount {
                kind: o.kind(),
                value: o.value().to_string(),
                reports: n,
            })
            .collect();
        observables.sort_by(|a, b| b.reports.cmp(&a.reports).then(a.value.cmp(&b.value)));
        view.observables = Some(observables);
        Some(view)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use super::*;
    use crate::correlate::{Evidence, Flag, FlagKind};
    use crate::model::{MemberClass, MemberId, Origin, ReportDraft, ReportId, Sector, Seq};

    fn report(seq: u64, member: &str, link: &str) -> Report {
        let mut draft = ReportDraft::new(format!("report {seq}"), Tlp::Green);
        draft.link = Some(link.into());
        Report {
            id: ReportId(Seq(seq)),
            origin: Origin::Submission {
                member: MemberId(member.into()),
            },
            received_at: Utc::now(),
            draft,
        }
    }

    fn flag(kind: FlagKind) -> Flag {
        Flag {
            kind,
            evidence: Evidence::default(),
            suggested: None,
        }
    }

    /// Two providers of one campaign, both visible to the first: it must not learn from a
    /// `cross-sector` flag whether the other shares its sector, nor from `stale` what
    /// others sighted; and since a campaign with hidden parts shows no flags, one without
    /// shows none either (their presence would tell the two apart).
    #[test]
    fn a_provider_who_sees_every_report_gets_no_flag_about_members() {
        let reports = [
            report(1, "m121", "https://intranet.water.example/ticket/1"),
            report(2, "m079", "https://intranet.telecom.example/ticket/2"),
        ];
        let campaign = Campaign {
            id: "C-2026-0001".parse().unwrap(),
            reports: vec![Seq(1), Seq(2)].into(),
            first_seen: Utc::now(),
            last_seen: Utc::now(),
            linking: Vec::new(),
            sectors: BTreeSet::from([Sector::Water, Sector::Telecom]),
            flags: vec![
                flag(FlagKind::CrossSector),
                flag(FlagKind::Stale),
                flag(FlagKind::Novel),
            ],
        };
        let released = HashSet::from([Seq(1), Seq(2)]);
        let provider = Viewer::member(MemberId("m121".into()), MemberClass::General);
        let view = provider
            .campaign_detail(&campaign, &reports, &released)
            .unwrap();
        assert_eq!(view.report_count, 2);
        assert!(view.flags.is_empty(), "{:?}", view.flags);
        let secretariat = Viewer::member(MemberId("s1".into()), MemberClass::Secretariat);
        let view = secretariat
            .campaign_detail(&campaign, &reports, &released)
            .unwrap();
        assert_eq!(
            view.flag_kinds(),
            [FlagKind::CrossSector, FlagKind::Stale, FlagKind::Novel]
        );
    }

    /// A member's link can name the provider's systems: only the provider and the
    /// secretariat see it.
    #[test]
    fn a_members_link_is_for_the_provider_and_the_secretariat() {
        let r = report(1, "m121", "https://intranet.water.example/ticket/1");
        let link = |v: &Viewer| v.report_view(&r, true, None).unwrap().link;
        let other = Viewer::member(MemberId("m079".into()), MemberClass::Class1);
        let provider = Viewer::member(MemberId("m121".into()), MemberClass::General);
        let secretariat = Viewer::member(MemberId("s1".into()), MemberClass::Secretariat);
        assert_eq!(link(&other), None);
        assert!(link(&provider).is_some());
        assert!(link(&secretariat).is_some());
    }

    /// A campaign is recomputed from the parts the viewer may see: counts, times, TLP,
    /// the unconfirmed mark and the observables ignore hidden parts (a RED report for
    /// others, an unreleased one for general members), and nothing of them shows in the
    /// view. (Kept from the former `council::present`, whose views no output used.)
    #[test]
    fn campaigns_are_recomputed_from_the_visible_parts_only() {
        use chrono::TimeZone;

        use crate::council::anonymity::leak_scan;
        use crate::model::{Observable, ObservableKind};

        let part = |seq: u64, member: &str, tlp: Tlp, obs: &[&str], confidence: Confidence| {
            let mut draft = ReportDraft::new(format!("report {seq}"), tlp);
            draft.confidence = confidence;
            for o in obs {
                draft.push_observable(Observable::parse(ObservableKind::Ipv4, o).unwrap(), None);
            }
            Report {
                id: ReportId(Seq(seq)),
                origin: Origin::Submission {
                    member: MemberId(member.into()),
                },
                received_at: Utc.with_ymd_and_hms(2026, 11, 1, seq as u32, 0, 0).unwrap(),
                draft,
            }
        };
        let reports = [
            part(
                1,
                "m121",
                Tlp::Amber,
                &["192.0.2.1", "192.0.2.2"],
                Confidence::Unconfirmed,
            ),
            part(2, "m101", Tlp::Green, &["192.0.2.1"], Confidence::Suspected),
            // Hidden from other members: RED without them as recipients.
            part(3, "m079", Tlp::Red, &["192.0.2.2"], Confidence::Confirmed),
            // Not released: hidden from general members.
            part(
                4,
                "m101",
                Tlp::Green,
                &["192.0.2.3", "192.0.2.1"],
                Confidence::Unconfirmed,
            ),
        ];
        let released = HashSet::from([Seq(1), Seq(2), Seq(3)]);
        let campaign = Campaign {
            id: "C-2026-0007".parse().unwrap(),
            reports: vec![Seq(1), Seq(2), Seq(3), Seq(4)].into(),
            first_seen: reports[0].received_at,
            last_seen: reports[3].received_at,
            linking: Vec::new(),
            sectors: BTreeSet::new(),
            flags: Vec::new(),
        };

        let general = Viewer::member(MemberId("m030".into()), MemberClass::General);
        let v = general
            .campaign_detail(&campaign, &reports, &released)
            .unwrap();
        assert_eq!(v.report_count, 2);
        let shown: Vec<_> = v.reports.iter().map(|r| r.id.internal()).collect();
        assert_eq!(shown, [ReportId(Seq(1)), ReportId(Seq(2))]);
        assert_eq!(v.last_seen, reports[1].received_at);
        assert_eq!(v.tlp, Tlp::Amber);
        // One visible report is suspected: the campaign is not unconfirmed.
        assert!(!v.unconfirmed);
        let observables: Vec<_> = v
            .observables
            .as_ref()
            .unwrap()
            .iter()
            .map(|o| (o.value.as_str(), o.reports))
            .collect();
        assert_eq!(observables, [("192.0.2.1", 2), ("192.0.2.2", 1)]);
        let json = serde_json::to_string(&v).unwrap();
        assert!(
            leak_scan(&json, &["m121", "m101", "m079", "192.0.2.3"]).is_empty(),
            "{json}"
        );

        // Class 1 also sees the unreleased part; the secretariat sees everything.
        let class1 = Viewer::member(MemberId("m150".into()), MemberClass::Class1);
        let v = class1
            .campaign_detail(&campaign, &reports, &released)
            .unwrap();
        assert_eq!(v.report_count, 3);
        let sec = Viewer::member(MemberId("s1".into()), MemberClass::Secretariat);
        let v = sec.campaign_detail(&campaign, &reports, &released).unwrap();
        assert_eq!((v.report_count, v.tlp), (4, Tlp::Red));

        // Only unconfirmed parts visible: marked, like each of them.
        let v = general
            .campaign_detail(&campaign, &reports[..1], &released)
            .unwrap();
        assert!(v.unconfirmed && v.reports.iter().all(|r| r.unconfirmed));

        // A viewer who may see no part sees no campaign at all.
        assert!(
            general
                .campaign_detail(&campaign, &reports[2..3], &released)
                .is_none()
        );
    }
}
