//! The feed fetcher and scheduler.
//!
//! [`poll`] is one attempt at one feed: conditional GET (ETag / Last-Modified), a timeout
//! over the whole request, a body cap enforced while streaming, gzip (transfer encoding and
//! `.gz` files), `file://` feeds, and parsing on the blocking pool. It is pure with respect
//! to state: it takes the feed's [`FeedState`] and returns the next one, which the caller
//! persists (`store::feeds::save_state`).
//!
//! [`run_scheduler`] runs one task per feed, so a slow, hanging or broken feed never delays
//! the others; each task sleeps until the feed's next cron time (or the end of its backoff,
//! whichever is later), polls, and hands the outcome to the sink.
//!
//! Re-polling never duplicates: drafts carry their `external_id`, and the store dedups feed
//! items by (feed, external_id) and by content hash.
//!
//! Where a fetch may go is guarded ([`FeedClient`]): at most [`MAX_REDIRECTS`] redirects,
//! never from https to http, and never to loopback, private, link-local, unspecified or
//! multicast addresses — checked on literal addresses in URLs and on what names resolve to —
//! unless the feed says `allow_private = true`. URLs in every error, log line and stored
//! state are redacted (`model::redact`).

use std::collections::HashMap;
use std::future::Future;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{
    ETAG, HeaderMap, HeaderName, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use tokio::sync::watch;

use crate::config::feeds::{FeedConfig, FeedProtocol, FeedUrl};
use crate::formats::{self, Format, FormatError, ParseContext, Parsed};
use crate::model::redact::{redact_text, redact_url};

/// First retry delay after a failure; doubles with each further failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(60);
/// Longest delay between attempts of a failing feed.
pub const BACKOFF_MAX: Duration = Duration::from_secs(6 * 3600);
/// Events fetched per poll of a MISP feed (the rest follow on the next poll).
pub const MISP_EVENTS_PER_POLL: usize = 200;
/// Redirects followed per request; feeds that need more are misconfigured.
pub const MAX_REDIRECTS: usize = 5;

pub use crate::store::feeds::FeedState;

mod paged;
pub use paged::{
    CSAF_DOCUMENTS_PER_POLL, NVD_PAGES_PER_POLL, NVD_REQUESTS_WITH_KEY, NVD_REQUESTS_WITHOUT_KEY,
    NVD_WINDOW, nvd_interval,
};

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    #[error("feed {feed}: request to {url} failed: {message}")]
    Request {
        feed: String,
        url: String,
        message: String,
    },
    #[error("feed {feed}: {url} answered http status {status}")]
    Status {
        feed: String,
        url: String,
        status: u16,
    },
    #[error("feed {feed}: no complete answer within the timeout of {}s", timeout.as_secs_f64())]
    Timeout { feed: String, timeout: Duration },
    #[error(
        "feed {feed}: body exceeds max_bytes ({max_bytes} bytes); raise max_bytes in feeds.toml if the feed really is this large"
    )]
    TooLarge { feed: String, max_bytes: u64 },
    #[error("feed {feed}: cannot read {path}: {message}")]
    File {
        feed: String,
        path: String,
        message: String,
    },
    #[error(
        "feed {feed}: environment variable {var} (header {header}) is not set or not a valid header value"
    )]
    MissingEnv {
        feed: String,
        header: String,
        var: String,
    },
    /// The fetch (or one of its redirects) would have gone where feeds may not go.
    #[error("feed {feed}: refused to fetch {target}: {reason}")]
    Refused {
        feed: String,
        /// The refused URL or host, redacted.
        target: String,
        reason: String,
    },
    #[error("feed {feed}: {source}")]
    Format {
        feed: String,
        #[source]
        source: FormatError,
    },
}

/// The result of one poll and the state to persist.
#[derive(Debug)]
pub struct PollOutcome {
    pub state: FeedState,
    /// `Ok(None)`: not modified since the last poll (HTTP 304, unchanged file).
    pub result: Result<Option<Parsed>, FeedError>,
    /// For a member's MISP feed, the member (id or name, as configured): the reports are
    /// stored as that member's submissions, not as feed items.
    pub member: Option<String>,
}

/// Installs the ring TLS provider for rustls (reqwest is built without one); ignores
/// "already installed", so every entry point may call it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Whether feeds may reach `ip` only with `allow_private = true`: loopback, private
/// (RFC 1918, CGNAT, ULA), link-local, unspecified, multicast, broadcast and reserved
/// addresses, including IPv4 addresses mapped into IPv6.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] & 0xffc0) == 0xfec0
        }
    }
}

/// Why the guard refused a target; travels inside reqwest's error and is turned into
/// [`FeedError::Refused`].
#[derive(Debug)]
pub(super) struct TargetRefused {
    /// Redacted URL or host name.
    pub(super) target: String,
    pub(super) reason: String,
}

impl std::fmt::Display for TargetRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused to fetch {}: {}", self.target, self.reason)
    }
}

impl std::error::Error for TargetRefused {}

const PRIVATE_HINT: &str = "set allow_private = true in feeds.toml if this feed really is internal";

/// Refuses a URL whose host is a literal internal address (names are checked by
/// [`GuardedResolver`] when they are resolved).
pub(super) fn check_literal(url: &url::Url) -> Result<(), TargetRefused> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if is_internal(ip) {
        return Err(TargetRefused {
            target: redact_url(url.as_str()),
            reason: format!(
                "{ip} is a loopback, private, link-local or reserved address; {PRIVATE_HINT}"
            ),
        });
    }
    Ok(())
}

/// The redirect rule: at most [`MAX_REDIRECTS`], http(s) only, no https→http downgrade,
/// and no literal internal address unless `allow_private`.
fn redirect_policy(allow_private: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let target = redact_url(attempt.url().as_str());
        let refuse = |reason: String| TargetRefused {
            target: target.clone(),
            reason,
        };
        if attempt.previous().len() > MAX_REDIRECTS {
            let e = refuse(format!("too many redirects (more than {MAX_REDIRECTS})"));
            return attempt.error(e);
        }
        let from_https = attempt
            .previous()
            .last()
            .is_some_and(|p| p.scheme() == "https");
        let e = match attempt.url().scheme() {
            "https" => None,
            "http" if from_https => Some(refuse("redirect from https to http".into())),
            "http" => None,
            other => Some(refuse(format!("redirect to scheme {other:?}"))),
        };
        if let Some(e) = e {
            return attempt.error(e);
        }
        if !allow_private && let Err(e) = check_literal(attempt.url()) {
            return attempt.error(e);
        }
        attempt.follow()
    })
}

/// Resolves names with the system resolver and drops internal addresses, so that a public
/// name pointing at `127.0.0.1` (or rebinding to it) is refused, for the feed's own URL and
/// for every redirect alike.
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (internal, public): (Vec<SocketAddr>, Vec<SocketAddr>) =
                all.into_iter().partition(|a| is_internal(a.ip()));
            if public.is_empty() {
                let reason = match internal.first() {
                    Some(a) => format!(
                        "{host} resolves to {}, a loopback, private, link-local or reserved address; {PRIVATE_HINT}",
                        a.ip()
                    ),
                    None => format!("{host} resolves to no address"),
                };
                return Err(Box::new(TargetRefused {
                    target: host,
                    reason,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP clients feeds share (connection pools, gzip, user agent): one guarded, for
/// every feed, and one for the feeds that opted in with `allow_private = true`.
#[derive(Clone)]
pub struct FeedClient {
    guarded: reqwest::Client,
    private: reqwest::Client,
}

impl FeedClient {
    pub(super) fn for_feed(&self, feed: &FeedConfig) -> &reqwest::Client {
        if feed.allow_private {
            &self.private
        } else {
            &self.guarded
        }
    }
}

/// The clients feeds share.
pub fn build_client() -> reqwest::Result<FeedClient> {
    build_client_pinned(&[])
}

/// [`build_client`] with names pinned to addresses, like `/etc/hosts` entries the operator
/// wrote: a pinned name is trusted as given and not resolved (tests use it to give a
/// loopback server a public-looking name, and check what its redirects may reach).
pub fn build_client_pinned(pins: &[(&str, SocketAddr)]) -> reqwest::Result<FeedClient> {
    install_crypto_provider();
    let builder = |allow_private: bool| {
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("musubi/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .redirect(redirect_policy(allow_private));
        if !allow_private {
            b = b.dns_resolver(GuardedResolver);
        }
        for (name, addr) in pins {
            b = b.resolve(name, *addr);
        }
        b.build()
    };
    Ok(FeedClient {
        guarded: builder(false)?,
        private: builder(true)?,
    })
}

/// The delay before the next attempt after `failures` consecutive failures: exponential
/// from [`BACKOFF_BASE`] up to [`BACKOFF_MAX`], with ±20 % jitter so that feeds failing
/// together (a network outage) do not retry in lockstep.
pub fn backoff_delay(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let base = BACKOFF_BASE.saturating_mul(1u32 << exp).min(BACKOFF_MAX);
    let jitter = rand::rng().random_range(0.8..1.2);
    base.mul_f64(jitter).min(BACKOFF_MAX)
}

pub(super) struct Fetched {
    pub(super) body: Option<Vec<u8>>,
    pub(super) etag: Option<String>,
    pub(super) last_modified: Option<String>,
}

pub(super) fn resolve_headers(feed: &FeedConfig) -> Result<HeaderMap, FeedError> {
    let mut map = HeaderMap::new();
    for h in &feed.headers {
        let missing = || FeedError::MissingEnv {
            feed: feed.name.clone(),
            header: h.name.clone(),
            var: h.env_var.clone(),
        };
        let value = std::env::var(&h.env_var).map_err(|_| missing())?;
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| missing())?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| missing())?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// A request error as a [`FeedError`]: the guard's refusal when it caused it, else the whole
/// error chain; URLs redacted either way.
pub(super) fn request_error(feed: &FeedConfig, url: &str, e: &reqwest::Error) -> FeedError {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = src {
        if let Some(r) = c.downcast_ref::<TargetRefused>() {
            return FeedError::Refused {
                feed: feed.name.clone(),
                target: r.target.clone(),
                reason: r.reason.clone(),
            };
        }
        src = c.source();
    }
    FeedError::Request {
        feed: feed.name.clone(),
        url: redact_url(url),
        message: redact_text(&error_chain(e)),
    }
}

async fn fetch_http(
    client: &FeedClient,
    feed: &FeedConfig,
    url: &str,
    etag: Option<&str>,
    last_modified: Option<&str>,
) -> Result<Fetched, FeedError> {
    fetch_http_as(client, feed, url, etag, last_modified, true).await
}

/// [`fetch_http`], with the feed's headers (its credentials) only if `credentials`: a
/// document a provider lists on another host must not receive them.
async fn fetch_http_as(
    client: &FeedClient,
    feed: &FeedConfig,
    url: &str,
    etag: Option<&str>,
    last_modified: Option<&str>,
    credentials: bool,
) -> Result<Fetched, FeedError> {
    let request_err = |e: reqwest::Error| request_error(feed, url, &e);
    let headers = if credentials {
        resolve_headers(feed)?
    } else {
        HeaderMap::new()
    };
    if !feed.allow_private
        && let Ok(parsed) = url::Url::parse(url)
        && let Err(r) = check_literal(&parsed)
    {
        return Err(FeedError::Refused {
            feed: feed.name.clone(),
            target: r.target,
            reason: r.reason,
        });
    }
    let client = client.for_feed(feed);
    let mut req = client.get(url).headers(headers);
    if let Some(e) = etag {
        req = req.header(IF_NONE_MATCH, e);
    }
    if let Some(lm) = last_modified {
        req = req.header(IF_MODIFIED_SINCE, lm);
    }
    let mut resp = req.send().await.map_err(request_err)?;
    let status = resp.status();
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let (new_etag, new_lm) = (header(ETAG), header(LAST_MODIFIED));
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Fetched {
            body: None,
            etag: new_etag.or(etag.map(str::to_string)),
            last_modified: new_lm.or(last_modified.map(str::to_string)),
        });
    }
    if !status.is_success() {
        return Err(FeedError::Status {
            feed: feed.name.clone(),
            url: redact_url(url),
            status: status.as_u16(),
        });
    }
    let too_large = || FeedError::TooLarge {
        feed: feed.name.clone(),
        max_bytes: feed.max_bytes,
    };
    if resp.content_length().is_some_and(|n| n > feed.max_bytes) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(request_err)? {
        if body.len() as u64 + chunk.len() as u64 > feed.max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        body: Some(body),
        etag: new_etag,
        last_modified: new_lm,
    })
}

pub(super) async fn fetch_file(
    feed: &FeedConfig,
    path: &std::path::Path,
    last_modified: Option<&str>,
) -> Result<Fetched, FeedError> {
    let file_err = |e: std::io::Error| FeedError::File {
        feed: feed.name.clone(),
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let meta = tokio::fs::metadata(path).await.map_err(file_err)?;
    let mtime = meta
        .modified()
        .ok()
        .map(|t| DateTime::<Utc>::from(t).to_rfc3339());
    if mtime.is_some() && mtime.as_deref() == last_modified {
        return Ok(Fetched {
            body: None,
            etag: None,
            last_modified: mtime,
        });
    }
    if meta.len() > feed.max_bytes {
        return Err(FeedError::TooLarge {
            feed: feed.name.clone(),
            max_bytes: feed.max_bytes,
        });
    }
    let body = tokio::fs::read(path).await.map_err(file_err)?;
    Ok(Fetched {
        body: Some(body),
        etag: None,
        last_modified: mtime,
    })
}

/// Inflates a gzip file (NVD's `.json.gz`), keeping the cap on the inflated size.
fn gunzip_if_needed(feed: &FeedConfig, body: Vec<u8>) -> Result<Vec<u8>, FeedError> {
    if !body.starts_with(&[0x1f, 0x8b]) {
        return Ok(body);
    }
    let mut out = Vec::new();
    let mut dec = flate2::read::GzDecoder::new(&body[..]).take(feed.max_bytes + 1);
    dec.read_to_end(&mut out).map_err(|e| FeedError::Request {
        feed: feed.name.clone(),
        url: feed.url.to_string(),
        message: format!("gzip body is corrupt: {e}"),
    })?;
    if out.len() as u64 > feed.max_bytes {
        return Err(FeedError::TooLarge {
            feed: feed.name.clone(),
            max_bytes: feed.max_bytes,
        });
    }
    Ok(out)
}

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

pub(super) async fn parse_off_runtime(
    feed: &FeedConfig,
    format: Format,
    body: Vec<u8>,
) -> Result<Parsed, FeedError> {
    let ctx = ParseContext {
        default_tlp: feed.tlp,
        feed: Some(feed.name.clone()),
        // Display of a FeedUrl is redacted.
        source: Some(feed.url.to_string()),
    };
    let name = feed.name.clone();
    let feed2 = feed.clone();
    tokio::task::spawn_blocking(move || {
        let body = gunzip_if_needed(&feed2, body)?;
        formats::parse(&format, &body, &ctx).map_err(|source| FeedError::Format {
            feed: feed2.name.clone(),
            source,
        })
    })
    .await
    .unwrap_or_else(|e| {
        Err(FeedError::Request {
            feed: name,
            url: String::new(),
            message: format!("parser task failed: {e}"),
        })
    })
}

/// Polls one feed once. Does not look at `next_attempt_after`: deciding *when* to poll is
/// the scheduler's job, so a manual `musubi feeds poll` can override a backoff.
pub async fn poll(
    client: &FeedClient,
    feed: &FeedConfig,
    state: &FeedState,
    now: DateTime<Utc>,
) -> PollOutcome {
    let attempt = async {
        match &feed.protocol {
            FeedProtocol::Taxii { .. } => {
                return super::taxii_client::poll(client, feed, state).await;
            }
            FeedProtocol::MispApi { .. } => {
                return super::misp_api::poll(client, feed, state).await;
            }
            FeedProtocol::Document => {}
        }
        if feed.format == Format::MispManifest {
            return poll_misp_feed(client, feed, state).await;
        }
        if matches!(feed.url, FeedUrl::Http(_)) {
            match feed.format {
                Format::Nvd => return paged::poll_nvd(client, feed, state).await,
                Format::Csaf => return paged::poll_csaf(client, feed, state).await,
                _ => {}
            }
        }
        let fetched = match &feed.url {
            FeedUrl::Http(u) => {
                fetch_http(
                    client,
                    feed,
                    u.as_str(),
                    state.etag.as_deref(),
                    state.last_modified.as_deref(),
                )
                .await?
            }
            FeedUrl::File(p) => fetch_file(feed, p, state.last_modified.as_deref()).await?,
        };
        let parsed = match fetched.body {
            None => None,
            Some(body) => Some(parse_off_runtime(feed, feed.format.clone(), body).await?),
        };
        Ok((parsed, fetched.etag, fetched.last_modified, None))
    };
    let result = match tokio::time::timeout(feed.timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(FeedError::Timeout {
            feed: feed.name.clone(),
            timeout: feed.timeout,
        }),
    };
    let mut next = state.clone();
    let member = match &feed.protocol {
        FeedProtocol::MispApi { member } => Some(member.clone()),
        _ => None,
    };
    match result {
        Ok((parsed, etag, last_modified, cursor)) => {
            next.etag = etag;
            next.last_modified = last_modified;
            next.consecutive_failures = 0;
            next.next_attempt_after = None;
            next.last_success = Some(now);
            next.last_error = None;
            // An empty cursor means "walk finished": start from the beginning next time.
            if let Some(c) = cursor {
                next.cursor = (!c.is_empty()).then_some(c);
            }
            if let Some(p) = &parsed {
                next.items_added = p.reports.len() as u64;
                let items = p.counts();
                tracing::info!(feed = %feed.name, reports = p.reports.len(), sightings = p.sightings.len(), warnings = p.warnings.len(), kept = items.kept, normalised = items.normalised, skipped = items.skipped, "Feed polled.");
            } else {
                tracing::debug!(feed = %feed.name, "Feed not modified.");
            }
            PollOutcome {
                state: next,
                result: Ok(parsed),
                member,
            }
        }
        Err(e) => {
            next.consecutive_failures = next.consecutive_failures.saturating_add(1);
            let delay = backoff_delay(next.consecutive_failures);
            next.next_attempt_after =
                Some(now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(6)));
            // Errors are built with redacted URLs; redact again in case a message embeds one.
            next.last_error = Some(redact_text(&e.to_string()));
            tracing::warn!(feed = %feed.name, error = %redact_text(&e.to_string()), failures = next.consecutive_failures, retry_in_s = delay.as_secs(), "Feed poll failed.");
            PollOutcome {
                state: next,
                result: Err(e),
                member,
            }
        }
    }
}

pub(super) type Attempt = (
    Option<Parsed>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A MISP feed: fetch `manifest.json`, then the events changed since the cursor.
async fn poll_misp_feed(
    client: &FeedClient,
    feed: &FeedConfig,
    state: &FeedState,
) -> Result<Attempt, FeedError> {
    let since: i64 = state
        .cursor
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (manifest, etag, lm) = match &feed.url {
        FeedUrl::Http(u) => {
            let f = fetch_http(
                client,
                feed,
                u.as_str(),
                state.etag.as_deref(),
                state.last_modified.as_deref(),
            )
            .await?;
            (f.body, f.etag, f.last_modified)
        }
        FeedUrl::File(p) => {
            let f = fetch_file(feed, p, state.last_modified.as_deref()).await?;
            (f.body, f.etag, f.last_modified)
        }
    };
    let Some(manifest) = manifest else {
        return Ok((None, etag, lm, None));
    };
    let fmt_err = |source| FeedError::Format {
        feed: feed.name.clone(),
        source,
    };
    let entries = formats::misp::parse_manifest(&manifest).map_err(fmt_err)?;
    let todo: Vec<_> = entries
        .into_iter()
        .filter(|e| e.timestamp > since)
        .take(MISP_EVENTS_PER_POLL)
        .collect();
    let mut parsed = Parsed::default();
    let mut cursor = since;
    for e in todo {
        let body = match &feed.url {
            FeedUrl::Http(u) => {
                let url =
                    u.join(&format!("{}.json", e.uuid))
                        .map_err(|err| FeedError::Request {
                            feed: feed.name.clone(),
                            url: redact_url(u.as_str()),
                            message: err.to_string(),
                        })?;
                fetch_http(client, feed, url.as_str(), None, None)
                    .await?
                    .body
            }
            FeedUrl::File(p) => {
                let path = p.with_file_name(format!("{}.json", e.uuid));
                fetch_file(feed, &path, None).await?.body
            }
        };
        let Some(body) = body else { continue };
        let one = parse_off_runtime(feed, Format::Misp, body).await?;
        parsed.reports.extend(one.reports);
        parsed.warnings.extend(one.warnings);
        parsed.items.extend(one.items);
        cursor = cursor.max(e.timestamp);
    }
    Ok((Some(parsed), etag, lm, Some(cursor.to_string())))
}

/// Polls every feed on its schedule until `shutdown` resolves.
///
/// One task per feed: a feed that hangs only holds its own task (and is cut by its
/// timeout). A feed polls at start when it has never succeeded or its last success is
/// older than its previous scheduled time; otherwise it waits for its next cron time, or
/// the end of its backoff, whichever is later. `sink` receives every outcome (the caller
/// stores the drafts and saves the state); it is awaited before the feed's next poll.
pub async fn run_scheduler<S, Fut>(
    feeds: Vec<FeedConfig>,
    client: FeedClient,
    initial: HashMap<String, FeedState>,
    sink: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    S: Fn(String, PollOutcome) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let sink = Arc::new(sink);
    let mut tasks = tokio::task::JoinSet::new();
    for feed in feeds.into_iter().filter(|f| f.enabled) {
        let state = initial.get(&feed.name).cloned().unwrap_or_default();
        let client = client.clone();
        let sink = Arc::clone(&sink);
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let mut state = state;
            let mut first = true;
            loop {
                let now = Utc::now();
                let due_now = first && state.last_success.is_none_or(|last| {
                    // Missed a scheduled run while musubi was down.
                    feed.next_run(last).is_some_and(|t| t <= now)
                });
                first = false;
                let mut when = if due_now {
                    now
                } else {
                    match feed.next_run(now) {
                        Some(t) => t,
                        None => {
                            tracing::warn!(feed = %feed.name, "Feed schedule has no future run; feed stops.");
                            return;
                        }
                    }
                };
                if let Some(after) = state.next_attempt_after {
                    when = when.max(after);
                }
                let wait = (when - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return,
                }
                let outcome = tokio::select! {
                    o = poll(&client, &feed, &state, Utc::now()) => o,
                    _ = stop.changed() => return,
                };
                state = outcome.state.clone();
                sink(feed.name.clone(), outcome).await;
            }
        });
    }
    tokio::select! {
        _ = shutdown => {}
        _ = async { while tasks.join_next().await.is_some() {} } => return,
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
}

/// The saved state of one feed (validators, cursor, failures); the default for a feed
/// never polled.
pub async fn load_state(
    store: &crate::store::Store,
    feed: &str,
) -> crate::store::Result<FeedState> {
    let feed = feed.to_string();
    store
        .read_async(move |c| crate::store::feeds::load_state(c, &feed))
        .await
}

/// The saved state of every feed, by name (the scheduler's start).
pub async fn load_states(
    store: &crate::store::Store,
) -> crate::store::Result<std::collections::HashMap<String, FeedState>> {
    Ok(store
        .read_async(crate::store::feeds::all_states)
        .await?
        .into_iter()
        .collect())
}

/// Marks the saved states of the configured member feeds (`misp-api`, enabled or not) as
/// members' feeds, for states saved before the feed state recorded it; the next poll
/// replaces the member as configured with its id. Called once as the daemon starts.
pub async fn mark_member_feeds(
    store: &crate::store::Store,
    feeds: &[FeedConfig],
) -> crate::store::Result<()> {
    let marks: Vec<(String, String)> = feeds
        .iter()
        .filter_map(|f| match &f.protocol {
            FeedProtocol::MispApi { member } => Some((f.name.clone(), member.clone())),
            _ => None,
        })
        .collect();
    if marks.is_empty() {
        return Ok(());
    }
    store
        .writer()
        .write(move |conn| {
            for (feed, member) in &marks {
                crate::store::feeds::mark_member_feed(conn, feed, member)?;
            }
            Ok(())
        })
        .await
}

/// Stores what one poll brought as feed items (deduplicated by item id and content) and
/// saves the feed's state, in one transaction. Returns how many reports were new.
pub async fn store_outcome(
    store: &crate::store::Store,
    feed: &str,
    outcome: PollOutcome,
) -> crate::store::Result<u64> {
    let PollOutcome {
        mut state,
        result,
        member,
    } = outcome;
    let drafts = match result {
        Ok(Some(parsed)) => {
            for w in &parsed.warnings {
                tracing::warn!(feed, warning = %w, "Feed item not fully represented.");
            }
            // The feed health: what this poll kept, normalised and skipped, and why the
            // first few were skipped (item positions and reasons, never the feed's URL).
            let counts = parsed.counts();
            state.last_items = crate::store::feeds::ItemCounts {
                kept: counts.kept,
                normalised: counts.normalised,
                skipped: counts.skipped,
            };
            state.skip_reasons = parsed
                .items
                .iter()
                .filter_map(|i| match &i.outcome {
                    crate::formats::Outcome::Skipped { why } => {
                        Some(redact_text(&format!("{}: {why}", i.at)))
                    }
                    _ => None,
                })
                .take(crate::store::feeds::SKIP_REASONS_KEPT)
                .collect();
            Some(parsed.reports)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(feed, error = %redact_text(&e.to_string()), "Feed poll failed; backing off.");
            None
        }
    };
    let name = feed.to_string();
    let now = Utc::now();
    // A member's feed is recorded as such even before the roster has the member, so that
    // its health never shows to other members.
    state.member = member.clone();
    store
        .writer()
        .write(move |conn| {
            let origin = match &member {
                None => crate::model::Origin::FeedItem { feed: name.clone() },
                Some(m) => match crate::store::members::find(conn, m)? {
                    Some(found) => {
                        state.member = Some(found.id.to_string());
                        crate::model::Origin::Submission { member: found.id }
                    }
                    None => {
                        // Not stored as anyone's: keep the old position so that nothing is
                        // skipped once the roster has the member.
                        let old = crate::store::feeds::load_state(conn, &name)?;
                        state.cursor = old.cursor;
                        state.last_success = old.last_success;
                        state.consecutive_failures = old.consecutive_failures.saturating_add(1);
                        state.last_error = Some(format!(
                            "feed {name}: member {m:?} (feeds.toml) is not in the roster; nothing stored"
                        ));
                        tracing::error!(feed = %name, "The member of this MISP feed is not in the roster; nothing stored.");
                        crate::store::feeds::save_state(conn, &name, &state, now)?;
                        return Ok(0);
                    }
                },
            };
            let mut added = 0;
            if let Some(drafts) = &drafts {
                for d in drafts {
                    // A member's MISP answers an edited event again: the same content is
                    // not the member's second submission.
                    if let crate::model::Origin::Submission { member } = &origin
                        && crate::store::reports::submission_with_content(
                            conn,
                            member,
                            &d.content_hash(),
                        )?
                        .is_some()
                    {
                        continue;
                    }
                    if let crate::store::reports::Inserted::New(_) =
                        crate::store::reports::insert(conn, &origin, d, now)?
                    {
                        added += 1;
                    }
                }
                state.items_added = added;
            }
            crate::store::feeds::save_state(conn, &name, &state, now)?;
            Ok(added)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let d1 = backoff_delay(1);
        assert!(
            d1 >= BACKOFF_BASE.mul_f64(0.8) && d1 <= BACKOFF_BASE.mul_f64(1.2),
            "{d1:?}"
        );
        let d3 = backoff_delay(3);
        assert!(d3 >= BACKOFF_BASE.mul_f64(3.2), "{d3:?}");
        assert!(backoff_delay(30) <= BACKOFF_MAX);
    }

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "192.0.2.1",
            "2001:db8::1",
            "2606:4700::1111",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_internal_targets_are_refused() {
        let refused = |u: &str| check_literal(&u.parse().unwrap()).is_err();
        assert!(refused("http://127.0.0.1:8080/x"));
        assert!(refused("http://[::1]/x"));
        assert!(refused("http://[::ffff:7f00:1]/x"));
        assert!(refused("https://169.254.169.254/latest/meta-data/"));
        assert!(!refused("https://feeds.example.org/x"));
        assert!(!refused("https://192.0.2.10/x"));
        let e = check_literal(&"http://u:p@10.0.0.1/?apikey=K".parse().unwrap()).unwrap_err();
        assert!(!e.to_string().contains("apikey=K"), "{e}");
    }
}
