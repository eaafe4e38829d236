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
use super::state::AppState;
use crate::council::ReportView;
use crate::council::read::ids::{self, SubmittedReport};
use crate::formats::{ItemOutcome, Outcome, OutcomeCounts};
use crate::metrics::Metrics;
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

/// The answer: the reports' ids as the submitter is shown them (opaque outside the
/// secretariat: internal numbers would count other members' submissions), and what became
/// of each item the submitter sent (their own body: nothing of anyone else's).
#[derive(Serialize)]
pub struct Submitted {
    pub reports: Vec<SubmittedReport>,
    /// Kept, normalised, skipped.
    pub items: OutcomeCounts,
    /// The items normalised or skipped, with where (in the body) and why.
    pub notes: Vec<ItemOutcome>,
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
    let decoded = match submission::decode(content_type, &body) {
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
    let items = OutcomeCounts::of(&decoded.items);
    let notes = decoded
        .items
        .into_iter()
        .filter(|i| i.outcome != Outcome::Kept)
        .collect();
    let ids = state
        .submit(&auth.member.id, decoded.drafts, Utc::now())
        .await?;
    let wait = (query.wait == Some(WaitFor::Campaign)).then_some(CAMPAIGN_WAIT);
    let reports = state.read.submitted(&auth.viewer(), &ids, wait).await;
    Ok((
        StatusCode::CREATED,
        Json(Submitted {
            reports,
            items,
            notes,
        }),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<ReportView>> {
    let viewer = auth.viewer();
    // Members name reports by their opaque ids only; anything else is "not found", the
    // same answer as for a hidden or absent report.
    let id = ids::parse_report(&viewer, &id).ok_or_else(|| AppError::not_found("report"))?;
    state
        .read
        .report(&viewer, id)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::not_found("report"))
}
