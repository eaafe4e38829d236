//! `GET /console/advisories`: public context (groups of feed items no member reported),
//! with search in titles and a feed filter. Not campaigns: nothing here is counted on the
//! dashboard or queued for review.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::session::Signed;
use super::{internal, render, when};
use crate::council::read::{AdvisoryQuery, Page};
use crate::http::AppState;

/// Advisories listed per page.
const PER_PAGE: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    feed: String,
    #[serde(default)]
    page: usize,
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    filters: Result<Query<Filters>, QueryRejection>,
) -> Response {
    let Filters { q, feed, page } = filters.map(|Query(f)| f).unwrap_or_default();
    let viewer = signed.viewer();
    // The feed picker lists the feeds of every advisory the viewer sees.
    let all = match state
        .read
        .advisories(
            &viewer,
            AdvisoryQuery {
                q: None,
                feed: None,
                page: Page {
                    offset: 0,
                    limit: usize::MAX,
                },
            },
        )
        .await
    {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let mut feeds: Vec<String> = all.iter().flat_map(|a| a.feeds.clone()).collect();
    feeds.sort();
    feeds.dedup();
    let query = AdvisoryQuery {
        q: Some(q.trim().to_string()).filter(|s| !s.is_empty()),
        feed: Some(feed.clone()).filter(|s| !s.is_empty()),
        page: Page {
            offset: page * PER_PAGE,
            limit: PER_PAGE + 1,
        },
    };
    let found = match state.read.advisories(&viewer, query).await {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let more = found.len() > PER_PAGE;
    let href = |n: usize| {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &q)
            .append_pair("feed", &feed)
            .append_pair("page", &n.to_string())
            .finish();
        format!("/console/advisories?{query}")
    };
    render(
        &signed.console,
        "advisories.html",
        json!({
            "page": signed.page("advisories", "/console/advisories"),
            "q": q,
            "feed": feed,
            "feeds": feeds,
            "total": all.len(),
            "page_no": page,
            "next": more.then(|| href(page + 1)),
            "prev": page.checked_sub(1).map(href),
            "advisories": found.iter().take(PER_PAGE).map(|a| json!({
                "id": a.id.to_string(),
                "title": a.title,
                "feeds": a.feeds.join(", "),
                "items": a.report_count,
                "last_seen": when(a.last_seen),
            })).collect::<Vec<_>>(),
        }),
    )
}
