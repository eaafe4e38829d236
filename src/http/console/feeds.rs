//! `GET /console/feeds`: public feed items received so far, per feed, and the feeds'
//! health as `council::read::feeds` shows it to the viewer: the secretariat sees failures,
//! the last error and what the last poll kept, normalised and skipped (and why); a member
//! sees the public feeds and their last success, and no member's own feed at all.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::session::Signed;
use super::stats::visible_reports;
use super::{internal, render, when};
use crate::council::SourceLabel;
use crate::council::read::FeedView;
use crate::http::AppState;

pub async fn page(State(state): State<AppState>, signed: Signed) -> Response {
    let reports = match visible_reports(&state, &signed.viewer()).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let health = match state.read.feeds(&signed.viewer()).await {
        Ok(h) => h,
        Err(e) => return internal(e),
    };
    let health: Vec<serde_json::Value> = health
        .into_iter()
        .map(|f| match f {
            FeedView::Full { name, state } => json!({
                "name": name,
                "last_success": state.last_success.map(when),
                "failures": state.consecutive_failures,
                "last_error": state.last_error,
                "kept": state.last_items.kept,
                "normalised": state.last_items.normalised,
                "skipped": state.last_items.skipped,
                "skip_reasons": state.skip_reasons,
                "full": true,
            }),
            FeedView::Summary { name, last_success } => json!({
                "name": name,
                "last_success": last_success.map(when),
                "full": false,
            }),
        })
        .collect();
    let mut feeds: BTreeMap<String, (usize, chrono::DateTime<chrono::Utc>)> = BTreeMap::new();
    for r in &reports {
        if let SourceLabel::Feed { feed } = &r.source {
            let e = feeds.entry(feed.clone()).or_insert((0, r.received_at));
            e.0 += 1;
            e.1 = e.1.max(r.received_at);
        }
    }
    render(
        &signed.console,
        "feeds.html",
        json!({
            "page": signed.page("feeds", "/console/feeds"),
            "health": health,
            "full": signed.is_secretariat(),
            "feeds": feeds.iter().map(|(f, (n, at))| json!({"name": f, "items": n, "latest": when(*at)})).collect::<Vec<_>>(),
        }),
    )
}
