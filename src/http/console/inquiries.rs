//! `GET /console/inquiries`: the inquiries the viewer was asked (the secretariat: all, with
//! the form that opens one); `GET /console/inquiries/{id}`: one inquiry with its answers as
//! they arrive (through the policy, without providers); `POST /console/inquiries`: the
//! secretariat opens an inquiry on an advisory or a campaign for chosen member classes.

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::Signed;
use super::{internal, not_found, render, when};
use crate::council::inquiry::{self, InquiryAbout, InquiryView};
use crate::http::AppState;
use crate::http::inquiries::parse_classes;
use crate::model::Language;

#[derive(Debug, Default, Deserialize)]
pub struct Flash {
    #[serde(default)]
    error: String,
    #[serde(default)]
    advisory: String,
}

fn forbidden(lang: Language) -> Response {
    use super::i18n::Text as _;
    (axum::http::StatusCode::FORBIDDEN, lang.t("form_expired")).into_response()
}

fn about(v: &InquiryView) -> Value {
    match &v.about {
        InquiryAbout::Advisory {
            item,
            title,
            link,
            feed,
        } => json!({
            "kind": "advisory",
            "item": item.map(|i| i.to_string()),
            "title": title, "link": link, "feed": feed,
        }),
        InquiryAbout::Campaign { campaign } => json!({
            "kind": "campaign",
            "campaign": campaign.map(|c| c.to_string()),
        }),
    }
}

fn row(v: &InquiryView) -> Value {
    json!({
        "id": v.id,
        "opened_at": when(v.opened_at),
        "question": v.question,
        "about": about(v),
        "classes": v.classes.as_ref().map(|c| c.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")),
        "answers": v.answers.len(),
        "organisations": v.organisations,
    })
}

pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    flash: Result<Query<Flash>, QueryRejection>,
) -> Response {
    let flash = flash.map(|Query(f)| f).unwrap_or_default();
    let found = match state.read.inquiries(&signed.viewer()).await {
        Ok(f) => f,
        Err(e) => return internal(e),
    };
    render(
        &signed.console,
        "inquiries.html",
        json!({
            "page": signed.page("inquiries", "/console/inquiries"),
            "inquiries": found.iter().map(row).collect::<Vec<_>>(),
            "error": (!flash.error.is_empty()).then_some(flash.error),
            "advisory": flash.advisory,
        }),
    )
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/console/inquiries/{id}");
    let Some(n) = inquiry::parse_inquiry_id(&id) else {
        return not_found(&signed, &path);
    };
    let v = match state.read.inquiry(&signed.viewer(), n).await {
        Ok(Some(v)) => v,
        Ok(None) => return not_found(&signed, &path),
        Err(e) => return internal(e),
    };
    render(
        &signed.console,
        "inquiry.html",
        json!({
            "page": signed.page("inquiries", &path),
            "q": row(&v),
            "answers": v.answers.iter().map(|a| json!({
                "report": a.report.to_string(),
                "title": a.title,
                "tlp": a.tlp.to_string(),
                "received": when(a.received_at),
                "campaign": a.campaign.map(|c| c.to_string()),
            })).collect::<Vec<_>>(),
        }),
    )
}

#[derive(Deserialize)]
pub struct OpenForm {
    csrf: String,
    #[serde(default)]
    advisory: String,
    #[serde(default)]
    campaign: String,
    question: String,
    #[serde(default)]
    class1: Option<String>,
    #[serde(default)]
    class2: Option<String>,
    #[serde(default)]
    general: Option<String>,
}

pub async fn open(
    State(state): State<AppState>,
    signed: Signed,
    form: Result<Form<OpenForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return forbidden(signed.lang);
    };
    if !signed.is_secretariat() || !signed.csrf_ok(&form.csrf) {
        return forbidden(signed.lang);
    }
    let back = |e: &str| Redirect::to(&format!("/console/inquiries?error={e}")).into_response();
    let classes: Vec<String> = [
        ("class1", &form.class1),
        ("class2", &form.class2),
        ("general", &form.general),
    ]
    .into_iter()
    .filter(|(_, on)| on.is_some())
    .map(|(c, _)| c.to_string())
    .collect();
    let Ok(classes) = parse_classes(&classes) else {
        return back("classes");
    };
    let question = form.question.trim().to_string();
    if question.is_empty() || question.chars().count() > inquiry::QUESTION_MAX {
        return back("question");
    }
    let (advisory, campaign) = (form.advisory.trim(), form.campaign.trim());
    let Some(target) = state.read.inquiry_target(
        &signed.viewer(),
        Some(advisory).filter(|s| !s.is_empty()),
        Some(campaign).filter(|s| !s.is_empty()),
    ) else {
        return back("target");
    };
    match state
        .store
        .writer()
        .run(inquiry::open_inquiry(
            target,
            question,
            classes,
            signed.member.id.0.clone(),
            Utc::now(),
        ))
        .await
    {
        Ok(id) => {
            Redirect::to(&format!("/console/inquiries/{}", inquiry::inquiry_id(id))).into_response()
        }
        Err(e) => internal(e),
    }
}
