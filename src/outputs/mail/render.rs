//! Rendering mail: the embedded templates, labels in Japanese and English, and the MIME
//! message (multipart text + HTML, UTF-8 bodies; lettre encodes the subject per RFC 2047).
//!
//! Templates see only [`MailBody`], which is built from policy views: nothing a template
//! could print was taken from the store around the council policy.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use minijinja::Environment;
use serde::Serialize;

use super::MailError;
use crate::config::mail::Language;
use crate::model::Tlp;

const TEXT: &str = "mail.txt";
const HTML: &str = "mail.html";

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.add_template(TEXT, include_str!("templates/mail.txt"))
            .expect("embedded template parses");
        env.add_template(HTML, include_str!("templates/mail.html"))
            .expect("embedded template parses");
        env
    })
}

/// One campaign in a mail, as the recipient may see it.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignItem {
    pub id: String,
    pub tlp: &'static str,
    /// The narrowest sharing scope of the visible reports, in words (none: TLP alone).
    pub scope: Option<&'static str>,
    /// First seen inside the window (else: updated).
    pub is_new: bool,
    pub unconfirmed: bool,
    /// The title of the newest visible report.
    pub headline: String,
    pub first_seen: String,
    pub last_seen: String,
    pub report_count: usize,
    /// Visible reports received in the window.
    pub new_reports: usize,
    /// The flags' labels in the mail's language.
    pub flags: Vec<String>,
    /// Why an alert fired (alerts only).
    pub reasons: Vec<String>,
    /// What public feeds say about the visible values (digests): "value · feed date: title".
    pub context: Vec<String>,
    pub reports: Vec<ReportLine>,
    pub more_reports: usize,
    pub observables: Vec<ObservableLine>,
    pub more_observables: usize,
    /// The console page of the campaign.
    pub link: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportLine {
    pub id: String,
    pub title: String,
    pub tlp: &'static str,
    pub scope: Option<&'static str>,
    /// The source as the policy labels it ("council member", a feed name).
    pub source: String,
    pub unconfirmed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObservableLine {
    pub kind: String,
    pub value: String,
    pub reports: usize,
}

/// A titled part of a mail: campaigns, or plain lines.
#[derive(Debug, Clone, Serialize)]
pub struct SectionBody {
    pub title: String,
    pub campaigns: Vec<CampaignItem>,
    pub lines: Vec<String>,
}

/// Everything a template prints.
#[derive(Debug, Clone, Serialize)]
pub struct MailBody {
    pub lang: &'static str,
    pub title: String,
    pub subject: String,
    pub tlp: &'static str,
    pub tlp_color: &'static str,
    pub window_start: String,
    pub window_end: String,
    pub time_zone: String,
    pub sections: Vec<SectionBody>,
    pub t: Labels,
}

/// A rendered mail, ready to address.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub tlp: Tlp,
}

/// The fixed words of a mail.
#[derive(Debug, Clone, Serialize)]
pub struct Labels {
    /// The language the words are in (flags are labelled from the model's table with it).
    #[serde(skip)]
    pub lang: Language,
    pub window: &'static str,
    pub tlp_note: &'static str,
    pub new: &'static str,
    pub updated: &'static str,
    pub unconfirmed: &'static str,
    pub since: &'static str,
    pub last: &'static str,
    pub reports: &'static str,
    pub in_window: &'static str,
    pub flags: &'static str,
    pub context: &'static str,
    pub why: &'static str,
    pub more: &'static str,
    pub check: &'static str,
    pub footer: &'static str,
    pub council_member: &'static str,
    pub scope_provider: &'static str,
    pub scope_council: &'static str,
    pub scope_supported: &'static str,
}

impl Labels {
    pub fn of(lang: Language) -> Labels {
        match lang {
            Language::Ja => Labels {
                lang,
                window: "対象期間",
                tlp_note: "この通知は表示の TLP に従って取り扱ってください。提供元は開示されません。",
                new: "新規",
                updated: "更新",
                unconfirmed: "未確認",
                since: "初報",
                last: "最新",
                reports: "報告",
                in_window: "期間内",
                flags: "フラグ",
                context: "公開情報",
                why: "理由",
                more: "件ほか",
                check: "確認すべき観測値",
                footer: "musubi — 情報共有評議会。詳細はコンソールで確認できます。",
                council_member: "評議会メンバー",
                scope_provider: "提供元・事務局限り",
                scope_council: "評議会メンバー限り",
                scope_supported: "メンバー及び支援先まで",
            },
            Language::En => Labels {
                lang,
                window: "Window",
                tlp_note: "Handle this message according to its TLP label. Providers are never disclosed.",
                new: "new",
                updated: "updated",
                unconfirmed: "unconfirmed",
                since: "first seen",
                last: "last seen",
                reports: "reports",
                in_window: "in window",
                flags: "flags",
                context: "public context",
                why: "why",
                more: "more",
                check: "Observables to check",
                footer: "musubi — information-sharing council. Details are in the console.",
                council_member: "council member",
                scope_provider: "provider and secretariat only",
                scope_council: "council members only",
                scope_supported: "members and organisations they support",
            },
        }
    }
}

impl Labels {
    /// A sharing scope in this language (`None`: no scope beyond the TLP).
    pub fn scope(&self, scope: Option<crate::model::Scope>) -> Option<&'static str> {
        use crate::model::Scope;
        scope.map(|s| match s {
            Scope::ProviderAndSecretariat => self.scope_provider,
            Scope::CouncilMembers => self.scope_council,
            Scope::MembersAndSupported => self.scope_supported,
        })
    }
}

/// The colour TLP 2.0 prescribes for a label (on black).
pub fn tlp_color(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "#FFFFFF",
        Tlp::Green => "#33FF00",
        Tlp::Amber | Tlp::AmberStrict => "#FFC000",
        Tlp::Red => "#FF2B2B",
    }
}

/// Renders both parts.
pub fn render(body: &MailBody, tlp: Tlp) -> Result<Rendered, MailError> {
    let go = |name: &str| {
        env()
            .get_template(name)
            .and_then(|t| t.render(minijinja::value::Serde(body)))
            .map_err(|e| MailError::Template {
                name: name.to_string(),
                detail: format!("{e:#}"),
            })
    };
    Ok(Rendered {
        subject: body.subject.clone(),
        text: go(TEXT)?,
        html: go(HTML)?,
        tlp,
    })
}

/// The MIME message for one recipient.
pub fn message(
    from: &Mailbox,
    to: Mailbox,
    message_id: &str,
    rendered: &Rendered,
    date: DateTime<Utc>,
) -> Result<Message, MailError> {
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(rendered.subject.clone())
        .message_id(Some(message_id.to_string()))
        .date(date.into())
        .multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            rendered.html.clone(),
        ))
        .map_err(|e| MailError::Message(e.to_string()))
}

/// A deterministic Message-ID: the same batch to the same member always gets the same id,
/// so that a resend after a crash is recognisable as a duplicate by any mail system.
pub fn message_id(kind: &str, batch: &str, member: &str, domain: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '.'
                }
            })
            .collect()
    };
    format!(
        "<{}.{}.{}@{}>",
        clean(kind),
        clean(batch),
        clean(member),
        domain
    )
}
