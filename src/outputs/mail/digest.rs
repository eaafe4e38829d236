//! Scheduled digests.
//!
//! A run covers the window since the last completed one: the reports committed after that
//! window was begun, up to those committed when this one is begun (by seq, `store::mail`:
//! a report stamped before a window's end but committed after it was begun is in the next
//! window, never in none), shown as received between the two windows' times. The window is
//! written to the store before the first message goes out and completed only after every
//! recipient's copy was accepted by the SMTP server; each accepted copy leaves a delivery
//! row. A run interrupted by a crash or an SMTP outage is resumed with the same window, so
//! recipients already served get nothing more and the others get the same Message-ID they
//! would have got. Several missed schedule times give one catch-up window, not several.
//!
//! Each copy is built for its recipient from the window as that recipient's [`Viewer`]
//! sees it ([`DigestWindow::view`], the council's read path): campaigns are shown through
//! the reports that recipient may see (never above the digest's `max_tlp`), sources only as
//! policy labels, and a digest with nothing for the recipient is not sent. Only approved
//! members receive digests.
//!
//! A recipient the SMTP server refuses for good (5xx) is recorded as refused for the window
//! and reported to the secretariat (a line in its next digest); the window completes for
//! everyone else. Only transient failures keep the window open.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::Mailbox;

use super::render::{
    self, CampaignItem, Labels, MailBody, ObservableLine, Rendered, ReportLine, SectionBody,
};
use super::{MailError, Mailer};
use crate::config::Config;
use crate::config::mail::{DigestConfig, Language, LanguageChoice, Section};
use crate::council::MailBook;
use crate::council::WindowBounds;
use crate::council::read::{DigestWindow, MailMember, MailRecipient};
use crate::council::{CampaignView, ReadPath, SourceLabel, Viewer};
use crate::model::{DigestList, Seq, Tlp};

/// The delivery kind of digests in `mail_deliveries`.
pub const KIND: &str = "digest";
/// Campaigns listed in full in one section; the rest are counted.
pub const MAX_CAMPAIGNS: usize = 50;
/// Reports listed per campaign.
pub const MAX_REPORTS: usize = 5;
/// Observables listed per campaign.
pub const MAX_OBSERVABLES: usize = 10;

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

fn source_text(label: &SourceLabel, t: &Labels) -> String {
    match label {
        SourceLabel::Feed { feed } => feed.clone(),
        SourceLabel::CouncilMember => t.council_member.to_string(),
        SourceLabel::Member { member } => member.to_string(),
    }
}

/// One campaign view as a mail item. `window` selects the reports listed (all if None) and
/// says whether the campaign is new in it.
pub fn campaign_item(
    view: &CampaignView,
    window: Option<(&HashSet<Seq>, bool)>,
    tz: Tz,
    t: &Labels,
    public_url: &str,
    reasons: Vec<String>,
) -> CampaignItem {
    let mut reports: Vec<_> = view
        .reports
        .iter()
        .filter(|r| window.is_none_or(|(w, _)| w.contains(&r.id.internal().0)))
        .collect();
    reports.sort_by_key(|r| std::cmp::Reverse(r.received_at));
    let new_reports = reports.len();
    let headline = reports
        .first()
        .or(view.reports.iter().max_by_key(|r| r.received_at).as_ref())
        .map(|r| r.title.clone())
        .unwrap_or_default();
    let observables = view.observables.clone().unwrap_or_default();
    CampaignItem {
        id: view.id.to_string(),
        tlp: view.tlp.label(),
        scope: t.scope(view.scope),
        is_new: window.is_some_and(|(_, new)| new),
        unconfirmed: view.unconfirmed,
        headline,
        first_seen: local(view.first_seen, tz),
        last_seen: local(view.last_seen, tz),
        report_count: view.report_count,
        new_reports,
        flags: view
            .flags
            .iter()
            .map(|f| format!("{} ({})", f.name.label(t.lang), f.summary_in(t.lang)))
            .collect(),
        reasons,
        context: view
            .context
            .iter()
            .flatten()
            .map(|c| {
                let details: Vec<String> =
                    c.details.iter().map(|(k, v)| format!("{k} {v}")).collect();
                let mut line = format!(
                    "{} · {} {}: {}",
                    c.value.value,
                    c.feed,
                    c.date.format("%Y-%m-%d"),
                    c.title
                );
                if !details.is_empty() {
                    line.push_str(&format!(" ({})", details.join(", ")));
                }
                line
            })
            .collect(),
        more_reports: reports.len().saturating_sub(MAX_REPORTS),
        reports: reports
            .iter()
            .take(MAX_REPORTS)
            .map(|r| ReportLine {
                id: r.id.to_string(),
                title: r.title.clone(),
                tlp: r.tlp.label(),
                scope: t.scope(r.scope),
                source: source_text(&r.source, t),
                unconfirmed: r.unconfirmed,
            })
            .collect(),
        more_observables: observables.len().saturating_sub(MAX_OBSERVABLES),
        observables: observables
            .iter()
            .take(MAX_OBSERVABLES)
            .map(|o| ObservableLine {
                kind: o.kind.as_str().to_string(),
                value: o.value.clone(),
                reports: o.reports,
            })
            .collect(),
        link: format!("{public_url}/console/campaigns/{}", view.id),
    }
}

fn section_title(s: Section, lang: Language) -> &'static str {
    match (s, lang) {
        (Section::Campaigns, Language::Ja) => "新規・更新キャンペーン",
        (Section::Campaigns, Language::En) => "New and updated campaigns",
        (Section::CrossSector, Language::Ja) => "分野横断アラート",
        (Section::CrossSector, Language::En) => "Cross-sector alerts",
        (Section::Novel, Language::Ja) => "新規性のある発見",
        (Section::Novel, Language::En) => "Novel findings",
        (Section::Feedback, Language::Ja) => "フィードバックのお願い",
        (Section::Feedback, Language::En) => "Feedback requested from you",
        (Section::Review, Language::Ja) => "レビュー待ちキャンペーン",
        (Section::Review, Language::En) => "Campaigns awaiting review",
        (Section::Health, Language::Ja) => "配信・フィードの状態",
        (Section::Health, Language::En) => "Feed and delivery health",
        (Section::Statistics, Language::Ja) => "統計",
        (Section::Statistics, Language::En) => "Statistics",
    }
}

fn capped(title: &str, mut items: Vec<CampaignItem>, lang: Language) -> Option<SectionBody> {
    if items.is_empty() {
        return None;
    }
    let mut lines = Vec::new();
    if items.len() > MAX_CAMPAIGNS {
        let rest = items.len() - MAX_CAMPAIGNS;
        items.truncate(MAX_CAMPAIGNS);
        lines.push(match lang {
            Language::Ja => format!("ほか {rest} 件はコンソールで確認してください"),
            Language::En => format!("{rest} more in the console"),
        });
    }
    Some(SectionBody {
        title: title.to_string(),
        campaigns: items,
        lines,
    })
}

/// One recipient's digest, or None when there is nothing for them.
pub fn build(
    input: &DigestWindow,
    digest: &DigestConfig,
    viewer: &Viewer,
    lang: Language,
    public_url: &str,
) -> Option<Rendered> {
    let t = Labels::of(lang);
    let tz = digest.time_zone;
    let (start, end) = (input.start(), input.end());
    let seen = input.view(viewer);
    let is_new = |v: &CampaignView| seen.new.contains(&v.id);
    let mut views: Vec<CampaignView> = seen.campaigns.clone();
    // New campaigns first, then the most recently active (as far as the viewer sees).
    views.sort_by(|a, b| {
        is_new(b)
            .cmp(&is_new(a))
            .then(b.last_seen.cmp(&a.last_seen))
            .then(b.id.cmp(&a.id))
    });
    let item = |v: &CampaignView| {
        campaign_item(
            v,
            Some((&seen.window, is_new(v))),
            tz,
            &t,
            public_url,
            Vec::new(),
        )
    };
    let flagged = |list: DigestList| -> Vec<CampaignItem> {
        views
            .iter()
            .filter(|v| v.flags.iter().any(|f| f.name.digest_list() == Some(list)))
            .map(item)
            .collect()
    };
    let mut sections = Vec::new();
    let mut tlp = Tlp::Clear;
    let new = views.iter().filter(|v| is_new(v)).count();
    for &s in &digest.sections {
        let title = section_title(s, lang);
        let body = match s {
            Section::Campaigns => capped(title, views.iter().map(item).collect(), lang),
            Section::CrossSector => capped(title, flagged(DigestList::CrossSector), lang),
            Section::Novel => capped(title, flagged(DigestList::Novel), lang),
            // Feedback requests come with the council's review workflow.
            Section::Feedback => None,
            Section::Review if viewer.is_secretariat() => capped(
                title,
                views
                    .iter()
                    .filter(|v| !v.flags.is_empty())
                    .map(item)
                    .collect(),
                lang,
            ),
            // `seen.failures` is empty for anyone but the secretariat.
            Section::Health if viewer.is_secretariat() && !seen.failures.is_empty() => {
                Some(SectionBody {
                    title: title.to_string(),
                    campaigns: Vec::new(),
                    lines: seen
                        .failures
                        .iter()
                        .map(|f| format!("{} {}: {}", local(f.at, tz), f.context, f.error))
                        .collect(),
                })
            }
            Section::Review | Section::Health | Section::Statistics => None,
        };
        if let Some(b) = body {
            for c in &b.campaigns {
                tlp = tlp.max(c.tlp.parse().unwrap_or(Tlp::Red));
            }
            sections.push(b);
        }
    }
    if sections.is_empty() {
        return None;
    }
    if digest.sections.contains(&Section::Statistics) {
        let visible = seen.reports_received;
        let updated = views.len() - new;
        let mut lines = match lang {
            Language::Ja => vec![
                format!("期間内の報告: {visible} 件"),
                format!("新規キャンペーン: {new} 件、更新: {updated} 件"),
            ],
            Language::En => vec![
                format!("reports received: {visible}"),
                format!("campaigns: {new} new, {updated} updated"),
            ],
        };
        lines.extend(give_and_take(
            seen.contributed_shared,
            &seen.waiting,
            lang,
            tz,
        ));
        sections.push(SectionBody {
            title: section_title(Section::Statistics, lang).to_string(),
            campaigns: Vec::new(),
            lines,
        });
    }
    let day = end.with_timezone(&tz).format("%Y-%m-%d");
    let updated = views.len() - new;
    let (title, subject) = match lang {
        Language::Ja => (
            format!("musubi ダイジェスト「{}」", digest.name),
            format!(
                "[{}] musubi ダイジェスト「{}」{day}: 新規 {new} 件・更新 {updated} 件",
                tlp.label(),
                digest.name
            ),
        ),
        Language::En => (
            format!("musubi digest \"{}\"", digest.name),
            format!(
                "[{}] musubi digest \"{}\" {day}: {new} new, {updated} updated campaigns",
                tlp.label(),
                digest.name
            ),
        ),
    };
    let body = MailBody {
        lang: lang.as_str(),
        title,
        subject,
        tlp: tlp.label(),
        tlp_color: render::tlp_color(tlp),
        window_start: local(start, tz),
        window_end: local(end, tz),
        time_zone: tz.name().to_string(),
        sections,
        t,
    };
    match render::render(&body, tlp) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(error = %e, digest = %digest.name, "Rendering a digest failed.");
            None
        }
    }
}

/// The ledger's line for a member (its own figure only) and, for the secretariat, the
/// campaigns waiting longest for a disposition.
fn give_and_take(
    contributed_shared: Option<usize>,
    waiting: &[crate::council::read::WaitingCampaign],
    lang: Language,
    tz: Tz,
) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(n) = contributed_shared {
        lines.push(match lang {
            Language::Ja => {
                format!("あなたの報告は、協議会で共有された {n} 件の攻撃活動に貢献しました")
            }
            Language::En => {
                format!("your reports contributed to {n} campaigns shared with the council")
            }
        });
    }
    for w in waiting {
        let waited = crate::council::stats::span(w.waited_seconds, lang);
        let since = local(w.submitted, tz);
        lines.push(match (lang, w.shared.is_some()) {
            (Language::Ja, false) => format!("対応待ち {}: {waited} ({since} から、未共有)", w.id),
            (Language::Ja, true) => format!("対応待ち {}: {waited} ({since} から、共有済み)", w.id),
            (Language::En, false) => format!(
                "awaiting disposition {}: {waited} (since {since}, not shared)",
                w.id
            ),
            (Language::En, true) => format!(
                "awaiting disposition {}: {waited} (since {since}, shared)",
                w.id
            ),
        });
    }
    lines
}

/// The language a recipient's copy is written in.
pub fn language(choice: LanguageChoice, recorded: Option<&str>) -> Language {
    match choice {
        LanguageChoice::Ja => Language::Ja,
        LanguageChoice::En => Language::En,
        LanguageChoice::PerMember => recorded
            .and_then(|l| l.parse().ok())
            .unwrap_or(Language::Ja),
    }
}

/// The recipients of a digest (or the alerts): approved members of `audience` with an
/// address, through the read path.
pub async fn recipients(
    read: &ReadPath,
    audience: &crate::config::mail::Recipients,
) -> Result<Vec<MailRecipient>, MailError> {
    let audience = audience.clone();
    Ok(read.mail_recipients(move |m| audience.includes(m)).await?)
}

/// The window a digest would send now: the open one, else the one it would begin.
async fn current_window(
    book: &MailBook,
    digest: &DigestConfig,
    now: DateTime<Utc>,
) -> Result<WindowBounds, MailError> {
    Ok(match book.pending(&digest.name).await? {
        Some(w) => w,
        None => {
            book.next_window(&digest.name, first_start(digest, now), now)
                .await?
        }
    })
}

/// What one member would receive from a digest now (`musubi digest preview`); None when
/// there is nothing for them or they are not an active member (who receive no mail).
pub async fn preview(
    read: &ReadPath,
    book: &MailBook,
    config: &Config,
    digest: &DigestConfig,
    member: &MailMember,
    now: DateTime<Utc>,
) -> Result<Option<Rendered>, MailError> {
    if !member.active {
        return Ok(None);
    }
    let window = current_window(book, digest, now).await?;
    // A preview shows what the snapshot has; it waits for no correlator.
    let input = read
        .digest_window(window, digest.max_tlp, Duration::ZERO)
        .await?;
    let lang = language(digest.language, member.language.as_deref());
    Ok(build(
        &input,
        digest,
        &member.viewer,
        lang,
        &config.public_url,
    ))
}

/// Where the first window of a digest never sent starts (`first_window` before `now`).
fn first_start(digest: &DigestConfig, now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::from_std(digest.first_window).unwrap_or(chrono::Duration::days(1))
}

/// How long a run waits for the correlator to apply the reports of its window before it
/// gives up and is retried (the window stays open, nothing is sent).
pub const CORRELATION_WAIT: Duration = Duration::from_secs(30);

/// Options of one run (tests drive the clock and interrupt runs through these).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub now: DateTime<Utc>,
    /// Stop after this many messages, leaving the window open (a simulated crash).
    pub max_messages: Option<usize>,
}

impl RunOptions {
    pub fn at(now: DateTime<Utc>) -> RunOptions {
        RunOptions {
            now,
            max_messages: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutcome {
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub sent: usize,
    /// Recipients served (or refused for good) by an earlier, interrupted run of the same
    /// window.
    pub already_sent: usize,
    /// Recipients with nothing to receive.
    pub empty: usize,
    /// Recipients the SMTP server refused for good in this run (recorded, reported to the
    /// secretariat, not retried).
    pub rejected: usize,
    /// Whether the window was completed (else it is resumed by the next run).
    pub complete: bool,
}

/// Sends one window of a digest: the open one if a run was interrupted, else
/// `[sent_until, now)`.
pub async fn run(
    read: &ReadPath,
    book: &MailBook,
    config: &Config,
    mailer: &Mailer,
    digest: &DigestConfig,
    opts: RunOptions,
) -> Result<RunOutcome, MailError> {
    let name = digest.name.clone();
    // The store keeps microseconds: a window end must read back exactly as it was written.
    let now = DateTime::from_timestamp_micros(opts.now.timestamp_micros()).unwrap_or(opts.now);
    let window = match book.pending(&name).await? {
        Some(w) => {
            tracing::info!(digest = %name, "Resuming an interrupted digest window.");
            w
        }
        None => book.begin(&name, first_start(digest, now), now).await?,
    };
    let (start, end) = (window.start, window.end);
    let batch = end.timestamp_micros().to_string();
    let mut outcome = RunOutcome {
        window_start: Some(start),
        window_end: Some(end),
        ..RunOutcome::default()
    };
    let recipients = recipients(read, &digest.audience).await?;
    let input = read
        .digest_window(window, digest.max_tlp, CORRELATION_WAIT)
        .await?;
    if let Some((applied, through)) = input.behind() {
        return Err(MailError::CorrelationBehind {
            applied: applied.0,
            through: through.0,
        });
    }
    let done = book.done(KIND, &batch).await?;
    let context = format!("digest {name}");
    for r in recipients {
        if done.contains(&r.member) {
            outcome.already_sent += 1;
            continue;
        }
        let lang = language(digest.language, Some(&r.language));
        let Some(rendered) = build(&input, digest, &r.viewer, lang, &config.public_url) else {
            outcome.empty += 1;
            continue;
        };
        if opts.max_messages.is_some_and(|m| outcome.sent >= m) {
            return Ok(outcome);
        }
        let id = render::message_id(
            KIND,
            &format!("{name}.{batch}"),
            &r.member.0,
            mailer.domain(),
        );
        let sent = match address(&r) {
            Ok(to) => {
                let msg = render::message(mailer.from(), to, &id, &rendered, Utc::now())?;
                mailer.send(msg, &context).await
            }
            // An address the SMTP client cannot even write is as final as a 5xx.
            Err(e) => Err(MailError::Rejected(e.to_string())),
        };
        match sent {
            Ok(()) => {
                book.record_delivery(KIND, &batch, &r.member, &id, Utc::now())
                    .await?;
                outcome.sent += 1;
            }
            Err(MailError::Rejected(err)) => {
                book.record_rejection(KIND, &batch, &context, &r.member, &err, Utc::now())
                    .await?;
                outcome.rejected += 1;
            }
            Err(e) => {
                let _ = book
                    .record_failure(&context, &e.to_string(), Utc::now())
                    .await;
                return Err(e);
            }
        }
    }
    book.complete(&name, window).await?;
    outcome.complete = true;
    tracing::info!(digest = %digest.name, sent = outcome.sent, empty = outcome.empty, rejected = outcome.rejected, "Digest sent.");
    Ok(outcome)
}

/// The recipient's mailbox (their own name is not put on the envelope).
pub fn address(r: &MailRecipient) -> Result<Mailbox, MailError> {
    r.email
        .parse::<lettre::Address>()
        .map(|a| Mailbox::new(None, a))
        .map_err(|e| MailError::Address {
            whose: format!("member {}", r.member),
            address: r.email.clone(),
            detail: e.to_string(),
        })
}

/// Whether a digest is due at `now`: a window is open, or a schedule time has passed since
/// the last completed window. A digest never seen before starts its first window now.
pub async fn due(
    book: &MailBook,
    digest: &DigestConfig,
    now: DateTime<Utc>,
) -> Result<bool, MailError> {
    if book.pending(&digest.name).await?.is_some() {
        return Ok(true);
    }
    let Some(sent) = book.sent_until(&digest.name).await? else {
        book.start(&digest.name, now).await?;
        return Ok(false);
    };
    Ok(next_time(digest, sent).is_some_and(|t| t <= now))
}

/// The first schedule time after `after`.
pub fn next_time(digest: &DigestConfig, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    digest
        .schedule
        .after(&after.with_timezone(&digest.time_zone))
        .next()
        .map(|t| t.with_timezone(&Utc))
}

/// Runs every digest that is due at `now`, one window each however many schedule times
/// were missed. Errors of one digest do not stop the others.
pub async fn run_due(
    read: &ReadPath,
    book: &MailBook,
    config: &Config,
    mailer: &Mailer,
    now: DateTime<Utc>,
) -> Vec<(String, Result<RunOutcome, MailError>)> {
    let mut out = Vec::new();
    for d in &config.mail.digests {
        match due(book, d, now).await {
            Ok(true) => {
                let r = run(read, book, config, mailer, d, RunOptions::at(now)).await;
                out.push((d.name.clone(), r));
            }
            Ok(false) => {}
            Err(e) => out.push((d.name.clone(), Err(e))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Language;

    /// The flag sections are titled with the word the flags' one label table uses, so that
    /// a reader meets one word for one flag (the console once said 複数業種 where the
    /// digest said 分野横断).
    #[test]
    fn flag_sections_use_the_flags_words() {
        for lang in Language::ALL {
            // Each flag list is named after its flag (`[digest] sections`).
            for section in [Section::CrossSector, Section::Novel] {
                let kind: crate::model::FlagKind = section.as_str().parse().unwrap();
                let title = section_title(section, lang).to_lowercase();
                assert!(
                    title.contains(kind.label(lang)),
                    "{lang}: {title:?} does not say {:?}",
                    kind.label(lang)
                );
            }
        }
    }
}
