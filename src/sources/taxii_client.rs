//! TAXII 2.1 client feeds (`format = "taxii"`): a collection on another sharing body's
//! TAXII server, polled like any feed.
//!
//! One poll: discovery (when `url` is the discovery URL) → the API root (`default`, else
//! the first listed) → the collection (must say `can_read`) → `objects/?limit=N` with
//! `added_after` = the feed's cursor, following `more` with `next` (or, from servers that
//! give no `next`, with `added_after` moved to `X-TAXII-Date-Added-Last`, as the
//! specification allows). Every page's objects are read as one STIX 2.1 bundle through
//! `formats::stix21`, so relationships and markings across pages resolve; the drafts are
//! stored like other feed items (deduplicated by STIX id).
//!
//! The cursor is the newest `date_added` seen (`X-TAXII-Date-Added-Last`), saved with the
//! stored items in one transaction: a restart resumes after it, so nothing is stored twice
//! and nothing is skipped (a poll that fails part-way stores nothing and moves nothing).
//!
//! Credentials: HTTP Basic from `username_env`/`password_env`, or a bearer token through
//! `headers = { Authorization = "env:VAR" }`; never literal values.

use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::api_request::{self, sensitive};
use super::feeds::{Attempt, FeedClient, FeedError, FeedState, fetch_file, parse_off_runtime};
use crate::config::feeds::{FeedConfig, FeedProtocol, FeedUrl};
use crate::formats::Format;
use crate::model::redact::redact_url;

/// The TAXII 2.1 media type, asked for in `Accept`.
pub const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";
/// Objects asked for per request unless the feed sets `page_size`.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Requests per poll at most: a server that always says `more` cannot hold a feed forever
/// (the rest follows on the next poll, from the cursor).
pub const MAX_PAGES: usize = 1000;

fn protocol_error(feed: &FeedConfig, url: &url::Url, message: impl Into<String>) -> FeedError {
    FeedError::Request {
        feed: feed.name.clone(),
        url: redact_url(url.as_str()),
        message: message.into(),
    }
}

fn headers(feed: &FeedConfig) -> Result<HeaderMap, FeedError> {
    let mut h = HeaderMap::new();
    h.insert(ACCEPT, HeaderValue::from_static(TAXII_MEDIA_TYPE));
    if let Some(b) = &feed.basic_auth {
        let missing = |var: &str| FeedError::MissingEnv {
            feed: feed.name.clone(),
            header: "Authorization (Basic)".into(),
            var: var.to_string(),
        };
        let user = std::env::var(&b.username_env).map_err(|_| missing(&b.username_env))?;
        let pass = std::env::var(&b.password_env).map_err(|_| missing(&b.password_env))?;
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let v = sensitive(&format!("Basic {token}")).ok_or_else(|| missing(&b.password_env))?;
        h.insert(AUTHORIZATION, v);
    }
    Ok(h)
}

async fn get_json(
    client: &FeedClient,
    feed: &FeedConfig,
    url: &url::Url,
) -> Result<(Value, Option<String>), FeedError> {
    let a = api_request::send(client, feed, Method::GET, url, headers(feed)?, None).await?;
    let v = a.json(feed, url)?;
    Ok((v, a.header("X-TAXII-Date-Added-Last").map(str::to_string)))
}

/// `u` with a trailing slash (TAXII URLs end in one; `join` needs it).
fn dir(mut u: url::Url) -> url::Url {
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

/// The API root: `url` itself when it answers an API root resource, else the one the
/// discovery resource names (`default`, else the first of `api_roots`).
async fn api_root(
    client: &FeedClient,
    feed: &FeedConfig,
    url: &url::Url,
) -> Result<url::Url, FeedError> {
    let url = dir(url.clone());
    let (v, _) = get_json(client, feed, &url).await?;
    let Some(roots) = v.get("api_roots") else {
        if v.get("versions").is_some() || v.get("max_content_length").is_some() {
            return Ok(url);
        }
        return Err(protocol_error(
            feed,
            &url,
            "neither a TAXII 2.1 discovery resource (api_roots) nor an API root (versions)",
        ));
    };
    let chosen = v
        .get("default")
        .and_then(Value::as_str)
        .or_else(|| {
            roots
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_str)
        })
        .ok_or_else(|| protocol_error(feed, &url, "the discovery resource lists no API root"))?;
    let root = url.join(chosen).map_err(|e| {
        protocol_error(feed, &url, format!("API root {chosen:?} is not a URL: {e}"))
    })?;
    if root.origin() != url.origin() && !matches!(root.scheme(), "https") {
        return Err(protocol_error(
            feed,
            &url,
            "the discovery resource names an http:// API root on another host; refusing to send credentials there",
        ));
    }
    Ok(dir(root))
}

fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.to_utc())
}

/// The later of two `date_added` texts (kept as the server wrote them, for its precision).
fn later(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => match (parse_date(&a), parse_date(&b)) {
            (Some(x), Some(y)) if y > x => Some(b),
            (Some(_), _) => Some(a),
            (None, _) => Some(b),
        },
        (a, b) => a.or(b),
    }
}

/// One poll of a TAXII collection (or of one stored envelope, for a `file://` feed).
pub(super) async fn poll(
    client: &FeedClient,
    feed: &FeedConfig,
    state: &FeedState,
) -> Result<Attempt, FeedError> {
    let collection = match &feed.protocol {
        FeedProtocol::Taxii { collection } => collection.clone(),
        _ => None,
    };
    let base = match &feed.url {
        FeedUrl::File(p) => {
            let f = fetch_file(feed, p, state.last_modified.as_deref()).await?;
            let Some(body) = f.body else {
                return Ok((None, f.etag, f.last_modified, None));
            };
            let envelope: Value = serde_json::from_slice(&body).map_err(|e| FeedError::File {
                feed: feed.name.clone(),
                path: p.display().to_string(),
                message: format!("not a TAXII envelope (JSON): {e}"),
            })?;
            let objects = envelope
                .get("objects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let parsed = parse_objects(feed, objects).await?;
            return Ok((parsed, f.etag, f.last_modified, None));
        }
        FeedUrl::Http(u) => u.clone(),
    };
    let Some(collection) = collection else {
        return Err(protocol_error(feed, &base, "no collection configured"));
    };
    let root = api_root(client, feed, &base).await?;
    let coll_url = root
        .join(&format!("collections/{collection}/"))
        .map_err(|e| protocol_error(feed, &root, format!("collection {collection:?}: {e}")))?;
    let (info, _) = get_json(client, feed, &coll_url).await?;
    if info.get("can_read").and_then(Value::as_bool) == Some(false) {
        return Err(protocol_error(
            feed,
            &coll_url,
            "the collection says can_read = false for these credentials",
        ));
    }
    let objects_url = coll_url
        .join("objects/")
        .map_err(|e| protocol_error(feed, &coll_url, e.to_string()))?;
    let limit = feed.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    let mut added_after = state.cursor.clone();
    let mut newest = state.cursor.clone();
    let mut next: Option<String> = None;
    let mut objects: Vec<Value> = Vec::new();
    let mut bytes: u64 = 0;
    for _ in 0..MAX_PAGES {
        let mut url = objects_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &limit.to_string());
            if let Some(a) = &added_after {
                q.append_pair("added_after", a);
            }
            if let Some(n) = &next {
                q.append_pair("next", n);
            }
        }
        let (page, last) = get_json(client, feed, &url).await?;
        bytes += page.to_string().len() as u64;
        if bytes > feed.max_bytes {
            return Err(FeedError::TooLarge {
                feed: feed.name.clone(),
                max_bytes: feed.max_bytes,
            });
        }
        let page_objects = page
            .get("objects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let got = page_objects.len();
        objects.extend(page_objects);
        newest = later(newest, last.clone());
        let more = page.get("more").and_then(Value::as_bool).unwrap_or(false);
        if !more || got == 0 {
            break;
        }
        match page.get("next").and_then(Value::as_str) {
            Some(n) => next = Some(n.to_string()),
            None => match last {
                // No `next`: page on by date (TAXII 2.1 §3.4.2).
                Some(l) => {
                    next = None;
                    added_after = Some(l);
                }
                None => {
                    return Err(protocol_error(
                        feed,
                        &url,
                        "the server says more = true but gives neither next nor X-TAXII-Date-Added-Last",
                    ));
                }
            },
        }
    }
    tracing::debug!(feed = %feed.name, objects = objects.len(), "TAXII collection read.");
    if objects.is_empty() {
        return Ok((None, None, None, newest));
    }
    let parsed = parse_objects(feed, objects).await?;
    Ok((parsed, None, None, newest))
}

/// The objects of every page, read as one bundle.
async fn parse_objects(
    feed: &FeedConfig,
    objects: Vec<Value>,
) -> Result<Option<crate::formats::Parsed>, FeedError> {
    if objects.is_empty() {
        return Ok(None);
    }
    // The objects no report references become one report whose external id is the bundle
    // id (`formats::stix21`): named after the feed and the objects' ids and versions, so the
    // same objects are the same report and new ones a new report.
    let mut key = feed.name.clone();
    for o in &objects {
        for field in ["id", "modified", "created"] {
            key.push('|');
            key.push_str(o.get(field).and_then(Value::as_str).unwrap_or_default());
        }
    }
    let bundle = json!({
        "type": "bundle",
        "id": format!("bundle--{}", uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes())),
        "objects": objects,
    });
    let body = serde_json::to_vec(&bundle).unwrap_or_default();
    parse_off_runtime(feed, Format::Stix21, body)
        .await
        .map(Some)
}
