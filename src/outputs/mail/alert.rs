//! Immediate alerts: a campaign that becomes `cross-sector` or `surge`, or gains reports
//! from a sector it had none from, is mailed to the alert audience (task force class 1 by
//! default) within seconds.
//!
//! Triggers come from the council (`council::read::AlertWatch`): a pure function of two
//! campaign snapshots, the same whether a change arrived by one submission or by a bulk
//! import. The [`Coalescer`]
//! gathers triggers for `coalesce` after the first one and holds each mail at least
//! `min_interval` after the previous one: a bulk import produces one summary, not
//! thousands of mails.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::digest::{self, campaign_item};
use super::render::{self, Labels, MailBody, SectionBody};
use super::{MailError, Mailer, webhook};
use crate::config::Config;
use crate::config::mail::Language;
use crate::council::MailBook;
use crate::council::ReadPath;
pub use crate::council::read::{Reason, Trigger};
use crate::model::{CampaignId, Tlp};

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

/// Gathers triggers into batches: rate limiting and coalescing.
#[derive(Debug)]
pub struct Coalescer {
    pending: BTreeMap<CampaignId, BTreeSet<Reason>>,
    first: Option<Instant>,
    last_sent: Option<Instant>,
    coalesce: Duration,
    min_interval: Duration,
}

/// A batch ready to send: campaigns and their reasons.
pub type Batch = Vec<(CampaignId, Vec<Reason>)>;

impl Coalescer {
    pub fn new(coalesce: Duration, min_interval: Duration) -> Coalescer {
        Coalescer {
            pending: BTreeMap::new(),
            first: None,
            last_sent: None,
            coalesce,
            min_interval,
        }
    }

    pub fn push(&mut self, triggers: Vec<Trigger>, now: Instant) {
        for t in triggers {
            self.first.get_or_insert(now);
            let reasons = self.pending.entry(t.campaign).or_default();
            // Sectors gained in several steps read as one reason.
            if let Reason::NewSectors { sectors } = &t.reason
                && let Some(Reason::NewSectors { sectors: old }) = reasons
                    .iter()
                    .find(|r| matches!(r, Reason::NewSectors { .. }))
                    .cloned()
            {
                reasons.remove(&Reason::NewSectors {
                    sectors: old.clone(),
                });
                let mut all = old;
                all.extend(sectors.iter().copied());
                reasons.insert(Reason::NewSectors { sectors: all });
                continue;
            }
            reasons.insert(t.reason);
        }
    }

    /// When the pending batch may go out (None: nothing pending).
    pub fn deadline(&self) -> Option<Instant> {
        let first = self.first?;
        let mut at = first + self.coalesce;
        if let Some(last) = self.last_sent {
            at = at.max(last + self.min_interval);
        }
        Some(at)
    }

    /// Takes the batch if its time has come.
    pub fn take(&mut self, now: Instant) -> Option<Batch> {
        if self.deadline()? > now {
            return None;
        }
        self.first = None;
        self.last_sent = Some(now);
        let batch = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(id, r)| (id, r.into_iter().collect()))
            .collect();
        Some(batch)
    }
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

/// The batch's identity: its campaigns and reasons. A batch retried after a failure keeps
/// its key, so recipients already served are skipped and the Message-ID stays the same.
fn batch_key(batch: &Batch) -> String {
    let mut h = Sha256::new();
    for (id, reasons) in batch {
        h.update(id.to_string());
        h.update(format!("{reasons:?}"));
    }
    hex::encode(&h.finalize()[..8])
}

/// Mails one batch to every alert recipient (approved members of the alert audience), each
/// copy built from the batch as that recipient sees it through the read path, then POSTs it
/// to the webhooks for the webhooks' audience. A recipient the SMTP server refuses for good
/// is recorded and reported to the secretariat; only transient failures fail the batch
/// (which is then retried without the recipients already served).
pub async fn send(
    read: &ReadPath,
    book: &MailBook,
    config: &Config,
    mailer: &Mailer,
    batch: &Batch,
    now: DateTime<Utc>,
) -> Result<AlertOutcome, MailError> {
    let cfg = &config.mail.alerts;
    let key = batch_key(batch);
    let recipients = digest::recipients(read, &cfg.audience).await?;
    let seen = read
        .alert_batch(batch.iter().map(|(id, _)| *id).collect(), cfg.max_tlp)
        .await?;
    let done = book.done(KIND, &key).await?;

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
        let id = render::message_id(KIND, &key, &r.member.0, mailer.domain());
        let sent = match digest::address(&r) {
            Ok(to) => {
                let msg = render::message(mailer.from(), to, &id, &rendered, Utc::now())?;
                mailer.send(msg, KIND).await
            }
            Err(e) => Err(MailError::Rejected(e.to_string())),
        };
        match sent {
            Ok(()) => {
                book.record_delivery(KIND, &key, &r.member, &id, Utc::now())
                    .await?;
                outcome.sent += 1;
            }
            Err(MailError::Rejected(err)) => {
                book.record_rejection(KIND, &key, KIND, &r.member, &err, Utc::now())
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
        outcome.webhooks = webhook::post(config, &seen, batch, now).await;
    }
    tracing::info!(
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

    #[test]
    fn coalescing_and_rate_limit() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(Duration::from_secs(5), Duration::from_secs(60));
        let trig = |n| Trigger {
            campaign: CampaignId {
                year: 2026,
                number: n,
            },
            reason: Reason::Flag {
                flag: FlagKind::Surge,
            },
        };
        assert!(c.take(t0).is_none());
        c.push((1..=1000).map(trig).collect(), t0);
        c.push(vec![trig(1)], t0 + Duration::from_secs(1));
        assert!(c.take(t0 + Duration::from_secs(4)).is_none());
        let batch = c.take(t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(batch.len(), 1000);
        assert_eq!(batch[0].1.len(), 1);
        // Rate limit: the next batch waits for min_interval after the last one.
        c.push(vec![trig(2000)], t0 + Duration::from_secs(6));
        assert!(c.take(t0 + Duration::from_secs(30)).is_none());
        assert_eq!(c.take(t0 + Duration::from_secs(65)).unwrap().len(), 1);
    }
}
