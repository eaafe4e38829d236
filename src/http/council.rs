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
use crate::council::{audit, commands, feedback, review, stats};
use crate::model::{
    CampaignId, Disposition, MemberClass, ReportId, Seq, SightingDraft, SightingKind,
};
use crate::store::{self, StoreError};

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
        Err(AppError::Client {
            status: StatusCode::NOT_FOUND,
            code: "no_route",
            message: "no such route".into(),
        })
    }
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

fn campaign_id(s: &str) -> ApiResult<CampaignId> {
    s.parse()
        .map_err(|e: String| AppError::bad_request("invalid_campaign", e))
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
            let id: ReportId = r.parse().map_err(|()| {
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
        .store
        .read_async(move |conn| review::history(conn, id))
        .await?;
    audit_read(&state, &auth, &format!("dispositions {id}")).await?;
    Ok(Json(json!({"campaign": id, "history": history})))
}

async fn audit_read(state: &AppState, auth: &Authenticated, what: &str) -> ApiResult<()> {
    let actor = auth.member.id.0.clone();
    let what = what.to_string();
    state
        .store
        .writer()
        .write(move |conn| audit::record(conn, Utc::now(), &actor, audit::action::READ, &what, ""))
        .await?;
    Ok(())
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
    let analyst = auth.member.id.0.clone();
    let now = Utc::now();
    let id = match body(b)? {
        PinBody::Merge { a, b, note } => {
            let (a, b) = (campaign_id(&a)?, campaign_id(&b)?);
            let request = review::PinRequest::Merge { with: b };
            state
                .store
                .writer()
                .run(commands::pin(a, request, note, analyst, now))
                .await
        }
        PinBody::Split {
            campaign,
            reports,
            note,
        } => {
            let c = campaign_id(&campaign)?;
            let seqs = reports
                .iter()
                .map(|r| r.parse::<ReportId>().map(|id| id.0))
                .collect::<Result<Vec<Seq>, ()>>()
                .map_err(|()| {
                    AppError::bad_request("invalid_report", "expected report ids such as R-12")
                })?;
            let request = review::PinRequest::Split { reports: seqs };
            state
                .store
                .writer()
                .run(commands::pin(c, request, note, analyst, now))
                .await
        }
    }
    .map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

/// `GET /api/v1/council/pins` (secretariat): the pins in force.
async fn pins(State(state): State<AppState>, auth: Authenticated) -> ApiResult<Json<Value>> {
    secretariat(&auth)?;
    let pins = state.store.read_async(review::active_pins).await?;
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
    let analyst = auth.member.id.0.clone();
    let now = Utc::now();
    let id = state
        .store
        .writer()
        .write(move |conn| feedback::request(conn, c, &b.question, &b.classes, &analyst, now))
        .await
        .map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

/// `GET /api/v1/council/feedback`: the open requests for the caller's class, each only if
/// the caller may see some part of its campaign.
async fn open_requests(
    State(state): State<AppState>,
    auth: Authenticated,
) -> ApiResult<Json<Value>> {
    let viewer = auth.viewer();
    let set = state.campaigns();
    let requests = state
        .store
        .read_async(move |conn| {
            let mut out = Vec::new();
            for r in feedback::open_for(conn, &viewer)? {
                let Some(c) = set.get(r.campaign) else {
                    continue;
                };
                let metas = store::reports::metas(conn, &c.reports)?;
                if let Some(view) = viewer.campaign_view(c, &metas) {
                    out.push(json!({"request": r, "campaign": view}));
                }
            }
            Ok(out)
        })
        .await?;
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

/// `POST /api/v1/council/feedback/{id}/answer`: a member's (voluntary) answer.
async fn answer(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    b: Result<Json<AnswerBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let b = body(b)?;
    let viewer = auth.viewer();
    let now = Utc::now();
    state
        .store
        .writer()
        .write(move |conn| feedback::answer(conn, id, &viewer, b.kind, b.count, &b.note, now))
        .await
        .map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(json!({"answered": id}))))
}

/// `GET /api/v1/council/feedback/{id}` (secretariat): the request and its progress.
async fn request_progress(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    secretariat(&auth)?;
    let (req, progress) = state
        .store
        .read_async(move |conn| Ok((feedback::get(conn, id)?, feedback::progress(conn, id).ok())))
        .await?;
    let req = req.ok_or_else(|| AppError::not_found("feedback request"))?;
    audit_read(&state, &auth, &format!("feedback {id}")).await?;
    Ok(Json(json!({"request": req, "progress": progress})))
}

/// `POST /api/v1/sightings`: a member's sighting of an observable or a campaign.
async fn sighting(
    State(state): State<AppState>,
    auth: Authenticated,
    b: Result<Json<SightingDraft>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let draft = body(b)?;
    let member = auth.member.id.clone();
    let now = Utc::now();
    let id = state
        .store
        .writer()
        .write(move |conn| store::sightings::insert(conn, &member, &draft, now, None))
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

#[derive(Deserialize)]
pub struct StatsQuery {
    from: NaiveDate,
    to: NaiveDate,
    lang: Option<String>,
    format: Option<String>,
}

/// `GET /api/v1/council/stats?from=YYYY-MM-DD&to=YYYY-MM-DD&lang=ja|en&format=md|json|csv`:
/// counts only, by campaign; any member may read them.
async fn statistics(
    State(state): State<AppState>,
    _auth: Authenticated,
    q: Result<Query<StatsQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
    let lang: stats::Lang = q
        .lang
        .as_deref()
        .unwrap_or("ja")
        .parse()
        .map_err(|e: String| AppError::bad_request("invalid_query", e))?;
    let format: stats::Format = q
        .format
        .as_deref()
        .unwrap_or("json")
        .parse()
        .map_err(|e: String| AppError::bad_request("invalid_query", e))?;
    if q.from > q.to {
        return Err(AppError::bad_request("invalid_query", "from is after to"));
    }
    let (from, to) = (q.from, q.to);
    let table = state
        .store
        .read_async(move |conn| stats::table(conn, from, to))
        .await?;
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
        .store
        .read_async(move |conn| audit::list(conn, None, q.actor.as_deref(), limit))
        .await?;
    Ok(Json(json!({"entries": entries})))
}
