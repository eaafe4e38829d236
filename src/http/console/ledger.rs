//! `GET /console/ledger`: the give-and-take ledger (`council::ledger`). The secretariat
//! sees every member's row, with names, and the task-force candidates; a member sees its
//! own row only.

use axum::extract::State;
use axum::response::Response;
use chrono::Utc;
use serde_json::json;

use super::session::Signed;
use super::{internal, render};
use crate::council::read::LedgerView;
use crate::http::AppState;

pub async fn page(State(state): State<AppState>, signed: Signed) -> Response {
    let viewer = signed.viewer();
    let view = match state.read.ledger(&viewer, Utc::now()).await {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    let (rows, candidates) = match view {
        Some(LedgerView::Council(l)) => {
            let names: std::collections::HashMap<_, _> = l
                .rows
                .iter()
                .map(|r| (r.member.clone(), r.name.clone().unwrap_or_default()))
                .collect();
            let candidates: Vec<_> = l
                .task_force_candidates
                .iter()
                .map(|m| json!({"member": m, "name": names.get(m)}))
                .collect();
            (l.rows, Some(candidates))
        }
        Some(LedgerView::Own(row)) => (vec![row], None),
        None => (Vec::new(), None),
    };
    render(
        &signed.console,
        "ledger.html",
        json!({
            "page": signed.page("ledger", "/console/ledger"),
            "rows": rows,
            "candidates": candidates,
        }),
    )
}
