//! `GET /api/v1/ledger[?format=json|csv]`: the give-and-take ledger (`council::ledger`).
//!
//! The secretariat receives every member's row and the task-force candidates; a member its
//! own row only (the same shape: `rows` with one row, no candidates). No member's answer
//! holds another member's figures or a total over members.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::auth::Authenticated;
use super::error::{ApiResult, AppError};
use super::state::AppState;
use crate::council::ledger;
use crate::council::read::LedgerView;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    format: Option<String>,
}

/// The ledger as the viewer may see it, as JSON (default) or CSV.
pub async fn get(
    State(state): State<AppState>,
    auth: Authenticated,
    q: Result<Query<LedgerQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
    let csv = match q.format.as_deref().unwrap_or("json") {
        "json" => false,
        "csv" => true,
        other => {
            return Err(AppError::bad_request(
                "invalid_query",
                format!("format: unknown format {other:?} (expected json or csv)"),
            ));
        }
    };
    let view = state
        .read
        .ledger(&auth.viewer(), Utc::now())
        .await?
        .ok_or_else(|| AppError::not_found("ledger"))?;
    Ok(match (view, csv) {
        (LedgerView::Council(l), false) => Json(json!({
            "rows": l.rows,
            "task_force_candidates": l.task_force_candidates,
        }))
        .into_response(),
        (LedgerView::Own(row), false) => Json(json!({ "rows": [row] })).into_response(),
        (LedgerView::Council(l), true) => csv_response(l.to_csv()),
        (LedgerView::Own(row), true) => csv_response(ledger::own_csv(&row)),
    })
}

fn csv_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
}
