//! `GET /api/v1/search?q=`: full-text search over the reports the viewer may see.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::auth::Authenticated;
use super::error::{ApiResult, AppError};
use super::metrics::Metrics;
use super::state::AppState;
use crate::council::ReportSummary;
use crate::model::CampaignId;
use crate::store;

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 200;

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct SearchHit {
    pub score: f32,
    pub report: ReportSummary,
    pub campaign: Option<CampaignId>,
}

#[derive(Serialize)]
pub struct SearchResults {
    pub query: String,
    pub hits: Vec<SearchHit>,
}

pub async fn search(
    State(state): State<AppState>,
    auth: Authenticated,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> ApiResult<Json<SearchResults>> {
    let Query(q) = q.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
    let query = q.q.unwrap_or_default();
    if query.trim().is_empty() {
        return Err(AppError::bad_request(
            "missing_query",
            "give a query with ?q=",
        ));
    }
    if query.len() > 1000 {
        return Err(AppError::bad_request(
            "invalid_query",
            "the query is longer than 1000 bytes",
        ));
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    Metrics::inc(&state.metrics.searches);
    let index = state.index.clone();
    let viewer = auth.viewer();
    let set = state.campaigns();
    let store = state.store.clone();
    let q2 = query.clone();
    // Ask the index for more than needed: some hits may be invisible to this viewer.
    let hits = tokio::task::spawn_blocking(move || -> ApiResult<Vec<SearchHit>> {
        let found = index.search(&q2, limit * 4)?;
        store
            .read(|conn| {
                let mut out = Vec::new();
                for (seq, score) in found {
                    let Some(meta) = store::reports::meta(conn, seq)? else {
                        continue;
                    };
                    if let Some(report) = viewer.report_summary(&meta) {
                        out.push(SearchHit {
                            score,
                            report,
                            campaign: set.of_report(seq).map(|c| c.id),
                        });
                        if out.len() == limit {
                            break;
                        }
                    }
                }
                Ok(out)
            })
            .map_err(AppError::from)
    })
    .await
    .map_err(|e| AppError::Internal(format!("search task: {e}")))??;
    Ok(Json(SearchResults { query, hits }))
}
