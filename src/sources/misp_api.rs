//! MISP instance feeds (`format = "misp-api"`): the events of a member's own MISP, pulled
//! over its REST API and stored as **that member's submissions**.
//!
//! One poll: `POST {url}/events/restSearch` with
//! `{"returnFormat":"json","timestamp":<cursor>,"page":N,"limit":M}`, the API key in
//! `Authorization` (`headers = { Authorization = "env:VAR" }`), pages until a short one.
//! Each event is read through `formats::misp` on its own. The cursor is the newest event
//! `timestamp` seen; MISP's `timestamp` filter is inclusive, so the newest events come
//! again on the next poll and are not stored twice (the store skips a submission of the
//! same member with the same content, `store::reports::submission_with_content`). An
//! edited event whose content changed is stored again, as the member's newer report.
//!
//! The provider: the reports are stored with `Origin::Submission { member }` exactly as
//! that member's `POST /api/v1/reports`, so the policy treats them alike and no one but
//! the secretariat learns who provided them. Nothing of the feed (its name, the MISP URL,
//! which names the member's organisation) goes into content: the parse context carries no
//! feed name or source, and the event's organisations go to secretariat-only provenance
//! (as `formats::misp` does for every MISP event).
//!
//! Distribution and sharing groups, mapped to TLP and scope. The event's own `tlp:*` tag
//! still applies; the result is the stricter of the two, and a scope only narrows:
//!
//! | MISP `distribution` | TLP at least | scope |
//! | --- | --- | --- |
//! | 0 your organisation only | AMBER+STRICT | provider and secretariat |
//! | 1 this community only | AMBER | council members |
//! | 2 connected communities | GREEN | council members and the organisations they support |
//! | 3 all communities | (the tag, else the feed's `tlp`) | (none) |
//! | 4 sharing group | AMBER+STRICT | provider and secretariat |
//! | missing or unknown | AMBER+STRICT | provider and secretariat |
//!
//! A sharing group's members are defined in the member's MISP and mean nothing to musubi,
//! so it gets the strictest mapping; the secretariat can release further. "This
//! community" is the member's MISP community, not the council, hence AMBER (need to know)
//! rather than GREEN.

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::api_request;
use super::feeds::{Attempt, FeedClient, FeedError, FeedState, fetch_file};
use crate::config::feeds::{FeedConfig, FeedUrl};
use crate::formats::{self, ParseContext, Parsed};
use crate::model::redact::redact_url;
use crate::model::{ReportDraft, Scope, Tlp};

/// Events asked for per request unless the feed sets `page_size`.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Requests per poll at most. A poll that stops here keeps its cursor (the next poll asks
/// again from the same timestamp; nothing is stored twice), so raise `page_size` for a
/// larger backlog.
pub const MAX_PAGES: usize = 200;

/// The TLP floor and scope of a MISP `distribution` (see the module table).
pub fn distribution_policy(distribution: Option<i64>) -> (Option<Tlp>, Option<Scope>) {
    match distribution {
        Some(3) => (None, None),
        Some(2) => (Some(Tlp::Green), Some(Scope::MembersAndSupported)),
        Some(1) => (Some(Tlp::Amber), Some(Scope::CouncilMembers)),
        // 0, 4 (a sharing group) and anything unknown: the strictest.
        _ => (Some(Tlp::AmberStrict), Some(Scope::ProviderAndSecretariat)),
    }
}

/// How narrow a scope is (lower is narrower).
fn breadth(s: Scope) -> u8 {
    match s {
        Scope::ProviderAndSecretariat => 0,
        Scope::CouncilMembers => 1,
        Scope::MembersAndSupported => 2,
    }
}

/// Applies the distribution's TLP floor and scope to a draft: never loosens either.
pub fn apply_distribution(d: &mut ReportDraft, distribution: Option<i64>) {
    let (tlp, scope) = distribution_policy(distribution);
    if let Some(t) = tlp {
        d.tlp = d.tlp.max(t);
    }
    if let Some(s) = scope {
        d.scope = Some(match d.scope {
            Some(old) if breadth(old) <= breadth(s) => old,
            _ => s,
        });
    }
}

/// A number MISP writes as a string (`"3"`) or a number.
fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The events of a restSearch answer (`{"response":[{"Event":...}]}`, or the bare list
/// some MISP versions give).
fn events(answer: &Value) -> Option<Vec<Value>> {
    let list = match answer {
        Value::Array(a) => a,
        v => v.get("response")?.as_array()?,
    };
    Some(
        list.iter()
            .map(|item| item.get("Event").unwrap_or(item).clone())
            .collect(),
    )
}

/// Reads events into drafts, with the distribution mapping; returns the newest timestamp.
fn read_events(
    feed: &FeedConfig,
    events: &[Value],
    parsed: &mut Parsed,
) -> Result<Option<i64>, FeedError> {
    // No feed name and no source: they name the member's MISP.
    let ctx = ParseContext::with_tlp(feed.tlp);
    let mut newest = None;
    for e in events {
        let one = formats::misp::parse(
            &serde_json::to_vec(&json!({ "Event": e })).unwrap_or_default(),
            &ctx,
        )
        .map_err(|source| FeedError::Format {
            feed: feed.name.clone(),
            source,
        })?;
        let distribution = int(e.get("distribution"));
        for mut d in one.reports {
            apply_distribution(&mut d, distribution);
            parsed.reports.push(d);
        }
        parsed.warnings.extend(one.warnings);
        // What each attribute became counts in the feed health (nothing silently dropped).
        parsed.items.extend(one.items);
        newest = newest.max(int(e.get("timestamp")));
    }
    Ok(newest)
}

/// One poll of a member's MISP (or of one stored restSearch answer, for a `file://` feed).
pub(super) async fn poll(
    client: &FeedClient,
    feed: &FeedConfig,
    state: &FeedState,
) -> Result<Attempt, FeedError> {
    let since: i64 = state
        .cursor
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let base = match &feed.url {
        FeedUrl::File(p) => {
            let f = fetch_file(feed, p, state.last_modified.as_deref()).await?;
            let Some(body) = f.body else {
                return Ok((None, f.etag, f.last_modified, None));
            };
            let bad = |message: String| FeedError::File {
                feed: feed.name.clone(),
                path: p.display().to_string(),
                message,
            };
            let answer: Value = serde_json::from_slice(&body)
                .map_err(|e| bad(format!("not a restSearch answer (JSON): {e}")))?;
            let list = events(&answer)
                .ok_or_else(|| bad("not a restSearch answer: no \"response\" list".into()))?;
            let mut parsed = Parsed::default();
            let newest = read_events(feed, &list, &mut parsed)?;
            let cursor = newest.map(|n| n.max(since).to_string());
            return Ok((Some(parsed), f.etag, f.last_modified, cursor));
        }
        FeedUrl::Http(u) => u.clone(),
    };
    let mut url = base.clone();
    let path = format!("{}/events/restSearch", base.path().trim_end_matches('/'));
    url.set_path(&path);
    let limit = feed.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut parsed = Parsed::default();
    let mut newest = since;
    let mut complete = false;
    for page in 1..=MAX_PAGES {
        let body = json!({
            "returnFormat": "json",
            "timestamp": since,
            "page": page,
            "limit": limit,
        });
        let a = api_request::send(
            client,
            feed,
            Method::POST,
            &url,
            headers.clone(),
            Some(&body),
        )
        .await?;
        let answer = a.json(feed, &url)?;
        let list = events(&answer).ok_or_else(|| FeedError::Request {
            feed: feed.name.clone(),
            url: redact_url(url.as_str()),
            message: "not a restSearch answer: no \"response\" list".into(),
        })?;
        if let Some(n) = read_events(feed, &list, &mut parsed)? {
            newest = newest.max(n);
        }
        if list.len() < limit {
            complete = true;
            break;
        }
    }
    tracing::debug!(feed = %feed.name, events = parsed.reports.len(), "MISP events read.");
    if !complete {
        // MISP does not promise to answer in timestamp order: moving the cursor past events
        // not fetched yet could skip them. Keep it; what was read is not stored twice.
        tracing::warn!(feed = %feed.name, pages = MAX_PAGES, "More MISP events than one poll reads; the cursor stays until a poll reads them all (raise page_size).");
        newest = since;
    }
    Ok((Some(parsed), None, None, Some(newest.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_only_tightens() {
        let mut d = ReportDraft::new("x", Tlp::Clear);
        apply_distribution(&mut d, Some(3));
        assert_eq!((d.tlp, d.scope), (Tlp::Clear, None));
        apply_distribution(&mut d, Some(2));
        assert_eq!(
            (d.tlp, d.scope),
            (Tlp::Green, Some(Scope::MembersAndSupported))
        );
        apply_distribution(&mut d, Some(1));
        assert_eq!((d.tlp, d.scope), (Tlp::Amber, Some(Scope::CouncilMembers)));
        // A looser distribution afterwards changes nothing.
        apply_distribution(&mut d, Some(2));
        assert_eq!((d.tlp, d.scope), (Tlp::Amber, Some(Scope::CouncilMembers)));
        for strict in [Some(0), Some(4), Some(9), None] {
            let mut d = ReportDraft::new("x", Tlp::Red);
            apply_distribution(&mut d, strict);
            assert_eq!(
                (d.tlp, d.scope),
                (Tlp::Red, Some(Scope::ProviderAndSecretariat))
            );
        }
    }

    #[test]
    fn events_of_a_rest_search_answer() {
        let a = json!({"response": [{"Event": {"info": "a"}}, {"Event": {"info": "b"}}]});
        assert_eq!(events(&a).unwrap().len(), 2);
        assert_eq!(events(&json!([{"Event": {"info": "a"}}])).unwrap().len(), 1);
        assert!(events(&json!({"errors": "no"})).is_none());
    }
}
