//! Inquiries (#15 item 8): the secretariat asks chosen member classes about an advisory or
//! a campaign; members answer with reports.
//!
//! - `POST /api/v1/inquiries` (secretariat): `{"advisory": "R-…"} | {"campaign": "C-…"}`
//!   with `question` and `classes`;
//! - `GET /api/v1/inquiries`, `GET /api/v1/inquiries/{id}`: what the viewer was asked (the
//!   secretariat: all), with the answers it may see;
//! - `POST /api/v1/inquiries/{id}/answers` (members asked): a submission body as for
//!   `POST /api/v1/reports`; the reports are stored as answers.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::auth::Authenticated;
use super::error::{ApiResult, AppError};
use super::state::AppState;
use crate::council::inquiry::{self, InquiryView};
use crate::council::read::ids::SubmittedReport;
use crate::model::MemberClass;
use crate::sources::submission::{self, SubmissionError};

/// The inquiry routes, merged into the API router with one line.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/inquiries", get(list).post(open))
        .route("/api/v1/inquiries/{id}", get(one))
        .route("/api/v1/inquiries/{id}/answers", post(answer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenBody {
    advisory: Option<String>,
    campaign: Option<String>,
    question: String,
    classes: Vec<String>,
}

#[derive(Serialize)]
pub struct Opened {
    pub id: String,
}

/// The member classes an inquiry may be opened for (not the secretariat, which sees all).
pub fn parse_classes(classes: &[String]) -> Result<Vec<MemberClass>, String> {
    let mut out = Vec::new();
    for c in classes {
        let class: MemberClass = c.parse()?;
        if class == MemberClass::Secretariat {
            return Err("the secretariat sees every inquiry; ask member classes".into());
        }
        if !out.contains(&class) {
            out.push(class);
        }
    }
    if out.is_empty() {
        return Err("name at least one member class".into());
    }
    Ok(out)
}

/// `POST /api/v1/inquiries` (secretariat; anyone else: no such route).
async fn open(
    State(state): State<AppState>,
    auth: Authenticated,
    b: Result<Json<OpenBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Opened>)> {
    if auth.member.class != MemberClass::Secretariat {
        return Err(AppError::Client {
            status: StatusCode::NOT_FOUND,
            code: "no_route",
            message: "no such route".into(),
        });
    }
    let Json(b) = b.map_err(|e| AppError::bad_request("invalid_body", e.body_text()))?;
    let question = b.question.trim().to_string();
    if question.is_empty() || question.chars().count() > inquiry::QUESTION_MAX {
        return Err(AppError::bad_request(
            "invalid_field",
            format!(
                "question: between 1 and {} characters",
                inquiry::QUESTION_MAX
            ),
        ));
    }
    let classes = parse_classes(&b.classes)
        .map_err(|m| AppError::bad_request("invalid_field", format!("classes: {m}")))?;
    let target = state
        .read
        .inquiry_target(
            &auth.viewer(),
            b.advisory.as_deref(),
            b.campaign.as_deref(),
        )
        .ok_or_else(|| {
            AppError::bad_request(
                "invalid_field",
                "advisory or campaign: name one existing advisory (a report id of one of its feed items) or one campaign",
            )
        })?;
    let id = state
        .store
        .writer()
        .run(inquiry::open_inquiry(
            target,
            question,
            classes,
            auth.member.id.0.clone(),
            Utc::now(),
        ))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Opened {
            id: inquiry::inquiry_id(id),
        }),
    ))
}

#[derive(Serialize)]
pub struct InquiryList {
    pub inquiries: Vec<InquiryView>,
}

async fn list(State(state): State<AppState>, auth: Authenticated) -> ApiResult<Json<InquiryList>> {
    let inquiries = state.read.inquiries(&auth.viewer()).await?;
    Ok(Json(InquiryList { inquiries }))
}

async fn one(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<InquiryView>> {
    let id = inquiry::parse_inquiry_id(&id).ok_or_else(|| AppError::not_found("inquiry"))?;
    state
        .read
        .inquiry(&auth.viewer(), id)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::not_found("inquiry"))
}

#[derive(Serialize)]
pub struct Answered {
    pub reports: Vec<SubmittedReport>,
}

/// `POST /api/v1/inquiries/{id}/answers`: a member of a class asked answers with reports.
async fn answer(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Answered>)> {
    let id = inquiry::parse_inquiry_id(&id).ok_or_else(|| AppError::not_found("inquiry"))?;
    let body = body.map_err(|e| AppError::bad_request("unreadable_body", e.body_text()))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let drafts = match submission::drafts_from(content_type, &body) {
        Ok(d) => d,
        Err(SubmissionError::Invalid(errors)) => return Err(AppError::Invalid(errors)),
        Err(SubmissionError::UnsupportedMediaType(m)) => {
            return Err(AppError::Client {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: format!("cannot take {m:?}; send {}", submission::ACCEPTED),
            });
        }
    };
    let ids = state
        .store
        .writer()
        .run(inquiry::answer_with_reports(
            id,
            auth.member.id.clone(),
            drafts,
            Utc::now(),
        ))
        .await?
        .ok_or_else(|| AppError::not_found("inquiry"))?;
    let reports = state.read.submitted(&auth.viewer(), &ids, None).await;
    Ok((StatusCode::CREATED, Json(Answered { reports })))
}
