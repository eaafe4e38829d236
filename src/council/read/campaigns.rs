//! Campaigns as one viewer sees them: the list and the detail.

use super::{ReadPath, Result, Viewer, load};
use crate::correlate::Campaign;
use crate::council::CampaignView;
use crate::council::explain::ExplainView;
use crate::model::{CampaignId, Language};
use crate::store;

/// A page of a listing: at most `limit` items after skipping `offset`, both counted in
/// what the viewer sees.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub offset: usize,
    pub limit: usize,
}

impl ReadPath {
    /// Campaigns the viewer may see, most recently active first — "active" as far as the
    /// viewer can see: the order comes from the visible reports' times only, so hidden
    /// activity never moves a campaign up the list.
    pub async fn campaigns(&self, viewer: &Viewer, page: Page) -> Result<Vec<CampaignView>> {
        let set = self.campaign_set();
        let viewer = viewer.clone();
        self.read(move |conn| {
            let campaigns: Vec<&Campaign> = set.campaigns.iter().map(|c| &**c).collect();
            let metas = load::metas(conn, &campaigns)?;
            let labeler = load::labeler(conn)?;
            let mut views: Vec<CampaignView> = campaigns
                .iter()
                .zip(&metas)
                .filter_map(|(c, metas)| {
                    let mut v = viewer.campaign_view(c, metas)?;
                    load::relabel(&mut v, c, &labeler);
                    if viewer.is_secretariat() {
                        v.suggestion = Some(crate::council::review::suggest(&v));
                    }
                    Some(v)
                })
                .collect();
            views.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(b.id.cmp(&a.id)));
            Ok(views
                .into_iter()
                .skip(page.offset)
                .take(page.limit)
                .collect())
        })
        .await
    }

    /// One campaign with the observables of the reports the viewer may see and their public
    /// context; `None` when it
    /// does not exist or the viewer may see none of it.
    pub async fn campaign(&self, viewer: &Viewer, id: CampaignId) -> Result<Option<CampaignView>> {
        let set = self.campaign_set();
        let Some(&i) = set.by_id.get(&id) else {
            return Ok(None);
        };
        let campaign = set.campaigns[i].clone();
        let viewer = viewer.clone();
        self.read(move |conn| {
            let details = load::details_vec(conn, [campaign], |_| true)?;
            match details.first() {
                Some(d) => {
                    let Some(mut view) = d.view_in_context(conn, &viewer)? else {
                        return Ok(None);
                    };
                    view.picture = d.picture(&viewer, &set, Language::En);
                    Ok(Some(view))
                }
                None => Ok(None),
            }
        })
        .await
    }

    /// [`ReadPath::campaign`] with, for the secretariat, why it is one group (its links,
    /// the values that did not count, near-links, merges and splits in words). Anyone
    /// else gets exactly [`ReadPath::campaign`]: see `council::explain` for why members
    /// get no explanation.
    pub async fn campaign_explained(
        &self,
        viewer: &Viewer,
        id: CampaignId,
        lang: Language,
    ) -> Result<Option<CampaignView>> {
        let Some(mut view) = self.campaign(viewer, id).await? else {
            return Ok(None);
        };
        view.explain = self.explanation(viewer, id, lang).await?;
        Ok(Some(view))
    }

    /// Why campaign `id` is one group: the secretariat's only (`None` for anyone else and
    /// for a campaign that does not exist).
    pub async fn explanation(
        &self,
        viewer: &Viewer,
        id: CampaignId,
        lang: Language,
    ) -> Result<Option<ExplainView>> {
        if !viewer.is_secretariat() {
            return Ok(None);
        }
        let set = self.campaign_set();
        if set.get(id).is_none() {
            return Ok(None);
        }
        // The engine explains the one campaign now (it may wait for the correlator's
        // current batch): on the blocking pool, and outside any store reader.
        let why = tokio::task::spawn_blocking(move || set.explain(id))
            .await
            .map_err(|e| store::StoreError::Corrupt(format!("explanation task: {e}")))?;
        let Some(why) = why else {
            return Ok(None);
        };
        let viewer = viewer.clone();
        self.read(move |conn| {
            let history = store::campaigns::events(conn, id)?;
            Ok(viewer.explain_view(id, &why.why, &history, lang))
        })
        .await
    }
}
