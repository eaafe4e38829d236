//! `GET /console/campaigns`: the campaign list with filters (flag, sector for the
//! secretariat, time) and full-text search through the index, all through the policy.

use std::collections::HashSet;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::json;

use super::dashboard::source_text;
use super::i18n::Text as _;
use super::session::Signed;
use super::{CampaignRow, handling, internal, render, when};
use crate::http::AppState;
use crate::model::{CampaignId, FlagKind, Sector};

/// The time windows offered, in days.
const WINDOWS: &[u32] = &[1, 7, 30, 90];
/// Index hits considered per search (before the policy filters them).
const SEARCH_HITS: usize = 500;
/// Matching reports listed.
const SHOWN_HITS: usize = 20;

#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    flag: String,
    #[serde(default)]
    sector: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    q: String,
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    q: Result<Query<Filters>, QueryRejection>,
) -> Response {
    let f = q.map(|Query(f)| f).unwrap_or_default();
    let lang = signed.lang;
    let viewer = signed.viewer();
    let secretariat = signed.is_secretariat();
    let campaigns = match state.read.all_campaigns(&viewer).await {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    let decided = match state.read.dispositions(&viewer).await {
        Ok(d) => d,
        Err(e) => return internal(e),
    };
    // Reporters' sectors: the secretariat's filter (empty for anyone else).
    let sectors = state.read.campaign_sectors(&viewer);

    // Search: index hits, then the policy, then the campaigns they belong to.
    let query = f.q.trim().to_string();
    let mut search_error = None;
    let mut hits = Vec::new();
    let mut hit_campaigns: Option<HashSet<CampaignId>> = None;
    if !query.is_empty() {
        if query.len() > 1000 {
            search_error = Some("the query is longer than 1000 bytes".to_string());
        } else {
            let found = state
                .read
                .console_search(&viewer, query.clone(), SEARCH_HITS)
                .await;
            match found {
                Ok(Ok(found)) => {
                    hit_campaigns = Some(
                        found
                            .iter()
                            .filter_map(|(_, c)| c.map(|c| c.internal()))
                            .collect(),
                    );
                    hits = found;
                }
                Ok(Err(e)) => search_error = Some(e),
                Err(e) => return internal(e),
            }
        }
    }

    let sector: Option<Sector> = if secretariat {
        f.sector.parse().ok()
    } else {
        None
    };
    let since_days: Option<u32> = f.since.parse().ok().filter(|d| WINDOWS.contains(d));
    let cutoff = since_days.map(|d| Utc::now() - Duration::days(d.into()));
    let flag: Option<FlagKind> = f.flag.parse().ok();
    let rows: Vec<CampaignRow> = campaigns
        .iter()
        .filter(|v| flag.is_none_or(|fl| v.has_flag(fl)))
        .filter(|v| {
            sector.is_none_or(|s| {
                sectors
                    .get(&v.id.internal())
                    .is_some_and(|list| list.contains(&s))
            })
        })
        .filter(|v| cutoff.is_none_or(|t| v.last_seen >= t))
        .filter(|v| {
            hit_campaigns
                .as_ref()
                .is_none_or(|h| h.contains(&v.id.internal()))
        })
        .map(|v| {
            let d = decided
                .as_ref()
                .and_then(|d| d.get(&v.id.internal()))
                .map(|d| lang.disposition(*d));
            CampaignRow::of(v, lang, d)
        })
        .collect();

    let hits: Vec<_> = hits
        .into_iter()
        .take(SHOWN_HITS)
        .map(|(r, c)| {
            json!({
                "id": r.id.to_string(),
                "title": r.title,
                "tlp": handling(lang, r.tlp, r.scope),
                "unconfirmed": r.unconfirmed,
                "received": when(r.received_at),
                "source": source_text(&r.source, lang),
                "campaign": c.map(|c| c.to_string()),
            })
        })
        .collect();

    // Only validated values go back into links (a member's page never echoes a sector).
    let path = format!(
        "/console/campaigns?flag={}&sector={}&since={}&q={}",
        flag.map(FlagKind::as_str).unwrap_or(""),
        sector.map(Sector::as_str).unwrap_or(""),
        since_days.map(|d| d.to_string()).unwrap_or_default(),
        url_encode(&query)
    );
    render(
        &signed.console,
        "campaigns.html",
        json!({
            "page": signed.page("campaigns", &path),
            "filters": { "flag": flag.map(FlagKind::as_str).unwrap_or(""), "sector": sector.map(|s| s.as_str()).unwrap_or(""),
                         "since": since_days.map(|d| d.to_string()).unwrap_or_default(), "q": query },
            "flag_options": FlagKind::ALL.iter().map(|k| json!({"key": k, "label": k.label(lang)})).collect::<Vec<_>>(),
            "sector_options": if secretariat {
                Sector::ALL.iter().map(|s| json!({"key": s.as_str(), "label": lang.sector(*s)})).collect::<Vec<_>>()
            } else { Vec::new() },
            "since_options": WINDOWS.iter().map(|d| json!({"key": d.to_string(), "label": lang.t(&format!("since_{d}"))})).collect::<Vec<_>>(),
            "rows": rows,
            "searched": !f.q.trim().is_empty(),
            "search_error": search_error,
            "hits": hits,
        }),
    )
}

/// Percent-encodes a query value.
pub fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
