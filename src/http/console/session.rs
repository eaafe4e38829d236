//! Sign-in, sessions and CSRF protection.
//!
//! A member signs in by posting their token once; the console then keeps a server-side
//! session keyed by a random id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when
//! the console is served over https). The token never reaches a URL, a log or the browser's
//! storage.
//!
//! Sessions and login nonces live in the store ([`crate::council::SessionBook`], keyed by
//! the SHA-256 of the id or nonce), not in this process: any node behind a load balancer
//! serves any console request, and a restart signs nobody out. Reading a session is a store
//! read; its last-seen time is written at most once a minute ([`LIMITS`]), so a request
//! costs no durable write.
//!
//! A session holds no copy of the member: it records who signed in and the token generation
//! at that moment, and every request authenticates it again through the one authentication
//! path ([`crate::http::auth::authenticate`]): a suspension, an expulsion or a token
//! rotation ends it at once.
//!
//! Every form carries the session's CSRF token in a hidden field, checked on POST. The
//! token is derived from the session id (a SHA-256 of it under its own label), so it is
//! as unguessable as the id, never stored, and the same on every node. The sign-in form,
//! which has no session yet, carries a *login nonce* issued by the server: kept in the
//! store, single use, short-lived, and bound to the browser by a `SameSite=Strict` cookie
//! of the same value. A pair the server did not issue — such as one planted by an
//! attacker — is refused, and so is a POST a browser marks as cross-site.

use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::i18n::Text as _;
use super::{Console, Page, render};
use crate::council::read::Credential;
use crate::council::{SessionBook, SessionLimits, StoreError};
use crate::http::AppState;
use crate::http::auth::{self, Refused, Source};
use crate::model::{Language, Member, MemberId};

/// The session cookie.
pub const SESSION_COOKIE: &str = "musubi_session";
/// The cookie binding a login nonce to the browser it was issued to.
pub const LOGIN_NONCE_COOKIE: &str = "musubi_login";
/// How long sessions and nonces live, and how many are kept.
pub const LIMITS: SessionLimits = SessionLimits {
    // A session ends after this long without a request...
    idle: Duration::from_secs(8 * 3600),
    // ... and after this long in any case.
    absolute: Duration::from_secs(24 * 3600),
    // Sessions kept at most (the longest idle go first).
    max_sessions: 10_000,
    // The last-seen time is written when older than this (the idle limit is exact to it).
    touch_after: Duration::from_secs(60),
    // A login nonce is good for this long after the form was served.
    nonce_life: Duration::from_secs(15 * 60),
    // Login nonces kept at most (the oldest go first).
    max_nonces: 10_000,
};

/// One signed-in browser: who signed in and under which token generation. No copy of the
/// member: it is loaded (and checked) again on every request.
#[derive(Debug, Clone)]
pub struct Session {
    pub member: MemberId,
    pub generation: u64,
    pub csrf: String,
}

/// The console's sessions and nonces in the store.
fn book(state: &AppState) -> SessionBook {
    state.store.sessions(LIMITS)
}

/// The CSRF token of a session: derived from its id, so nothing needs storing and every
/// node computes the same.
fn csrf_of(session_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"musubi console csrf\0");
    h.update(session_id.as_bytes());
    hex::encode(h.finalize())
}

/// The answer when the store cannot keep a session or nonce: 503 when it cannot take
/// writes (read-only or full disk), else 500.
fn store_failed(e: StoreError) -> Response {
    if e.is_storage_unavailable() {
        tracing::error!(error = %e, "Console sign-in could not write to the store.");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store cannot take writes now; sign-in is unavailable",
        )
            .into_response()
    } else {
        super::internal(e)
    }
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
        let stored = book(state)
            .find(&id, Utc::now())
            .await
            .map_err(super::internal)?
            .ok_or_else(|| to_login(secure))?;
        let session = Session {
            member: stored.member,
            generation: stored.generation,
            csrf: csrf_of(&id),
        };
        let credential = Credential::Session {
            member: session.member.clone(),
            generation: session.generation,
        };
        let member = match auth::authenticate(state, credential, &Source::of(parts)).await {
            Ok(p) => p.member,
            Err(Refused::Unauthorized) => {
                // Suspended, expelled, or the token rotated: the session is over for good.
                if let Err(e) = book(state).end(&id).await {
                    tracing::warn!(error = %e, "Could not delete an ended console session.");
                }
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
    login_page(&state, &console, Language::from_headers(&headers), None).await
}

async fn login_page(
    state: &AppState,
    console: &Console,
    lang: Language,
    error: Option<&'static str>,
) -> Response {
    let nonce = match book(state).issue_nonce(Utc::now()).await {
        Ok(n) => n,
        Err(e) => return store_failed(e),
    };
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
            Some(LIMITS.nonce_life.as_secs()),
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
    source: Source,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let lang = Language::from_headers(&headers);
    let Ok(Form(form)) = form else {
        return login_page(&state, &console, lang, Some("form_expired")).await;
    };
    // The nonce must be the one this browser was given with the form (cookie), and one the
    // server issued and nobody used yet (taken, so a second use fails). The checks that
    // need no store come first, so a forged post costs no write.
    let bound = cookie(&headers, LOGIN_NONCE_COOKIE).unwrap_or_default();
    if bound.is_empty() || !same_secret(&form.csrf, &bound) || cross_site(&headers) {
        return login_page(&state, &console, lang, Some("form_expired")).await;
    }
    match book(&state).take_nonce(&form.csrf, Utc::now()).await {
        Ok(true) => {}
        Ok(false) => return login_page(&state, &console, lang, Some("form_expired")).await,
        Err(e) => return store_failed(e),
    }
    let token = form.token.trim();
    if token.is_empty() || token.len() > 200 {
        return login_page(&state, &console, lang, Some("sign_in_failed")).await;
    }
    let secure = secure(&state);
    match auth::authenticate(&state, Credential::Token(token.to_string()), &source).await {
        Ok(principal) => {
            let opened = book(&state)
                .open(&principal.member.id, principal.generation, Utc::now())
                .await;
            let id = match opened {
                Ok(id) => id,
                Err(e) => return store_failed(e),
            };
            tracing::info!(member = %principal.member.id, "Console sign-in.");
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
        Err(Refused::Unauthorized) => {
            login_page(&state, &console, lang, Some("sign_in_failed")).await
        }
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
    if form.is_ok_and(|Form(f)| signed.csrf_ok(&f.csrf))
        && let Err(e) = book(&state).end(&signed.session_id).await
    {
        // The cookie goes anyway; the row expires with its idle limit.
        tracing::error!(error = %e, "Could not delete a console session at sign-out.");
    }
    to_login(secure(&state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_are_per_session_and_not_the_id() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        assert_eq!(csrf_of(&a), csrf_of(&a), "every node derives the same");
        assert_ne!(csrf_of(&a), csrf_of(&b));
        assert_ne!(csrf_of(&a), a);
        assert_eq!(csrf_of(&a).len(), 64);
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
