//! `GET /api/v1/search?q=`: full-text search over the reports the viewer may see.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::auth::Authenticated;
use super::error::{ApiResult, AppError};
use super::state::AppState;
use crate::council::read::{SearchError, SearchHit};
use crate::metrics::Metrics;

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 200;

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct SearchResults {
    pub query: String,
    pub hits: Vec<SearchHit>,
}

impl From<SearchError> for AppError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Query(m) => AppError::bad_request("invalid_query", m),
            SearchError::Store(e) => e.into(),
            other => AppError::Internal(other.to_string()),
        }
    }
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
    let hits = state.read.search(&auth.viewer(), &query, limit).await?;
    Ok(Json(SearchResults { query, hits }))
}
