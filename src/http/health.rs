//! `GET /healthz` and `GET /metrics` (unauthenticated; bind to loopback or protect them).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;

use super::metrics::Gauges;
use super::state::AppState;

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

pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let g = gauges(&state);
    Json(Health {
        status: "ok",
        committed_seq: g.committed_seq,
        indexed_seq: g.indexed_seq,
        correlated_seq: g.correlated_seq,
        projections_current: g.indexed_seq >= g.committed_seq
            && g.correlated_seq >= g.committed_seq,
        mail: state.metrics.mail.health(),
    })
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics.render(&gauges(&state));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
