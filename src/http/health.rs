//! `GET /healthz` and `GET /metrics`.
//!
//! Anyone who can reach the listener can ask `/healthz`, and members reach it: so without a
//! secretariat token it says only whether the daemon is live and ready — a status code and
//! `{"status": "ok" | "starting"}` — and nothing that moves with the council's material or
//! names anyone (sequence numbers count every report, hidden ones included; a mail error
//! can carry a member's address). The details are for the secretariat's Bearer token.
//!
//! `/metrics` is for the operators' monitoring only: it needs a secretariat token (see the
//! README, "Health and metrics", for how to scrape it).

use std::sync::atomic::Ordering::Relaxed;

use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::Authenticated;
use super::error::{ApiResult, AppError};
use super::state::AppState;
use crate::council::read::Progress;
use crate::metrics::Gauges;

/// What anyone may learn: live (it answers) and ready (the projections have caught up with
/// the store once since the start). Readiness latches, so that it does not flicker with
/// every report stored later — that would tell anyone polling when anybody submits.
#[derive(Serialize)]
pub struct Liveness {
    pub status: &'static str,
}

/// The details, for the secretariat.
#[derive(Serialize)]
pub struct Health {
    pub status: &'static str,
    pub committed_seq: u64,
    pub indexed_seq: u64,
    pub correlated_seq: u64,
    /// Whether the projections have caught up with the store.
    pub projections_current: bool,
    /// `leader` (this node polls feeds, sends mail and records campaign ids) or `follower`.
    pub role: crate::model::Role,
    /// The store's own head, and how far this node's view of it is behind (other nodes'
    /// commits not yet heard of; 0 on SQLite).
    pub store_seq: u64,
    pub store_lag: u64,
    /// Reports committed to the store and not yet indexed / correlated here.
    pub index_lag: u64,
    pub correlation_lag: u64,
    /// Mail delivery: counters and the last error.
    pub mail: crate::outputs::mail::MailHealth,
}

/// The operators' figures (the caller has checked that the viewer is the secretariat).
fn gauges(state: &AppState, p: &Progress, store_seq: u64) -> Gauges {
    Gauges {
        store_seq: store_seq.max(p.committed_seq),
        committed_seq: p.committed_seq,
        indexed_seq: state.indexed.borrow().0,
        correlated_seq: p.correlated_seq,
        campaigns: p.campaigns,
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        role: *state.role.borrow(),
    }
}

/// Records what the store holds as the daemon starts serving: the backlog the projections
/// must catch up with before the daemon calls itself ready.
pub fn mark_startup(state: &AppState) {
    let _ = state.metrics.backlog.set(state.read.backlog());
}

/// Whether the daemon is ready: the projections have caught up with the startup backlog,
/// at least once.
fn ready(state: &AppState) -> bool {
    let m = &state.metrics;
    if m.ready.load(Relaxed) {
        return true;
    }
    let backlog = *m.backlog.get_or_init(|| state.read.backlog());
    let caught_up = state.read.caught_up(&backlog, *state.indexed.borrow());
    if caught_up {
        m.ready.store(true, Relaxed);
    }
    caught_up
}

/// The secretariat behind the request, if any. A request without `Authorization` is
/// anonymous; one with a bad token is refused like everywhere else.
async fn caller(req: Request, state: &AppState) -> ApiResult<Option<Authenticated>> {
    let (mut parts, _) = req.into_parts();
    if !parts.headers.contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    let auth = Authenticated::from_request_parts(&mut parts, state).await?;
    Ok(auth.viewer().is_secretariat().then_some(auth))
}

pub async fn healthz(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let ready = ready(&state);
    let status = if ready { "ok" } else { "starting" };
    let caller = caller(req, &state).await?;
    let progress = caller
        .as_ref()
        .and_then(|auth| Some((state.read.progress(&auth.viewer())?, auth.viewer())));
    let Some((p, viewer)) = progress else {
        let code = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return Ok((code, Json(Liveness { status })).into_response());
    };
    let head = state
        .read
        .store_head(&viewer)
        .await?
        .unwrap_or(p.committed_seq);
    let g = gauges(&state, &p, head);
    Ok(Json(Health {
        status,
        store_seq: g.store_seq,
        store_lag: g.store_lag(),
        committed_seq: g.committed_seq,
        indexed_seq: g.indexed_seq,
        correlated_seq: g.correlated_seq,
        projections_current: g.indexed_seq >= g.committed_seq
            && g.correlated_seq >= g.committed_seq,
        role: g.role,
        index_lag: g.index_lag(),
        correlation_lag: g.correlation_lag(),
        mail: state.metrics.mail.health(),
    })
    .into_response())
}

/// `GET /metrics` (secretariat token): Prometheus text. Anyone else gets the answer of an
/// unknown route (401 without a token).
pub async fn metrics(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let has_token = req.headers().contains_key(header::AUTHORIZATION);
    let caller = caller(req, &state).await?;
    let progress = caller
        .as_ref()
        .and_then(|auth| Some((state.read.progress(&auth.viewer())?, auth.viewer())));
    let Some((p, viewer)) = progress else {
        return Err(if has_token {
            AppError::Client {
                status: StatusCode::NOT_FOUND,
                code: "no_route",
                message: "no such route".into(),
            }
        } else {
            AppError::unauthorized()
        });
    };
    let _ = ready(&state);
    let head = state
        .read
        .store_head(&viewer)
        .await?
        .unwrap_or(p.committed_seq);
    let body = state.metrics.render(&gauges(&state, &p, head));
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
