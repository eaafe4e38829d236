//! `GET /console/feeds`: public feed items received so far, per feed. Until the feed
//! scheduler runs, the page says so rather than showing anything made up.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::session::Signed;
use super::stats::visible_reports;
use super::{internal, render, when};
use crate::council::SourceLabel;
use crate::http::AppState;

pub async fn page(State(state): State<AppState>, signed: Signed) -> Response {
    let reports = match visible_reports(&state, &signed.viewer()).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
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
            "feeds": feeds.iter().map(|(f, (n, at))| json!({"name": f, "items": n, "latest": when(*at)})).collect::<Vec<_>>(),
        }),
    )
}
