//! Immediate alerts: a campaign that becomes `cross-sector` or `surge`, or gains reports
//! from a sector it had none from, is mailed to the alert audience (task force class 1 by
//! default) within seconds.
//!
//! Triggers come from the council (`council::read::AlertWatch`): a pure function of the
//! announced state kept in the store and the latest campaign snapshot, recorded by the
//! leader into the store's alert outbox, the same whether a change arrived by one
//! submission or by a bulk import, and whichever node led when it arrived.
//!
//! Sending is measured from the outbox's stored times, so that a new leader honours it: a
//! batch goes out `coalesce` after its oldest trigger and at least `min_interval` after the
//! previous batch was claimed ([`due_at`]): a bulk import produces one summary, not
//! thousands of mails. A batch is claimed in the store before its first copy goes out; each
//! accepted copy is recorded (kind `alert`, the batch id) and the batch is marked done when
//! everyone has it. A batch a dead leader left open is sent by the next one to the
//! recipients without a copy, under the same Message-IDs.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::digest::{self, campaign_item};
use super::render::{self, Labels, MailBody, SectionBody};
use super::{MailError, Mailer, webhook};
use crate::config::Config;
use crate::config::mail::Language;
use crate::council::MailBook;
use crate::council::ReadPath;
pub use crate::council::read::{Batch, ClaimedAlerts, Reason, Trigger};
use crate::model::{MemberId, Tlp};

/// The delivery kind of alerts in `mail_deliveries`.
pub const KIND: &str = "alert";
impl Reason {
    fn text(&self, lang: Language, secretariat: bool) -> String {
        match (self, lang) {
            (Reason::Flag { flag }, Language::Ja) => {
                format!("フラグ {} が付きました", flag.label(lang))
            }
            (Reason::Flag { flag }, Language::En) => format!("flagged {}", flag.label(lang)),
            (Reason::NewSectors { sectors }, lang) => {
                let names: Vec<&str> = sectors.iter().map(|s| s.as_str()).collect();
                match (lang, secretariat) {
                    (Language::Ja, true) => format!("新たな分野から報告: {}", names.join(", ")),
                    (Language::Ja, false) => "新たな分野から報告がありました".into(),
                    (Language::En, true) => {
                        format!("reported from new sectors: {}", names.join(", "))
                    }
                    (Language::En, false) => "reported from a new sector".into(),
                }
            }
        }
    }
}

/// When the pending triggers may go out: `coalesce` after the oldest of them, and not
/// before `min_interval` after the last batch was claimed. Both times are the store's, so
/// a new leader keeps the pace of the old one.
pub fn due_at(
    first_pending: DateTime<Utc>,
    last_claimed: Option<DateTime<Utc>>,
    coalesce: std::time::Duration,
    min_interval: std::time::Duration,
) -> DateTime<Utc> {
    let span =
        |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let mut at = first_pending + span(coalesce);
    if let Some(last) = last_claimed {
        at = at.max(last + span(min_interval));
    }
    at
}

/// What sending a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertOutcome {
    pub sent: usize,
    /// Recipients who may see none of the batch.
    pub empty: usize,
    /// Recipients the SMTP server refused for good.
    pub rejected: usize,
    /// Webhooks that accepted the batch.
    pub webhooks: usize,
}

/// Mails one claimed batch to every alert recipient (approved members of the alert
/// audience) who has no copy of it yet, each copy built from the batch as that recipient
/// sees it through the read path, then POSTs it to the webhooks (those not served yet) for
/// the webhooks' audience. A recipient the SMTP server refuses for good is recorded and
/// reported to the secretariat; only transient failures fail the batch (which stays open
/// and is retried without the recipients already served). The copies carry the batch's
/// claim time, so a copy resent by another leader reads the same.
pub async fn send(
    read: &ReadPath,
    book: &MailBook,
    config: &Config,
    mailer: &Mailer,
    claimed: &ClaimedAlerts,
) -> Result<AlertOutcome, MailError> {
    let cfg = &config.mail.alerts;
    let key = claimed.batch.as_str();
    let batch = &claimed.campaigns;
    let now = claimed.claimed_at;
    let recipients = digest::recipients(read, &cfg.audience).await?;
    let seen = read
        .alert_batch(batch.iter().map(|(id, _)| *id).collect(), cfg.max_tlp)
        .await?;
    let done = book.done(KIND, key).await?;

    let mut outcome = AlertOutcome::default();
    for r in recipients {
        if done.contains(&r.member) {
            continue;
        }
        let viewer = &r.viewer;
        let lang = digest::language(cfg.language, Some(&r.language));
        let t = Labels::of(lang);
        let mut items = Vec::new();
        let mut tlp = Tlp::Clear;
        for (id, reasons) in batch {
            let Some(view) = seen.view(viewer, *id) else {
                continue;
            };
            tlp = tlp.max(view.tlp);
            let why = reasons
                .iter()
                .map(|x| x.text(lang, viewer.is_secretariat()))
                .collect();
            items.push(campaign_item(
                &view,
                None,
                chrono_tz::Asia::Tokyo,
                &t,
                &config.public_url,
                why,
            ));
        }
        if items.is_empty() {
            outcome.empty += 1;
            continue;
        }
        let n = items.len();
        let mut lines = Vec::new();
        if n > cfg.max_campaigns {
            let rest = n - cfg.max_campaigns;
            items.truncate(cfg.max_campaigns);
            lines.push(match lang {
                Language::Ja => format!("ほか {rest} 件はコンソールで確認してください"),
                Language::En => format!("{rest} more in the console"),
            });
        }
        let (title, subject) = match lang {
            Language::Ja => (
                "musubi 速報".to_string(),
                format!(
                    "[{}] musubi 速報: キャンペーン {n} 件が拡大しています",
                    tlp.label()
                ),
            ),
            Language::En => (
                "musubi alert".to_string(),
                format!("[{}] musubi alert: {n} campaigns spreading", tlp.label()),
            ),
        };
        let when = now
            .with_timezone(&chrono_tz::Asia::Tokyo)
            .format("%Y-%m-%d %H:%M")
            .to_string();
        let body = MailBody {
            lang: lang.as_str(),
            title,
            subject,
            tlp: tlp.label(),
            tlp_color: render::tlp_color(tlp),
            window_start: when.clone(),
            window_end: when,
            time_zone: "Asia/Tokyo".into(),
            sections: vec![SectionBody {
                title: match lang {
                    Language::Ja => "拡大中のキャンペーン".into(),
                    Language::En => "Spreading campaigns".into(),
                },
                campaigns: items,
                lines,
            }],
            t,
        };
        let rendered = render::render(&body, tlp)?;
        let id = render::message_id(KIND, key, &r.member.0, mailer.domain());
        let sent = match digest::address(&r) {
            Ok(to) => {
                let msg = render::message(mailer.from(), to, &id, &rendered, Utc::now())?;
                mailer.send(msg, KIND).await
            }
            Err(e) => Err(MailError::Rejected(e.to_string())),
        };
        match sent {
            Ok(()) => {
                book.record_delivery(KIND, key, &r.member, &id, Utc::now())
                    .await?;
                outcome.sent += 1;
            }
            Err(MailError::Rejected(err)) => {
                book.record_rejection(KIND, key, KIND, &r.member, &err, Utc::now())
                    .await?;
                outcome.rejected += 1;
            }
            Err(e) => {
                let _ = book.record_failure(KIND, &e.to_string(), Utc::now()).await;
                return Err(e);
            }
        }
    }
    if !cfg.webhooks.is_empty() {
        let served: HashSet<MemberId> = done;
        for hook in webhook::post(config, &seen, batch, now, &served).await {
            book.record_delivery(KIND, key, &hook, key, Utc::now())
                .await?;
            outcome.webhooks += 1;
        }
    }
    tracing::info!(
        batch = key,
        campaigns = batch.len(),
        sent = outcome.sent,
        rejected = outcome.rejected,
        "Alert sent."
    );
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FlagKind;

    /// The reason reads the flag with the one label table, as the console and the
    /// digest do.
    #[test]
    fn a_flag_reason_is_labelled_in_the_mail_language() {
        let r = Reason::Flag {
            flag: FlagKind::CrossSector,
        };
        assert_eq!(r.text(Language::Ja, false), "フラグ 分野横断 が付きました");
        assert_eq!(r.text(Language::En, false), "flagged cross-sector");
        // Webhooks still get the name.
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"kind": "flag", "flag": "cross-sector"})
        );
    }

    /// Coalescing and the rate limit read the stored times: `coalesce` after the oldest
    /// pending trigger, `min_interval` after the last claim.
    #[test]
    fn coalescing_and_rate_limit() {
        use std::time::Duration;
        let t0 = Utc::now();
        let s = |n: i64| chrono::Duration::seconds(n);
        let (c, m) = (Duration::from_secs(5), Duration::from_secs(60));
        assert_eq!(due_at(t0, None, c, m), t0 + s(5));
        // A batch claimed 10 s ago: the next waits for the minimum interval.
        assert_eq!(due_at(t0, Some(t0 - s(10)), c, m), t0 + s(50));
        // Long ago: only the coalescing counts.
        assert_eq!(due_at(t0, Some(t0 - s(600)), c, m), t0 + s(5));
    }

    /// Sectors gained over several triggers of one campaign read as one reason.
    #[test]
    fn a_batch_gathers_a_campaigns_reasons() {
        use crate::model::{CampaignId, Sector};
        let id = CampaignId {
            year: 2026,
            number: 1,
        };
        let sectors = |s: &[Sector]| Reason::NewSectors {
            sectors: s.iter().copied().collect(),
        };
        let surge = Reason::Flag {
            flag: FlagKind::Surge,
        };
        let b = crate::council::read::gather(&[
            (id, sectors(&[Sector::Finance])),
            (id, surge.clone()),
            (id, sectors(&[Sector::Water])),
            (id, surge.clone()),
        ]);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].1.len(), 2);
        assert!(b[0].1.contains(&sectors(&[Sector::Finance, Sector::Water])));
    }
}
