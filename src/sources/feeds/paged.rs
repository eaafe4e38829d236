//! Feeds that take more than one request: the NVD CVE API 2.0 (pages) and CSAF providers
//! (`provider-metadata.json` → ROLIE feeds → advisories).
//!
//! Both run inside [`super::poll`]'s timeout, so each stops early enough to leave room for
//! the request under way and records where it stopped in the feed's cursor; the next poll
//! goes on from there.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{Attempt, FeedClient, FeedError, Fetched, fetch_http_as, parse_off_runtime};
use crate::config::feeds::{FeedConfig, FeedUrl};
use crate::formats::{Format, Parsed, csaf, nvd};
use crate::model::Tlp;
use crate::model::redact::redact_url;

/// NVD's published limit: requests per rolling 30 seconds.
pub const NVD_WINDOW: Duration = Duration::from_secs(30);
/// ... without an API key,
pub const NVD_REQUESTS_WITHOUT_KEY: u32 = 5;
/// ... and with one (sent as the `apiKey` header, from the environment like any header).
pub const NVD_REQUESTS_WITH_KEY: u32 = 50;
/// Pages fetched in one poll at most; the rest follow on the next polls.
pub const NVD_PAGES_PER_POLL: u32 = 50;
/// Advisories fetched in one poll of a CSAF provider at most (oldest changes first).
pub const CSAF_DOCUMENTS_PER_POLL: usize = 200;

const NVD_CURSOR: &str = "nvd:startIndex=";
const CSAF_CURSOR: &str = "csaf:updated=";

/// Whether the feed sends NVD's `apiKey` header with a value set in the environment.
fn nvd_has_key(feed: &FeedConfig) -> bool {
    feed.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("apikey")
            && std::env::var(&h.env_var).is_ok_and(|v| !v.trim().is_empty())
    })
}

/// The pause between two page requests that keeps any 30 s window within NVD's limit.
pub fn nvd_interval(feed: &FeedConfig) -> Duration {
    let per_window = if nvd_has_key(feed) {
        NVD_REQUESTS_WITH_KEY
    } else {
        NVD_REQUESTS_WITHOUT_KEY
    };
    NVD_WINDOW / per_window
}

/// `url` with `startIndex` set to `index` (other parameters, `resultsPerPage` included, kept).
fn with_start_index(url: &url::Url, index: u64) -> url::Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "startIndex")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    {
        let mut q = out.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        q.append_pair("startIndex", &index.to_string());
    }
    out
}

fn extend(into: &mut Parsed, one: Parsed) {
    into.reports.extend(one.reports);
    into.sightings.extend(one.sightings);
    into.warnings.extend(one.warnings);
}

/// The NVD CVE API 2.0: pages of `resultsPerPage` from `startIndex` until `totalResults`,
/// one request every [`nvd_interval`]. A 1.1 data feed (no paging fields) is one page.
///
/// The cursor holds the next `startIndex` while a walk is unfinished; the conditional GET
/// (ETag) applies to the first page only, since the later pages are new requests by design.
pub(super) async fn poll_nvd(
    client: &FeedClient,
    feed: &FeedConfig,
    state: &super::FeedState,
) -> Result<Attempt, FeedError> {
    let FeedUrl::Http(base) = &feed.url else {
        unreachable!("poll_nvd is called for http feeds only")
    };
    let started = Instant::now();
    let interval = nvd_interval(feed);
    // Leave a quarter of the timeout for the page under way.
    let budget = feed.timeout.mul_f64(0.75);
    let resumed = state
        .cursor
        .as_deref()
        .and_then(|c| c.strip_prefix(NVD_CURSOR))
        .and_then(|n| n.parse::<u64>().ok());
    let mut index = resumed.unwrap_or_else(|| {
        base.query_pairs()
            .find(|(k, _)| k == "startIndex")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    });
    let (mut etag, mut lm) = (state.etag.clone(), state.last_modified.clone());
    let mut parsed = Parsed::default();
    let mut pages = 0u32;
    loop {
        let url = with_start_index(base, index);
        let first = pages == 0 && resumed.is_none();
        let conditional = |v: &Option<String>| if first { v.clone() } else { None };
        let Fetched {
            body,
            etag: e,
            last_modified: l,
        } = fetch_http_as(
            client,
            feed,
            url.as_str(),
            conditional(&etag).as_deref(),
            conditional(&lm).as_deref(),
            true,
        )
        .await?;
        pages += 1;
        if first {
            (etag, lm) = (e, l);
        }
        let Some(body) = body else {
            // 304 on the first page: nothing changed.
            return Ok((None, etag, lm, None));
        };
        let page = nvd::page_of(&body);
        extend(
            &mut parsed,
            parse_off_runtime(feed, Format::Nvd, body).await?,
        );
        let Some(next) = page.and_then(|p| p.next_start()) else {
            tracing::debug!(feed = %feed.name, pages, "NVD walk complete.");
            return Ok((Some(parsed), etag, lm, Some(String::new())));
        };
        if pages >= NVD_PAGES_PER_POLL || started.elapsed() + interval >= budget {
            tracing::info!(feed = %feed.name, pages, next_start_index = next, total = page.map(|p| p.total_results), "NVD walk continues on the next poll.");
            return Ok((Some(parsed), etag, lm, Some(format!("{NVD_CURSOR}{next}"))));
        }
        tokio::time::sleep(interval).await;
        index = next;
    }
}

/// Whether `url` is on the feed's own origin: the feed's credentials (headers) go there
/// only, never to a document host a provider's metadata names.
fn same_origin(feed_url: &url::Url, url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.origin() == feed_url.origin())
}

/// A CSAF feed: the URL may be a `provider-metadata.json` (its ROLIE feeds are walked), a
/// ROLIE feed (walked), or an advisory (parsed as before). Advisories changed since the
/// cursor are fetched, oldest change first; each is at least as restricted as the TLP label
/// of the ROLIE feed that lists it (and of the feed's own `tlp`).
///
/// An advisory that cannot be fetched or parsed is a warning, not the end of the poll; the
/// cursor then stays where it was, so that it is tried again.
pub(super) async fn poll_csaf(
    client: &FeedClient,
    feed: &FeedConfig,
    state: &super::FeedState,
) -> Result<Attempt, FeedError> {
    let FeedUrl::Http(base) = &feed.url else {
        unreachable!("poll_csaf is called for http feeds only")
    };
    // No conditional GET: the metadata rarely changes while the feeds it lists do.
    let top = fetch_http_as(client, feed, base.as_str(), None, None, true)
        .await?
        .body
        .unwrap_or_default();
    let fmt_err = |source| FeedError::Format {
        feed: feed.name.clone(),
        source,
    };
    let rolie: Vec<(String, Option<Tlp>)> = match csaf::sniff(&top) {
        csaf::CsafDocument::Advisory => {
            let parsed = parse_off_runtime(feed, Format::Csaf, top).await?;
            return Ok((Some(parsed), None, None, None));
        }
        csaf::CsafDocument::RolieFeed => vec![(base.to_string(), None)],
        csaf::CsafDocument::ProviderMetadata => {
            csaf::parse_provider_metadata(&top)
                .map_err(fmt_err)?
                .rolie_feeds
        }
    };
    let since: Option<DateTime<Utc>> = state
        .cursor
        .as_deref()
        .and_then(|c| c.strip_prefix(CSAF_CURSOR))
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let mut parsed = Parsed::default();
    let mut todo: Vec<(csaf::RolieEntry, Tlp)> = Vec::new();
    for (feed_url, label) in rolie {
        let body = if feed_url == base.as_str() {
            top.clone()
        } else {
            let credentials = same_origin(base, &feed_url);
            fetch_http_as(client, feed, &feed_url, None, None, credentials)
                .await?
                .body
                .unwrap_or_default()
        };
        let tlp = label.map_or(feed.tlp, |l| l.max(feed.tlp));
        for e in csaf::rolie_entries(&feed_url, &body).map_err(fmt_err)? {
            if since.is_none_or(|s| e.updated.is_none_or(|u| u > s)) {
                todo.push((e, tlp));
            }
        }
    }
    // Oldest change first, so that a poll cut short leaves a cursor that loses nothing.
    todo.sort_by_key(|(e, _)| e.updated);
    todo.dedup_by(|a, b| a.0.url == b.0.url);
    let pending = todo.len();
    todo.truncate(CSAF_DOCUMENTS_PER_POLL);
    let mut failed = false;
    let mut newest = since;
    for (entry, tlp) in todo {
        let credentials = same_origin(base, &entry.url);
        let doc = match fetch_http_as(client, feed, &entry.url, None, None, credentials).await {
            Ok(f) => f.body.unwrap_or_default(),
            Err(e) => {
                failed = true;
                parsed.warnings.push(format!("advisory skipped: {e}"));
                continue;
            }
        };
        let mut one_feed = feed.clone();
        one_feed.tlp = tlp;
        match parse_off_runtime(&one_feed, Format::Csaf, doc).await {
            Ok(mut one) => {
                for r in &mut one.reports {
                    r.tlp = r.tlp.max(tlp);
                }
                extend(&mut parsed, one);
                newest = newest.max(entry.updated);
            }
            Err(e) => {
                failed = true;
                parsed
                    .warnings
                    .push(format!("advisory {} skipped: {e}", redact_url(&entry.url)));
            }
        }
    }
    tracing::debug!(feed = %feed.name, pending, fetched = parsed.reports.len(), "CSAF feeds walked.");
    let cursor = match (failed, newest) {
        (false, Some(t)) => Some(format!("{CSAF_CURSOR}{}", t.to_rfc3339())),
        _ => None,
    };
    Ok((Some(parsed), None, None, cursor))
}
