//! Member authentication: `Authorization: Bearer <token>` maps to a member.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::AppError;
use super::state::AppState;
use crate::council::Viewer;
use crate::model::Member;

/// The authenticated member behind a request.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub member: Member,
}

impl Authenticated {
    pub fn viewer(&self) -> Viewer {
        Viewer::of(&self.member)
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(AppError::unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 200)
            .ok_or_else(AppError::unauthorized)?
            .to_string();
        let member = state
            .store
            .read_async(move |conn| crate::store::members::by_token(conn, &token))
            .await?
            .ok_or_else(AppError::unauthorized)?;
        if let Err(wait) = state.limiter.check(&member.id) {
            return Err(AppError::RateLimited {
                retry_after_secs: wait.ceil().max(1.0) as u64,
            });
        }
        Ok(Authenticated { member })
    }
}
