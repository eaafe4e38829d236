//! `GET /api/v1/campaigns` and `GET /api/v1/campaigns/{id}`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::auth::Authenticated;
use super::error::{ApiResult, AppError};
use super::state::AppState;
use crate::council::CampaignView;
use crate::council::read::Page;
use crate::council::read::ids;

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
    let page = Page { offset, limit };
    let campaigns = state.read.campaigns(&auth.viewer(), page).await?;
    Ok(Json(CampaignList { campaigns }))
}

#[derive(Deserialize)]
pub struct DetailQuery {
    /// `true`: add why the campaign is one group (secretariat only; ignored for members,
    /// who get the plain detail).
    #[serde(default)]
    explain: bool,
}

/// One campaign with the observables of the reports the viewer may see; with
/// `?explain=true`, the secretariat also gets why it is one group.
pub async fn get(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    q: Result<Query<DetailQuery>, QueryRejection>,
) -> ApiResult<Json<CampaignView>> {
    let Query(q) = q.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
    let viewer = auth.viewer();
    // Members name campaigns by their opaque ids only (`council::read::ids`); anything
    // else is "not found", as for a hidden or absent campaign.
    let id = ids::parse_campaign(&viewer, &id).ok_or_else(|| AppError::not_found("campaign"))?;
    let view = if q.explain {
        state
            .read
            .campaign_explained(&viewer, id, crate::model::Language::En)
            .await?
    } else {
        state.read.campaign(&viewer, id).await?
    };
    view.map(Json)
        .ok_or_else(|| AppError::not_found("campaign"))
}
