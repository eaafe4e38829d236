//! The HTTP API (axum): submissions, reports, campaigns, search, health and metrics.
//!
//! Every handler that shows data takes an [`auth::Authenticated`] member and builds its
//! answer from `council::read` (views for one viewer); none can read the store around it.

mod advisories;
pub mod auth;
pub mod campaigns;
pub mod console;
pub mod council;
pub mod error;
pub mod feeds;
pub mod health;
pub mod inquiries;
pub mod ledger;
pub mod limit;
pub mod reports;
pub mod search;
pub mod state;
pub mod taxii;

use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

pub use error::{ApiResult, AppError};
pub use state::AppState;

/// The API router with its state.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    health::mark_startup(&state);
    Router::new()
        .route("/api/v1/reports", post(reports::submit))
        .route("/api/v1/reports/{id}", get(reports::get))
        .route("/api/v1/campaigns", get(campaigns::list))
        .route("/api/v1/advisories", get(advisories::list))
        .route("/api/v1/campaigns/{id}", get(campaigns::get))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/feeds", get(feeds::list))
        .route("/api/v1/ledger", get(ledger::get))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .merge(council::routes())
        .merge(inquiries::routes())
        .merge(taxii::routes())
        .merge(console::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), count_errors))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .with_state(state)
}

async fn not_found() -> AppError {
    AppError::Client {
        status: StatusCode::NOT_FOUND,
        code: "no_route",
        message: "no such endpoint; see the README for the API".into(),
    }
}

async fn method_not_allowed() -> AppError {
    AppError::Client {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "this endpoint does not take that method".into(),
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    use axum::response::IntoResponse;
    tracing::error!("A request handler panicked; answered 500.");
    AppError::Internal("handler panicked".into()).into_response()
}

async fn count_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if status.is_client_error() {
        state.metrics.http_client_errors.fetch_add(1, Relaxed);
    } else if status.is_server_error() {
        state.metrics.http_server_errors.fetch_add(1, Relaxed);
    }
    response
}
