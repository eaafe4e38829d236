//! Mail configuration: `[smtp]`, `[[digest]]` and `[alerts]` in `musubi.toml`.
//!
//! The SMTP password is never part of the configuration: `password_env` names an environment
//! variable and `password_file` a file (e.g. a systemd credential), read when the mailer is
//! built, so that `musubi.toml` can be world-readable and kept in version control.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::model::{MemberClass, MemberId, Sector, Tlp};

/// The default time zone of digest schedules: the council sits in Tokyo.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Tokyo";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    host: Option<String>,
    port: Option<u16>,
    security: Option<String>,
    user: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    from: Option<String>,
    timeout_seconds: Option<u64>,
    retry_attempts: Option<u32>,
    retry_backoff_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDigest {
    name: Option<String>,
    schedule: Option<String>,
    time_zone: Option<String>,
    #[serde(default)]
    classes: Vec<String>,
    #[serde(default)]
    sectors: Vec<String>,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    secretariat: bool,
    language: Option<String>,
    max_tlp: Option<String>,
    sections: Option<Vec<String>>,
    first_window_hours: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    enabled: Option<bool>,
    classes: Option<Vec<String>>,
    #[serde(default)]
    secretariat: bool,
    coalesce_seconds: Option<u64>,
    min_interval_seconds: Option<u64>,
    max_campaigns: Option<usize>,
    language: Option<String>,
    max_tlp: Option<String>,
    #[serde(default)]
    webhooks: Vec<String>,
    webhook_max_tlp: Option<String>,
    webhook_secret_env: Option<String>,
    webhook_secret_file: Option<PathBuf>,
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP (a relay on loopback or a trusted network only).
    None,
    /// STARTTLS, required (port 587).
    StartTls,
    /// Implicit TLS (port 465).
    Tls,
}

impl FromStr for SmtpSecurity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(SmtpSecurity::None),
            "starttls" => Ok(SmtpSecurity::StartTls),
            "tls" => Ok(SmtpSecurity::Tls),
            _ => Err(format!(
                "unknown security {s:?} (expected none, starttls or tls)"
            )),
        }
    }
}

/// The validated `[smtp]` section.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub user: Option<String>,
    /// The environment variable holding the password.
    pub password_env: Option<String>,
    /// The file holding the password (trailing newline ignored).
    pub password_file: Option<PathBuf>,
    /// The `From:` address, e.g. `musubi <musubi@council.example.jp>`.
    pub from: String,
    pub timeout: Duration,
    /// Attempts per message before a transient failure is given up (for this run).
    pub retry_attempts: u32,
    /// The first pause between attempts; it doubles each time.
    pub retry_backoff: Duration,
}

/// The language of a digest: fixed, or each recipient's own (`member_contacts.language`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LanguageChoice {
    Ja,
    En,
    PerMember,
}

/// A language mail is written in: the model's one language type.
pub use crate::model::Language;

/// A part of a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// Campaigns first seen, or grown, in the window.
    Campaigns,
    /// Campaigns flagged `cross-sector` or `surge`.
    CrossSector,
    /// Campaigns flagged `novel`.
    Novel,
    /// Feedback the council asks of the recipient.
    Feedback,
    /// Flagged campaigns waiting for an analyst (secretariat recipients only).
    Review,
    /// Feed and mail delivery health (secretariat recipients only).
    Health,
    /// Counts over the window.
    Statistics,
}

impl Section {
    pub const ALL: [Section; 7] = [
        Section::Campaigns,
        Section::CrossSector,
        Section::Novel,
        Section::Feedback,
        Section::Review,
        Section::Health,
        Section::Statistics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Section::Campaigns => "campaigns",
            Section::CrossSector => "cross-sector",
            Section::Novel => "novel",
            Section::Feedback => "feedback",
            Section::Review => "review",
            Section::Health => "health",
            Section::Statistics => "statistics",
        }
    }
}

impl FromStr for Section {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Section::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<_> = Section::ALL.iter().map(|x| x.as_str()).collect();
                format!(
                    "unknown section {s:?} (expected one of: {})",
                    all.join(", ")
                )
            })
    }
}

/// Who receives a digest or an alert (the configured recipients; what each of them may
/// *see* is the policy's `council::Viewer`). A member matches if any criterion matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipients {
    pub classes: Vec<MemberClass>,
    pub sectors: Vec<Sector>,
    /// Members by id or exact name.
    pub members: Vec<String>,
    pub secretariat: bool,
}

impl Recipients {
    pub fn includes(&self, m: &crate::model::Member) -> bool {
        (self.secretariat && m.is_secretariat())
            || self.classes.contains(&m.class)
            || m.sector.is_some_and(|s| self.sectors.contains(&s))
            || self
                .members
                .iter()
                .any(|x| *x == m.id.0 || *x == m.name || MemberId(x.clone()) == m.id)
    }
}

/// One validated `[[digest]]`.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    pub name: String,
    pub schedule: cron::Schedule,
    /// The schedule's source text, for messages.
    pub schedule_text: String,
    pub time_zone: chrono_tz::Tz,
    pub audience: Recipients,
    pub language: LanguageChoice,
    /// Reports above this TLP never enter this digest, whoever the recipient is.
    pub max_tlp: Tlp,
    pub sections: Vec<Section>,
    /// How far back the very first run of a digest looks.
    pub first_window: Duration,
}

/// The validated `[alerts]` section.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    pub enabled: bool,
    pub audience: Recipients,
    /// Triggers arriving within this time of the first one go into the same mail.
    pub coalesce: Duration,
    /// At most one alert mail per recipient per this interval (rate limit).
    pub min_interval: Duration,
    /// Campaigns listed in full in one alert; the rest are counted.
    pub max_campaigns: usize,
    pub language: LanguageChoice,
    pub max_tlp: Tlp,
    /// URLs that receive each alert batch as a JSON POST (ids and reasons only).
    pub webhooks: Vec<url::Url>,
    /// What webhooks may carry: a webhook is nobody in particular, so it is the audience
    /// `Viewer::Audience { ceiling }`: released material without sharing scope, at or below
    /// this TLP (never above TLP:AMBER). Default TLP:GREEN.
    pub webhook_max_tlp: Tlp,
    /// Where the key that signs webhook bodies comes from (required when webhooks are set).
    pub webhook_secret: Option<SecretSource>,
}

/// Where a secret is read from when it is needed: never part of `musubi.toml` itself, so
/// the file can be world-readable and kept in version control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file (e.g. a systemd credential); a trailing newline is ignored.
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret; the error names where it was looked for, never its value.
    pub fn read(&self) -> Result<String, String> {
        let secret = match self {
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|e| format!("environment variable {var}: {e}"))?
            }
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| format!("{}: {e}", path.display()))?,
        };
        if secret.is_empty() {
            return Err(match self {
                SecretSource::Env(var) => format!("environment variable {var} is empty"),
                SecretSource::File(path) => format!("{} is empty", path.display()),
            });
        }
        Ok(secret)
    }
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            enabled: true,
            audience: Recipients {
                classes: vec![MemberClass::Class1],
                ..Recipients::default()
            },
            coalesce: Duration::from_secs(5),
            min_interval: Duration::from_secs(60),
            max_campaigns: 20,
            language: LanguageChoice::PerMember,
            max_tlp: Tlp::Red,
            webhooks: Vec::new(),
            webhook_max_tlp: Tlp::Green,
            webhook_secret: None,
        }
    }
}

/// Everything about mail; `smtp: None` turns mail off.
#[derive(Debug, Clone, Default)]
pub struct MailConfig {
    pub smtp: Option<SmtpConfig>,
    pub digests: Vec<DigestConfig>,
    pub alerts: AlertConfig,
}

impl MailConfig {
    pub fn digest(&self, name: &str) -> Option<&DigestConfig> {
        self.digests.iter().find(|d| d.name == name)
    }
}

fn parse_list<T: FromStr<Err = String>>(
    key: &str,
    items: &[String],
    problems: &mut Vec<String>,
) -> Vec<T> {
    items
        .iter()
        .filter_map(|s| match s.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                problems.push(format!("{key}: {e}"));
                None
            }
        })
        .collect()
}

fn language(key: &str, s: Option<String>, problems: &mut Vec<String>) -> LanguageChoice {
    match s.as_deref() {
        None | Some("member") => LanguageChoice::PerMember,
        Some("ja") => LanguageChoice::Ja,
        Some("en") => LanguageChoice::En,
        Some(other) => {
            problems.push(format!(
                "{key}: unknown language {other:?} (expected ja, en or member)"
            ));
            LanguageChoice::PerMember
        }
    }
}

fn tlp(key: &str, s: Option<String>, default: Tlp, problems: &mut Vec<String>) -> Tlp {
    match s {
        None => default,
        Some(s) => s.parse().unwrap_or_else(|e| {
            problems.push(format!("{key}: {e}"));
            default
        }),
    }
}

/// Validates the mail sections, adding every problem to `problems`.
pub(super) fn validate(
    smtp: Option<RawSmtp>,
    digests: Vec<RawDigest>,
    alerts: Option<RawAlerts>,
    base: &Path,
    problems: &mut Vec<String>,
) -> MailConfig {
    let smtp = smtp.map(|raw| {
        let security = match raw.security.as_deref() {
            None => SmtpSecurity::StartTls,
            Some(s) => s.parse().unwrap_or_else(|e| {
                problems.push(format!("smtp.security: {e}"));
                SmtpSecurity::StartTls
            }),
        };
        let host = raw.host.unwrap_or_else(|| {
            problems.push("smtp.host: missing (e.g. host = \"smtp.example.jp\")".into());
            String::new()
        });
        let from = raw.from.unwrap_or_else(|| {
            problems.push("smtp.from: missing (e.g. from = \"musubi <musubi@example.jp>\")".into());
            String::new()
        });
        if !from.is_empty() && from.parse::<lettre::message::Mailbox>().is_err() {
            problems.push(format!("smtp.from: {from:?} is not a mail address"));
        }
        if raw.password_env.is_some() && raw.password_file.is_some() {
            problems.push("smtp: give password_env or password_file, not both".into());
        }
        if (raw.password_env.is_some() || raw.password_file.is_some()) && raw.user.is_none() {
            problems.push("smtp.user: missing although a password is configured".into());
        }
        let port = raw.port.unwrap_or(match security {
            SmtpSecurity::None => 25,
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
        });
        SmtpConfig {
            host,
            port,
            security,
            user: raw.user,
            password_env: raw.password_env,
            password_file: raw
                .password_file
                .map(|p| if p.is_absolute() { p } else { base.join(p) }),
            from,
            timeout: Duration::from_secs(raw.timeout_seconds.unwrap_or(30).max(1)),
            retry_attempts: raw.retry_attempts.unwrap_or(4).max(1),
            retry_backoff: Duration::from_millis(raw.retry_backoff_ms.unwrap_or(1000)),
        }
    });

    let mut names = std::collections::HashSet::new();
    let digests = digests
        .into_iter()
        .enumerate()
        .filter_map(|(i, raw)| {
            let before = problems.len();
            let key = format!("digest[{i}]");
            let name = raw.name.unwrap_or_else(|| {
                problems.push(format!("{key}.name: missing"));
                String::new()
            });
            if !name.is_empty()
                && !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                problems.push(format!(
                    "{key}.name: {name:?} may hold only letters, digits, - and _"
                ));
            }
            if !names.insert(name.clone()) {
                problems.push(format!("{key}.name: {name:?} is used twice"));
            }
            let key = format!("digest {name:?}");
            let schedule_text = raw.schedule.unwrap_or_default();
            let schedule = match cron::Schedule::from_str(&schedule_text) {
                Ok(s) => Some(s),
                Err(e) => {
                    let e = e.to_string().replace(['\n', '^'], " ");
                    let e = e.split_whitespace().collect::<Vec<_>>().join(" ");
                    problems.push(format!(
                        "{key}.schedule: {schedule_text:?}: {e} (seconds first, e.g. \"0 0 8 * * Mon-Fri\")"
                    ));
                    None
                }
            };
            let tz_text = raw.time_zone.unwrap_or_else(|| DEFAULT_TIME_ZONE.into());
            let time_zone = tz_text.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
                problems.push(format!(
                    "{key}.time_zone: unknown time zone {tz_text:?} (e.g. Asia/Tokyo)"
                ));
                chrono_tz::Asia::Tokyo
            });
            let audience = Recipients {
                classes: parse_list(&format!("{key}.classes"), &raw.classes, problems),
                sectors: parse_list(&format!("{key}.sectors"), &raw.sectors, problems),
                members: raw.members,
                secretariat: raw.secretariat,
            };
            if audience == Recipients::default() {
                problems.push(format!(
                    "{key}: no audience (give classes, sectors, members or secretariat = true)"
                ));
            }
            let sections = match raw.sections {
                None => Section::ALL.to_vec(),
                Some(list) => parse_list(&format!("{key}.sections"), &list, problems),
            };
            let language = language(&format!("{key}.language"), raw.language, problems);
            let max_tlp = tlp(&format!("{key}.max_tlp"), raw.max_tlp, Tlp::Red, problems);
            let d = DigestConfig {
                name,
                schedule: schedule?,
                schedule_text,
                time_zone,
                audience,
                language,
                max_tlp,
                sections,
                first_window: Duration::from_secs(3600 * raw.first_window_hours.unwrap_or(24)),
            };
            (problems.len() == before).then_some(d)
        })
        .collect();

    let alerts = match alerts {
        None => AlertConfig::default(),
        Some(raw) => {
            let d = AlertConfig::default();
            let classes = match raw.classes {
                None => d.audience.classes.clone(),
                Some(c) => parse_list("alerts.classes", &c, problems),
            };
            AlertConfig {
                enabled: raw.enabled.unwrap_or(true),
                audience: Recipients {
                    classes,
                    secretariat: raw.secretariat,
                    ..Recipients::default()
                },
                coalesce: raw
                    .coalesce_seconds
                    .map(Duration::from_secs)
                    .unwrap_or(d.coalesce),
                min_interval: raw
                    .min_interval_seconds
                    .map(Duration::from_secs)
                    .unwrap_or(d.min_interval),
                max_campaigns: raw.max_campaigns.unwrap_or(d.max_campaigns).max(1),
                language: language("alerts.language", raw.language, problems),
                max_tlp: tlp("alerts.max_tlp", raw.max_tlp, Tlp::Red, problems),
                webhooks: raw
                    .webhooks
                    .iter()
                    .filter_map(|u| match url::Url::parse(u) {
                        Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
                        Ok(_) => {
                            problems
                                .push(format!("alerts.webhooks: {u:?}: only http and https URLs"));
                            None
                        }
                        Err(e) => {
                            problems.push(format!("alerts.webhooks: {u:?}: {e}"));
                            None
                        }
                    })
                    .collect(),
                webhook_max_tlp: {
                    let t = tlp(
                        "alerts.webhook_max_tlp",
                        raw.webhook_max_tlp,
                        d.webhook_max_tlp,
                        problems,
                    );
                    if t > Tlp::Amber {
                        problems.push(format!(
                            "alerts.webhook_max_tlp: {} is for named recipients; a webhook \
                             reaches nobody in particular (at most amber)",
                            t.label()
                        ));
                    }
                    t
                },
                webhook_secret: match (raw.webhook_secret_env, raw.webhook_secret_file) {
                    (Some(_), Some(_)) => {
                        problems.push(
                            "alerts: give webhook_secret_env or webhook_secret_file, not both"
                                .into(),
                        );
                        None
                    }
                    (Some(var), None) => Some(SecretSource::Env(var)),
                    (None, Some(p)) => Some(SecretSource::File(if p.is_absolute() {
                        p
                    } else {
                        base.join(p)
                    })),
                    (None, None) => {
                        if !raw.webhooks.is_empty() {
                            problems.push(
                                "alerts.webhook_secret_env: missing: webhooks are signed \
                                 (X-Musubi-Signature); give webhook_secret_env or \
                                 webhook_secret_file"
                                    .into(),
                            );
                        }
                        None
                    }
                },
            }
        }
    };
    MailConfig {
        smtp,
        digests,
        alerts,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    const GOOD: &str = r#"
[smtp]
host = "127.0.0.1"
port = 2525
security = "none"
from = "musubi <musubi@council.example.jp>"

[[digest]]
name = "daily"
schedule = "0 0 8 * * Mon-Fri"
classes = ["class1", "class2"]
secretariat = true
language = "member"
max_tlp = "amber"
sections = ["campaigns", "statistics"]

[alerts]
classes = ["class1"]
coalesce_seconds = 2
"#;

    #[test]
    fn parses_a_full_mail_config() {
        let c = Config::parse(GOOD, Path::new("/etc/musubi/musubi.toml")).unwrap();
        let smtp = c.mail.smtp.unwrap();
        assert_eq!(smtp.port, 2525);
        assert_eq!(smtp.security, SmtpSecurity::None);
        let d = c.mail.digests[0].clone();
        assert_eq!(d.name, "daily");
        assert_eq!(d.time_zone, chrono_tz::Asia::Tokyo);
        assert_eq!(d.max_tlp, Tlp::Amber);
        assert_eq!(d.sections, vec![Section::Campaigns, Section::Statistics]);
        assert_eq!(c.mail.alerts.coalesce, Duration::from_secs(2));
    }

    #[test]
    fn lists_every_mail_problem() {
        let text = r#"
[smtp]
host = "x"
security = "ssl"
from = "not an address"
password_env = "P"

[[digest]]
name = "daily digest"
schedule = "every morning"
max_tlp = "purple"
"#;
        let err = Config::parse(text, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        for needle in [
            "smtp.security",
            "smtp.from",
            "smtp.user",
            "name",
            "schedule",
            "max_tlp",
            "no audience",
        ] {
            assert!(err.contains(needle), "{needle} missing in {err}");
        }
    }

    #[test]
    fn webhooks_need_a_secret_and_an_audience_no_wider_than_amber() {
        let c = Config::parse(
            "[alerts]\nwebhooks = [\"https://hooks.example.jp/x\"]\nwebhook_secret_file = \"hook.key\"\n",
            Path::new("/etc/musubi/musubi.toml"),
        )
        .unwrap();
        assert_eq!(c.mail.alerts.webhook_max_tlp, Tlp::Green);
        assert_eq!(
            c.mail.alerts.webhook_secret,
            Some(SecretSource::File("/etc/musubi/hook.key".into()))
        );
        let err = Config::parse(
            "[alerts]\nwebhooks = [\"https://hooks.example.jp/x\", \"file:///tmp/x\"]\nwebhook_max_tlp = \"red\"\n",
            Path::new("m.toml"),
        )
        .unwrap_err()
        .to_string();
        for needle in [
            "alerts.webhook_secret_env: missing",
            "alerts.webhook_max_tlp",
            "only http and https",
        ] {
            assert!(err.contains(needle), "{needle} missing in {err}");
        }
    }

    #[test]
    fn configs_without_mail_still_parse() {
        let c = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\n", Path::new("m.toml")).unwrap();
        assert!(c.mail.smtp.is_none());
        assert!(c.mail.digests.is_empty());
    }
}
