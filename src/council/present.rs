//! What a viewer is shown: reports and campaigns passed through the policy.
//!
//! Outputs build their pages, digests and exports from these views and nothing else. A
//! campaign is shown only through the parts the viewer may see, and everything about it —
//! counts, dates, linking observables, sectors, TLP — is recomputed from those parts alone,
//! so that neither a count nor a flag betrays a part the viewer may not see.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;

use super::anonymity::SectorLabeler;
use super::policy::{Onward, Scope, SourceLabel, Viewer};
use super::read::ids::{self, ShownCampaignId, ShownReportId};
use crate::correlate::Campaign;
use crate::model::{
    Confidence, Indicator, Member, MemberId, Observable, Origin, Report, ReportMeta, Seq, Tlp,
};
use crate::store::{self, members::MemberStatus};

/// The provider of a member's report, as the store knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    pub member: Member,
    pub status: MemberStatus,
}

/// A report with what the policy and the views need about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub report: Report,
    pub meta: ReportMeta,
    /// `None` for feed items (and for a member no longer in the store).
    pub provider: Option<Provider>,
}

/// Loads reports with their release state and provider (missing reports are skipped).
pub fn load_parts(conn: &Connection, seqs: &[Seq]) -> store::Result<Vec<Part>> {
    let mut out = Vec::with_capacity(seqs.len());
    for report in store::reports::get_many(conn, seqs)? {
        let released = store::releases::is_released(conn, report.seq())?;
        let provider = match &report.origin {
            Origin::Submission { member } => {
                match (
                    store::members::find(conn, &member.0)?,
                    store::members::status(conn, member)?,
                ) {
                    (Some(member), Some(status)) => Some(Provider { member, status }),
                    _ => None,
                }
            }
            Origin::FeedItem { .. } => None,
        };
        out.push(Part {
            meta: report.meta_released(released),
            report,
            provider,
        });
    }
    Ok(out)
}

/// Marks unconfirmed material wherever it is shown.
fn unconfirmed(c: Confidence) -> bool {
    c != Confidence::Confirmed
}

fn confidence_rank(c: Confidence) -> u8 {
    match c {
        Confidence::Unconfirmed => 0,
        Confidence::Suspected => 1,
        Confidence::Confirmed => 2,
    }
}

/// A report as one viewer may see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportView {
    pub id: ShownReportId,
    pub source: SourceLabel,
    /// The provider's sector as the anonymity rule allows it to be named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    pub tlp: Tlp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// How far the viewer may pass it on.
    pub handling: Onward,
    pub confidence: Confidence,
    /// True unless the provider confirmed it: shown wherever the report is.
    pub unconfirmed: bool,
    pub received_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
    pub title: String,
    pub description: String,
    pub indicators: Vec<Indicator>,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The source's own id: for feed items, the provider and the secretariat only (a
    /// member's ticket number could name them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Named RED recipients: the provider and the secretariat only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<MemberId>,
    /// Secretariat only: whether the secretariat has released it to class 2 and general.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub released: Option<bool>,
    /// Secretariat only: the provider's status, so that reports of expelled members stay
    /// visible but marked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_status: Option<MemberStatus>,
}

/// The report as `viewer` may see it, or `None` if the policy hides it.
pub fn report_for(viewer: &Viewer, part: &Part, labeler: &SectorLabeler) -> Option<ReportView> {
    if !viewer.may_see(&part.meta) {
        return None;
    }
    let secretariat = viewer.is_secretariat();
    let own = viewer.provided(&part.report.origin);
    let sector = part.provider.as_ref().map(|p| {
        if secretariat {
            p.member.sector.map_or_else(
                || p.member.category.as_str().to_string(),
                |s| s.as_str().to_string(),
            )
        } else {
            labeler.label(p.member.sector)
        }
    });
    let d = &part.report.draft;
    let is_feed = matches!(part.report.origin, Origin::FeedItem { .. });
    Some(ReportView {
        id: ids::report(viewer, part.report.id),
        source: viewer.source_label(&part.report.origin),
        sector,
        tlp: d.tlp,
        scope: d.scope,
        handling: part.meta.onward(),
        confidence: d.confidence,
        unconfirmed: unconfirmed(d.confidence),
        received_at: part.report.received_at,
        observed_at: d.observed_at,
        title: d.title.clone(),
        description: d.description.clone(),
        indicators: d.indicators.clone(),
        tags: d.tags.clone(),
        link: d.link.clone(),
        external_id: if is_feed || secretariat || own {
            d.external_id.clone()
        } else {
            None
        },
        recipients: if secretariat || own {
            d.recipients.clone()
        } else {
            Vec::new()
        },
        released: secretariat.then_some(part.meta.released),
        provider_status: if secretariat {
            part.provider.as_ref().map(|p| p.status)
        } else {
            None
        },
    })
}

/// A campaign as one viewer may see it: computed from the visible parts only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignView {
    pub id: ShownCampaignId,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub report_count: usize,
    pub reports: Vec<ShownReportId>,
    /// Observables in at least two visible reports.
    pub linking: Vec<Observable>,
    /// Sector labels of the visible reports' providers (anonymised outside the secretariat).
    pub sectors: Vec<String>,
    /// Whether the visible reports come from providers of at least two sectors.
    pub cross_sector: bool,
    /// The narrowest TLP and scope among the visible parts: the campaign is never shown
    /// more widely than they allow.
    pub tlp: Tlp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    pub handling: Onward,
    /// The highest confidence among the visible parts.
    pub confidence: Confidence,
    pub unconfirmed: bool,
    /// How many of the visible reports are not confirmed.
    pub unconfirmed_reports: usize,
    /// Secretariat only: the providing members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub providers: Option<Vec<MemberId>>,
}

/// The campaign as `viewer` may see it, or `None` if the viewer may see none of its parts.
/// `parts` may hold any reports; only those of the campaign that the viewer may see count.
pub fn campaign_for(
    viewer: &Viewer,
    campaign: &Campaign,
    parts: &[Part],
    labeler: &SectorLabeler,
) -> Option<CampaignView> {
    let members: BTreeSet<Seq> = campaign.reports.iter().copied().collect();
    let mut visible: Vec<&Part> = parts
        .iter()
        .filter(|p| members.contains(&p.report.seq()) && viewer.may_see(&p.meta))
        .collect();
    visible.sort_by_key(|p| p.report.seq());
    visible.dedup_by_key(|p| p.report.seq());
    let first = visible.first()?;
    let secretariat = viewer.is_secretariat();

    let mut per_observable: BTreeMap<&Observable, usize> = BTreeMap::new();
    for p in &visible {
        let mut seen = BTreeSet::new();
        for i in &p.report.draft.indicators {
            if seen.insert(&i.observable) {
                *per_observable.entry(&i.observable).or_insert(0) += 1;
            }
        }
    }
    let linking = per_observable
        .into_iter()
        .filter(|(_, n)| *n >= 2)
        .map(|(o, _)| o.clone())
        .collect();

    let raw_sectors: BTreeSet<_> = visible
        .iter()
        .filter_map(|p| p.provider.as_ref()?.member.sector)
        .collect();
    let mut sectors: Vec<String> = visible
        .iter()
        .filter_map(|p| p.provider.as_ref())
        .map(|p| {
            if secretariat {
                p.member.sector.map_or_else(
                    || p.member.category.as_str().to_string(),
                    |s| s.as_str().to_string(),
                )
            } else {
                labeler.label(p.member.sector)
            }
        })
        .collect();
    sectors.sort();
    sectors.dedup();

    let tlp = visible
        .iter()
        .map(|p| p.meta.tlp)
        .max()
        .unwrap_or(first.meta.tlp);
    let scope = visible
        .iter()
        .fold(None, |acc, p| Scope::narrowest(acc, p.meta.scope));
    let handling = visible
        .iter()
        .map(|p| p.meta.onward())
        .max()
        .unwrap_or(Onward::Public);
    let confidence = visible
        .iter()
        .map(|p| p.meta.confidence)
        .max_by_key(|c| confidence_rank(*c))
        .unwrap_or_default();
    let providers = secretariat.then(|| {
        let set: BTreeSet<MemberId> = visible
            .iter()
            .filter_map(|p| match &p.report.origin {
                Origin::Submission { member } => Some(member.clone()),
                Origin::FeedItem { .. } => None,
            })
            .collect();
        set.into_iter().collect()
    });
    Some(CampaignView {
        id: ids::campaign(viewer, campaign.id),
        first_seen: visible.iter().map(|p| p.report.received_at).min()?,
        last_seen: visible.iter().map(|p| p.report.received_at).max()?,
        report_count: visible.len(),
        reports: visible
            .iter()
            .map(|p| ids::report(viewer, p.report.id))
            .collect(),
        linking,
        sectors,
        cross_sector: raw_sectors.len() >= 2,
        tlp,
        scope,
        handling,
        confidence,
        unconfirmed: unconfirmed(confidence),
        unconfirmed_reports: visible
            .iter()
            .filter(|p| unconfirmed(p.meta.confidence))
            .count(),
        providers,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::council::anonymity::{DEFAULT_K, leak_scan};
    use crate::model::{CampaignId, ReportId};
    use crate::model::{Category, MemberClass, ObservableKind, ReportDraft};

    fn member(id: &str, sector: Option<crate::model::Sector>) -> Member {
        Member {
            id: MemberId(id.into()),
            name: format!("Org {id}"),
            category: if sector.is_some() {
                Category::CriticalInfrastructure
            } else {
                Category::Other
            },
            sector,
            class: MemberClass::General,
        }
    }

    fn part(
        seq: u64,
        provider: &Member,
        tlp: Tlp,
        released: bool,
        obs: &[&str],
        confidence: Confidence,
    ) -> Part {
        let mut draft = ReportDraft::new(format!("report {seq}"), tlp);
        draft.confidence = confidence;
        for o in obs {
            draft.push_observable(Observable::parse(ObservableKind::Ipv4, o).unwrap(), None);
        }
        let report = Report {
            id: ReportId(Seq(seq)),
            origin: Origin::Submission {
                member: provider.id.clone(),
            },
            received_at: Utc.with_ymd_and_hms(2026, 11, 1, seq as u32, 0, 0).unwrap(),
            draft,
        };
        Part {
            meta: report.meta_released(released),
            report,
            provider: Some(Provider {
                member: provider.clone(),
                status: MemberStatus::Approved,
            }),
        }
    }

    #[test]
    fn campaigns_are_recomputed_from_the_visible_parts_only() {
        use crate::model::Sector::*;
        let water = member("m121", Some(Water));
        let bank = member("m101", Some(Finance));
        let telco = member("m079", Some(Telecom));
        let mut roster: Vec<Member> = (0..3)
            .map(|i| member(&format!("f{i}"), Some(Finance)))
            .collect();
        roster.extend((0..3).map(|i| member(&format!("t{i}"), Some(Telecom))));
        roster.push(water.clone());
        let labeler = SectorLabeler::new(&roster, DEFAULT_K);
        let parts = vec![
            part(
                1,
                &water,
                Tlp::Amber,
                true,
                &["192.0.2.1", "192.0.2.2"],
                Confidence::Unconfirmed,
            ),
            part(
                2,
                &bank,
                Tlp::Green,
                true,
                &["192.0.2.1"],
                Confidence::Confirmed,
            ),
            // Hidden from other members: RED without them as recipients. It alone links
            // 192.0.2.2 a second time and brings the telecom sector.
            part(
                3,
                &telco,
                Tlp::Red,
                true,
                &["192.0.2.2"],
                Confidence::Confirmed,
            ),
            // Not released yet: hidden from general members.
            part(
                4,
                &bank,
                Tlp::Green,
                false,
                &["192.0.2.3", "192.0.2.1"],
                Confidence::Unconfirmed,
            ),
        ];
        let campaign = Campaign {
            id: CampaignId {
                year: 2026,
                number: 7,
            },
            reports: vec![Seq(1), Seq(2), Seq(3), Seq(4)],
            first_seen: parts[0].report.received_at,
            last_seen: parts[3].report.received_at,
            linking: vec![],
            sectors: Default::default(),
            flags: Vec::new(),
        };
        let general = Viewer::member(MemberId("m030".into()), MemberClass::General);
        let v = campaign_for(&general, &campaign, &parts, &labeler).unwrap();
        assert_eq!(v.report_count, 2);
        let internal: Vec<_> = v.reports.iter().map(|r| r.internal()).collect();
        assert_eq!(internal, [ReportId(Seq(1)), ReportId(Seq(2))]);
        assert!(v.reports.iter().all(|r| !r.to_string().starts_with("R-1")));
        assert_eq!(v.last_seen, parts[1].report.received_at);
        let linking: Vec<_> = v.linking.iter().map(|o| o.value().to_string()).collect();
        assert_eq!(linking, ["192.0.2.1"]);
        // Water has one member: it is labelled as critical infrastructure.
        assert_eq!(v.sectors, ["critical infrastructure", "finance"]);
        assert!(v.cross_sector);
        assert_eq!(
            (v.tlp, v.confidence, v.unconfirmed, v.unconfirmed_reports),
            (Tlp::Amber, Confidence::Confirmed, false, 1)
        );
        assert_eq!(v.providers, None);
        let json = serde_json::to_string(&v).unwrap();
        assert!(
            leak_scan(
                &json,
                &["m121", "water", "Org m121", "telecom", "192.0.2.3"]
            )
            .is_empty(),
            "{json}"
        );

        // Class 1 also sees the unreleased part; the secretariat sees everything, named.
        let class1 = Viewer::member(MemberId("m150".into()), MemberClass::Class1);
        assert_eq!(
            campaign_for(&class1, &campaign, &parts, &labeler)
                .unwrap()
                .report_count,
            3
        );
        let sec = Viewer::member(MemberId("s1".into()), MemberClass::Secretariat);
        let v = campaign_for(&sec, &campaign, &parts, &labeler).unwrap();
        assert_eq!((v.report_count, v.tlp), (4, Tlp::Red));
        assert_eq!(v.sectors, ["finance", "telecom", "water"]);
        assert_eq!(v.providers.unwrap().len(), 3);

        // A viewer who may see no part sees no campaign at all.
        let only_red = vec![parts[2].clone()];
        assert!(campaign_for(&general, &campaign, &only_red, &labeler).is_none());

        // Report views: the provider's own report is not attributed, its sector is coarse.
        let r = report_for(&general, &parts[0], &labeler).unwrap();
        assert_eq!(r.source, SourceLabel::CouncilMember);
        assert_eq!(r.sector.as_deref(), Some("critical infrastructure"));
        assert!(r.unconfirmed && r.provider_status.is_none() && r.released.is_none());
        assert!(report_for(&general, &parts[2], &labeler).is_none());
        let r = report_for(&sec, &parts[0], &labeler).unwrap();
        assert_eq!(r.provider_status, Some(MemberStatus::Approved));
    }
}
