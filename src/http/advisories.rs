//! `GET /api/v1/advisories`: public context, listed apart from campaigns.
//!
//! An advisory is a group of public feed items that no member reported (a KEV entry, an
//! NVD or JVN item): context for analysts, not an attack activity, so it has no campaign
//! id and is not in `/api/v1/campaigns`. Search in titles with `q`, one feed with `feed`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::auth::Authenticated;
use super::error::{ApiResult, AppError};
use super::state::AppState;
use crate::council::read::{AdvisoryQuery, AdvisoryView, Page};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    feed: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

#[derive(Serialize)]
pub struct AdvisoryList {
    pub advisories: Vec<AdvisoryView>,
}

/// Advisories the viewer may see, most recent first.
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<AdvisoryList>> {
    let Query(q) = q.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
    let query = AdvisoryQuery {
        q: q.q.filter(|s| !s.trim().is_empty()),
        feed: q.feed.filter(|s| !s.is_empty()),
        page: Page {
            offset: q.offset.unwrap_or(0),
            limit: q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
        },
    };
    let advisories = state.read.advisories(&auth.viewer(), query).await?;
    Ok(Json(AdvisoryList { advisories }))
}
