//! Campaigns as one viewer sees them: the list and the detail.

use super::{ReadPath, Result, Viewer};
use crate::council::CampaignView;
use crate::model::CampaignId;
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
            let mut views = Vec::new();
            for c in &set.campaigns {
                let metas = store::reports::metas(conn, &c.reports)?;
                if let Some(view) = viewer.campaign_view(c, &metas) {
                    views.push(view);
                }
            }
            views.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(b.id.cmp(&a.id)));
            Ok(views
                .into_iter()
                .skip(page.offset)
                .take(page.limit)
                .collect())
        })
        .await
    }

    /// One campaign with the observables of the reports the viewer may see; `None` when it
    /// does not exist or the viewer may see none of it.
    pub async fn campaign(&self, viewer: &Viewer, id: CampaignId) -> Result<Option<CampaignView>> {
        let set = self.campaign_set();
        let Some(campaign) = set.get(id).cloned() else {
            return Ok(None);
        };
        let viewer = viewer.clone();
        self.read(move |conn| {
            let reports = store::reports::get_many(conn, &campaign.reports)?;
            let released = store::releases::released(conn, &campaign.reports)?;
            Ok(viewer.campaign_detail(&campaign, &reports, &released))
        })
        .await
    }
}
