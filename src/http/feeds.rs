//! `GET /api/v1/feeds`: the health of each public feed (public sources; no member data).

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::auth::Authenticated;
use super::error::ApiResult;
use super::state::AppState;
use crate::sources::feeds::FeedState;

#[derive(Serialize)]
pub struct FeedHealth {
    pub name: String,
    #[serde(flatten)]
    pub state: FeedState,
}

#[derive(Serialize)]
pub struct FeedList {
    pub feeds: Vec<FeedHealth>,
}

pub async fn list(
    State(state): State<AppState>,
    _auth: Authenticated,
) -> ApiResult<Json<FeedList>> {
    let feeds = state
        .store
        .read_async(crate::store::feeds::all_states)
        .await?
        .into_iter()
        .map(|(name, state)| FeedHealth { name, state })
        .collect();
    Ok(Json(FeedList { feeds }))
}
