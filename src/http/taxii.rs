//! The TAXII 2.1 server (OASIS TAXII 2.1): members pull the council's campaigns into
//! their own tools (MISP, OpenCTI, SIEMs) and push their findings the same way.
//!
//! - `GET /taxii2/` discovery, `GET /taxii2/api/` the one API root;
//! - `GET /taxii2/api/collections/[{id}/]`, collections per audience
//!   ([`crate::outputs::taxii::COLLECTIONS`]);
//! - `GET|POST .../collections/{id}/objects/`, `GET .../objects/{object-id}/[versions/]`,
//!   `GET .../manifest/`; `GET /taxii2/api/status/{id}/` for POSTs.
//!
//! Authentication: HTTP Basic (any user name, the member's token as password) or a bearer
//! token. Every object comes from [`crate::council::ReadPath::taxii_objects`] — the policy's views
//! for the collection's viewer — so scope, release and TLP hold and providers are never named.
//! Errors use the TAXII error message and never say whether an object exists but is hidden.

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::{Value, json};

use super::auth;
use super::state::AppState;
use crate::council::Viewer;
use crate::council::read::Credential;
use crate::formats::{Outcome as FormatOutcome, OutcomeCounts, ParseContext, stix21};
use crate::model::{Member, ReportDraft};
use crate::outputs::stable_uuid;
use crate::outputs::stix::{self, parse_timestamp, timestamp};
use crate::outputs::taxii::{self as tx, Collection, Cursor, Filter, MEDIA_TYPE};

/// The TAXII routes, to be merged into the API router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/taxii2/", get(discovery))
        .route("/taxii2/api/", get(api_root))
        .route("/taxii2/api/status/{status}/", get(status))
        .route("/taxii2/api/collections/", get(collections))
        .route("/taxii2/api/collections/{id}/", get(collection))
        .route(
            "/taxii2/api/collections/{id}/objects/",
            get(objects).post(add_objects),
        )
        .route(
            "/taxii2/api/collections/{id}/objects/{object}/",
            get(object),
        )
        .route(
            "/taxii2/api/collections/{id}/objects/{object}/versions/",
            get(versions),
        )
        .route("/taxii2/api/collections/{id}/manifest/", get(manifest))
}

/// A TAXII error message (TAXII 2.1 §3.6.1).
#[derive(Debug)]
pub struct TaxiiError {
    status: StatusCode,
    title: &'static str,
    description: String,
    /// Seconds to wait, for a 429 (`Retry-After`).
    retry_after: Option<u64>,
}

impl TaxiiError {
    fn new(status: StatusCode, title: &'static str, description: impl Into<String>) -> Self {
        TaxiiError {
            status,
            title,
            description: description.into(),
            retry_after: None,
        }
    }

    fn not_found(what: &str) -> Self {
        TaxiiError::new(
            StatusCode::NOT_FOUND,
            "not found",
            format!("no {what} with that id"),
        )
    }

    fn bad_request(description: impl Into<String>) -> Self {
        TaxiiError::new(StatusCode::BAD_REQUEST, "bad request", description)
    }
}

impl From<crate::council::StoreError> for TaxiiError {
    fn from(e: crate::council::StoreError) -> Self {
        if e.is_storage_unavailable() {
            TaxiiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable",
                "the store cannot take writes now; nothing was stored, retry later",
            )
        } else {
            tracing::error!(error = %e, "Store error while serving TAXII.");
            TaxiiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                "internal error",
            )
        }
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = json!({
            "title": self.title,
            "description": self.description,
            "http_status": self.status.as_u16().to_string(),
        });
        let mut r = taxii_json(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"musubi TAXII\", Bearer"),
            );
        }
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

type TaxiiResult<T> = Result<T, TaxiiError>;

fn taxii_json(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    r
}

/// The member behind a TAXII request: Basic (token as password) or Bearer.
pub struct TaxiiMember(pub Member);

impl TaxiiMember {
    fn viewer(&self) -> Viewer {
        Viewer::of(&self.0)
    }
}

/// The credential of a TAXII request: HTTP Basic with the token as password, or Bearer.
fn credential_of(header: &str) -> Option<Credential> {
    auth::basic(header).or_else(|| auth::bearer(header))
}

impl FromRequestParts<AppState> for TaxiiMember {
    type Rejection = TaxiiError;

    /// Through the one authentication path ([`auth::authenticate`]): status and token
    /// generation checked now, and the same request budget as the API and the console.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> TaxiiResult<Self> {
        let unauthorized = || {
            TaxiiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a member token is required (HTTP Basic with the token as password, or Bearer)",
            )
        };
        let credential = auth::authorization(parts)
            .and_then(credential_of)
            .ok_or_else(unauthorized)?;
        let principal = match auth::authenticate(state, credential, &auth::Source::of(parts)).await
        {
            Ok(p) => p,
            Err(auth::Refused::Unauthorized) => return Err(unauthorized()),
            Err(auth::Refused::RateLimited { retry_after_secs }) => {
                let mut e = TaxiiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many requests",
                    "too many requests for this token; slow down",
                );
                e.retry_after = Some(retry_after_secs);
                return Err(e);
            }
            Err(auth::Refused::Store(e)) => return Err(e.into()),
        };
        check_accept(&parts.headers)?;
        Ok(TaxiiMember(principal.member))
    }
}

/// Refuses requests that accept neither TAXII 2.1 nor anything (TAXII 2.1 §1.6.8).
fn check_accept(headers: &HeaderMap) -> TaxiiResult<()> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let ok = accept.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or_default().trim();
        let versioned_other = part.contains("version=") && !part.contains("version=2.1");
        matches!(
            media,
            "application/taxii+json"
                | "application/stix+json"
                | "application/json"
                | "*/*"
                | "application/*"
        ) && !versioned_other
    });
    if ok {
        Ok(())
    } else {
        Err(TaxiiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not acceptable",
            format!("this server answers {MEDIA_TYPE}"),
        ))
    }
}

async fn discovery(_member: TaxiiMember) -> Response {
    taxii_json(
        StatusCode::OK,
        &json!({
            "title": "musubi TAXII 2.1",
            "description": "The council's campaigns and countermeasure information, per audience.",
            "contact": "the council secretariat",
            "default": "/taxii2/api/",
            "api_roots": ["/taxii2/api/"],
        }),
    )
}

async fn api_root(State(state): State<AppState>, _member: TaxiiMember) -> Response {
    taxii_json(
        StatusCode::OK,
        &json!({
            "title": "musubi",
            "description": "Campaigns correlated by the council, shared under its access policy.",
            "versions": [MEDIA_TYPE],
            "max_content_length": state.config.max_body_bytes,
        }),
    )
}

async fn collections(member: TaxiiMember) -> Response {
    let list: Vec<Value> = tx::COLLECTIONS
        .iter()
        .map(|c| c.resource(member.0.class))
        .collect();
    taxii_json(StatusCode::OK, &json!({ "collections": list }))
}

fn find(id: &str) -> TaxiiResult<&'static Collection> {
    tx::collection(id).ok_or_else(|| TaxiiError::not_found("collection"))
}

fn readable(id: &str, member: &TaxiiMember) -> TaxiiResult<&'static Collection> {
    let c = find(id)?;
    if !c.can_read(member.0.class) {
        return Err(TaxiiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your membership class may not read this collection",
        ));
    }
    Ok(c)
}

async fn collection(Path(id): Path<String>, member: TaxiiMember) -> TaxiiResult<Response> {
    let c = find(&id)?;
    Ok(taxii_json(StatusCode::OK, &c.resource(member.0.class)))
}

/// One page of a collection for the collection's viewer (the requesting member, every
/// member, or the public): the read path reads the page's rows only, visibility inside the
/// query, and the council's constant objects (identity, markings) are merged in by key.
async fn collection_page(
    state: &AppState,
    c: &Collection,
    requester: Viewer,
    filter: &Filter,
) -> TaxiiResult<tx::Page> {
    let mut all = stix::taxii_common_objects();
    if let Some(q) = filter.query() {
        let objects = state.read.taxii_objects(&c.viewer(&requester), q).await?;
        all.extend(objects.iter().map(stix::taxii_object));
    }
    Ok(tx::page(all, filter))
}

fn parse_filter(query: Option<&str>, single: Option<&str>) -> TaxiiResult<Filter> {
    let mut f = Filter {
        limit: tx::DEFAULT_LIMIT,
        ..Filter::default()
    };
    let list = |v: &str| -> Vec<String> { v.split(',').map(|s| s.trim().to_string()).collect() };
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "added_after" => {
                f.added_after = Some(parse_timestamp(&v).ok_or_else(|| {
                    TaxiiError::bad_request(format!("added_after {v:?} is not a timestamp"))
                })?)
            }
            "limit" => {
                f.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        TaxiiError::bad_request(format!("limit {v:?} is not a positive integer"))
                    })?
                    .min(tx::MAX_LIMIT)
            }
            "next" => {
                f.next = Some(Cursor::decode(&v).ok_or_else(|| {
                    TaxiiError::bad_request("next is not a cursor this server handed out")
                })?)
            }
            "match[id]" => f.ids.extend(list(&v)),
            "match[type]" => f.types.extend(list(&v)),
            "match[version]" => f
                .versions
                .extend(tx::parse_versions(&v).map_err(TaxiiError::bad_request)?),
            "match[spec_version]" => f.spec_versions.extend(list(&v)),
            _ => {}
        }
    }
    if let Some(id) = single {
        f.ids = vec![id.to_string()];
    }
    Ok(f)
}

fn with_range(mut r: Response, page: &tx::Page) -> Response {
    if let Some((first, last)) = page.added_range() {
        for (name, value) in [
            ("x-taxii-date-added-first", first),
            ("x-taxii-date-added-last", last),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers_mut().insert(name, v);
            }
        }
    }
    r
}

fn envelope(page: &tx::Page) -> Response {
    let mut body = json!({
        "more": page.more,
        "objects": page.objects.iter().map(|o| o.object.clone()).collect::<Vec<_>>(),
    });
    if let Some(n) = &page.next {
        body["next"] = json!(n);
    }
    with_range(taxii_json(StatusCode::OK, &body), page)
}

async fn objects(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    member: TaxiiMember,
) -> TaxiiResult<Response> {
    let c = readable(&id, &member)?;
    let filter = parse_filter(query.as_deref(), None)?;
    Ok(envelope(
        &collection_page(&state, c, member.viewer(), &filter).await?,
    ))
}

async fn object(
    State(state): State<AppState>,
    Path((id, object)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    member: TaxiiMember,
) -> TaxiiResult<Response> {
    let c = readable(&id, &member)?;
    let filter = parse_filter(query.as_deref(), Some(&object))?;
    let page = collection_page(&state, c, member.viewer(), &filter).await?;
    if page.objects.is_empty() {
        return Err(TaxiiError::not_found("object"));
    }
    Ok(envelope(&page))
}

async fn versions(
    State(state): State<AppState>,
    Path((id, object)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    member: TaxiiMember,
) -> TaxiiResult<Response> {
    let c = readable(&id, &member)?;
    let mut filter = parse_filter(query.as_deref(), Some(&object))?;
    filter.versions = vec![tx::VersionMatch::All];
    let page = collection_page(&state, c, member.viewer(), &filter).await?;
    if page.objects.is_empty() {
        return Err(TaxiiError::not_found("object"));
    }
    let body = json!({
        "more": page.more,
        "versions": page.objects.iter().map(|o| timestamp(o.version)).collect::<Vec<_>>(),
    });
    Ok(with_range(taxii_json(StatusCode::OK, &body), &page))
}

async fn manifest(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    member: TaxiiMember,
) -> TaxiiResult<Response> {
    let c = readable(&id, &member)?;
    let filter = parse_filter(query.as_deref(), None)?;
    let page = collection_page(&state, c, member.viewer(), &filter).await?;
    let mut body = json!({
        "more": page.more,
        "objects": page.objects.iter().map(|o| json!({
            "id": o.id,
            "date_added": timestamp(o.date_added),
            "version": timestamp(o.version),
            "media_type": stix::MEDIA_TYPE,
        })).collect::<Vec<_>>(),
    });
    if let Some(n) = &page.next {
        body["next"] = json!(n);
    }
    Ok(with_range(taxii_json(StatusCode::OK, &body), &page))
}

/// Status resources of recent POSTs, kept in memory (the most recent
/// [`STATUS_KEPT`]): a status only tells a client how its request went, the reports
/// themselves are in the store.
static STATUSES: LazyLock<Mutex<Statuses>> = LazyLock::new(Default::default);
const STATUS_KEPT: usize = 1000;

#[derive(Default)]
struct Statuses {
    by_id: HashMap<String, (crate::model::MemberId, Value)>,
    order: VecDeque<String>,
}

fn keep_status(member: &Member, id: String, status: Value) {
    let mut s = STATUSES.lock().unwrap_or_else(|p| p.into_inner());
    s.order.push_back(id.clone());
    s.by_id.insert(id, (member.id.clone(), status));
    while s.order.len() > STATUS_KEPT {
        if let Some(old) = s.order.pop_front() {
            s.by_id.remove(&old);
        }
    }
}

async fn status(Path(id): Path<String>, member: TaxiiMember) -> TaxiiResult<Response> {
    let s = STATUSES.lock().unwrap_or_else(|p| p.into_inner());
    match s.by_id.get(&id) {
        // Only the member who posted may read a status: it names what they submitted.
        Some((owner, body)) if *owner == member.0.id => Ok(taxii_json(StatusCode::OK, body)),
        _ => Err(TaxiiError::not_found("status")),
    }
}

/// What happened to one object of a TAXII submission, for the status resource.
struct Outcome {
    id: String,
    /// The object's `modified` (or `created`), if it has one.
    version: Option<String>,
    /// Why it was refused.
    message: Option<String>,
}

/// The TLP of submissions that carry no TLP marking: AMBER (council members only), the
/// narrowest label that still lets the council correlate and share among members.
const DEFAULT_TLP: crate::model::Tlp = crate::model::Tlp::Amber;

fn outcomes(list: &[Outcome]) -> Vec<Value> {
    list.iter()
        .map(|o| {
            let mut v = json!({"id": o.id});
            if let Some(ver) = &o.version {
                v["version"] = json!(ver);
            }
            if let Some(m) = &o.message {
                v["message"] = json!(m);
            }
            v
        })
        .collect()
}

/// The objects of an envelope through the same STIX reader as file import and the API
/// (`formats::stix21`): each object that would give observables is checked strictly
/// ([`stix21::object_problem`]) and refused alone, with its reason; the rest are read as
/// one bundle. Nothing of a refused object is stored, and when nothing at all is stored no
/// object is reported as a success.
fn convert(objects: &[Value]) -> Result<Converted, String> {
    let (mut good, mut successes, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for (n, o) in objects.iter().enumerate() {
        let outcome = |message: Option<String>| Outcome {
            id: o
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("(object {n} without id)")),
            version: o
                .get("modified")
                .or_else(|| o.get("created"))
                .and_then(Value::as_str)
                .map(str::to_string),
            message,
        };
        let problem = match o.get("type").and_then(Value::as_str).unwrap_or_default() {
            "" => Some("object without a type".to_string()),
            "sighting" => Some("sightings are reported with POST /api/v1/sightings".to_string()),
            _ if o.get("id").and_then(Value::as_str).is_none() => {
                Some("object without an id".to_string())
            }
            _ => stix21::object_problem(o),
        };
        match problem {
            Some(reason) => failures.push(outcome(Some(reason))),
            None => {
                good.push(o.clone());
                successes.push(outcome(None));
            }
        }
    }
    let bundle = json!({
        "type": "bundle",
        "id": format!("bundle--{}", uuid::Uuid::new_v4()),
        "objects": good,
    });
    let ctx = ParseContext {
        default_tlp: DEFAULT_TLP,
        ..ParseContext::default()
    };
    let parsed = stix21::parse(bundle.to_string().as_bytes(), &ctx).map_err(|e| e.to_string())?;
    // Each taken object says what became of it when it was not kept as it was (a pattern
    // kept as text, a type musubi has no use for), so that nothing is silently dropped.
    let items = OutcomeCounts::of(&parsed.items);
    for item in &parsed.items {
        let note = match &item.outcome {
            FormatOutcome::Kept => continue,
            FormatOutcome::Normalised { why } => format!("normalised: {why}"),
            FormatOutcome::Skipped { why } => format!("skipped: {why}"),
        };
        if let Some(o) = successes.iter_mut().find(|o| o.id == item.at) {
            o.message = Some(note);
        }
    }
    let drafts: Vec<ReportDraft> = parsed
        .reports
        .into_iter()
        .filter(|d| !d.indicators.is_empty())
        .collect();
    if drafts.is_empty() {
        for mut o in std::mem::take(&mut successes) {
            o.message = Some("not stored: no object of this envelope gives an observable".into());
            failures.push(o);
        }
    }
    Ok(Converted {
        drafts,
        successes,
        failures,
        items,
    })
}

/// What one envelope gave: the drafts to store and each object's outcome.
struct Converted {
    drafts: Vec<ReportDraft>,
    successes: Vec<Outcome>,
    failures: Vec<Outcome>,
    /// How many of the taken objects were kept, normalised, skipped.
    items: OutcomeCounts,
}

/// A POSTed envelope (or bundle) is a submission, through the same store writer as the
/// API's `POST /api/v1/reports`.
async fn add_objects(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    member: TaxiiMember,
    body: Bytes,
) -> TaxiiResult<Response> {
    let c = find(&id)?;
    if !c.can_read(member.0.class) || !c.can_write {
        return Err(TaxiiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this collection does not take submissions from you; post to the members collection",
        ));
    }
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/taxii+json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !matches!(
        media.as_str(),
        "application/taxii+json" | "application/stix+json" | "application/json"
    ) {
        return Err(TaxiiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            format!("send an envelope as {MEDIA_TYPE}"),
        ));
    }
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|e| TaxiiError::bad_request(format!("the body is not JSON: {e}")))?;
    let objects = doc
        .get("objects")
        .and_then(Value::as_array)
        .ok_or_else(|| TaxiiError::bad_request("expected an envelope or bundle with objects"))?;
    let Converted {
        drafts,
        successes,
        failures,
        items,
    } = convert(objects).map_err(TaxiiError::bad_request)?;
    let request_time = Utc::now();
    if !drafts.is_empty() {
        state.submit(&member.0.id, drafts, request_time).await?;
    }
    let status_id = stable_uuid(&format!(
        "taxii-status|{}|{}|{}",
        member.0.id,
        request_time.timestamp_nanos_opt().unwrap_or_default(),
        rand::random::<u64>()
    ))
    .to_string();
    let (ok, failed) = (successes.len(), failures.len());
    let body = json!({
        "id": status_id,
        "status": "complete",
        "request_timestamp": timestamp(request_time),
        "total_count": ok + failed,
        "success_count": ok,
        "successes": outcomes(&successes),
        "failure_count": failed,
        "failures": outcomes(&failures),
        "pending_count": 0,
        "pendings": [],
        // A custom property (STIX/TAXII `x_` convention): the taken objects' outcomes.
        "x_musubi_items": items,
    });
    tracing::info!(
        collection = c.alias,
        taken = ok,
        refused = failed,
        "Took a TAXII submission."
    );
    keep_status(&member.0, status_id, body.clone());
    Ok(taxii_json(StatusCode::ACCEPTED, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn tokens_from_basic_and_bearer() {
        let b = base64::engine::general_purpose::STANDARD.encode("anyone:msb_secret");
        let t = |s: &str| Some(Credential::Token(s.into()));
        assert_eq!(credential_of(&format!("Basic {b}")), t("msb_secret"));
        assert_eq!(credential_of("Bearer msb_x"), t("msb_x"));
        assert_eq!(credential_of("Basic !!!"), None);
        assert_eq!(credential_of("Digest x"), None);
    }
}
