//! Scheduled digests.
//!
//! A run covers the window since the last completed one, `[sent_until, now)`. The window is
//! written to the store before the first message goes out and completed only after every
//! recipient's copy was accepted by the SMTP server; each accepted copy leaves a delivery
//! row. A run interrupted by a crash or an SMTP outage is resumed with the same window, so
//! recipients already served get nothing more and the others get the same Message-ID they
//! would have got. Several missed schedule times give one catch-up window, not several.
//!
//! Each copy is built for its recipient through [`Viewer`]: campaigns are shown through the
//! reports that recipient may see (never above the digest's `max_tlp`), sources only as
//! policy labels, and a digest with nothing for the recipient is not sent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::Mailbox;

use super::render::{
    self, CampaignItem, Labels, MailBody, ObservableLine, Rendered, ReportLine, SectionBody,
};
use super::state::{self, Contact};
use super::{MailError, Mailer};
use crate::config::Config;
use crate::config::mail::{DigestConfig, Language, LanguageChoice, Section};
use crate::correlate::{Campaign, CampaignSet};
use crate::council::{CampaignView, SourceLabel, Viewer};
use crate::model::{Member, Report, ReportMeta, Seq, Tlp};
use crate::store::{self, Store};

/// The delivery kind of digests in `mail_deliveries`.
pub const KIND: &str = "digest";
/// Campaigns listed in full in one section; the rest are counted.
pub const MAX_CAMPAIGNS: usize = 50;
/// Reports listed per campaign.
pub const MAX_REPORTS: usize = 5;
/// Observables listed per campaign.
pub const MAX_OBSERVABLES: usize = 10;

/// What every recipient's copy of one window is built from (read once per run).
pub struct WindowInput {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Campaigns with a report received in the window, with their reports up to `max_tlp`.
    campaigns: Vec<(Campaign, Vec<Report>)>,
    /// Reports received in the window (up to `max_tlp`).
    window: HashSet<Seq>,
    window_metas: Vec<ReportMeta>,
    /// Reports the secretariat has released to class 2 and general members.
    released: HashSet<Seq>,
    failures: Vec<(DateTime<Utc>, String, String)>,
}

/// Reads what a window needs from the store (blocking).
pub fn load_window(
    store: &Store,
    set: &CampaignSet,
    digest: &DigestConfig,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> store::Result<WindowInput> {
    store.read(|conn| {
        let seqs = state::reports_received(conn, start, end)?;
        let window_metas: Vec<ReportMeta> = store::reports::metas(conn, &seqs)?
            .into_iter()
            .filter(|m| m.tlp <= digest.max_tlp)
            .collect();
        let window: HashSet<Seq> = window_metas.iter().map(|m| m.id.0).collect();
        let mut seen = HashSet::new();
        let mut campaigns = Vec::new();
        let mut released = HashSet::new();
        for &seq in &seqs {
            let Some(c) = set.of_report(seq) else {
                continue;
            };
            if !seen.insert(c.id) {
                continue;
            }
            let reports: Vec<Report> = store::reports::get_many(conn, &c.reports)?
                .into_iter()
                .filter(|r| r.draft.tlp <= digest.max_tlp)
                .collect();
            released.extend(store::releases::released(conn, &c.reports)?);
            campaigns.push((c.clone(), reports));
        }
        let failures = state::failures(conn, start, end)?;
        Ok(WindowInput {
            start,
            end,
            campaigns,
            window,
            window_metas,
            released,
            failures,
        })
    })
}

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

/// One campaign view as a mail item. `window` selects the reports listed (all if None).
pub fn campaign_item(
    view: &CampaignView,
    window: Option<(&HashSet<Seq>, DateTime<Utc>)>,
    tz: Tz,
    t: &Labels,
    public_url: &str,
    reasons: Vec<String>,
) -> CampaignItem {
    let mut reports: Vec<_> = view
        .reports
        .iter()
        .filter(|r| window.is_none_or(|(w, _)| w.contains(&r.id.0)))
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
        is_new: window.is_some_and(|(_, start)| view.first_seen >= start),
        unconfirmed: view.unconfirmed,
        headline,
        first_seen: local(view.first_seen, tz),
        last_seen: local(view.last_seen, tz),
        report_count: view.report_count,
        new_reports,
        flags: view.flags.clone(),
        reasons,
        more_reports: reports.len().saturating_sub(MAX_REPORTS),
        reports: reports
            .iter()
            .take(MAX_REPORTS)
            .map(|r| ReportLine {
                id: r.id.to_string(),
                title: r.title.clone(),
                tlp: r.tlp.label(),
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
    input: &WindowInput,
    digest: &DigestConfig,
    viewer: &Viewer,
    lang: Language,
    public_url: &str,
) -> Option<Rendered> {
    let t = Labels::of(lang);
    let tz = digest.time_zone;
    let mut views: Vec<CampaignView> = input
        .campaigns
        .iter()
        .filter_map(|(c, reports)| viewer.campaign_detail(c, reports, &input.released))
        .filter(|v| v.reports.iter().any(|r| input.window.contains(&r.id.0)))
        .collect();
    // New campaigns first, then the most recently active.
    views.sort_by(|a, b| {
        (b.first_seen >= input.start)
            .cmp(&(a.first_seen >= input.start))
            .then(b.last_seen.cmp(&a.last_seen))
    });
    let item = |v: &CampaignView| {
        campaign_item(
            v,
            Some((&input.window, input.start)),
            tz,
            &t,
            public_url,
            Vec::new(),
        )
    };
    let flagged = |names: &[&str]| -> Vec<CampaignItem> {
        views
            .iter()
            .filter(|v| v.flags.iter().any(|f| names.contains(&f.as_str())))
            .map(item)
            .collect()
    };
    let mut sections = Vec::new();
    let mut tlp = Tlp::Clear;
    let new = views.iter().filter(|v| v.first_seen >= input.start).count();
    for &s in &digest.sections {
        let title = section_title(s, lang);
        let body = match s {
            Section::Campaigns => capped(title, views.iter().map(item).collect(), lang),
            Section::CrossSector => capped(title, flagged(&["cross-sector", "surge"]), lang),
            Section::Novel => capped(title, flagged(&["novel"]), lang),
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
            Section::Health if viewer.is_secretariat() && !input.failures.is_empty() => {
                Some(SectionBody {
                    title: title.to_string(),
                    campaigns: Vec::new(),
                    lines: input
                        .failures
                        .iter()
                        .map(|(at, context, error)| {
                            format!("{} {context}: {error}", local(*at, tz))
                        })
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
        let visible = input
            .window_metas
            .iter()
            .filter(|m| viewer.may_see(m))
            .count();
        let updated = views.len() - new;
        sections.push(SectionBody {
            title: section_title(Section::Statistics, lang).to_string(),
            campaigns: Vec::new(),
            lines: match lang {
                Language::Ja => vec![
                    format!("期間内の報告: {visible} 件"),
                    format!("新規キャンペーン: {new} 件、更新: {updated} 件"),
                ],
                Language::En => vec![
                    format!("reports received: {visible}"),
                    format!("campaigns: {new} new, {updated} updated"),
                ],
            },
        });
    }
    let day = input.end.with_timezone(&tz).format("%Y-%m-%d");
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
        window_start: local(input.start, tz),
        window_end: local(input.end, tz),
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

/// A recipient of a digest: the member and their address.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub member: Member,
    pub contact: Contact,
}

impl Recipient {
    pub fn language(&self, choice: LanguageChoice) -> Language {
        match choice {
            LanguageChoice::Ja => Language::Ja,
            LanguageChoice::En => Language::En,
            LanguageChoice::PerMember => self.contact.language,
        }
    }
}

/// Members of an audience with an address (members without one are logged and skipped).
pub fn recipients(
    store: &Store,
    audience: &crate::config::mail::Audience,
) -> store::Result<Vec<Recipient>> {
    store.read(|conn| {
        let contacts = state::contacts(conn)?;
        let mut out = Vec::new();
        for m in store::members::list(conn)? {
            if !audience.includes(&m) {
                continue;
            }
            match contacts.get(&m.id) {
                Some(c) => out.push(Recipient {
                    member: m,
                    contact: c.clone(),
                }),
                None => tracing::debug!(member = %m.id, "Member has no mail address; skipped."),
            }
        }
        Ok(out)
    })
}

/// What one member would receive from a digest now (`musubi digest preview`).
pub fn preview(
    store: &Store,
    config: &Config,
    digest: &DigestConfig,
    set: &CampaignSet,
    member: &Member,
    now: DateTime<Utc>,
) -> Result<Option<Rendered>, MailError> {
    let (start, end) = store.read(|conn| {
        Ok(match state::pending(conn, &digest.name)? {
            Some(w) => w,
            None => (window_start(conn, digest, now)?, now),
        })
    })?;
    let input = load_window(store, set, digest, start, end)?;
    let lang = store.read(|conn| Ok(state::contacts(conn)?.remove(&member.id)))?;
    let lang = match (digest.language, lang) {
        (LanguageChoice::Ja, _) => Language::Ja,
        (LanguageChoice::En, _) => Language::En,
        (LanguageChoice::PerMember, Some(c)) => c.language,
        (LanguageChoice::PerMember, None) => Language::Ja,
    };
    Ok(build(
        &input,
        digest,
        &Viewer::of(member),
        lang,
        &config.public_url,
    ))
}

fn window_start(
    conn: &rusqlite::Connection,
    digest: &DigestConfig,
    now: DateTime<Utc>,
) -> store::Result<DateTime<Utc>> {
    Ok(state::sent_until(conn, &digest.name)?.unwrap_or_else(|| {
        now - chrono::Duration::from_std(digest.first_window).unwrap_or(chrono::Duration::days(1))
    }))
}

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
    /// Recipients served by an earlier, interrupted run of the same window.
    pub already_sent: usize,
    /// Recipients with nothing to receive.
    pub empty: usize,
    /// Whether the window was completed (else it is resumed by the next run).
    pub complete: bool,
}

/// Sends one window of a digest: the open one if a run was interrupted, else
/// `[sent_until, now)`.
pub async fn run(
    store: &Store,
    config: &Config,
    mailer: &Mailer,
    digest: &DigestConfig,
    set: &Arc<CampaignSet>,
    opts: RunOptions,
) -> Result<RunOutcome, MailError> {
    let name = digest.name.clone();
    // The store keeps microseconds: a window end must read back exactly as it was written.
    let now = DateTime::from_timestamp_micros(opts.now.timestamp_micros()).unwrap_or(opts.now);
    let d = digest.clone();
    let (start, end, resumed) = {
        let n = name.clone();
        let open = store
            .read_async(move |conn| state::pending(conn, &n))
            .await?;
        match open {
            Some((s, e)) => (s, e, true),
            None => {
                let (n, d2) = (name.clone(), d.clone());
                let start = store
                    .read_async(move |conn| window_start(conn, &d2, now))
                    .await?;
                let start = start.min(now);
                store
                    .writer()
                    .write(move |conn| state::begin(conn, &n, start, now))
                    .await?;
                (start, now, false)
            }
        }
    };
    if resumed {
        tracing::info!(digest = %name, "Resuming an interrupted digest window.");
    }
    let batch = end.timestamp_micros().to_string();
    let mut outcome = RunOutcome {
        window_start: Some(start),
        window_end: Some(end),
        ..RunOutcome::default()
    };
    let (s2, a2, set2, d2, b2) = (
        store.clone(),
        digest.audience.clone(),
        set.clone(),
        d.clone(),
        batch.clone(),
    );
    let (recipients, input, done) = tokio::task::spawn_blocking(move || {
        let r = recipients(&s2, &a2)?;
        let input = load_window(&s2, &set2, &d2, start, end)?;
        let done = s2.read(|conn| state::delivered(conn, KIND, &b2))?;
        Ok::<_, store::StoreError>((r, input, done))
    })
    .await
    .map_err(|e| MailError::Message(format!("digest task failed: {e}")))??;
    let context = format!("digest {name}");
    for r in recipients {
        if done.contains(&r.member.id) {
            outcome.already_sent += 1;
            continue;
        }
        let lang = r.language(digest.language);
        let Some(rendered) = build(
            &input,
            digest,
            &Viewer::of(&r.member),
            lang,
            &config.public_url,
        ) else {
            outcome.empty += 1;
            continue;
        };
        if opts.max_messages.is_some_and(|m| outcome.sent >= m) {
            return Ok(outcome);
        }
        let to = address(&r)?;
        let id = render::message_id(
            KIND,
            &format!("{name}.{batch}"),
            &r.member.id.0,
            mailer.domain(),
        );
        let msg = render::message(mailer.from(), to, &id, &rendered, Utc::now())?;
        if let Err(e) = mailer.send(msg, &context).await {
            let (c, err) = (context.clone(), e.to_string());
            let _ = store
                .writer()
                .write(move |conn| state::record_failure(conn, &c, &err, Utc::now()))
                .await;
            return Err(e);
        }
        let (b, m) = (batch.clone(), r.member.id.clone());
        store
            .writer()
            .write(move |conn| state::record_delivery(conn, KIND, &b, &m, &id, Utc::now()))
            .await?;
        outcome.sent += 1;
    }
    store
        .writer()
        .write(move |conn| state::complete(conn, &name, end))
        .await?;
    outcome.complete = true;
    tracing::info!(digest = %digest.name, sent = outcome.sent, empty = outcome.empty, "Digest sent.");
    Ok(outcome)
}

/// The recipient's mailbox (their own name is not put on the envelope).
pub fn address(r: &Recipient) -> Result<Mailbox, MailError> {
    r.contact
        .email
        .parse::<lettre::Address>()
        .map(|a| Mailbox::new(None, a))
        .map_err(|e| MailError::Address {
            whose: format!("member {}", r.member.id),
            address: r.contact.email.clone(),
            detail: e.to_string(),
        })
}

/// Whether a digest is due at `now`: a window is open, or a schedule time has passed since
/// the last completed window. A digest never seen before starts its first window now.
pub async fn due(
    store: &Store,
    digest: &DigestConfig,
    now: DateTime<Utc>,
) -> Result<bool, MailError> {
    let name = digest.name.clone();
    let (pending, sent) = store
        .read_async(move |conn| {
            Ok((
                state::pending(conn, &name)?,
                state::sent_until(conn, &name)?,
            ))
        })
        .await?;
    if pending.is_some() {
        return Ok(true);
    }
    let Some(sent) = sent else {
        let name = digest.name.clone();
        store
            .writer()
            .write(move |conn| state::set_sent_until(conn, &name, now))
            .await?;
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
    store: &Store,
    config: &Config,
    mailer: &Mailer,
    set: &Arc<CampaignSet>,
    now: DateTime<Utc>,
) -> Vec<(String, Result<RunOutcome, MailError>)> {
    let mut out = Vec::new();
    for d in &config.mail.digests {
        match due(store, d, now).await {
            Ok(true) => {
                let r = run(store, config, mailer, d, set, RunOptions::at(now)).await;
                out.push((d.name.clone(), r));
            }
            Ok(false) => {}
            Err(e) => out.push((d.name.clone(), Err(e))),
        }
    }
    out
}

/// The digests' recipients indexed by member id (for the CLI).
pub fn by_member(list: Vec<Recipient>) -> HashMap<crate::model::MemberId, Recipient> {
    list.into_iter().map(|r| (r.member.id.clone(), r)).collect()
}
