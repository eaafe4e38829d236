//! `GET /api/v1/feeds`: the feeds as the caller may see them — the secretariat the full
//! health (failures, last error, whose feed it is, what the last poll kept, normalised and
//! skipped and why), a member the public feeds' names and last success only, and no
//! member's own feed (`ReadPath::feeds`).

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
