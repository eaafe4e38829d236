//! `GET /console/`: the dashboard — counts, the review queue, recent reports.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::session::Signed;
use super::{CampaignRow, badge, internal, records, render, visible_campaigns, when};
use crate::council::{SourceLabel, Viewer};
use crate::http::AppState;
use crate::model::{Disposition, Seq};

/// Recent reports shown.
const RECENT: usize = 12;
/// Review-queue rows shown.
const QUEUE: usize = 15;

pub async fn page(State(state): State<AppState>, signed: Signed) -> Response {
    let lang = signed.lang;
    let viewer = signed.viewer();
    let campaigns = match visible_campaigns(&state, &viewer).await {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    let decided = if signed.is_secretariat() {
        match state.store.read_async(records::latest_dispositions).await {
            Ok(d) => d,
            Err(e) => return internal(e),
        }
    } else {
        None
    };

    let mut flags: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_tlp: BTreeMap<crate::model::Tlp, usize> = BTreeMap::new();
    let mut reports = 0;
    let mut unconfirmed = 0;
    for (_, v) in &campaigns {
        for f in &v.flags {
            *flags.entry(lang.flag(f)).or_default() += 1;
        }
        *by_tlp.entry(v.tlp).or_default() += 1;
        reports += v.report_count;
        unconfirmed += usize::from(v.unconfirmed);
    }
    let dispositions = decided.as_ref().map(|d| {
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for (_, v) in &campaigns {
            if let Some(disp) = d.get(&v.id) {
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
            .filter(|(_, v)| !d.contains_key(&v.id))
            .count()
    });
    let disp_label = |id| {
        decided
            .as_ref()
            .and_then(|d| d.get(&id))
            .map(|d| lang.disposition(*d))
    };
    let queue: Vec<CampaignRow> = campaigns
        .iter()
        .filter(|(_, v)| !v.flags.is_empty())
        .take(QUEUE)
        .map(|(_, v)| CampaignRow::of(v, lang, disp_label(v.id)))
        .collect();

    let recent = match recent_reports(&state, &viewer).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let set = state.campaigns();
    let recent: Vec<_> = recent
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id.to_string(),
                "title": r.title,
                "tlp": badge(r.tlp),
                "unconfirmed": r.unconfirmed,
                "received": when(r.received_at),
                "source": source_text(&r.source, lang),
                "campaign": set.of_report(r.id.0).map(|c| c.id.to_string()),
            })
        })
        .collect();

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
        }),
    )
}

/// A source label as text (the secretariat sees member ids; names are looked up by pages
/// that show them).
pub fn source_text(label: &SourceLabel, lang: super::i18n::Lang) -> String {
    match label {
        SourceLabel::Feed { feed } => format!("{} · {feed}", lang.t("feed")),
        SourceLabel::CouncilMember => lang.t("council_member").to_string(),
        SourceLabel::Member { member } => format!("{} · {member}", lang.t("member")),
    }
}

/// The latest reports the viewer may see, newest first.
async fn recent_reports(
    state: &AppState,
    viewer: &Viewer,
) -> crate::store::Result<Vec<crate::council::ReportSummary>> {
    const BATCH: u64 = 200;
    const SCAN: u64 = 5000;
    let viewer = viewer.clone();
    state
        .store
        .read_async(move |conn| {
            let last = crate::store::reports::last_seq(conn)?.0;
            let mut out = Vec::new();
            let mut hi = last;
            while hi > 0 && last - hi < SCAN && out.len() < RECENT {
                let lo = hi.saturating_sub(BATCH);
                let seqs: Vec<Seq> = ((lo + 1)..=hi).rev().map(Seq).collect();
                for meta in crate::store::reports::metas(conn, &seqs)? {
                    if let Some(s) = viewer.report_summary(&meta) {
                        out.push(s);
                        if out.len() == RECENT {
                            break;
                        }
                    }
                }
                hi = lo;
            }
            Ok(out)
        })
        .await
}
