//! Outputs: what leaves musubi for members' own tools — STIX 2.1 bundles, a MISP feed, CSV,
//! and the TAXII 2.1 collections the daemon serves.
//!
//! Every output is built from [`gather`]: the policy's views of campaigns and reports
//! ([`crate::council::Viewer::campaign_detail`] and [`crate::council::Viewer::report_view`]),
//! never from raw store rows, so that TLP, sharing scope and source anonymity hold at the
//! edge whatever format is written.

pub mod csv;
pub mod mail;
pub mod misp_feed;
pub mod stix;
pub mod taxii;

use rusqlite::Connection;
use serde::Serialize;

use crate::correlate::{Campaign, CampaignSet};
use crate::council::{CampaignView, ReportView, Viewer};
use crate::model::{CampaignId, Report, Tlp};
use crate::store;

/// Who an export is meant for, on top of what the viewer may see: a ceiling on the TLP
/// of the reports that go in, so that a file written for a wide audience cannot carry
/// material meant for a narrower one even when the requesting member may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Audience {
    /// Anyone: TLP:CLEAR only.
    Public,
    /// Every council member: up to TLP:AMBER (never AMBER+STRICT or RED).
    Members,
    /// Exactly what the viewer may see (the policy decides alone).
    Viewer,
}

impl Audience {
    /// Whether a report of this TLP may go to this audience at all.
    pub fn admits(self, tlp: Tlp) -> bool {
        match self {
            Audience::Public => tlp == Tlp::Clear,
            Audience::Members => tlp <= Tlp::Amber,
            Audience::Viewer => true,
        }
    }
}

/// One campaign as an export may show it: the policy's views only.
#[derive(Debug, Clone)]
pub struct CampaignExport {
    pub view: CampaignView,
    /// The visible reports of the campaign, in store order.
    pub reports: Vec<ReportView>,
}

/// The campaigns (all, or `only` one) as `viewer` may see them within `audience`,
/// sorted by campaign id. Campaigns with no visible report are left out.
pub fn gather(
    conn: &Connection,
    set: &CampaignSet,
    viewer: &Viewer,
    audience: Audience,
    only: Option<CampaignId>,
) -> store::Result<Vec<CampaignExport>> {
    let mut out = Vec::new();
    for campaign in &set.campaigns {
        if only.is_some_and(|id| id != campaign.id) {
            continue;
        }
        if let Some(e) = export_one(conn, campaign, viewer, audience)? {
            out.push(e);
        }
    }
    out.sort_by_key(|e| e.view.id);
    Ok(out)
}

fn export_one(
    conn: &Connection,
    campaign: &Campaign,
    viewer: &Viewer,
    audience: Audience,
) -> store::Result<Option<CampaignExport>> {
    let reports: Vec<Report> = store::reports::get_many(conn, &campaign.reports)?
        .into_iter()
        .filter(|r| audience.admits(r.draft.tlp))
        .collect();
    let released = store::releases::released(conn, &campaign.reports)?;
    let Some(view) = viewer.campaign_detail(campaign, &reports, &released) else {
        return Ok(None);
    };
    let reports = reports
        .iter()
        .filter_map(|r| viewer.report_view(r, released.contains(&r.seq()), Some(campaign.id)))
        .collect();
    Ok(Some(CampaignExport { view, reports }))
}

/// The fixed namespace of musubi's deterministic ids (UUIDv5): the same campaign,
/// indicator or event keeps its id across exports, so that re-imports update rather than
/// duplicate.
pub const ID_NAMESPACE: uuid::Uuid = uuid::uuid!("76f15b74-4520-4f38-b5e0-77aba158742a");

/// A deterministic UUID for a stable key.
pub fn stable_uuid(key: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&ID_NAMESPACE, key.as_bytes())
}

/// The council as the author of everything it shares: exports name the council, never
/// the member that provided a report.
pub const COUNCIL_NAME: &str = "Cyber-threat information-sharing council (musubi)";
