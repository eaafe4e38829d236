//! `GET /api/v1/feeds`: the public feeds as the caller may see them — the secretariat the
//! full health (failures, last error), a member the name and last success only
//! (`ReadPath::feeds`).

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::auth::Authenticated;
use super::error::ApiResult;
use super::state::AppState;
use crate::council::read::FeedView;

#[derive(Serialize)]
pub struct FeedList {
    pub feeds: Vec<FeedView>,
}

pub async fn list(State(state): State<AppState>, auth: Authenticated) -> ApiResult<Json<FeedList>> {
    let feeds = state.read.feeds(&auth.viewer()).await?;
    Ok(Json(FeedList { feeds }))
}
