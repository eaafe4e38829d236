//! Exports and TAXII objects: the campaigns one viewer may receive, each with its visible
//! reports in full.
//!
//! An export is written for one [`Viewer`]: a member (`musubi export --as`, the TAXII
//! task-force collection), or an audience that is nobody in particular (the public, every
//! council member). Every report passes [`crate::council::policy::decide`] for that viewer
//! before anything is counted or written, so sharing scope, release, TLP and recipients
//! hold in every format; the formats only render what comes out of here.

use super::{ReadPath, Result, Viewer, load};
use crate::council::{CampaignView, ReportView};
use crate::model::CampaignId;
use crate::store;

/// One campaign as an export may show it: the policy's views only.
#[derive(Debug, Clone)]
pub struct CampaignExport {
    /// The campaign through the reports the viewer may see (TLP and scope are the
    /// narrowest among them).
    pub view: CampaignView,
    /// The visible reports of the campaign, in store order.
    pub reports: Vec<ReportView>,
}

impl ReadPath {
    /// The campaigns (all, or `only` that one) as `viewer` may see them, sorted by campaign
    /// id. Campaigns with no visible report are left out, exactly as absent ones.
    pub async fn exports(
        &self,
        viewer: &Viewer,
        only: Option<CampaignId>,
    ) -> Result<Vec<CampaignExport>> {
        let set = self.campaign_set();
        let viewer = viewer.clone();
        self.read(move |conn| {
            let mut out = Vec::new();
            let campaigns = set
                .campaigns
                .iter()
                .filter(|c| only.is_none_or(|id| id == c.id))
                .cloned();
            load::details(
                conn,
                campaigns,
                |_| true,
                |detail| {
                    if let Some(view) = detail.view(&viewer) {
                        let reports = detail.report_views(&viewer);
                        out.push(CampaignExport { view, reports });
                    }
                    Ok(())
                },
            )?;
            out.sort_by_key(|e| e.view.id);
            Ok(out)
        })
        .await
    }

    /// The viewer of the member with this id or exact name, for the operator's CLI
    /// (`musubi export --as`). Only the secretariat may ask (the CLI runs as the
    /// secretariat on the council's servers); anyone else gets `None`, as for an unknown
    /// member.
    pub async fn member_viewer(&self, asker: &Viewer, who: &str) -> Result<Option<Viewer>> {
        if !asker.is_secretariat() {
            return Ok(None);
        }
        let who = who.to_string();
        self.read(move |conn| Ok(store::members::find(conn, &who)?.map(|m| Viewer::of(&m))))
            .await
    }
}
