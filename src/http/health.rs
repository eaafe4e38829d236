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
use super::metrics::Gauges;
use super::state::AppState;

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
    /// Mail delivery: counters and the last error.
    pub mail: crate::outputs::mail::MailHealth,
}

fn gauges(state: &AppState) -> Gauges {
    let set = state.campaigns();
    Gauges {
        committed_seq: state.store.writer().committed().borrow().0,
        indexed_seq: state.indexed.borrow().0,
        correlated_seq: set.applied.0,
        campaigns: set.campaigns.len() as u64,
        uptime_seconds: state.started.elapsed().as_secs_f64(),
    }
}

/// Records the store's sequence number as the daemon starts serving: the backlog the
/// projections must catch up with before the daemon calls itself ready.
pub fn mark_startup(state: &AppState) {
    let committed = state.store.writer().committed().borrow().0;
    let _ = state.metrics.startup_target.set(committed);
}

/// Whether the daemon is ready: the projections have reached the store's sequence number
/// as it was at the start (the startup backlog), at least once.
fn ready(state: &AppState, g: &Gauges) -> bool {
    let m = &state.metrics;
    if m.ready.load(Relaxed) {
        return true;
    }
    let target = *m.startup_target.get_or_init(|| g.committed_seq);
    let caught_up = g.indexed_seq >= target && g.correlated_seq >= target;
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
    let g = gauges(&state);
    let ready = ready(&state, &g);
    let status = if ready { "ok" } else { "starting" };
    if caller(req, &state).await?.is_none() {
        let code = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return Ok((code, Json(Liveness { status })).into_response());
    }
    Ok(Json(Health {
        status,
        committed_seq: g.committed_seq,
        indexed_seq: g.indexed_seq,
        correlated_seq: g.correlated_seq,
        projections_current: g.indexed_seq >= g.committed_seq
            && g.correlated_seq >= g.committed_seq,
        mail: state.metrics.mail.health(),
    })
    .into_response())
}

/// `GET /metrics` (secretariat token): Prometheus text. Anyone else gets the answer of an
/// unknown route (401 without a token).
pub async fn metrics(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let has_token = req.headers().contains_key(header::AUTHORIZATION);
    if caller(req, &state).await?.is_none() {
        return Err(if has_token {
            AppError::Client {
                status: StatusCode::NOT_FOUND,
                code: "no_route",
                message: "no such route".into(),
            }
        } else {
            AppError::unauthorized()
        });
    }
    let g = gauges(&state);
    let _ = ready(&state, &g);
    let body = state.metrics.render(&g);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
