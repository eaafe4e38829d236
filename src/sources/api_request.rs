//! One request of an API feed (TAXII collections, MISP instances): the same guard, header
//! secrets from the environment and body cap as document feeds (`sources::feeds`), for
//! feeds that talk to an API in several requests per poll.

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};

use super::feeds::{FeedClient, FeedError, check_literal, request_error, resolve_headers};
use crate::config::feeds::FeedConfig;
use crate::model::redact::redact_url;

/// What an API answered: its headers and its body.
pub(super) struct Answer {
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

impl Answer {
    /// The JSON body, or a clear error naming the feed, the URL and what is wrong.
    pub(super) fn json(
        &self,
        feed: &FeedConfig,
        url: &url::Url,
    ) -> Result<serde_json::Value, FeedError> {
        serde_json::from_slice(&self.body).map_err(|e| FeedError::Request {
            feed: feed.name.clone(),
            url: redact_url(url.as_str()),
            message: format!("the answer is not JSON: {e}"),
        })
    }

    /// A header as text.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request with the feed's headers (secrets from the environment) plus `extra`,
/// and reads the body under the feed's `max_bytes`. A status other than 2xx is an error.
pub(super) async fn send(
    client: &FeedClient,
    feed: &FeedConfig,
    method: Method,
    url: &url::Url,
    extra: HeaderMap,
    json_body: Option<&serde_json::Value>,
) -> Result<Answer, FeedError> {
    if !feed.allow_private
        && let Err(r) = check_literal(url)
    {
        return Err(FeedError::Refused {
            feed: feed.name.clone(),
            target: r.target,
            reason: r.reason,
        });
    }
    let mut headers = resolve_headers(feed)?;
    headers.extend(extra);
    let mut req = client
        .for_feed(feed)
        .request(method, url.as_str())
        .headers(headers);
    if let Some(b) = json_body {
        req = req.json(b);
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| request_error(feed, url.as_str(), &e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(FeedError::Status {
            feed: feed.name.clone(),
            url: redact_url(url.as_str()),
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
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| request_error(feed, url.as_str(), &e))?
    {
        if body.len() as u64 + chunk.len() as u64 > feed.max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer { headers, body })
}

/// A header value that is a secret (credentials): never printed by `Debug`.
pub(super) fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}
