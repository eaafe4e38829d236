//! `GET /console/campaigns/{id}`: one campaign — summary, flags, the report–observable
//! graph, the timeline, observables (copy, CSV), and for the secretariat the disposition
//! history and form and merge/split requests.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::dashboard::source_text;
use super::i18n::Text as _;
use super::session::Signed;
use super::svg::{self, GraphObservable, GraphReport, TimelineItem, ValueMark};
use super::{confidence, handling, internal, not_found, render, when};
use crate::council::explain::NotCounted;
use crate::council::read::{CampaignPage, CampaignReview};
use crate::council::review::{PinKind, PinRequest};
use crate::council::{SourceLabel, commands};
use crate::http::AppState;
use crate::model::{CampaignId, Disposition, Language, Observable, ReportId};

/// Longest note kept with a disposition or request.
const MAX_NOTE: usize = 4000;

/// The campaign page's data from the read path: `None` for an id that does not parse, a
/// campaign that does not exist, and one the viewer may see none of — all alike.
async fn load(
    state: &AppState,
    signed: &Signed,
    id: &str,
) -> Result<Option<CampaignPage>, Response> {
    // Members name campaigns by their opaque ids (`council::read::ids`).
    let viewer = signed.viewer();
    let Some(id) = crate::council::read::ids::parse_campaign(&viewer, id) else {
        return Ok(None);
    };
    state
        .read
        .campaign_page(&viewer, id)
        .await
        .map_err(internal)
}

#[derive(Debug, Default, Deserialize)]
pub struct Flash {
    #[serde(default)]
    saved: String,
    #[serde(default)]
    error: String,
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    flash: Result<Query<Flash>, QueryRejection>,
) -> Response {
    let flash = flash.map(|Query(f)| f).unwrap_or_default();
    let path = format!("/console/campaigns/{id}");
    let loaded = match load(&state, &signed, &id).await {
        Ok(Some(l)) => l,
        Ok(None) => return not_found(&signed, &path),
        Err(resp) => return resp,
    };
    let lang = signed.lang;
    let CampaignPage { view, reports } = loaded;

    // Secretariat-only material: member names, sectors, dispositions, requests, history.
    let review = match state
        .read
        .campaign_review(&signed.viewer(), view.id.internal())
        .await
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let dispositions = review.as_ref().map(|r| r.dispositions.clone());
    let CampaignReview {
        names,
        sectors,
        pins,
        ..
    } = review.unwrap_or_default();
    // Why grouped: the secretariat's only (None for anyone else).
    let explain = match state
        .read
        .explanation(&signed.viewer(), view.id.internal(), lang)
        .await
    {
        Ok(e) => e,
        Err(e) => return internal(e),
    };
    let marks: BTreeMap<String, ValueMark> = explain
        .iter()
        .flat_map(|e| &e.suppressed)
        .filter_map(|s| match s.why {
            NotCounted::Warninglist { .. } => Some((s.value.clone(), ValueMark::Suppressed)),
            NotCounted::OverCorrelating { .. } => {
                Some((s.value.clone(), ValueMark::OverCorrelating))
            }
            _ => None,
        })
        .collect();
    let source = |label: &SourceLabel| -> String {
        match label {
            SourceLabel::Member { member } => match names.get(member) {
                Some(name) => format!("{name} ({member})"),
                None => member.to_string(),
            },
            other => source_text(other, lang),
        }
    };

    // The graph: visible reports and the observables they carry.
    let graph_reports: Vec<GraphReport> = reports
        .iter()
        .map(|r| GraphReport {
            id: r.summary.id.to_string(),
            title: r.summary.title.clone(),
            tlp: r.summary.tlp,
            unconfirmed: r.summary.unconfirmed,
        })
        .collect();
    let mut carried: BTreeMap<&Observable, Vec<usize>> = BTreeMap::new();
    for (i, r) in reports.iter().enumerate() {
        for ind in &r.indicators {
            carried.entry(&ind.observable).or_default().push(i);
        }
    }
    let graph_observables: Vec<GraphObservable> = carried
        .into_iter()
        .map(|(o, reps)| GraphObservable {
            kind: o.kind(),
            value: o.value().to_string(),
            reports: reps,
            mark: marks.get(o.value()).copied().unwrap_or_default(),
        })
        .collect();
    let graph = svg::graph(&graph_reports, &graph_observables, lang);
    let timeline_items: Vec<TimelineItem> = reports
        .iter()
        .map(|r| TimelineItem {
            id: r.summary.id.to_string(),
            title: r.summary.title.clone(),
            lane: source(&r.summary.source),
            at: r.observed_at.unwrap_or(r.summary.received_at),
            tlp: r.summary.tlp,
            unconfirmed: r.summary.unconfirmed,
        })
        .collect();
    let timeline = svg::timeline(&timeline_items, lang);

    let observables: Vec<_> = view
        .observables
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|o| {
            let (family, _) = svg::kind_family(o.kind);
            json!({ "kind": o.kind.as_str(), "family": family, "value": o.value,
                    "reports": o.reports, "shared": o.reports >= 2 })
        })
        .collect();
    let report_rows: Vec<_> = reports
        .iter()
        .map(|r| {
            json!({
                "id": r.summary.id.to_string(),
                "title": r.summary.title,
                "tlp": handling(lang, r.summary.tlp, r.summary.scope),
                "confidence": confidence(lang, r.summary.confidence),
                "unconfirmed": r.summary.unconfirmed,
                "received": when(r.summary.received_at),
                "source": source(&r.summary.source),
                "observables": r.indicators.len(),
                "description": r.description,
            })
        })
        .collect();
    let shared = view
        .observables
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|o| o.reports >= 2)
        .count();

    render(
        &signed.console,
        "campaign.html",
        json!({
            "page": signed.page("campaigns", &path),
            "c": {
                "id": view.id.to_string(),
                "tlp": handling(lang, view.tlp, view.scope),
                "unconfirmed": view.unconfirmed,
                "reports": view.report_count,
                "first_seen": when(view.first_seen),
                "last_seen": when(view.last_seen),
                "flags": view.flags.iter().map(|f| json!({"key": f.name, "label": f.name.label(lang), "evidence": f.summary()})).collect::<Vec<_>>(),
                "observables": observables.len(),
                "shared": shared,
                "title": reports.last().map(|r| r.summary.title.clone()).unwrap_or_default(),
            },
            "sectors": sectors.iter().map(|s| lang.sector(*s)).collect::<Vec<_>>(),
            "graph": graph,
            "context": view.context.iter().flatten().map(|x| json!({
                "value": x.value.value,
                "feed": x.feed,
                "date": x.date.format("%Y-%m-%d").to_string(),
                "link": x.link,
                "title": x.title,
                "details": x.details.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(" · "),
            })).collect::<Vec<_>>(),
            "timeline": timeline,
            "observables": observables,
            "shown_observables": graph_observables.len().min(svg::MAX_OBSERVABLES),
            "reports": report_rows,
            "dispositions": dispositions.map(|d| d.into_iter().map(|r| json!({
                "key": r.disposition.as_str(),
                "label": lang.disposition(r.disposition),
                "note": r.note, "analyst": r.analyst, "at": when(r.at),
            })).collect::<Vec<_>>()),
            "disposition_options": Disposition::ALL.iter().map(|d| json!({"key": d.as_str(), "label": lang.disposition(*d)})).collect::<Vec<_>>(),
            "pins": pins.into_iter().map(|p| {
                let (kind, other, reports) = match p.kind {
                    PinKind::Merge { a, b } => {
                        ("merge", Some(if a == view.id.internal() { b } else { a }.to_string()), None)
                    }
                    PinKind::Split { reports, .. } => ("split", None, Some(
                        reports.into_iter().map(|s| ReportId(s).to_string()).collect::<Vec<_>>().join(", "),
                    )),
                };
                json!({
                    "kind": kind, "other": other, "reports": reports, "note": p.note,
                    "analyst": p.analyst, "at": when(p.at),
                })
            }).collect::<Vec<_>>(),
            "history": explain.as_ref().map(|e| e.history.iter().rev().take(20).map(|h| json!({"at": h.at, "text": h.text})).collect::<Vec<_>>()).unwrap_or_default(),
            "explain": explain.as_ref().map(|e| json!({
                "threshold": e.threshold,
                "links_total": e.links_total,
                "links": e.links.iter().map(|l| json!({
                    "a": l.a.to_string(), "b": l.b.to_string(), "weight": l.weight,
                    "shared": l.shared.iter().map(|s| format!("{} {} ({}{})", s.kind.as_str(), s.value, s.weight,
                        if s.weight < s.full_weight { format!("/{}", s.full_weight) } else { String::new() })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "suppressed": e.suppressed.iter().map(|s| json!({
                    "kind": s.kind.as_str(), "value": s.value, "in_campaign": s.in_campaign, "reason": s.reason,
                })).collect::<Vec<_>>(),
                "near": e.near.iter().map(|n| json!({
                    "a": n.a.to_string(), "b": n.b.to_string(),
                    "campaign": n.b_campaign.as_ref().map(|c| c.to_string()),
                    "weight": n.weight, "reason": n.reason,
                    "shared": n.shared.iter().map(|s| format!("{} {} ({})", s.kind.as_str(), s.value, s.weight)).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })),
            "picture": view.picture.as_ref().map(|p| json!({
                "organisations": p.organisations,
                "related": p.related.iter().map(|r| json!({
                    "id": r.id.to_string(), "score": format!("{:.2}", r.score),
                    "summary": crate::council::explain::related_words(&r.reasons, lang),
                })).collect::<Vec<_>>(),
            })),
            "flash": match flash.saved.as_str() {
                "disposition" => Some(lang.t("saved")),
                "pin" => Some(lang.t("pin_saved")),
                _ => None,
            },
            "error": match flash.error.as_str() {
                "disposition" => Some(lang.t("bad_disposition")),
                "pin" => Some(lang.t("bad_pin")),
                "expired" => Some(lang.t("form_expired")),
                _ => None,
            },
        }),
    )
}

/// `GET /console/campaigns/{id}/observables.csv`: the visible observables.
pub async fn csv(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/console/campaigns/{id}");
    let loaded = match load(&state, &signed, &id).await {
        Ok(Some(l)) => l,
        Ok(None) => return not_found(&signed, &path),
        Err(resp) => return resp,
    };
    let out = crate::outputs::csv::to_string(
        &["type", "value", "reports"],
        loaded
            .view
            .observables
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|o| {
                [
                    o.kind.as_str().to_string(),
                    o.value.clone(),
                    o.reports.to_string(),
                ]
            }),
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{}-observables.csv\"",
                    loaded.view.id
                ),
            ),
        ],
        out,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    disposition: String,
    #[serde(default)]
    note: String,
}

fn forbidden(lang: Language) -> Response {
    (StatusCode::FORBIDDEN, lang.t("form_expired")).into_response()
}

fn back(id: CampaignId, query: &str, anchor: &str) -> Response {
    Redirect::to(&format!("/console/campaigns/{id}?{query}#{anchor}")).into_response()
}

/// `POST /console/campaigns/{id}/disposition` (secretariat).
pub async fn decide(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return forbidden(signed.lang);
    };
    if !signed.is_secretariat() || !signed.csrf_ok(&form.csrf) {
        return forbidden(signed.lang);
    }
    let Ok(cid) = id.parse::<CampaignId>() else {
        return not_found(&signed, &format!("/console/campaigns/{id}"));
    };
    match state.read.campaign(&signed.viewer(), cid).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(&signed, &format!("/console/campaigns/{id}")),
        Err(e) => return internal(e),
    }
    let Ok(d) = form.disposition.parse::<Disposition>() else {
        return back(cid, "error=disposition", "decide");
    };
    let note: String = form.note.trim().chars().take(MAX_NOTE).collect();
    let analyst = signed.member.id.clone();
    let res = state
        .store
        .writer()
        .run(commands::decide(
            cid,
            d,
            note,
            analyst.0.clone(),
            Utc::now(),
        ))
        .await;
    match res {
        Ok(_) => {
            tracing::info!(campaign = %cid, disposition = d.as_str(), analyst = %analyst, "Disposition recorded.");
            back(cid, "saved=disposition", "dispositions")
        }
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct PinForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    with: String,
    #[serde(default)]
    reports: String,
    #[serde(default)]
    note: String,
}

/// `POST /console/campaigns/{id}/pin` (secretariat): records a merge or split request.
pub async fn pin(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    form: Result<Form<PinForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return forbidden(signed.lang);
    };
    if !signed.is_secretariat() || !signed.csrf_ok(&form.csrf) {
        return forbidden(signed.lang);
    }
    let Ok(cid) = id.parse::<CampaignId>() else {
        return not_found(&signed, &format!("/console/campaigns/{id}"));
    };
    let viewer = signed.viewer();
    let campaign = match state.read.campaign(&viewer, cid).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(&signed, &format!("/console/campaigns/{id}")),
        Err(e) => return internal(e),
    };
    let request = match form.kind.as_str() {
        "merge" => match form.with.trim().parse::<CampaignId>() {
            Ok(with) if with != cid => match state.read.campaign(&viewer, with).await {
                Ok(Some(_)) => PinRequest::Merge { with },
                Ok(None) => return back(cid, "error=pin", "merge"),
                Err(e) => return internal(e),
            },
            _ => return back(cid, "error=pin", "merge"),
        },
        "split" => {
            let ids: Result<Vec<ReportId>, _> = form
                .reports
                .split([',', ' ', '\n'])
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().parse::<ReportId>())
                .collect();
            let held = |r: &ReportId| campaign.reports.iter().any(|x| x.id.internal() == *r);
            match ids {
                Ok(ids)
                    if !ids.is_empty()
                        && ids.len() < campaign.reports.len()
                        && ids.iter().all(held) =>
                {
                    PinRequest::Split {
                        reports: ids.into_iter().map(|r| r.0).collect(),
                    }
                }
                _ => return back(cid, "error=pin", "merge"),
            }
        }
        _ => return back(cid, "error=pin", "merge"),
    };
    let note: String = form.note.trim().chars().take(MAX_NOTE).collect();
    let analyst = signed.member.id.0.clone();
    let res = state
        .store
        .writer()
        .run(commands::pin(
            request.pin_of(cid),
            note,
            analyst,
            Utc::now(),
        ))
        .await;
    match res {
        Ok(_) => back(cid, "saved=pin", "merge"),
        Err(e) => internal(e),
    }
}
