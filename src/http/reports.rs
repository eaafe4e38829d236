//! `POST /api/v1/reports` and `GET /api/v1/reports/{id}`.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::Utc;
use serde::Serialize;

use super::auth::Authenticated;
use super::error::{ApiResult, AppError};
use super::metrics::Metrics;
use super::state::AppState;
use crate::council::ReportView;
use crate::model::{CampaignId, Origin, ReportId, Seq};
use crate::sources::submission::{self, SubmissionError};
use crate::store;

/// How long a submission waits for its campaign before answering without it.
const CAMPAIGN_WAIT: Duration = Duration::from_secs(1);

#[derive(Serialize)]
pub struct Submitted {
    pub reports: Vec<SubmittedReport>,
}

#[derive(Serialize)]
pub struct SubmittedReport {
    pub id: ReportId,
    /// The report's campaign, when correlation has placed it within a second.
    pub campaign: Option<CampaignId>,
}

pub async fn submit(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Submitted>)> {
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
    let origin = Origin::Submission {
        member: auth.member.id.clone(),
    };
    let now = Utc::now();
    let count = drafts.len() as u64;
    let ids = state
        .store
        .writer()
        .write(move |conn| {
            drafts
                .iter()
                .map(|d| store::reports::insert(conn, &origin, d, now).map(|i| i.id()))
                .collect::<store::Result<Vec<ReportId>>>()
        })
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
    let newest = ids.iter().map(|id| id.0).max().unwrap_or(Seq(0));
    let mut rx = state.campaigns.clone();
    let _ = tokio::time::timeout(CAMPAIGN_WAIT, rx.wait_for(|set| set.applied >= newest)).await;
    let set = state.campaigns();
    let reports = ids
        .into_iter()
        .map(|id| SubmittedReport {
            id,
            campaign: set.of_report(id.0).map(|c| c.id),
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
    let (report, released, provider_status) = state
        .store
        .read_async(move |conn| {
            let report = store::reports::get(conn, id.0)?;
            let status = match report.as_ref().map(|r| &r.origin) {
                Some(crate::model::Origin::Submission { member }) => {
                    store::members::status(conn, member)?
                }
                _ => None,
            };
            Ok((report, store::releases::is_released(conn, id.0)?, status))
        })
        .await?;
    let report = report.ok_or_else(|| AppError::not_found("report"))?;
    let campaign = state.campaigns().of_report(id.0).map(|c| c.id);
    let viewer = auth.viewer();
    let mut view = viewer
        .report_view(&report, released, campaign)
        .ok_or_else(|| AppError::not_found("report"))?;
    if viewer.is_secretariat() {
        view.provider_status = provider_status;
    }
    Ok(Json(view))
}
