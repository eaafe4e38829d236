//! Sign-in, sessions and CSRF protection.
//!
//! A member signs in by posting their token once; the console then keeps a server-side
//! session keyed by a random id in an `HttpOnly`, `SameSite=Strict` cookie. The token never
//! reaches a URL, a log or the browser's storage. Every form carries the session's CSRF
//! token in a hidden field, checked on POST; the sign-in form itself, which has no session
//! yet, uses a double-submit cookie.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::i18n::Lang;
use super::{Console, Page, render};
use crate::http::AppState;
use crate::model::Member;

/// The session cookie.
pub const SESSION_COOKIE: &str = "musubi_session";
/// The sign-in form's double-submit cookie.
pub const LOGIN_CSRF_COOKIE: &str = "musubi_login_csrf";
/// A session ends after this long without a request.
const IDLE: Duration = Duration::from_secs(8 * 3600);
/// ... and after this long in any case.
const ABSOLUTE: Duration = Duration::from_secs(24 * 3600);
/// Sessions kept at most (the oldest idle ones go first).
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub member: Member,
    pub csrf: String,
    created: Instant,
    last: Instant,
}

/// The in-memory session table. Sessions do not survive a restart: analysts sign in again.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for the member; returns its id.
    pub fn create(&self, member: Member) -> String {
        let id = random_hex();
        let now = Instant::now();
        let mut map = self.map.lock().expect("sessions poisoned");
        map.retain(|_, s| fresh(s, now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                member,
                csrf: random_hex(),
                created: now,
                last: now,
            },
        );
        id
    }

    /// The live session with this id (touching it).
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.map.lock().expect("sessions poisoned");
        match map.get_mut(id) {
            Some(s) if fresh(s, now) => {
                s.last = now;
                Some(s.clone())
            }
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.map.lock().expect("sessions poisoned").remove(id);
    }
}

fn fresh(s: &Session, now: Instant) -> bool {
    now.duration_since(s.last) < IDLE && now.duration_since(s.created) < ABSOLUTE
}

/// 32 random bytes, hex.
pub fn random_hex() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares secrets without an early exit.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// A `Set-Cookie` value for the console's cookies.
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict{age}"
    ))
    .expect("cookie values are hex or fixed words")
}

/// The signed-in member behind a console request. Without a session the request is sent
/// to the sign-in page.
pub struct Signed {
    pub session_id: String,
    pub session: Session,
    pub lang: Lang,
    pub console: Arc<Console>,
}

impl Signed {
    pub fn viewer(&self) -> crate::council::Viewer {
        crate::council::Viewer::of(&self.session.member)
    }

    pub fn is_secretariat(&self) -> bool {
        self.session.member.is_secretariat()
    }

    /// Whether a posted CSRF token is this session's.
    pub fn csrf_ok(&self, posted: &str) -> bool {
        same_secret(posted, &self.session.csrf)
    }

    /// The common frame of every page.
    pub fn page(&self, nav: &'static str, path: &str) -> Page {
        Page::signed(self, nav, path)
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Response> {
        let console = parts
            .extensions
            .get::<Arc<Console>>()
            .cloned()
            .ok_or_else(|| axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let lang = Lang::from_headers(&parts.headers);
        let id = cookie(&parts.headers, SESSION_COOKIE)
            .ok_or_else(|| Redirect::to("/console/login").into_response())?;
        let session = console
            .sessions
            .get(&id)
            .ok_or_else(|| Redirect::to("/console/login").into_response())?;
        Ok(Signed {
            session_id: id,
            session,
            lang,
            console,
        })
    }
}

/// `GET /console/login`: the sign-in form (with a fresh double-submit token).
pub async fn login_form(
    axum::Extension(console): axum::Extension<Arc<Console>>,
    headers: HeaderMap,
) -> Response {
    login_page(&console, Lang::from_headers(&headers), None)
}

fn login_page(console: &Console, lang: Lang, error: Option<&'static str>) -> Response {
    let csrf = random_hex();
    let mut page = Page::anonymous(lang, "/console/login");
    page.csrf = csrf.clone();
    let mut resp = render(
        console,
        "login.html",
        serde_json::json!({ "page": page, "error": error.map(|k| lang.t(k)) }),
    );
    if error.is_some() {
        *resp.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
    }
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, &csrf, Some(3600)),
    );
    resp
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    csrf: String,
}

/// `POST /console/login`: checks the token and opens a session.
pub async fn login(
    State(state): State<AppState>,
    axum::Extension(console): axum::Extension<Arc<Console>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let Ok(Form(form)) = form else {
        return login_page(&console, lang, Some("form_expired"));
    };
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, &expected) {
        return login_page(&console, lang, Some("form_expired"));
    }
    let token = form.token.trim().to_string();
    if token.is_empty() || token.len() > 200 {
        return login_page(&console, lang, Some("sign_in_failed"));
    }
    let member = state
        .store
        .read_async(move |conn| crate::store::members::by_token(conn, &token))
        .await;
    match member {
        Ok(Some(member)) => {
            tracing::info!(member = %member.id, "Console sign-in.");
            let id = console.sessions.create(member);
            let mut resp = Redirect::to("/console/").into_response();
            let h = resp.headers_mut();
            h.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &id, None));
            h.append(
                header::SET_COOKIE,
                set_cookie(LOGIN_CSRF_COOKIE, "", Some(0)),
            );
            resp
        }
        Ok(None) => login_page(&console, lang, Some("sign_in_failed")),
        Err(e) => {
            tracing::error!(error = %e, "Console sign-in could not read the store.");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /console/logout`.
pub async fn logout(signed: Signed, form: Result<Form<CsrfForm>, FormRejection>) -> Response {
    if form.is_ok_and(|Form(f)| signed.csrf_ok(&f.csrf)) {
        signed.console.sessions.remove(&signed.session_id);
    }
    let mut resp = Redirect::to("/console/login").into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0)));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Category, MemberClass, MemberId};

    fn member() -> Member {
        Member {
            id: MemberId("m001".into()),
            name: "x".into(),
            category: Category::Other,
            sector: None,
            class: MemberClass::General,
        }
    }

    #[test]
    fn sessions_are_random_and_removable() {
        let s = Sessions::default();
        let a = s.create(member());
        let b = s.create(member());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.get(&a).is_some());
        assert_ne!(s.get(&a).unwrap().csrf, s.get(&b).unwrap().csrf);
        s.remove(&a);
        assert!(s.get(&a).is_none());
        assert!(s.get("nope").is_none());
    }

    #[test]
    fn cookies_parse_and_secrets_compare() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; musubi_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
