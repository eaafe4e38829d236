//! What outputs show of reports and campaigns: built only through [`Viewer`].
//!
//! Every view is computed from the parts the viewer may see, so that counts, times and
//! observables never betray the existence of a report the viewer may not see; sources are
//! shown only as [`SourceLabel`]s; unconfirmed material is marked.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::policy::{Scope, SourceLabel, Viewer};
use crate::correlate::Campaign;
use crate::model::{CampaignId, Confidence, Report, ReportId, ReportMeta, Tlp};

/// A report in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct ReportSummary {
    pub id: ReportId,
    pub title: String,
    /// `submission` or `feed_item`.
    pub kind: &'static str,
    pub tlp: Tlp,
    /// The provider's sharing scope, if it narrowed TLP: every output carries it so that
    /// a recipient knows how far the material may travel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    pub confidence: Confidence,
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
    pub campaign: Option<CampaignId>,
    /// Secretariat only: the provider's membership status, so that reports of suspended
    /// or expelled members stay visible but marked. Set by the caller, which knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_status: Option<crate::store::members::MemberStatus>,
}

/// A campaign as one viewer may see it.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignView {
    pub id: CampaignId,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub report_count: usize,
    /// The most restrictive TLP among the visible reports: the campaign is never shown
    /// more widely than its parts allow.
    pub tlp: Tlp,
    /// The narrowest sharing scope among the visible reports, for the same reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// True while no visible report is confirmed.
    pub unconfirmed: bool,
    pub flags: Vec<String>,
    pub reports: Vec<ReportSummary>,
    /// Observables of the visible reports with how many visible reports carry each
    /// (detail views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observables: Option<Vec<ObservableCount>>,
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
            id: meta.id,
            title: meta.title.clone(),
            kind: meta.origin.kind_str(),
            tlp: meta.tlp,
            scope: meta.scope,
            confidence: meta.confidence,
            unconfirmed: meta.confidence == Confidence::Unconfirmed,
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
            link: d.link.clone(),
            campaign,
            provider_status: None,
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
        let unconfirmed = !reports
            .iter()
            .any(|r| r.confidence == Confidence::Confirmed);
        // Flags describe the whole campaign; until they are recomputed per viewer only the
        // secretariat sees them, so that no flag reveals parts a member may not see.
        let flags = if self.is_secretariat() || reports.len() == campaign.reports.len() {
            campaign.flag_names()
        } else {
            Vec::new()
        };
        Some(CampaignView {
            id: campaign.id,
            first_seen: first,
            last_seen: last,
            report_count: reports.len(),
            tlp,
            scope,
            unconfirmed,
            flags,
            reports,
            observables: None,
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
