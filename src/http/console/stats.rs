//! `GET /console/stats`: what can be counted today, through the policy; the council's
//! periodic statistics are marked as not yet available.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::i18n::Text as _;
use super::session::Signed;
use super::{badge, internal, render};
use crate::council::{ReportSummary, Viewer};
use crate::http::AppState;
use crate::model::{Confidence, Disposition};

/// Reports scanned at most for the page (newest first).
const SCAN: u64 = 200_000;

/// The reports the viewer may see, newest first (up to [`SCAN`] scanned).
pub async fn visible_reports(
    state: &AppState,
    viewer: &Viewer,
) -> crate::council::read::Result<Vec<ReportSummary>> {
    Ok(state
        .read
        .recent_reports(viewer, usize::MAX, SCAN)
        .await?
        .into_iter()
        .map(|(r, _)| r)
        .collect())
}

pub async fn page(State(state): State<AppState>, signed: Signed) -> Response {
    let lang = signed.lang;
    let viewer = signed.viewer();
    let reports = match visible_reports(&state, &viewer).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let campaigns = match state.read.all_campaigns(&viewer).await {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    let mut by_tlp = BTreeMap::new();
    let mut by_conf: BTreeMap<&'static str, usize> = BTreeMap::new();
    for r in &reports {
        *by_tlp.entry(r.tlp).or_insert(0usize) += 1;
        *by_conf.entry(r.confidence.as_str()).or_default() += 1;
    }
    let dispositions = {
        match state.read.dispositions(&viewer).await {
            Ok(Some(d)) => {
                let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
                for v in &campaigns {
                    if let Some(x) = d.get(&v.id.internal()) {
                        *counts.entry(x.as_str()).or_default() += 1;
                    }
                }
                Some(
                    Disposition::ALL
                        .iter()
                        .filter_map(|x| {
                            counts
                                .get(x.as_str())
                                .map(|n| json!({"label": lang.disposition(*x), "count": n}))
                        })
                        .collect::<Vec<_>>(),
                )
            }
            Ok(None) => None,
            Err(e) => return internal(e),
        }
    };
    let by_confidence: Vec<_> = [
        Confidence::Confirmed,
        Confidence::Suspected,
        Confidence::Unconfirmed,
    ]
    .iter()
    .map(|c| {
        json!({
            "label": lang.t(c.as_str()),
            "class": c.as_str(),
            "count": by_conf.get(c.as_str()).copied().unwrap_or(0),
        })
    })
    .collect();
    render(
        &signed.console,
        "stats.html",
        json!({
            "page": signed.page("stats", "/console/stats"),
            "reports": reports.len(),
            "campaigns": campaigns.len(),
            "by_tlp": by_tlp.iter().rev().map(|(t, n)| json!({"tlp": badge(*t), "count": n})).collect::<Vec<_>>(),
            "by_confidence": by_confidence,
            "dispositions": dispositions,
        }),
    )
}
