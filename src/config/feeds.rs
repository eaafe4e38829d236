//! `feeds.toml`: the public feeds musubi polls.
//!
//! ```toml
//! [[feed]]
//! name = "cisa-kev"
//! url = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
//! format = "kev"
//! schedule = "0 15 */6 * * * *"   # cron, seconds first: sec min hour day-of-month month day-of-week [year]
//! timezone = "+09:00"             # optional; "UTC" (default) or a fixed offset such as "+09:00"
//! enabled = true                  # default true
//! tlp = "clear"                   # default TLP for items without their own marking; default "clear"
//! timeout = "60s"                 # whole request; default 60s (an integer means seconds)
//! max_bytes = "50MB"              # body cap; default 50MB (an integer means bytes)
//! reliability = "B"               # Admiralty source reliability A-F; optional
//! headers = { Authorization = "env:NVD_API_KEY" }  # values only from the environment
//! allow_private = false           # default false; see below
//! ```
//!
//! `url` is `https://` (or `http://`, for loopback tests and internal mirrors) or `file://`;
//! a relative `file://` path is taken relative to the directory of `feeds.toml`.
//!
//! A feed never reaches loopback, private (RFC 1918, ULA), link-local, unspecified or
//! multicast addresses — neither its own URL nor a redirect, whether the address is written
//! in the URL or is what a name resolves to — unless it says `allow_private = true`: a
//! public feed that redirects to `127.0.0.1` would otherwise have musubi fetch internal
//! services and store their answers as public items.
//!
//! Credentials in a URL (`user:pass@`, `?apikey=...`) are never shown: every message and
//! stored state goes through `model::redact`. Prefer `headers`.
//! `format` is any name [`Format`] accepts; `format = "blocklist"` may be refined by a
//! `[feed.blocklist]` table (`kind`, `column`, `delimiter`, `comment_prefixes`,
//! `skip_header`, `prefix_column`).
//!
//! Two feed kinds speak an API instead of fetching one document:
//!
//! ```toml
//! [[feed]]                        # a collection on another TAXII 2.1 server
//! name = "sharing-body-x"
//! url = "https://taxii.example.org/taxii2/"   # the discovery URL or the API root
//! format = "taxii"
//! collection = "9ee8a9d2-..."     # the collection id
//! username_env = "X_TAXII_USER"   # HTTP Basic from the environment (or a bearer token
//! password_env = "X_TAXII_PASS"   #   with headers = { Authorization = "env:VAR" })
//! page_size = 100                 # objects per request (optional)
//! schedule = "0 0 * * * * *"
//!
//! [[feed]]                        # a member's own MISP instance
//! name = "misp-a"
//! url = "https://misp.member.example"         # the MISP base URL
//! format = "misp-api"
//! member = "m079"                 # the member (id or name) whose submissions these are
//! headers = { Authorization = "env:MISP_A_KEY" }   # the MISP API key
//! schedule = "0 */10 * * * * *"
//! ```
//!
//! Either may also read a stored answer from a `file://` URL (one TAXII envelope, one
//! restSearch answer): the demo's offline samples. A `misp-api` feed's `tlp` defaults to
//! `"amber"` (a member's material), not `"clear"`. Every member sees feed names and their
//! last success (`GET /api/v1/feeds`): name a member's feed without naming the member.
//! `timeout` covers a whole poll, every page of it.
//!
//! Schedules are evaluated in the feed's `timezone`, UTC when absent. Only fixed offsets are
//! accepted (no DST rules are shipped); Japan has no DST, so `"+09:00"` is exact for JST.
//!
//! Validation collects every problem of every feed, each prefixed with the feed name, and
//! fails once with the whole list, so an operator fixes the file in one pass.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::FixedOffset;
use serde::Deserialize;

use crate::formats::{BlocklistSpec, Format};
use crate::model::redact::redact_url;
use crate::model::{ObservableKind, Tlp};

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default body cap: 50 MB holds the NVD 1.1 yearly feeds and the KEV catalogue.
pub const DEFAULT_MAX_BYTES: u64 = 50 * 1000 * 1000;

/// Why `feeds.toml` could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FeedsConfigError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid TOML: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("{path}: {} problem(s):\n  {}", problems.len(), problems.join("\n  "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

/// Where a feed is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedUrl {
    Http(url::Url),
    File(PathBuf),
}

impl std::fmt::Display for FeedUrl {
    /// Redacted: a URL is shown in errors, logs and feed health, never with credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeedUrl::Http(u) => f.write_str(&redact_url(u.as_str())),
            FeedUrl::File(p) => write!(f, "file://{}", p.display()),
        }
    }
}

/// An extra request header; the value is read from the environment when the feed is
/// polled, so secrets never sit in `feeds.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFromEnv {
    pub name: String,
    pub env_var: String,
}

/// Admiralty-scale source reliability (A = completely reliable … F = cannot be judged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reliability {
    A,
    B,
    C,
    D,
    E,
    F,
}

impl FromStr for Reliability {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s.trim().to_ascii_uppercase().as_str() {
            "A" => Reliability::A,
            "B" => Reliability::B,
            "C" => Reliability::C,
            "D" => Reliability::D,
            "E" => Reliability::E,
            "F" => Reliability::F,
            _ => return Err(()),
        })
    }
}

/// How a feed is fetched: one document, or a conversation with an API.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FeedProtocol {
    /// One document per poll (conditional GET or a file).
    #[default]
    Document,
    /// A TAXII 2.1 collection (`format = "taxii"`): discovery, API root, collection,
    /// objects paged with `added_after`; the objects are read as STIX 2.1.
    Taxii {
        /// The collection id; `None` only for a `file://` envelope.
        collection: Option<String>,
    },
    /// A member's MISP instance (`format = "misp-api"`): `/events/restSearch` paged with
    /// `timestamp`; the events are that member's submissions.
    MispApi {
        /// The member, as written (id or name); resolved when the events are stored.
        member: String,
    },
}

/// HTTP Basic credentials named by environment variables (never literal values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuthFromEnv {
    pub username_env: String,
    pub password_env: String,
}

/// One validated feed.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub name: String,
    pub url: FeedUrl,
    pub format: Format,
    pub schedule: cron::Schedule,
    /// The schedule as written, for listings.
    pub schedule_text: String,
    /// The zone the schedule is evaluated in (UTC unless `timezone` says otherwise).
    pub timezone: FixedOffset,
    pub enabled: bool,
    pub tlp: Tlp,
    pub timeout: Duration,
    pub max_bytes: u64,
    pub headers: Vec<HeaderFromEnv>,
    pub reliability: Option<Reliability>,
    /// May this feed (and its redirects) reach loopback, private, link-local, unspecified
    /// or multicast addresses? Off unless `feeds.toml` says `allow_private = true`.
    pub allow_private: bool,
    /// Document, TAXII collection or MISP instance.
    pub protocol: FeedProtocol,
    /// HTTP Basic credentials (TAXII feeds), from the environment.
    pub basic_auth: Option<BasicAuthFromEnv>,
    /// Objects (TAXII) or events (MISP) asked for per request; the protocol's default when
    /// absent.
    pub page_size: Option<usize>,
}

impl FeedConfig {
    /// A minimal feed (used by tests and by `musubi import --feed`).
    pub fn new(name: &str, url: FeedUrl, format: Format) -> FeedConfig {
        FeedConfig {
            name: name.to_string(),
            url,
            format,
            schedule: "0 0 * * * * *".parse().expect("static cron expression"),
            schedule_text: "0 0 * * * * *".to_string(),
            timezone: FixedOffset::east_opt(0).expect("zero offset"),
            enabled: true,
            tlp: Tlp::Clear,
            timeout: DEFAULT_TIMEOUT,
            max_bytes: DEFAULT_MAX_BYTES,
            headers: Vec::new(),
            reliability: None,
            allow_private: false,
            protocol: FeedProtocol::Document,
            basic_auth: None,
            page_size: None,
        }
    }

    /// The `format` as written in `feeds.toml` (`taxii` and `misp-api` are read as STIX and
    /// MISP, but are shown as what the operator configured).
    pub fn format_name(&self) -> &str {
        match self.protocol {
            FeedProtocol::Taxii { .. } => "taxii",
            FeedProtocol::MispApi { .. } => "misp-api",
            FeedProtocol::Document => self.format.name(),
        }
    }

    /// The next scheduled poll strictly after `after`.
    pub fn next_run(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let local = after.with_timezone(&self.timezone);
        self.schedule
            .after(&local)
            .next()
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

/// All feeds of `feeds.toml`.
#[derive(Debug, Clone, Default)]
pub struct FeedsConfig {
    pub feeds: Vec<FeedConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    feed: Vec<RawFeed>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    name: Option<String>,
    url: Option<String>,
    format: Option<String>,
    schedule: Option<String>,
    timezone: Option<String>,
    enabled: Option<bool>,
    tlp: Option<String>,
    timeout: Option<toml::Value>,
    max_bytes: Option<toml::Value>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    reliability: Option<String>,
    allow_private: Option<bool>,
    blocklist: Option<RawBlocklist>,
    collection: Option<String>,
    member: Option<String>,
    username_env: Option<String>,
    password_env: Option<String>,
    page_size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlocklist {
    kind: Option<String>,
    column: Option<usize>,
    delimiter: Option<String>,
    comment_prefixes: Option<Vec<String>>,
    skip_header: Option<bool>,
    prefix_column: Option<usize>,
}

fn parse_duration(v: &toml::Value) -> Result<Duration, String> {
    match v {
        toml::Value::Integer(n) if *n > 0 => Ok(Duration::from_secs(*n as u64)),
        toml::Value::String(s) => {
            let s = s.trim();
            let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
                (n, 0.001)
            } else if let Some(n) = s.strip_suffix('s') {
                (n, 1.0)
            } else if let Some(n) = s.strip_suffix('m') {
                (n, 60.0)
            } else if let Some(n) = s.strip_suffix('h') {
                (n, 3600.0)
            } else {
                (s, 1.0)
            };
            let n: f64 = num
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a duration (e.g. \"30s\", \"2m\", 45)"))?;
            if n <= 0.0 {
                return Err("must be greater than zero".into());
            }
            Ok(Duration::from_secs_f64(n * mult))
        }
        _ => Err("must be a positive number of seconds or a string such as \"30s\"".into()),
    }
}

fn parse_bytes(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::Integer(n) if *n > 0 => Ok(*n as u64),
        toml::Value::String(s) => {
            let t = s.trim().to_ascii_uppercase();
            let units: [(&str, u64); 7] = [
                ("GIB", 1 << 30),
                ("MIB", 1 << 20),
                ("KIB", 1 << 10),
                ("GB", 1_000_000_000),
                ("MB", 1_000_000),
                ("KB", 1_000),
                ("B", 1),
            ];
            let (num, mult) = units
                .iter()
                .find_map(|(u, m)| t.strip_suffix(u).map(|n| (n.trim().to_string(), *m)))
                .unwrap_or((t.clone(), 1));
            let n: u64 = num
                .parse()
                .map_err(|_| format!("{s:?} is not a size (e.g. \"10MB\", 1048576)"))?;
            if n == 0 {
                return Err("must be greater than zero".into());
            }
            Ok(n * mult)
        }
        _ => Err("must be a positive number of bytes or a string such as \"10MB\"".into()),
    }
}

fn parse_offset(s: &str) -> Result<FixedOffset, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    if t == "Asia/Tokyo" || t.eq_ignore_ascii_case("jst") {
        return Ok(FixedOffset::east_opt(9 * 3600).expect("JST"));
    }
    let sign = match t.chars().next() {
        Some('+') => 1,
        Some('-') => -1,
        _ => {
            return Err(format!(
                "timezone {s:?} must be \"UTC\" or an offset such as \"+09:00\""
            ));
        }
    };
    let (h, m) = t[1..].split_once(':').unwrap_or((&t[1..], "0"));
    let (Ok(h), Ok(m)) = (h.parse::<i32>(), m.parse::<i32>()) else {
        return Err(format!(
            "timezone {s:?} must be \"UTC\" or an offset such as \"+09:00\""
        ));
    };
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
        .ok_or_else(|| format!("timezone {s:?} is out of range"))
}

fn parse_url(raw: &str, base_dir: &Path) -> Result<FeedUrl, String> {
    if let Some(path) = raw.strip_prefix("file://") {
        if path.is_empty() {
            return Err("file:// URL has no path".into());
        }
        let p = PathBuf::from(path);
        return Ok(FeedUrl::File(if p.is_absolute() {
            p
        } else {
            base_dir.join(p)
        }));
    }
    let shown = redact_url(raw);
    let u = url::Url::parse(raw).map_err(|e| format!("url {shown:?} is invalid: {e}"))?;
    match u.scheme() {
        "https" | "http" if u.has_host() => Ok(FeedUrl::Http(u)),
        _ => Err(format!("url {shown:?} must start with https:// or file://")),
    }
}

fn blocklist_spec(
    base: BlocklistSpec,
    raw: &RawBlocklist,
    problems: &mut Vec<String>,
) -> BlocklistSpec {
    let mut spec = base;
    if let Some(k) = &raw.kind {
        match k.parse::<ObservableKind>() {
            Ok(k) => spec.kind = Some(k),
            Err(e) => problems.push(format!("blocklist.kind: {e}")),
        }
    }
    if let Some(c) = raw.column {
        spec.column = c;
    }
    if let Some(d) = &raw.delimiter {
        let d = if d == "\\t" || d == "tab" {
            "\t"
        } else {
            d.as_str()
        };
        let mut chars = d.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => spec.delimiter = Some(c),
            _ => problems.push(format!("blocklist.delimiter {d:?} must be one character")),
        }
    }
    if let Some(c) = &raw.comment_prefixes {
        spec.comment_prefixes = c.clone();
    }
    if let Some(s) = raw.skip_header {
        spec.skip_header = s;
    }
    if raw.prefix_column.is_some() {
        spec.prefix_column = raw.prefix_column;
    }
    spec
}

/// The protocol `format` asks for, checking `collection` and `member` belong to it.
fn protocol(f: &RawFeed, url: Option<&FeedUrl>, p: &mut Vec<String>) -> FeedProtocol {
    let is_file = matches!(url, Some(FeedUrl::File(_)));
    fn named(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    match f.format.as_deref() {
        Some("taxii") => {
            let collection = named(&f.collection).map(str::to_string);
            if collection.is_none() && !is_file {
                p.push("format = \"taxii\" needs collection = \"<collection id>\"".into());
            }
            if f.member.is_some() {
                p.push("member is for format = \"misp-api\"".into());
            }
            FeedProtocol::Taxii { collection }
        }
        Some("misp-api") => {
            if f.collection.is_some() {
                p.push("collection is for format = \"taxii\"".into());
            }
            match named(&f.member) {
                Some(m) => FeedProtocol::MispApi {
                    member: m.to_string(),
                },
                None => {
                    p.push("format = \"misp-api\" needs member = \"<member id or name>\" (the events are that member's submissions)".into());
                    FeedProtocol::Document
                }
            }
        }
        _ => {
            if f.collection.is_some() {
                p.push("collection is for format = \"taxii\"".into());
            }
            if f.member.is_some() {
                p.push("member is for format = \"misp-api\"".into());
            }
            if f.page_size.is_some() {
                p.push("page_size is for format = \"taxii\" or \"misp-api\"".into());
            }
            FeedProtocol::Document
        }
    }
}

impl FeedsConfig {
    /// Loads and validates `feeds.toml`.
    pub fn load(path: &Path) -> Result<FeedsConfig, FeedsConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| FeedsConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        FeedsConfig::parse(&text, base).map_err(|e| match e {
            ParseFailure::Toml(message) => FeedsConfigError::Toml {
                path: path.to_path_buf(),
                message,
            },
            ParseFailure::Invalid(problems) => FeedsConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            },
        })
    }

    /// Parses and validates the text of `feeds.toml`; relative `file://` paths are resolved
    /// against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<FeedsConfig, ParseFailure> {
        let raw: RawFile = toml::from_str(text).map_err(|e| ParseFailure::Toml(e.to_string()))?;
        let mut problems = Vec::new();
        let mut feeds = Vec::new();
        let mut names = HashSet::new();
        for (i, f) in raw.feed.into_iter().enumerate() {
            let label = match &f.name {
                Some(n) if !n.trim().is_empty() => format!("feed {n:?}"),
                _ => format!("feed #{}", i + 1),
            };
            let mut p: Vec<String> = Vec::new();
            let name = f.name.clone().unwrap_or_default();
            if name.trim().is_empty() {
                p.push("name is missing".into());
            } else if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                p.push("name may contain only letters, digits, '-', '_' and '.'".into());
            } else if !names.insert(name.clone()) {
                p.push("name is used by another feed".into());
            }
            let url = match f.url.as_deref() {
                None => {
                    p.push("url is missing".into());
                    None
                }
                Some(u) => parse_url(u, base_dir).map_err(|e| p.push(e)).ok(),
            };
            let protocol = protocol(&f, url.as_ref(), &mut p);
            let format = match f.format.as_deref() {
                None => {
                    p.push("format is missing".into());
                    None
                }
                Some("taxii") => Some(Format::Stix21),
                Some("misp-api") => Some(Format::Misp),
                Some(s) => s.parse::<Format>().map_err(|e| p.push(e.to_string())).ok(),
            };
            let basic_auth = match (&f.username_env, &f.password_env) {
                (None, None) => None,
                (Some(u), Some(pw)) if !u.is_empty() && !pw.is_empty() => {
                    if !matches!(protocol, FeedProtocol::Taxii { .. }) {
                        p.push("username_env/password_env are for format = \"taxii\"".into());
                    }
                    Some(BasicAuthFromEnv {
                        username_env: u.clone(),
                        password_env: pw.clone(),
                    })
                }
                _ => {
                    p.push("username_env and password_env go together (names of environment variables)".into());
                    None
                }
            };
            if f.page_size == Some(0) {
                p.push("page_size must be greater than zero".into());
            }
            let format = match (format, &f.blocklist) {
                (Some(Format::Blocklist(spec)), Some(raw)) => {
                    Some(Format::Blocklist(blocklist_spec(spec, raw, &mut p)))
                }
                (Some(_), Some(_)) => {
                    p.push("a [blocklist] table needs format = \"blocklist\"".into());
                    None
                }
                (Some(Format::Native), None) => {
                    p.push("format native is for submissions, not feeds".into());
                    None
                }
                (f, None) => f,
                (None, Some(_)) => None,
            };
            let schedule_text = f.schedule.clone().unwrap_or_default();
            let schedule = match f.schedule.as_deref() {
                None => {
                    p.push("schedule is missing".into());
                    None
                }
                Some(s) => cron::Schedule::from_str(s)
                    .map_err(|e| {
                        p.push(format!(
                            "schedule {s:?} is not a cron expression (seconds first, e.g. \"0 30 * * * *\"): {e}"
                        ))
                    })
                    .ok(),
            };
            let timezone = match f.timezone.as_deref() {
                None => Some(FixedOffset::east_opt(0).expect("zero offset")),
                Some(t) => parse_offset(t).map_err(|e| p.push(e)).ok(),
            };
            let tlp = match f.tlp.as_deref() {
                // A member's own events without a marking: AMBER, as for its STIX
                // submissions (`sources::submission`); public feeds default to CLEAR.
                None if matches!(protocol, FeedProtocol::MispApi { .. }) => Some(Tlp::Amber),
                None => Some(Tlp::Clear),
                Some(t) => t.parse::<Tlp>().map_err(|e| p.push(e.to_string())).ok(),
            };
            let timeout = match &f.timeout {
                None => Some(DEFAULT_TIMEOUT),
                Some(v) => parse_duration(v)
                    .map_err(|e| p.push(format!("timeout: {e}")))
                    .ok(),
            };
            let max_bytes = match &f.max_bytes {
                None => Some(DEFAULT_MAX_BYTES),
                Some(v) => parse_bytes(v)
                    .map_err(|e| p.push(format!("max_bytes: {e}")))
                    .ok(),
            };
            let reliability = match f.reliability.as_deref() {
                None => Some(None),
                Some(r) => r
                    .parse::<Reliability>()
                    .map(Some)
                    .map_err(|_| p.push(format!("reliability {r:?} must be one of A-F")))
                    .ok(),
            };
            let mut headers = Vec::new();
            for (k, v) in &f.headers {
                if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                    p.push(format!("header name {k:?} is invalid"));
                }
                match v.strip_prefix("env:") {
                    Some(var) if !var.is_empty() => headers.push(HeaderFromEnv {
                        name: k.clone(),
                        env_var: var.to_string(),
                    }),
                    _ => p.push(format!(
                        "header {k} must name an environment variable (\"env:VAR\"); literal values would put secrets in feeds.toml"
                    )),
                }
            }
            if let Some(FeedUrl::File(_)) = &url
                && !headers.is_empty()
            {
                p.push("headers make no sense for a file:// feed".into());
            }
            if p.is_empty() {
                feeds.push(FeedConfig {
                    name,
                    url: url.expect("checked"),
                    format: format.expect("checked"),
                    schedule: schedule.expect("checked"),
                    schedule_text,
                    timezone: timezone.expect("checked"),
                    enabled: f.enabled.unwrap_or(true),
                    tlp: tlp.expect("checked"),
                    timeout: timeout.expect("checked"),
                    max_bytes: max_bytes.expect("checked"),
                    headers,
                    reliability: reliability.expect("checked"),
                    allow_private: f.allow_private.unwrap_or(false),
                    protocol,
                    basic_auth,
                    page_size: f.page_size,
                });
            } else {
                problems.extend(p.into_iter().map(|m| format!("{label}: {m}")));
            }
        }
        if problems.is_empty() {
            Ok(FeedsConfig { feeds })
        } else {
            Err(ParseFailure::Invalid(problems))
        }
    }

    /// The feeds to poll.
    pub fn enabled(&self) -> impl Iterator<Item = &FeedConfig> {
        self.feeds.iter().filter(|f| f.enabled)
    }
}

/// Why the text of `feeds.toml` was rejected (without the file path; see [`FeedsConfigError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseFailure {
    Toml(String),
    Invalid(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_feed_with_defaults() {
        let c = FeedsConfig::parse(
            r#"
            [[feed]]
            name = "kev"
            url = "file://feeds/kev.json"
            format = "kev"
            schedule = "0 0 8 * * Mon-Fri *"
            timezone = "+09:00"
            "#,
            Path::new("/etc/musubi"),
        )
        .unwrap();
        let f = &c.feeds[0];
        assert_eq!(f.url, FeedUrl::File("/etc/musubi/feeds/kev.json".into()));
        assert_eq!(f.timeout, DEFAULT_TIMEOUT);
        // 08:00 JST is 23:00 UTC the day before.
        let after = chrono::DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            f.next_run(after).unwrap().to_rfc3339(),
            "2026-11-24T23:00:00+00:00"
        );
    }

    #[test]
    fn every_problem_is_listed_with_the_feed_name() {
        let err = FeedsConfig::parse(
            r#"
            [[feed]]
            name = "bad"
            url = "ftp://x"
            format = "yaml"
            schedule = "every day"
            tlp = "purple"
            timeout = "soon"
            headers = { Authorization = "Bearer 123" }
            reliability = "Z"

            [[feed]]
            url = "https://example.org/x"
            format = "kev"
            schedule = "0 0 * * * *"
            "#,
            Path::new("."),
        )
        .unwrap_err();
        let ParseFailure::Invalid(p) = err else {
            panic!("{err:?}")
        };
        assert_eq!(p.len(), 8, "{p:#?}");
        assert!(
            p[..7].iter().all(|m| m.starts_with("feed \"bad\": ")),
            "{p:#?}"
        );
        assert_eq!(p[7], "feed #2: name is missing");
    }

    #[test]
    fn a_feed_url_is_shown_redacted() {
        let shown = FeedUrl::Http("https://u:p@h.example/x?key=K9".parse().unwrap()).to_string();
        assert_eq!(shown, "https://REDACTED@h.example/x?key=REDACTED");
    }

    #[test]
    fn invalid_url_errors_do_not_echo_credentials() {
        let err = FeedsConfig::parse(
            r#"
            [[feed]]
            name = "x"
            url = "ftp://u:hunter2@example.org/?apikey=K7"
            format = "kev"
            schedule = "0 0 * * * *"
            "#,
            Path::new("."),
        )
        .unwrap_err();
        let text = format!("{err:?}");
        assert!(!text.contains("hunter2") && !text.contains("K7"), "{text}");
    }

    #[test]
    fn allow_private_is_off_unless_asked() {
        let c = FeedsConfig::parse(
            r#"
            [[feed]]
            name = "a"
            url = "http://127.0.0.1:8080/x"
            format = "kev"
            schedule = "0 0 * * * *"
            [[feed]]
            name = "b"
            url = "http://10.0.0.5/x"
            format = "kev"
            schedule = "0 0 * * * *"
            allow_private = true
            "#,
            Path::new("."),
        )
        .unwrap();
        assert!(!c.feeds[0].allow_private);
        assert!(c.feeds[1].allow_private);
    }

    #[test]
    fn blocklist_table_refines_the_spec() {
        let c = FeedsConfig::parse(
            r#"
            [[feed]]
            name = "urlhaus"
            url = "https://urlhaus.abuse.ch/downloads/csv_recent/"
            format = "blocklist"
            schedule = "0 */5 * * * *"
            max_bytes = "5MB"
            [feed.blocklist]
            kind = "url"
            column = 2
            delimiter = ","
            "#,
            Path::new("."),
        )
        .unwrap();
        let Format::Blocklist(spec) = &c.feeds[0].format else {
            panic!()
        };
        assert_eq!(
            (spec.kind, spec.column, spec.delimiter),
            (Some(ObservableKind::Url), 2, Some(','))
        );
        assert_eq!(c.feeds[0].max_bytes, 5_000_000);
    }

    #[test]
    fn taxii_and_misp_api_feeds() {
        let c = FeedsConfig::parse(
            r#"
            [[feed]]
            name = "x-taxii"
            url = "https://taxii.example.org/taxii2/"
            format = "taxii"
            collection = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
            username_env = "X_USER"
            password_env = "X_PASS"
            page_size = 50
            schedule = "0 0 * * * * *"
            [[feed]]
            name = "misp-m079"
            url = "https://misp.member.example"
            format = "misp-api"
            member = "m079"
            headers = { Authorization = "env:MISP_KEY" }
            schedule = "0 0 * * * * *"
            "#,
            Path::new("."),
        )
        .unwrap();
        assert_eq!(
            c.feeds[0].protocol,
            FeedProtocol::Taxii {
                collection: Some("91a7b528-80eb-42ed-a74d-c6fbd5a26116".into())
            }
        );
        assert_eq!(c.feeds[0].format, Format::Stix21);
        assert_eq!(c.feeds[0].page_size, Some(50));
        assert_eq!(
            c.feeds[0]
                .basic_auth
                .as_ref()
                .map(|b| b.password_env.as_str()),
            Some("X_PASS")
        );
        assert_eq!(
            c.feeds[1].protocol,
            FeedProtocol::MispApi {
                member: "m079".into()
            }
        );
        assert_eq!(c.feeds[1].format, Format::Misp);
        assert_eq!(
            c.feeds[1].tlp,
            Tlp::Amber,
            "a member's material is AMBER by default"
        );
        assert_eq!(c.feeds[0].tlp, Tlp::Clear);
        assert_eq!(
            (c.feeds[0].format_name(), c.feeds[1].format_name()),
            ("taxii", "misp-api")
        );
    }

    #[test]
    fn api_feeds_say_what_they_lack() {
        let err = FeedsConfig::parse(
            r#"
            [[feed]]
            name = "t"
            url = "https://taxii.example.org/taxii2/"
            format = "taxii"
            username_env = "X_USER"
            schedule = "0 0 * * * * *"
            [[feed]]
            name = "m"
            url = "https://misp.member.example"
            format = "misp-api"
            collection = "c"
            schedule = "0 0 * * * * *"
            [[feed]]
            name = "k"
            url = "https://example.org/kev.json"
            format = "kev"
            member = "m079"
            schedule = "0 0 * * * * *"
            "#,
            Path::new("."),
        )
        .unwrap_err();
        let ParseFailure::Invalid(p) = err else {
            panic!("{err:?}")
        };
        let all = p.join("\n");
        for want in [
            "feed \"t\": format = \"taxii\" needs collection",
            "feed \"t\": username_env and password_env go together",
            "feed \"m\": collection is for format = \"taxii\"",
            "feed \"m\": format = \"misp-api\" needs member",
            "feed \"k\": member is for format = \"misp-api\"",
        ] {
            assert!(all.contains(want), "{want}: {all}");
        }
    }
}
