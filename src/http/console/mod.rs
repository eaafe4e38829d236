//! The analysts' web console under `/console/`: server-rendered pages, no script needed
//! to read them, assets embedded in the binary (works offline, no CDN).
//!
//! Every page is built from views the one read path ([`crate::council::ReadPath`]) computes
//! for the signed-in viewer: a member sees exactly what the API would show them, the
//! secretariat sees everything. No page reads the store, and writes (dispositions,
//! merge/split requests) go through the council's typed review functions.
//!
//! - [`session`]: sign-in with a member token, server-side sessions, CSRF.
//! - [`i18n`]: English and Japanese.
//! - [`svg`]: the campaign graph and timeline, drawn on the server.
//! - one file per page: [`dashboard`], [`campaigns`], [`campaign`], [`stats`], [`feeds`],
//!   [`ledger`].

mod advisories;
pub mod campaign;
pub mod campaigns;
pub mod dashboard;
pub mod feeds;
pub mod i18n;
mod inquiries;
pub mod ledger;
pub mod session;
pub mod stats;
pub mod svg;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use self::i18n::{LANG_COOKIE, Text as _};
use self::session::Signed;
use super::AppState;
use crate::council::CampaignView;
use crate::model::Language;
use crate::model::{Confidence, MemberClass, Tlp};

/// The templates, compiled into the binary.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("login.html", include_str!("templates/login.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("campaigns.html", include_str!("templates/campaigns.html")),
    ("campaign.html", include_str!("templates/campaign.html")),
    ("stats.html", include_str!("templates/stats.html")),
    ("feeds.html", include_str!("templates/feeds.html")),
    ("ledger.html", include_str!("templates/ledger.html")),
    ("advisories.html", include_str!("templates/advisories.html")),
    ("inquiries.html", include_str!("templates/inquiries.html")),
    ("inquiry.html", include_str!("templates/inquiry.html")),
    ("not_found.html", include_str!("templates/not_found.html")),
];
const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");
const FAVICON: &str = include_str!("assets/favicon.svg");

/// The console's shared state: its templates. Sessions and login nonces are in the store
/// (see [`session`]), so that every node serves every console request.
pub struct Console {
    env: minijinja::Environment<'static>,
}

impl Console {
    pub fn new() -> Console {
        let mut env = minijinja::Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src)
                .expect("embedded console templates are valid (a unit test renders them)");
        }
        Console { env }
    }
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}

/// The console routes, mounted by [`crate::http::router`].
pub fn routes() -> Router<AppState> {
    let console = Arc::new(Console::new());
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(dashboard::page))
        .route(
            "/console/login",
            get(session::login_form).post(session::login),
        )
        .route("/console/logout", post(session::logout))
        .route("/console/lang/{lang}", get(switch_lang))
        .route("/console/campaigns", get(campaigns::page))
        .route("/console/campaigns/{id}", get(campaign::page))
        .route(
            "/console/campaigns/{id}/observables.csv",
            get(campaign::csv),
        )
        .route(
            "/console/campaigns/{id}/disposition",
            post(campaign::decide),
        )
        .route("/console/campaigns/{id}/pin", post(campaign::pin))
        .route("/console/stats", get(stats::page))
        .route("/console/feeds", get(feeds::page))
        .route("/console/ledger", get(ledger::page))
        .route("/console/advisories", get(advisories::page))
        .route(
            "/console/inquiries",
            get(inquiries::list).post(inquiries::open),
        )
        .route("/console/inquiries/{id}", get(inquiries::page))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route("/console/assets/favicon.svg", get(favicon))
        .layer(axum::middleware::map_response(security_headers))
        .layer(Extension(console))
}

/// Pages are private and never framed; scripts and styles come only from the console.
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

async fn favicon() -> Response {
    asset("image/svg+xml", FAVICON)
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// `GET /console/lang/{en|ja}?next=/console/...`: remembers the choice in a cookie.
async fn switch_lang(
    State(state): State<AppState>,
    Path(lang): Path<String>,
    Query(q): Query<NextQuery>,
) -> Response {
    let Some(lang) = Language::parse(&lang) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Only console paths, so that the link cannot send anyone elsewhere.
    let next = q
        .next
        .filter(|n| n.starts_with("/console/") && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/console/".into());
    let mut resp = Redirect::to(&next).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(
            LANG_COOKIE,
            lang.as_str(),
            Some(365 * 24 * 3600),
            session::secure(&state),
        ),
    );
    resp
}

/// The frame every page shares.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub t: BTreeMap<&'static str, &'static str>,
    pub nav: &'static str,
    /// This page's path with its query, for the language switch to come back to.
    pub path: String,
    /// The language switch link (comes back to this page).
    pub switch_href: String,
    pub signed_in: bool,
    pub member_name: String,
    pub role: &'static str,
    pub secretariat: bool,
    pub csrf: String,
}

impl Page {
    pub fn anonymous(lang: Language, path: &str) -> Page {
        Page {
            lang: lang.as_str(),
            other_lang: lang.other().as_str(),
            t: lang.table(),
            nav: "",
            path: path.to_string(),
            switch_href: format!(
                "/console/lang/{}?next={}",
                lang.other().as_str(),
                campaigns::url_encode(path)
            ),
            signed_in: false,
            member_name: String::new(),
            role: "",
            secretariat: false,
            csrf: String::new(),
        }
    }

    pub fn signed(signed: &Signed, nav: &'static str, path: &str) -> Page {
        let m = &signed.member;
        let role = match m.class {
            MemberClass::Secretariat => "role_secretariat",
            MemberClass::Class1 => "role_class1",
            MemberClass::Class2 => "role_class2",
            MemberClass::General => "role_general",
        };
        Page {
            nav,
            signed_in: true,
            member_name: m.name.clone(),
            role: signed.lang.t(role),
            secretariat: m.is_secretariat(),
            csrf: signed.session.csrf.clone(),
            ..Page::anonymous(signed.lang, path)
        }
    }
}

/// Renders a template; a template error is a bug, answered with a bare 500.
pub fn render(console: &Console, name: &str, ctx: impl Serialize) -> Response {
    let out = console
        .env
        .get_template(name)
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(ctx))));
    match out {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "Console template failed.");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A store failure on a page: logged, answered with a bare 500.
pub fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "Console page failed.");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// The "not found or not yours" page: the same for an absent and a hidden campaign.
pub fn not_found(signed: &Signed, path: &str) -> Response {
    let mut resp = render(
        &signed.console,
        "not_found.html",
        serde_json::json!({ "page": signed.page("campaigns", path) }),
    );
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

/// A time as the console shows it.
pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A TLP badge for templates.
#[derive(Debug, Clone, Serialize)]
pub struct Badge {
    pub label: &'static str,
    pub class: &'static str,
    /// The provider's sharing scope, where it narrows the TLP: shown beside the label on
    /// every report and campaign, as in every other output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
}

pub fn badge(tlp: Tlp) -> Badge {
    Badge {
        label: tlp.label(),
        class: svg::tlp_class(tlp),
        scope: None,
    }
}

/// The handling badge of a report or campaign: its TLP and its sharing scope.
pub fn handling(lang: Language, tlp: Tlp, scope: Option<crate::model::Scope>) -> Badge {
    Badge {
        scope: scope.map(|s| lang.t(s.as_str())),
        ..badge(tlp)
    }
}

/// The confidence as a short label key and class.
pub fn confidence(lang: Language, c: Confidence) -> serde_json::Value {
    serde_json::json!({ "label": lang.t(c.as_str()), "class": c.as_str() })
}

/// A campaign row as listings show it.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignRow {
    pub id: String,
    pub tlp: Badge,
    pub unconfirmed: bool,
    pub reports: usize,
    pub first_seen: String,
    pub last_seen: String,
    /// The flags' labels in the page's language.
    pub flags: Vec<&'static str>,
    pub title: String,
    pub disposition: Option<&'static str>,
    /// Review queue (secretariat): the proposed disposition's key and label, and why.
    pub suggested: Option<(&'static str, &'static str, String)>,
}

impl CampaignRow {
    pub fn of(
        view: &CampaignView,
        lang: Language,
        disposition: Option<&'static str>,
    ) -> CampaignRow {
        // The campaign's headline: its most recent visible report's title.
        let title = view
            .reports
            .iter()
            .max_by_key(|r| r.received_at)
            .map(|r| r.title.clone())
            .unwrap_or_default();
        CampaignRow {
            id: view.id.to_string(),
            tlp: handling(lang, view.tlp, view.scope),
            unconfirmed: view.unconfirmed,
            reports: view.report_count,
            first_seen: when(view.first_seen),
            last_seen: when(view.last_seen),
            flags: view.flags.iter().map(|f| f.name.label(lang)).collect(),
            title,
            disposition,
            suggested: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_render_in_both_languages() {
        let console = Console::new();
        for lang in [Language::En, Language::Ja] {
            let page = Page::anonymous(lang, "/console/");
            // Every template parses (Console::new); the pages that need only the frame render.
            for name in ["login.html", "not_found.html"] {
                let t = console.env.get_template(name).expect("template");
                t.render(minijinja::context! { page => minijinja::Value::from(minijinja::value::Serde(&page)) })
                    .unwrap_or_else(|e| panic!("{name} ({lang:?}): {e:#}"));
            }
        }
    }
}
