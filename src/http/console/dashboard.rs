//! `GET /console/`: the dashboard — counts, the review queue, recent reports, all read
//! through the one read path for the signed-in viewer.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::i18n::Text as _;
use super::session::Signed;
use super::{CampaignRow, badge, handling, internal, render, when};
use crate::council::SourceLabel;
use crate::http::AppState;
use crate::model::Disposition;

/// Recent reports shown.
const RECENT: usize = 12;
/// Review-queue rows shown.
const QUEUE: usize = 15;
/// Reports looked back over for the recent list.
const SCAN: u64 = 5000;

pub async fn page(State(state): State<AppState>, signed: Signed) -> Response {
    let lang = signed.lang;
    let viewer = signed.viewer();
    let campaigns = match state.read.all_campaigns(&viewer).await {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    let decided = match state.read.dispositions(&viewer).await {
        Ok(d) => d,
        Err(e) => return internal(e),
    };

    let mut flags: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut by_tlp: BTreeMap<crate::model::Tlp, usize> = BTreeMap::new();
    let mut reports = 0;
    let mut unconfirmed = 0;
    for v in &campaigns {
        for f in &v.flags {
            *flags.entry(f.name.label(lang)).or_default() += 1;
        }
        *by_tlp.entry(v.tlp).or_default() += 1;
        reports += v.report_count;
        unconfirmed += usize::from(v.unconfirmed);
    }
    let dispositions = decided.as_ref().map(|d| {
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for v in &campaigns {
            if let Some(disp) = d.get(&v.id.internal()) {
                *counts.entry(disp.as_str()).or_default() += 1;
            }
        }
        Disposition::ALL
            .iter()
            .filter_map(|disp| {
                counts.get(disp.as_str()).map(|n| {
                    json!({ "key": disp.as_str(), "label": lang.disposition(*disp), "count": n })
                })
            })
            .collect::<Vec<_>>()
    });
    let undecided = decided.as_ref().map(|d| {
        campaigns
            .iter()
            .filter(|v| !d.contains_key(&v.id.internal()))
            .count()
    });
    // The council's review queue (priority, then visible activity), not a list of its own.
    let queue: Vec<CampaignRow> = match state.read.review_queue(&viewer, QUEUE).await {
        Ok(rows) => rows
            .iter()
            .map(|r| {
                let mut row =
                    CampaignRow::of(&r.view, lang, r.disposition.map(|d| lang.disposition(d)));
                row.suggested = r.suggested.as_ref().map(|s| {
                    (
                        s.disposition.as_str(),
                        lang.disposition(s.disposition),
                        s.reason.clone(),
                    )
                });
                row
            })
            .collect(),
        Err(e) => return internal(e),
    };

    let recent = match state.read.recent_reports(&viewer, RECENT, SCAN).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let recent: Vec<_> = recent
        .into_iter()
        .map(|(r, campaign)| {
            json!({
                "id": r.id.to_string(),
                "title": r.title,
                "tlp": handling(lang, r.tlp, r.scope),
                "unconfirmed": r.unconfirmed,
                "received": when(r.received_at),
                "source": source_text(&r.source, lang),
                "campaign": campaign.map(|c| c.to_string()),
            })
        })
        .collect();

    // Time-to-share: the secretariat's only (`None` for anyone else).
    let time_to_share = match state.read.time_to_share(&viewer, chrono::Utc::now()).await {
        Ok(t) => t.map(|o| share_overview(&o, lang)),
        Err(e) => return internal(e),
    };

    render(
        &signed.console,
        "dashboard.html",
        json!({
            "page": signed.page("dashboard", "/console/"),
            "counts": {
                "campaigns": campaigns.len(),
                "reports": reports,
                "unconfirmed": unconfirmed,
                "undecided": undecided,
            },
            "by_tlp": by_tlp.iter().rev().map(|(t, n)| json!({"tlp": badge(*t), "count": n})).collect::<Vec<_>>(),
            "flags": flags.iter().map(|(k, n)| json!({"name": k, "count": n})).collect::<Vec<_>>(),
            "dispositions": dispositions,
            "queue": queue,
            "recent": recent,
            "time_to_share": time_to_share,
        }),
    )
}

/// A source label as text (the secretariat sees member ids; names are looked up by pages
/// that show them).
pub fn source_text(label: &SourceLabel, lang: crate::model::Language) -> String {
    match label {
        SourceLabel::Feed { feed } => format!("{} · {feed}", lang.t("feed")),
        SourceLabel::CouncilMember => lang.t("council_member").to_string(),
        SourceLabel::Member { member } => format!("{} · {member}", lang.t("member")),
    }
}

/// Time-to-share as the dashboard shows it: median and p90 per window, and the campaigns
/// waiting longest.
fn share_overview(
    o: &crate::council::read::ShareOverview,
    lang: crate::model::Language,
) -> serde_json::Value {
    use crate::council::stats::{Spread, TimeToShare, span};
    let spread = |s: Option<Spread>| {
        s.map(|s| json!({"median": span(s.median_seconds, lang), "p90": span(s.p90_seconds, lang)}))
    };
    let window = |key: &str, t: &TimeToShare| {
        json!({
            "label": lang.t(key),
            "campaigns": t.campaigns,
            "shared": t.shared,
            "decided": t.decided,
            "waiting": t.waiting,
            "to_share": spread(t.to_share),
            "to_decide": spread(t.to_decide),
        })
    };
    json!({
        "windows": [window("last_30_days", &o.last_30_days), window("last_90_days", &o.last_90_days)],
        "waiting": o.waiting_longest.iter().map(|w| json!({
            "id": w.id.to_string(),
            "since": when(w.submitted),
            "waited": span(w.waited_seconds, lang),
            "shared": w.shared.is_some(),
        })).collect::<Vec<_>>(),
    })
}
