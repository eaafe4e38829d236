//! `[store]` in musubi.toml: which backend keeps the council's data.
//!
//! SQLite (the default) is one file in the data directory, for one server. PostgreSQL is
//! for a council that runs two or more nodes on one database (issue #16):
//!
//! ```toml
//! [store]
//! backend = "postgres"
//! url = "postgres://musubi@db.council.example:5432/musubi"
//! password_file = "/etc/musubi/pg-password"   # or the environment: MUSUBI_PG_PASSWORD
//! ```
//!
//! The password is never part of the configuration: a URL with one is refused, so that
//! musubi.toml can be read by every operator, kept in version control and printed by
//! `musubi check`. It comes from `password_file` (e.g. a systemd credential) when that is
//! set, else from `MUSUBI_PG_PASSWORD`; with neither, the server's own rules apply (trust,
//! peer, a client certificate).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

/// The environment variable that holds the PostgreSQL password when no `password_file` is
/// configured.
pub const PASSWORD_ENV: &str = "MUSUBI_PG_PASSWORD";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    backend: Option<String>,
    url: Option<String>,
    password_file: Option<PathBuf>,
}

/// The validated `[store]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreBackend {
    /// `musubi.sqlite3` in the data directory.
    #[default]
    Sqlite,
    Postgres(PostgresSettings),
}

impl StoreBackend {
    /// The name an operator writes in `backend =`.
    pub fn name(&self) -> &'static str {
        match self {
            StoreBackend::Sqlite => "sqlite",
            StoreBackend::Postgres(_) => "postgres",
        }
    }
}

/// Where the PostgreSQL store is and how to log in to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// `postgres://user@host:port/database`, without a password (checked).
    pub url: String,
    /// The file holding the password (trailing newline ignored), relative paths resolved
    /// against musubi.toml's folder.
    pub password_file: Option<PathBuf>,
}

/// A PostgreSQL setting that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PostgresSettingsError(pub String);

impl PostgresSettings {
    /// The client's settings: the URL's, and the password from `password_file` or
    /// [`PASSWORD_ENV`]. Reads the password file now (not when musubi.toml is loaded,
    /// which every command does), so a missing file fails the commands that connect.
    pub fn client_config(&self) -> Result<postgres::Config, PostgresSettingsError> {
        let mut config = client_config("store.url", &self.url)?;
        let password = match &self.password_file {
            Some(path) => Some(read_password_file("store.password_file", path)?),
            None => password_from_env(),
        };
        if let Some(p) = password {
            config.password(p);
        }
        Ok(config)
    }
}

/// The password in `path` (one line; the trailing newline is not part of it).
pub fn read_password_file(key: &str, path: &Path) -> Result<String, PostgresSettingsError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        PostgresSettingsError(format!("{key}: cannot read {}: {e}", path.display()))
    })?;
    let password = text.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(PostgresSettingsError(format!(
            "{key}: {} is empty",
            path.display()
        )));
    }
    Ok(password.to_string())
}

/// [`PASSWORD_ENV`], when set and not empty.
pub fn password_from_env() -> Option<String> {
    std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty())
}

/// Checks a PostgreSQL URL given under `key` (`store.url`, `--to`) and turns it into the
/// client's settings. Refuses a password in it, and a URL that names no user, host or
/// database. The error never repeats a URL that holds a password.
pub fn client_config(key: &str, url: &str) -> Result<postgres::Config, PostgresSettingsError> {
    let problem = |what: String| PostgresSettingsError(format!("{key}: {what}"));
    let example = "postgres://USER@HOST:PORT/DATABASE";
    let parsed =
        url::Url::parse(url).map_err(|e| problem(format!("not a URL such as {example} ({e})")))?;
    if parsed.password().is_some() || parsed.query_pairs().any(|(k, _)| k == "password") {
        return Err(problem(format!(
            "holds a password; give it in store.password_file or the environment variable \
             {PASSWORD_ENV}, never in the URL"
        )));
    }
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(problem(format!(
            "{url:?} is not a PostgreSQL URL such as {example}"
        )));
    }
    if parsed.username().is_empty() {
        return Err(problem(format!("{url:?} names no user ({example})")));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(problem(format!("{url:?} names no host ({example})")));
    }
    if parsed.path().trim_start_matches('/').is_empty() {
        return Err(problem(format!("{url:?} names no database ({example})")));
    }
    postgres::Config::from_str(url).map_err(|e| problem(format!("{url:?}: {e}")))
}

/// Validates `[store]`, adding each problem (naming its key) to `problems`.
pub(super) fn validate(raw: RawStore, base: &Path, problems: &mut Vec<String>) -> StoreBackend {
    let password_file = raw
        .password_file
        .map(|p| if p.is_absolute() { p } else { base.join(p) });
    match raw.backend.as_deref() {
        None | Some("sqlite") => {
            if raw.url.is_some() {
                problems.push("store.url: only used with backend = \"postgres\"".into());
            }
            if password_file.is_some() {
                problems.push("store.password_file: only used with backend = \"postgres\"".into());
            }
            StoreBackend::Sqlite
        }
        Some("postgres") => match raw.url {
            None => {
                problems.push("store.url: missing although store.backend is \"postgres\"".into());
                StoreBackend::Sqlite
            }
            Some(url) => {
                if let Err(e) = client_config("store.url", &url) {
                    problems.push(e.0);
                }
                StoreBackend::Postgres(PostgresSettings { url, password_file })
            }
        },
        Some(other) => {
            problems.push(format!(
                "store.backend: {other:?} is not a backend (sqlite or postgres)"
            ));
            StoreBackend::Sqlite
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(toml_text: &str) -> Vec<String> {
        let raw: RawStore = toml::from_str(toml_text).unwrap();
        let mut problems = Vec::new();
        validate(raw, Path::new("/etc/musubi"), &mut problems);
        problems
    }

    #[test]
    fn sqlite_is_the_default() {
        let mut p = Vec::new();
        assert_eq!(
            validate(RawStore::default(), Path::new("."), &mut p),
            StoreBackend::Sqlite
        );
        assert!(p.is_empty());
    }

    #[test]
    fn postgres_takes_a_url_and_a_password_file_beside_the_configuration() {
        let raw: RawStore = toml::from_str(
            "backend = \"postgres\"\nurl = \"postgres://musubi@db:5432/musubi\"\npassword_file = \"pg-password\"\n",
        )
        .unwrap();
        let mut p = Vec::new();
        let backend = validate(raw, Path::new("/etc/musubi"), &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            backend,
            StoreBackend::Postgres(PostgresSettings {
                url: "postgres://musubi@db:5432/musubi".into(),
                password_file: Some(PathBuf::from("/etc/musubi/pg-password")),
            })
        );
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_repeating_it() {
        for url in [
            "postgres://musubi:s3cret@db/musubi",
            "postgres://musubi@db/musubi?password=s3cret",
        ] {
            let p = problems(&format!("backend = \"postgres\"\nurl = \"{url}\"\n"));
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(p[0].starts_with("store.url: holds a password"), "{p:?}");
            assert!(!p[0].contains("s3cret"), "{p:?}");
        }
    }

    #[test]
    fn each_problem_names_its_key() {
        let cases = [
            ("backend = \"mysql\"\n", "store.backend"),
            ("backend = \"postgres\"\n", "store.url: missing"),
            ("url = \"postgres://u@h/d\"\n", "store.url: only used"),
            ("password_file = \"p\"\n", "store.password_file: only used"),
            (
                "backend = \"postgres\"\nurl = \"mysql://u@h/d\"\n",
                "store.url: \"mysql://u@h/d\" is not a PostgreSQL URL",
            ),
            (
                "backend = \"postgres\"\nurl = \"postgres://h:5432/d\"\n",
                "names no user",
            ),
            (
                "backend = \"postgres\"\nurl = \"postgres://u@h:5432\"\n",
                "names no database",
            ),
            ("backend = \"postgres\"\nurl = \"db:5432\"\n", "store.url: "),
        ];
        for (text, expected) in cases {
            let p = problems(text);
            assert!(
                p.iter().any(|m| m.contains(expected)),
                "{text:?}: {p:?} lacks {expected:?}"
            );
        }
    }

    #[test]
    fn the_password_comes_from_the_file_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let settings = PostgresSettings {
            url: "postgres://musubi@127.0.0.1:5432/musubi".into(),
            password_file: Some(file.clone()),
        };
        let config = settings.client_config().unwrap();
        assert_eq!(config.get_password(), Some(&b"s3cret"[..]));
        std::fs::write(&file, "\n").unwrap();
        let err = settings.client_config().unwrap_err().to_string();
        assert!(err.starts_with("store.password_file: "), "{err}");
        assert!(err.contains("is empty"), "{err}");
        let missing = PostgresSettings {
            password_file: Some(dir.path().join("absent")),
            ..settings
        };
        let err = missing.client_config().unwrap_err().to_string();
        assert!(err.starts_with("store.password_file: cannot read"), "{err}");
    }
}
