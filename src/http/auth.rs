//! Authentication: one path for every credential — `Authorization: Bearer <token>` on the
//! API, HTTP Basic (the token as password) or Bearer on TAXII, and the console's session.
//!
//! [`authenticate`] asks the read path for the member *as stored now* on every request:
//! the token must be live, a session's token generation still the member's, and the member
//! approved. A suspension, an expulsion or a token rotation therefore takes effect on the
//! very next request of every kind, and no handler holds a member copied at sign-in. The
//! same call charges the member's request budget ([`super::limit`]), so the API, TAXII and
//! the console share one rate limit, and counts failed tokens per [`Source`] over every
//! node, so that guessing is bounded however many nodes serve the council.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use base64::Engine as _;

use super::error::AppError;
use super::limit::FAILURES_PER_WINDOW;
use super::state::AppState;
use crate::council::Viewer;
use crate::council::read::{Credential, Principal};
use crate::model::Member;

/// Longest token accepted (tokens are 68 characters; anything much longer is garbage).
const MAX_TOKEN: usize = 200;

/// Why a request was not let in.
#[derive(Debug)]
pub enum Refused {
    /// No credential, or one that is unknown, revoked, outdated, or of a member who is not
    /// approved — all the same answer.
    Unauthorized,
    /// The member's request budget is spent.
    RateLimited { retry_after_secs: u64 },
    /// The store could not be read.
    Store(crate::council::StoreError),
}

impl From<Refused> for AppError {
    fn from(r: Refused) -> AppError {
        match r {
            Refused::Unauthorized => AppError::unauthorized(),
            Refused::RateLimited { retry_after_secs } => AppError::RateLimited { retry_after_secs },
            Refused::Store(e) => e.into(),
        }
    }
}

/// Where a request comes from, as the guard against token guessing counts it
/// ([`super::limit::CredentialGuard`]): the peer's address, an IPv6 peer by its /64 (what
/// one subscriber holds). `unknown` when the server was started without peer addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source(pub String);

impl Source {
    pub fn of(parts: &Parts) -> Source {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Source(match peer.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            None => "unknown".into(),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Source::of(parts))
    }
}

/// THE authentication of a request, whatever carried the credential: the member as stored
/// now, checked for status and token generation, with one request taken from its budget.
/// A token from a source that has used up its failed tries is refused unchecked; a token
/// that fails is counted against its source.
pub async fn authenticate(
    state: &AppState,
    credential: Credential,
    source: &Source,
) -> Result<Principal, Refused> {
    let guard = &state.limiter.guard;
    let now = chrono::Utc::now().timestamp();
    let token = match &credential {
        Credential::Token(t) => Some(t.clone()),
        Credential::Session { .. } => None,
    };
    if token.is_some()
        && let Some(window) = guard.unsynced(now)
    {
        match state
            .store
            .failures()
            .over_limit(window, FAILURES_PER_WINDOW)
            .await
        {
            Ok(blocked) => guard.flushed(window, blocked),
            Err(e) => tracing::warn!(error = %e, "Could not read failed tokens from the store."),
        }
    }
    if let Some(t) = &token
        && let Some(retry_after_secs) = guard.refuses(&source.0, t, now)
    {
        return Err(Refused::RateLimited { retry_after_secs });
    }
    let found = state
        .read
        .authenticate(credential)
        .await
        .map_err(Refused::Store)?;
    let principal = match (found, &token) {
        (Some(p), _) => p,
        (None, Some(_)) => {
            count_failure(state, source, now).await;
            return Err(Refused::Unauthorized);
        }
        (None, None) => return Err(Refused::Unauthorized),
    };
    if let Some(t) = &token {
        guard.passed(t);
    }
    if let Err(wait) = state.limiter.check(&principal.member.id) {
        return Err(Refused::RateLimited {
            retry_after_secs: wait.ceil().max(1.0) as u64,
        });
    }
    Ok(principal)
}

/// Counts a failed token against its source, adding this node's counts to the store when
/// due and learning which sources are blocked over every node. A store that cannot take
/// them keeps them for the next time (this node still counts its own).
async fn count_failure(state: &AppState, source: &Source, now: i64) {
    let guard = &state.limiter.guard;
    let Some((window, batch)) = guard.failed(&source.0, now) else {
        return;
    };
    match state
        .store
        .failures()
        .count_failures(window, batch.clone(), FAILURES_PER_WINDOW)
        .await
    {
        Ok(blocked) => guard.flushed(window, blocked),
        Err(e) => {
            tracing::warn!(error = %e, "Could not record failed tokens in the store.");
            guard.unflushed((window, batch));
        }
    }
}

/// A plausible token, trimmed.
fn token(t: &str) -> Option<Credential> {
    let t = t.trim();
    (!t.is_empty() && t.len() <= MAX_TOKEN).then(|| Credential::Token(t.to_string()))
}

/// The token of an `Authorization: Bearer` header value.
pub fn bearer(header: &str) -> Option<Credential> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(())?;
    token(rest)
}

/// The token of an `Authorization: Basic` header value: the password (any user name).
pub fn basic(header: &str) -> Option<Credential> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("basic").then_some(())?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    token(text.split_once(':')?.1)
}

/// The `Authorization` header's value, if it is text.
pub fn authorization(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
}

/// The authenticated member behind an API request (Bearer token).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub member: Member,
}

impl Authenticated {
    pub fn viewer(&self) -> Viewer {
        Viewer::of(&self.member)
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let credential = authorization(parts)
            .and_then(bearer)
            .ok_or_else(AppError::unauthorized)?;
        let principal = authenticate(state, credential, &Source::of(parts)).await?;
        Ok(Authenticated {
            member: principal.member,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<Credential> {
        Some(Credential::Token(s.into()))
    }

    #[test]
    fn credentials_parse() {
        assert_eq!(bearer("Bearer msb_1"), t("msb_1"));
        assert_eq!(bearer("bearer  msb_1 "), t("msb_1"));
        assert_eq!(bearer("Basic msb_1"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer(&format!("Bearer {}", "x".repeat(201))), None);
        // "member:msb_1"
        assert_eq!(basic("Basic bWVtYmVyOm1zYl8x"), t("msb_1"));
        assert_eq!(basic("Basic !!"), None);
        assert_eq!(basic("Bearer bWVtYmVyOm1zYl8x"), None);
    }
}
