//! Configuration: `musubi.toml` (the daemon), `feeds.toml` (feeds) and `rules/`.
//!
//! Raw TOML is read into `Raw*` structs, then validated into [`Config`]; validation reports
//! every problem at once, each with the file and key, so an operator fixes the file in one go.

pub mod feeds;
pub mod mail;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The default address of the HTTP server: loopback only until the operator opens it.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// The default request body limit (a large STIX bundle fits; a runaway upload does not).
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Errors while loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {}", problems.join("; "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    data: RawData,
    #[serde(default)]
    rules: RawRules,
    #[serde(default)]
    feeds: RawFeeds,
    #[serde(default)]
    smtp: Option<mail::RawSmtp>,
    #[serde(default)]
    digest: Vec<mail::RawDigest>,
    #[serde(default)]
    alerts: Option<mail::RawAlerts>,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    store: store::RawStore,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
}

/// How log lines are written to stderr: `plain` text for a terminal or the journal, or one
/// JSON object a line for a SIEM that ingests the daemon's log without a parser of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Plain,
    Json,
}

/// Requests per second each member may sustain (API, TAXII and console together).
/// Generous: group commit makes bursts cheap; the budget stops a runaway script.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 5_000.0;
/// Requests a member may send in one burst.
pub const DEFAULT_REQUEST_BURST: f64 = 10_000.0;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    max_body_bytes: Option<usize>,
    public_url: Option<String>,
    requests_per_second: Option<f64>,
    request_burst: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeeds {
    file: Option<PathBuf>,
}

/// The validated daemon configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from (None: built-in defaults).
    pub source: Option<PathBuf>,
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    /// The console's address as members reach it, used in links in mail; with `https://`
    /// the console's cookies are `Secure`.
    pub public_url: String,
    /// Each member's request budget, shared by the API, TAXII and the console: sustained
    /// requests per second and the largest burst.
    pub requests_per_second: f64,
    pub request_burst: f64,
    pub data_dir: PathBuf,
    pub rules_dir: PathBuf,
    pub feeds_file: PathBuf,
    /// SMTP, digests and alerts (mail is off without `[smtp]`).
    pub mail: mail::MailConfig,
    /// `[log] format`.
    pub log_format: LogFormat,
    /// `[store]`: SQLite in the data directory (default) or a PostgreSQL database.
    pub store: store::StoreBackend,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: None,
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            public_url: format!("http://{DEFAULT_LISTEN}"),
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            request_burst: DEFAULT_REQUEST_BURST,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            rules_dir: PathBuf::from("rules"),
            feeds_file: PathBuf::from("feeds.toml"),
            mail: mail::MailConfig::default(),
            log_format: LogFormat::Plain,
            store: store::StoreBackend::Sqlite,
        }
    }
}

impl Config {
    /// Loads `path`. Relative paths inside the file are relative to the file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Loads `path` if given, else `./musubi.toml` if present, else the defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Config::load(p),
            None if Path::new("musubi.toml").exists() => Config::load(Path::new("musubi.toml")),
            None => Ok(Config::default()),
        }
    }

    /// Parses configuration text read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let mut problems = Vec::new();
        let mut config = Config {
            source: Some(path.to_path_buf()),
            ..Config::default()
        };
        if let Some(listen) = raw.server.listen {
            match listen.parse() {
                Ok(a) => config.listen = a,
                Err(_) => problems.push(format!(
                    "server.listen: {listen:?} is not an address such as 127.0.0.1:7070"
                )),
            }
        }
        config.public_url = format!("http://{}", config.listen);
        if let Some(n) = raw.server.max_body_bytes {
            if n < 1024 {
                problems.push(format!("server.max_body_bytes: {n} is below 1024"));
            }
            config.max_body_bytes = n;
        }
        if let Some(url) = raw.server.public_url {
            match url::Url::parse(&url) {
                Ok(_) => config.public_url = url.trim_end_matches('/').to_string(),
                Err(e) => problems.push(format!("server.public_url: {url:?}: {e}")),
            }
        }
        match raw.server.requests_per_second {
            Some(v) if v.is_finite() && v > 0.0 => config.requests_per_second = v,
            Some(v) => problems.push(format!(
                "server.requests_per_second: {v} is not a positive number"
            )),
            None => {}
        }
        match raw.server.request_burst {
            Some(v) if v.is_finite() && v >= 1.0 => config.request_burst = v,
            Some(v) => problems.push(format!("server.request_burst: {v} is below 1")),
            None => {}
        }
        if let Some(dir) = raw.data.dir {
            config.data_dir = rel(dir);
        }
        config.rules_dir = rel(raw.rules.dir.unwrap_or_else(|| PathBuf::from("rules")));
        config.feeds_file = rel(raw
            .feeds
            .file
            .unwrap_or_else(|| PathBuf::from("feeds.toml")));
        match raw.log.format.as_deref() {
            None | Some("plain") => {}
            Some("json") => config.log_format = LogFormat::Json,
            Some(other) => problems.push(format!(
                "log.format: {other:?} is not a log format (plain or json)"
            )),
        }
        config.mail = mail::validate(raw.smtp, raw.digest, raw.alerts, base, &mut problems);
        config.store = store::validate(raw.store, base, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_problem() {
        let err = Config::parse(
            "[server]\nlisten = \"nowhere\"\nmax_body_bytes = 3\nrequests_per_second = 0\nrequest_burst = 0.5\n",
            Path::new("/etc/musubi/musubi.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("server.listen"), "{err}");
        assert!(err.contains("server.max_body_bytes"), "{err}");
        assert!(err.contains("server.requests_per_second"), "{err}");
        assert!(err.contains("server.request_burst"), "{err}");
        assert!(err.starts_with("/etc/musubi/musubi.toml"), "{err}");
    }

    #[test]
    fn log_format_is_plain_or_json() {
        let p = Path::new("m.toml");
        assert_eq!(Config::parse("", p).unwrap().log_format, LogFormat::Plain);
        let json = Config::parse("[log]\nformat = \"json\"\n", p).unwrap();
        assert_eq!(json.log_format, LogFormat::Json);
        let err = Config::parse("[log]\nformat = \"xml\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("log.format"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(Config::parse("[server]\nlisten_on = \"x\"\n", Path::new("m.toml")).is_err());
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let c = Config::parse(
            "[data]\ndir = \"state\"\n",
            Path::new("/etc/musubi/musubi.toml"),
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/etc/musubi/state"));
    }
}
