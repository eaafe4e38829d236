//! `POST /api/v1/reports` and `GET /api/v1/reports/{id}`.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::auth::Authenticated;
use super::error::{ApiResult, AppError};
use super::metrics::Metrics;
use super::state::AppState;
use crate::council::ReportView;
use crate::model::{CampaignId, ReportId, Seq};
use crate::sources::submission::{self, SubmissionError};

/// How long a submission that asks for its campaign (`?wait=campaign`) waits for it.
const CAMPAIGN_WAIT: Duration = Duration::from_secs(1);

/// Query of `POST /api/v1/reports`.
#[derive(Debug, Default, Deserialize)]
pub struct SubmitQuery {
    /// `campaign`: answer once correlation has placed the reports (up to a second), so the
    /// answer names their campaigns. Without it the answer goes out as soon as the reports
    /// are durable: the acknowledgement never waits on the projections.
    wait: Option<WaitFor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WaitFor {
    Campaign,
}

#[derive(Serialize)]
pub struct Submitted {
    pub reports: Vec<SubmittedReport>,
}

#[derive(Serialize)]
pub struct SubmittedReport {
    pub id: ReportId,
    /// The report's campaign: only with `?wait=campaign`, when correlation placed the
    /// report within a second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<CampaignId>,
}

pub async fn submit(
    State(state): State<AppState>,
    auth: Authenticated,
    query: Result<Query<SubmitQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Submitted>)> {
    let Query(query) = query.map_err(|e| {
        AppError::bad_request(
            "invalid_query",
            format!("{}; the only option is wait=campaign", e.body_text()),
        )
    })?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::Client {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "payload_too_large",
                message: format!(
                    "the body exceeds the limit of {} bytes; split the submission",
                    state.config.max_body_bytes
                ),
            }
        } else {
            AppError::bad_request("unreadable_body", e.body_text())
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let drafts = match submission::drafts_from(content_type, &body) {
        Ok(d) => d,
        Err(SubmissionError::Invalid(errors)) => {
            Metrics::inc(&state.metrics.submissions_rejected);
            return Err(AppError::Invalid(errors));
        }
        Err(SubmissionError::UnsupportedMediaType(m)) => {
            return Err(AppError::Client {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: format!("cannot take {m:?}; send {}", submission::ACCEPTED),
            });
        }
    };
    let count = drafts.len() as u64;
    let ids = submission::store(&state.store, &auth.member.id, drafts, Utc::now())
        .await
        .inspect_err(|e| {
            if e.is_storage_unavailable() {
                Metrics::inc(&state.metrics.store_unavailable);
            }
        })?;
    Metrics::inc(&state.metrics.submissions_accepted);
    state
        .metrics
        .reports_stored
        .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
    let set = if query.wait == Some(WaitFor::Campaign) {
        let newest = ids.iter().map(|id| id.0).max().unwrap_or(Seq(0));
        let mut rx = state.campaigns.clone();
        let _ = tokio::time::timeout(CAMPAIGN_WAIT, rx.wait_for(|set| set.applied >= newest)).await;
        Some(state.campaigns())
    } else {
        None
    };
    let reports = ids
        .into_iter()
        .map(|id| SubmittedReport {
            id,
            campaign: set
                .as_ref()
                .and_then(|set| set.of_report(id.0))
                .map(|c| c.id),
        })
        .collect();
    Ok((StatusCode::CREATED, Json(Submitted { reports })))
}

pub async fn get(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<ReportView>> {
    let id: ReportId = id.parse().map_err(|()| AppError::not_found("report"))?;
    state
        .read
        .report(&auth.viewer(), id)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::not_found("report"))
}
