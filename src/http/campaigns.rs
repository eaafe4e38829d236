//! `GET /api/v1/campaigns` and `GET /api/v1/campaigns/{id}`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::auth::Authenticated;
use super::error::{ApiResult, AppError};
use super::state::AppState;
use crate::council::CampaignView;
use crate::model::{CampaignId, Seq};
use crate::store;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<usize>,
    offset: Option<usize>,
}

#[derive(Serialize)]
pub struct CampaignList {
    pub campaigns: Vec<CampaignView>,
}

/// Campaigns the viewer may see, most recently active first.
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<CampaignList>> {
    let Query(q) = q.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let offset = q.offset.unwrap_or(0);
    let set = state.campaigns();
    let viewer = auth.viewer();
    let campaigns = state
        .store
        .read_async(move |conn| {
            let mut order: Vec<usize> = (0..set.campaigns.len()).collect();
            order.sort_by(|&a, &b| {
                let (a, b) = (&set.campaigns[a], &set.campaigns[b]);
                b.last_seen.cmp(&a.last_seen).then(b.id.cmp(&a.id))
            });
            let mut out = Vec::new();
            let mut skipped = 0;
            for i in order {
                let c = &set.campaigns[i];
                let metas = store::reports::metas(conn, &c.reports)?;
                if let Some(view) = viewer.campaign_view(c, &metas) {
                    if skipped < offset {
                        skipped += 1;
                        continue;
                    }
                    out.push(view);
                    if out.len() == limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await?;
    Ok(Json(CampaignList { campaigns }))
}

/// One campaign with the observables of the reports the viewer may see.
pub async fn get(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    let id: CampaignId = id.parse().map_err(|_| AppError::not_found("campaign"))?;
    let set = state.campaigns();
    let campaign = set
        .get(id)
        .cloned()
        .ok_or_else(|| AppError::not_found("campaign"))?;
    let seqs: Vec<Seq> = campaign.reports.clone();
    let (reports, released) = state
        .store
        .read_async(move |conn| {
            Ok((
                store::reports::get_many(conn, &seqs)?,
                store::releases::released(conn, &seqs)?,
            ))
        })
        .await?;
    auth.viewer()
        .campaign_detail(&campaign, &reports, &released)
        .map(Json)
        .ok_or_else(|| AppError::not_found("campaign"))
}
