//! Council routes: releases, review (dispositions, pins), feedback, sightings, statistics
//! and the audit log.
//!
//! Secretariat-only routes answer 404 to members, the same as an unknown route, so that
//! they reveal nothing. Every decision is audited by the council functions themselves;
//! reads of secretariat-only data (disposition history, feedback progress, audit) are
//! audited here.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Authenticated;
use super::error::{ApiResult, AppError};
use super::state::AppState;
use crate::council::StoreError;
use crate::council::read::{Refused, ids};
use crate::council::{commands, feedback, review, stats};
use crate::model::{
    CampaignId, Disposition, Language, MemberClass, ReportId, Seq, SightingDraft, SightingKind,
};

/// The council routes, merged into the API router with one line.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/council/releases", post(release))
        .route(
            "/api/v1/council/dispositions/{campaign}",
            get(disposition_history).post(decide),
        )
        .route("/api/v1/council/pins", get(pins).post(pin))
        .route(
            "/api/v1/council/feedback",
            get(open_requests).post(request_feedback),
        )
        .route("/api/v1/council/feedback/{id}/answer", post(answer))
        .route("/api/v1/council/feedback/{id}", get(request_progress))
        .route("/api/v1/sightings", post(sighting))
        .route("/api/v1/council/stats", get(statistics))
        .route("/api/v1/council/audit", get(audit_log))
}

fn secretariat(auth: &Authenticated) -> ApiResult<()> {
    if auth.member.class == MemberClass::Secretariat {
        Ok(())
    } else {
        Err(no_route())
    }
}

/// What a secretariat-only route answers to anyone else: the same as an unknown route.
fn no_route() -> AppError {
    AppError::Client {
        status: StatusCode::NOT_FOUND,
        code: "no_route",
        message: "no such route".into(),
    }
}

/// A refusal of the read path as the API answers it. `NotFound` is one body for hidden and
/// absent alike; `Invalid` names the field.
fn refused(r: Refused) -> AppError {
    match r {
        Refused::NotFound { what } => AppError::not_found(what),
        Refused::Invalid { field, message } => {
            AppError::bad_request("invalid_field", format!("{field}: {message}"))
        }
        Refused::Conflict(message) => AppError::Client {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message,
        },
        Refused::Store(e) => e.into(),
    }
}

/// A feedback request id from the path; anything else is "no feedback request", as for an
/// id that does not exist.
fn request_id(s: &str) -> ApiResult<i64> {
    s.parse::<i64>()
        .map_err(|_| AppError::not_found("feedback request"))
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    b.map(|Json(v)| v)
        .map_err(|e| AppError::bad_request("invalid_body", e.body_text()))
}

/// Conflicts (wrong state, duplicate answer) are the client's; the rest is the store's.
fn store_err(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(m) => AppError::Client {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: m,
        },
        other => other.into(),
    }
}

/// A campaign id given to a secretariat route: the internal `C-YYYY-NNNN` or the opaque form
/// members are shown (`council::read::ids`), which the secretariat may use as well.
fn campaign_id(s: &str) -> ApiResult<CampaignId> {
    s.parse().or_else(|e: String| {
        crate::council::read::ids::parse_opaque_campaign(s)
            .ok_or_else(|| AppError::bad_request("invalid_campaign", e))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    campaign: Option<String>,
    report: Option<String>,
}

/// `POST /api/v1/council/releases {"campaign": "C-…"} | {"report": "R-…"}` (secretariat).
async fn release(
    State(state): State<AppState>,
    auth: Authenticated,
    b: Result<Json<ReleaseBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    secretariat(&auth)?;
    let b = body(b)?;
    let analyst = auth.member.id.0.clone();
    let now = Utc::now();
    let target = match (b.campaign, b.report) {
        (Some(c), None) => {
            let id = campaign_id(&c)?;
            state
                .store
                .writer()
                .run(commands::release_campaign(id, analyst, now))
                .await
                .map_err(store_err)?;
            c
        }
        (None, Some(r)) => {
            let id: ReportId = r
                .parse()
                .ok()
                .or_else(|| crate::council::read::ids::parse_opaque_report(&r))
                .ok_or_else(|| {
                    AppError::bad_request("invalid_report", "expected a report id such as R-12")
                })?;
            state
                .store
                .writer()
                .run(commands::release_report(id, analyst, now))
                .await
                .map_err(store_err)?;
            r
        }
        _ => {
            return Err(AppError::bad_request(
                "invalid_body",
                "give exactly one of campaign or report",
            ));
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({"released": target, "at": now})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    disposition: String,
    #[serde(default)]
    note: String,
}

/// `POST /api/v1/council/dispositions/{campaign}` (secretariat).
async fn decide(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(campaign): Path<String>,
    b: Result<Json<DecideBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    secretariat(&auth)?;
    let id = campaign_id(&campaign)?;
    let b = body(b)?;
    let disposition: Disposition = b
        .disposition
        .parse()
        .map_err(|e: String| AppError::bad_request("invalid_disposition", e))?;
    let analyst = auth.member.id.0.clone();
    let now = Utc::now();
    let note = b.note;
    let rec = state
        .store
        .writer()
        .run(commands::decide(id, disposition, note, analyst, now))
        .await
        .map_err(store_err)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": rec, "campaign": id, "disposition": disposition})),
    ))
}

/// `GET /api/v1/council/dispositions/{campaign}` (secretariat): the full history.
async fn disposition_history(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(campaign): Path<String>,
) -> ApiResult<Json<Value>> {
    secretariat(&auth)?;
    let id = campaign_id(&campaign)?;
    let history = state
        .read
        .disposition_history(&auth.viewer(), id)
        .await?
        .ok_or_else(no_route)?;
    Ok(Json(json!({"campaign": id, "history": history})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum PinBody {
    Merge {
        a: String,
        b: String,
        #[serde(default)]
        note: String,
    },
    Split {
        campaign: String,
        reports: Vec<String>,
        #[serde(default)]
        note: String,
    },
}

/// `POST /api/v1/council/pins` (secretariat): a manual merge or split request.
async fn pin(
    State(state): State<AppState>,
    auth: Authenticated,
    b: Result<Json<PinBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    secretariat(&auth)?;
    let (kind, note) = match body(b)? {
        PinBody::Merge { a, b, note } => (
            review::PinKind::Merge {
                a: campaign_id(&a)?,
                b: campaign_id(&b)?,
            },
            note,
        ),
        PinBody::Split {
            campaign,
            reports,
            note,
        } => {
            let campaign = campaign_id(&campaign)?;
            let reports = reports
                .iter()
                .map(|r| {
                    r.parse::<ReportId>()
                        .ok()
                        .or_else(|| crate::council::read::ids::parse_opaque_report(r))
                        .map(|id| id.0)
                        .ok_or(())
                })
                .collect::<Result<Vec<Seq>, ()>>()
                .map_err(|()| {
                    AppError::bad_request("invalid_report", "expected report ids such as R-12")
                })?;
            (review::PinKind::Split { campaign, reports }, note)
        }
    };
    let id = state
        .acts
        .pin(&auth.viewer(), kind, note)
        .await
        .map_err(refused)?
        .ok_or_else(no_route)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

/// `GET /api/v1/council/pins` (secretariat): the pins in force.
async fn pins(State(state): State<AppState>, auth: Authenticated) -> ApiResult<Json<Value>> {
    secretariat(&auth)?;
    let pins = state
        .read
        .pins(&auth.viewer())
        .await?
        .ok_or_else(no_route)?;
    Ok(Json(json!({"pins": pins})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    campaign: String,
    question: String,
    #[serde(default)]
    classes: Vec<MemberClass>,
}

/// `POST /api/v1/council/feedback` (secretariat): ask members to check a campaign.
async fn request_feedback(
    State(state): State<AppState>,
    auth: Authenticated,
    b: Result<Json<FeedbackBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    secretariat(&auth)?;
    let b = body(b)?;
    let c = campaign_id(&b.campaign)?;
    let id = state
        .acts
        .request_feedback(&auth.viewer(), c, b.question, b.classes)
        .await
        .map_err(refused)?
        .ok_or_else(no_route)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

/// `GET /api/v1/council/feedback`: the open requests for the caller's class, each only if
/// the caller may see some part of its campaign.
async fn open_requests(
    State(state): State<AppState>,
    auth: Authenticated,
) -> ApiResult<Json<Value>> {
    let requests = state.read.open_feedback(&auth.viewer()).await?;
    Ok(Json(json!({"requests": requests})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    kind: SightingKind,
    #[serde(default = "one")]
    count: u32,
    #[serde(default)]
    note: String,
}

fn one() -> u32 {
    1
}

/// `POST /api/v1/council/feedback/{id}/answer`: a member's (voluntary) answer, only to a
/// request it can see; otherwise the same 404 as for a request that does not exist.
async fn answer(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    b: Result<Json<AnswerBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = request_id(&id)?;
    let b = body(b)?;
    let answer = feedback::Answer {
        kind: b.kind,
        count: b.count,
        note: b.note,
    };
    state
        .acts
        .answer_feedback(&auth.viewer(), id, answer, Utc::now())
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(json!({"answered": id}))))
}

/// `GET /api/v1/council/feedback/{id}` (secretariat): the request and its progress.
async fn request_progress(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    secretariat(&auth)?;
    let id = request_id(&id)?;
    let found = state
        .read
        .feedback_request(&auth.viewer(), id)
        .await?
        .ok_or_else(|| AppError::not_found("feedback request"))?;
    Ok(Json(
        json!({"request": found.request, "progress": found.progress}),
    ))
}

/// `POST /api/v1/sightings`: a member's sighting of an observable or a campaign it can
/// see. Count and time are bounded (400 naming the field); a target the member may not
/// see answers the same 404 as one that does not exist.
async fn sighting(
    State(state): State<AppState>,
    auth: Authenticated,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut b = body(b)?;
    let viewer = auth.viewer();
    // A campaign is named as the caller is shown it: members by its opaque id only; an id the
    // caller may not use is refused like an absent campaign (`ids::NO_CAMPAIGN`).
    if let Some(c) = b.pointer_mut("/target/campaign")
        && let Some(given) = c.as_str()
    {
        let id = ids::parse_campaign(&viewer, given).unwrap_or(ids::NO_CAMPAIGN);
        *c = Value::String(id.to_string());
    }
    let draft: SightingDraft = serde_json::from_value(b).map_err(|e| {
        AppError::bad_request(
            "invalid_body",
            format!("Failed to deserialize the JSON body into the target type: {e}"),
        )
    })?;
    let id = state
        .acts
        .record_sighting(&viewer, draft, Utc::now())
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

#[derive(Deserialize)]
pub struct StatsQuery {
    from: NaiveDate,
    to: NaiveDate,
    lang: Option<String>,
    format: Option<String>,
}

/// `GET /api/v1/council/stats?from=YYYY-MM-DD&to=YYYY-MM-DD&lang=ja|en&format=md|json|csv`:
/// counts only, by campaign. Members receive the published statistics of closed whole
/// months; the secretariat any period (see `council::stats`).
async fn statistics(
    State(state): State<AppState>,
    auth: Authenticated,
    q: Result<Query<StatsQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
    let lang: Language = q
        .lang
        .as_deref()
        .unwrap_or("ja")
        .parse()
        .map_err(|e: String| AppError::bad_request("invalid_query", format!("lang: {e}")))?;
    let format: stats::Format = q
        .format
        .as_deref()
        .unwrap_or("json")
        .parse()
        .map_err(|e: String| AppError::bad_request("invalid_query", format!("format: {e}")))?;
    let today = Utc::now().date_naive();
    let table = state
        .read
        .statistics(&auth.viewer(), q.from, q.to, today)
        .await
        .map_err(refused)?;
    let text = stats::render(&table, lang, format);
    let ctype = match format {
        stats::Format::Md => "text/markdown; charset=utf-8",
        stats::Format::Json => "application/json",
        stats::Format::Csv => "text/csv; charset=utf-8",
    };
    Ok(([(header::CONTENT_TYPE, ctype)], text).into_response())
}

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<usize>,
    actor: Option<String>,
}

/// `GET /api/v1/council/audit` (secretariat).
async fn audit_log(
    State(state): State<AppState>,
    auth: Authenticated,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    secretariat(&auth)?;
    let Query(q) = q.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let entries = state
        .read
        .audit_log(&auth.viewer(), q.actor, limit)
        .await?
        .ok_or_else(no_route)?;
    Ok(Json(json!({"entries": entries})))
}
