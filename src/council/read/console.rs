//! What the analysts' console shows beyond the campaign list and detail: the review queue,
//! recent reports, the campaign page with its reports, the secretariat's review records,
//! and the console's search — each computed for one viewer.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::ids::{self, ShownCampaignId};
use super::search::SearchError;
use super::{Page, ReadPath, Result, Viewer, load};
use crate::council::review::{self, DispositionRecord, Pin};
use crate::council::{CampaignView, ReportSummary, ReportView};
use crate::model::{CampaignId, Disposition, FlagKind, MemberId, Sector, Seq};
use crate::store;

/// Reports read per batch while looking for the newest visible ones.
const BATCH: u64 = 200;

/// A campaign page: the campaign as the viewer sees it and its visible reports in full,
/// oldest first.
#[derive(Debug, Clone)]
pub struct CampaignPage {
    pub view: CampaignView,
    pub reports: Vec<ReportView>,
}

/// The secretariat's records about one campaign.
#[derive(Debug, Clone, Default)]
pub struct CampaignReview {
    /// Names of the members who provided the campaign's reports.
    pub names: HashMap<MemberId, String>,
    /// Distinct sectors among the reporters.
    pub sectors: Vec<Sector>,
    /// Dispositions, newest first.
    pub dispositions: Vec<DispositionRecord>,
    /// Merge and split requests in force that name the campaign, newest first.
    pub pins: Vec<Pin>,
    /// Correlation events (merges, splits, id changes), oldest first.
    pub history: Vec<(String, serde_json::Value)>,
}

/// One entry of the review queue as the console shows it.
#[derive(Debug, Clone)]
pub struct QueueRow {
    pub view: CampaignView,
    /// The current disposition: secretariat only.
    pub disposition: Option<Disposition>,
    /// The proposed category with its reason: secretariat only (from the flags).
    pub suggested: Option<review::Suggestion>,
}

impl ReadPath {
    /// Every campaign the viewer may see, most recently (visibly) active first.
    pub async fn all_campaigns(&self, viewer: &Viewer) -> Result<Vec<CampaignView>> {
        self.campaigns(
            viewer,
            Page {
                offset: 0,
                limit: usize::MAX,
            },
        )
        .await
    }

    /// The reporters' sectors of every campaign: secretariat only (empty for anyone else,
    /// since a sector can name a provider).
    pub fn campaign_sectors(&self, viewer: &Viewer) -> HashMap<CampaignId, Vec<Sector>> {
        if !viewer.is_secretariat() {
            return HashMap::new();
        }
        self.campaign_set()
            .campaigns
            .iter()
            .map(|c| (c.id, c.sectors.iter().copied().collect()))
            .collect()
    }

    /// The current disposition of every decided campaign: secretariat only (`None` for
    /// anyone else).
    pub async fn dispositions(
        &self,
        viewer: &Viewer,
    ) -> Result<Option<HashMap<CampaignId, Disposition>>> {
        if !viewer.is_secretariat() {
            return Ok(None);
        }
        self.read(|conn| {
            Ok(Some(
                review::current_all(conn)?
                    .into_iter()
                    .map(|(id, d)| (id, d.disposition))
                    .collect(),
            ))
        })
        .await
    }

    /// The review queue over the campaigns the viewer may see, at most `limit` rows: the
    /// council's order ([`review::order`]: priority, then visible activity). For the
    /// secretariat, campaigns decided since their last activity leave the queue
    /// ([`review::queue`]) and rows carry the disposition; members see flagged campaigns
    /// in the same order and no dispositions.
    pub async fn review_queue(&self, viewer: &Viewer, limit: usize) -> Result<Vec<QueueRow>> {
        let views = self.all_campaigns(viewer).await?;
        let items: Vec<(CampaignId, Vec<FlagKind>, DateTime<Utc>)> = views
            .iter()
            .map(|v| (v.id.internal(), v.flag_kinds(), v.last_seen))
            .collect();
        let entries = if viewer.is_secretariat() {
            self.read(move |conn| review::queue(conn, &items)).await?
        } else {
            review::order(&items)
        };
        let mut by_id: HashMap<CampaignId, CampaignView> =
            views.into_iter().map(|v| (v.id.internal(), v)).collect();
        Ok(entries
            .into_iter()
            .filter_map(|e| {
                by_id.remove(&e.campaign).map(|view| QueueRow {
                    suggested: viewer.is_secretariat().then(|| review::suggest(&view)),
                    view,
                    disposition: e.disposition,
                })
            })
            .take(limit)
            .collect())
    }

    /// The newest member reports the viewer may see (at most `limit`), each with its
    /// campaign, looking back over at most `scan` reports.
    pub async fn recent_reports(
        &self,
        viewer: &Viewer,
        limit: usize,
        scan: u64,
    ) -> Result<Vec<(ReportSummary, Option<ShownCampaignId>)>> {
        let set = self.campaign_set();
        let viewer = viewer.clone();
        self.read(move |conn| {
            let last = store::reports::last_seq(conn)?.0;
            let mut out = Vec::new();
            let mut hi = last;
            while hi > 0 && last - hi < scan && out.len() < limit {
                let lo = hi.saturating_sub(BATCH);
                let seqs: Vec<Seq> = ((lo + 1)..=hi).rev().map(Seq).collect();
                for meta in store::reports::metas(conn, &seqs)? {
                    // Feed items are public context (the advisories page), not the
                    // council's activity.
                    if matches!(meta.origin, crate::model::Origin::FeedItem { .. }) {
                        continue;
                    }
                    if let Some(s) = viewer.report_summary(&meta) {
                        let campaign = set
                            .of_report(s.id.internal().0)
                            .map(|c| ids::campaign(&viewer, c.id));
                        out.push((s, campaign));
                        if out.len() == limit {
                            break;
                        }
                    }
                }
                hi = lo;
            }
            Ok(out)
        })
        .await
    }

    /// One campaign with the viewer's visible reports in full; `None` when it does not
    /// exist or the viewer may see none of it.
    pub async fn campaign_page(
        &self,
        viewer: &Viewer,
        id: CampaignId,
    ) -> Result<Option<CampaignPage>> {
        let set = self.campaign_set();
        let Some(&i) = set.by_id.get(&id) else {
            return Ok(None);
        };
        let campaign = set.campaigns[i].clone();
        let viewer = viewer.clone();
        self.read(move |conn| {
            let details = load::details_vec(conn, [campaign], |_| true)?;
            let Some(detail) = details.first() else {
                return Ok(None);
            };
            let Some(mut view) = detail.view_in_context(conn, &viewer)? else {
                return Ok(None);
            };
            view.picture = detail.picture(&viewer, &set, crate::model::Language::En);
            let mut reports = detail.report_views(&viewer);
            reports.sort_by_key(|r| (r.summary.received_at, r.summary.id));
            Ok(Some(CampaignPage { view, reports }))
        })
        .await
    }

    /// The secretariat's records about a campaign: `None` for anyone else and for a
    /// campaign that does not exist.
    pub async fn campaign_review(
        &self,
        viewer: &Viewer,
        id: CampaignId,
    ) -> Result<Option<CampaignReview>> {
        if !viewer.is_secretariat() {
            return Ok(None);
        }
        let set = self.campaign_set();
        let Some(campaign) = set.get(id).cloned() else {
            return Ok(None);
        };
        self.read(move |conn| {
            let mut names = HashMap::new();
            let metas = load::metas(conn, &[&campaign])?;
            for meta in metas.iter().flatten() {
                if let crate::model::Origin::Submission { member } = &meta.origin
                    && !names.contains_key(member)
                    && let Some(m) = store::members::find(conn, &member.0)?
                {
                    names.insert(member.clone(), m.name);
                }
            }
            let mut dispositions = review::history(conn, id)?;
            dispositions.reverse();
            Ok(Some(CampaignReview {
                names,
                sectors: campaign.sectors.iter().copied().collect(),
                dispositions,
                pins: review::pins_naming(conn, id)?,
                history: store::campaigns::history(conn, id)?,
            }))
        })
        .await
    }

    /// Full-text search for the console: [`ReadPath::search`] (visibility inside the
    /// query), each hit with its campaign. `Ok(Err(message))` for a query the index refuses.
    pub async fn console_search(
        &self,
        viewer: &Viewer,
        query: String,
        hits: usize,
    ) -> Result<std::result::Result<Vec<(ReportSummary, Option<ShownCampaignId>)>, String>> {
        match self.search(viewer, &query, hits).await {
            Ok(hits) => Ok(Ok(hits
                .into_iter()
                .map(|h| (h.report, h.campaign))
                .collect())),
            Err(SearchError::Query(m)) => Ok(Err(m)),
            Err(SearchError::Unavailable) => Ok(Ok(Vec::new())),
            Err(SearchError::Index(e)) => Ok(Err(e.to_string())),
            Err(SearchError::Store(e)) => Err(e),
        }
    }
}
