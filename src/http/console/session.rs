//! Sign-in, sessions and CSRF protection.
//!
//! A member signs in by posting their token once; the console then keeps a server-side
//! session keyed by a random id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when
//! the console is served over https). The token never reaches a URL, a log or the browser's
//! storage.
//!
//! A session holds no copy of the member: it records who signed in and the token generation
//! at that moment, and every request authenticates it again through the one authentication
//! path ([`crate::http::auth::authenticate`]): a suspension, an expulsion or a token
//! rotation ends it at once.
//!
//! Every form carries the session's CSRF token in a hidden field, checked on POST. The
//! sign-in form, which has no session yet, carries a *login nonce* issued by the server:
//! kept server-side, single use, short-lived, and bound to the browser by a `SameSite=Strict`
//! cookie of the same value. A pair the server did not issue — such as one planted by an
//! attacker — is refused, and so is a POST a browser marks as cross-site.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::i18n::Text as _;
use super::{Console, Page, render};
use crate::council::read::{Credential, Principal};
use crate::http::AppState;
use crate::http::auth::{self, Refused};
use crate::model::{Language, Member, MemberId};

/// The session cookie.
pub const SESSION_COOKIE: &str = "musubi_session";
/// The cookie binding a login nonce to the browser it was issued to.
pub const LOGIN_NONCE_COOKIE: &str = "musubi_login";
/// A session ends after this long without a request.
const IDLE: Duration = Duration::from_secs(8 * 3600);
/// ... and after this long in any case.
const ABSOLUTE: Duration = Duration::from_secs(24 * 3600);
/// Sessions kept at most (the oldest idle ones go first).
const MAX_SESSIONS: usize = 10_000;
/// A login nonce is good for this long after the form was served.
const NONCE_LIFE: Duration = Duration::from_secs(15 * 60);
/// Login nonces kept at most (the oldest go first).
const MAX_NONCES: usize = 10_000;

/// One signed-in browser: who signed in and under which token generation. No copy of the
/// member: it is loaded (and checked) again on every request.
#[derive(Debug, Clone)]
pub struct Session {
    pub member: MemberId,
    pub generation: u64,
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
    /// A new session for the member who just authenticated; returns its id.
    pub fn create(&self, principal: &Principal) -> String {
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
                member: principal.member.id.clone(),
                generation: principal.generation,
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

/// Login nonces the server issued and that are still unused, with their time of issue.
#[derive(Default)]
pub struct LoginNonces {
    map: Mutex<HashMap<String, Instant>>,
}

impl LoginNonces {
    /// A fresh nonce for one sign-in form.
    pub fn issue(&self) -> String {
        let nonce = random_hex();
        let now = Instant::now();
        let mut map = self.map.lock().expect("login nonces poisoned");
        map.retain(|_, at| now.duration_since(*at) < NONCE_LIFE);
        if map.len() >= MAX_NONCES
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(nonce.clone(), now);
        nonce
    }

    /// Uses up the nonce: true once, if the server issued it less than [`NONCE_LIFE`] ago.
    pub fn take(&self, nonce: &str) -> bool {
        let mut map = self.map.lock().expect("login nonces poisoned");
        map.remove(nonce)
            .is_some_and(|at| at.elapsed() < NONCE_LIFE)
    }
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

/// A `Set-Cookie` value for the console's cookies; `secure` adds the `Secure` flag (see
/// [`secure`]).
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict{age}{secure}"
    ))
    .expect("cookie values are hex or fixed words")
}

/// Whether the console's cookies are `Secure`: when members reach it over https
/// (`server.public_url`), so that a session cookie never travels in clear text.
pub fn secure(state: &AppState) -> bool {
    state
        .config
        .public_url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// The signed-in member behind a console request, authenticated again for this request.
/// Without a valid session the request is sent to the sign-in page.
pub struct Signed {
    pub session_id: String,
    pub session: Session,
    /// The member as stored now (class and name current).
    pub member: Member,
    pub lang: Language,
    pub console: Arc<Console>,
}

impl Signed {
    pub fn viewer(&self) -> crate::council::Viewer {
        crate::council::Viewer::of(&self.member)
    }

    pub fn is_secretariat(&self) -> bool {
        self.member.is_secretariat()
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

/// To the sign-in page, dropping the session cookie.
fn to_login(secure: bool) -> Response {
    let mut resp = Redirect::to("/console/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", Some(0), secure),
    );
    resp
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let console = parts
            .extensions
            .get::<Arc<Console>>()
            .cloned()
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let lang = Language::from_headers(&parts.headers);
        let secure = secure(state);
        let id = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(|| to_login(secure))?;
        let session = console.sessions.get(&id).ok_or_else(|| to_login(secure))?;
        let credential = Credential::Session {
            member: session.member.clone(),
            generation: session.generation,
        };
        let member = match auth::authenticate(state, credential).await {
            Ok(p) => p.member,
            Err(Refused::Unauthorized) => {
                // Suspended, expelled, or the token rotated: the session is over for good.
                console.sessions.remove(&id);
                return Err(to_login(secure));
            }
            Err(Refused::RateLimited { retry_after_secs }) => {
                return Err((
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, retry_after_secs.to_string())],
                    "too many requests; slow down",
                )
                    .into_response());
            }
            Err(Refused::Store(e)) => return Err(super::internal(e)),
        };
        Ok(Signed {
            session_id: id,
            session,
            member,
            lang,
            console,
        })
    }
}

/// `GET /console/login`: the sign-in form, with a fresh login nonce.
pub async fn login_form(
    State(state): State<AppState>,
    axum::Extension(console): axum::Extension<Arc<Console>>,
    headers: HeaderMap,
) -> Response {
    login_page(&state, &console, Language::from_headers(&headers), None)
}

fn login_page(
    state: &AppState,
    console: &Console,
    lang: Language,
    error: Option<&'static str>,
) -> Response {
    let nonce = console.nonces.issue();
    let mut page = Page::anonymous(lang, "/console/login");
    page.csrf = nonce.clone();
    let mut resp = render(
        console,
        "login.html",
        serde_json::json!({ "page": page, "error": error.map(|k| lang.t(k)) }),
    );
    if error.is_some() {
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
    }
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_NONCE_COOKIE,
            &nonce,
            Some(NONCE_LIFE.as_secs()),
            secure(state),
        ),
    );
    resp
}

/// Whether the browser says the request comes from another site (`Sec-Fetch-Site`), as a
/// forged sign-in form would.
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    csrf: String,
}

/// `POST /console/login`: checks the login nonce and the token, and opens a session.
pub async fn login(
    State(state): State<AppState>,
    axum::Extension(console): axum::Extension<Arc<Console>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let lang = Language::from_headers(&headers);
    let Ok(Form(form)) = form else {
        return login_page(&state, &console, lang, Some("form_expired"));
    };
    // The nonce must be the one this browser was given with the form (cookie), and one the
    // server issued and nobody used yet (taken, so a second use fails).
    let bound = cookie(&headers, LOGIN_NONCE_COOKIE).unwrap_or_default();
    let issued = console.nonces.take(&form.csrf);
    if !issued || bound.is_empty() || !same_secret(&form.csrf, &bound) || cross_site(&headers) {
        return login_page(&state, &console, lang, Some("form_expired"));
    }
    let token = form.token.trim();
    if token.is_empty() || token.len() > 200 {
        return login_page(&state, &console, lang, Some("sign_in_failed"));
    }
    let secure = secure(&state);
    match auth::authenticate(&state, Credential::Token(token.to_string())).await {
        Ok(principal) => {
            tracing::info!(member = %principal.member.id, "Console sign-in.");
            let id = console.sessions.create(&principal);
            let mut resp = Redirect::to("/console/").into_response();
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, &id, None, secure),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(LOGIN_NONCE_COOKIE, "", Some(0), secure),
            );
            resp
        }
        Err(Refused::Unauthorized) => login_page(&state, &console, lang, Some("sign_in_failed")),
        Err(Refused::RateLimited { retry_after_secs }) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after_secs.to_string())],
            "too many requests; slow down",
        )
            .into_response(),
        Err(Refused::Store(e)) => {
            tracing::error!(error = %e, "Console sign-in could not read the store.");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /console/logout`.
pub async fn logout(
    State(state): State<AppState>,
    signed: Signed,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if form.is_ok_and(|Form(f)| signed.csrf_ok(&f.csrf)) {
        signed.console.sessions.remove(&signed.session_id);
    }
    to_login(secure(&state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Category, MemberClass};

    fn principal() -> Principal {
        Principal {
            member: Member {
                id: MemberId("m001".into()),
                name: "x".into(),
                category: Category::Other,
                sector: None,
                class: MemberClass::General,
            },
            generation: 3,
        }
    }

    #[test]
    fn sessions_are_random_and_removable() {
        let s = Sessions::default();
        let a = s.create(&principal());
        let b = s.create(&principal());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.get(&a).is_some());
        assert_eq!(s.get(&a).unwrap().generation, 3);
        assert_ne!(s.get(&a).unwrap().csrf, s.get(&b).unwrap().csrf);
        s.remove(&a);
        assert!(s.get(&a).is_none());
        assert!(s.get("nope").is_none());
    }

    #[test]
    fn login_nonces_are_single_use_and_only_the_servers() {
        let n = LoginNonces::default();
        let a = n.issue();
        assert!(!n.take(&"a".repeat(64)), "a nonce the server never issued");
        assert!(n.take(&a));
        assert!(!n.take(&a), "single use");
    }

    #[test]
    fn cookies_are_secure_on_request() {
        let plain = set_cookie(SESSION_COOKIE, "abc", None, false);
        assert!(!plain.to_str().unwrap().contains("Secure"));
        let secure = set_cookie(SESSION_COOKIE, "abc", Some(0), true);
        assert_eq!(
            secure.to_str().unwrap(),
            "musubi_session=abc; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
        );
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
