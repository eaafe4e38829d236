//! Immediate alerts: a campaign that becomes `cross-sector` or `surge`, or gains reports
//! from a sector it had none from, is mailed to the alert audience (task force class 1 by
//! default) within seconds.
//!
//! Triggers are a pure function of two campaign snapshots ([`triggers`]), so they are the
//! same whether a change arrived by one submission or by a bulk import. The [`Coalescer`]
//! gathers triggers for `coalesce` after the first one and holds each mail at least
//! `min_interval` after the previous one: a bulk import produces one summary, not
//! thousands of mails.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::digest::{self, campaign_item};
use super::render::{self, Labels, MailBody, SectionBody};
use super::state;
use super::{MailError, Mailer};
use crate::config::Config;
use crate::config::mail::Language;
use crate::correlate::CampaignSet;
use crate::council::Viewer;
use crate::model::{CampaignId, Report, Sector, Tlp};
use crate::store::{self, Store};

/// The delivery kind of alerts in `mail_deliveries`.
pub const KIND: &str = "alert";
/// Flags that raise an immediate alert.
pub const ALERT_FLAGS: [&str; 2] = ["cross-sector", "surge"];

/// Why a campaign is alerted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// The campaign gained one of [`ALERT_FLAGS`].
    Flag { flag: String },
    /// The campaign gained reports from sectors it had none from (the sectors are
    /// secretariat-only evidence: members are told only that it spread).
    NewSectors {
        #[serde(skip)]
        sectors: BTreeSet<Sector>,
    },
}

impl Reason {
    fn text(&self, lang: Language, secretariat: bool) -> String {
        match (self, lang) {
            (Reason::Flag { flag }, Language::Ja) => format!("フラグ {flag} が付きました"),
            (Reason::Flag { flag }, Language::En) => format!("flagged {flag}"),
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

/// One campaign's reason to alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub campaign: CampaignId,
    pub reason: Reason,
}

/// What changed between two snapshots that deserves an alert. A campaign's "before" is
/// what its reports belonged to before, so merges and new campaigns are handled alike.
pub fn triggers(before: &CampaignSet, after: &CampaignSet) -> Vec<Trigger> {
    let mut out = Vec::new();
    for c in &after.campaigns {
        let mut prev_flags = BTreeSet::new();
        let mut prev_sectors = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for &seq in &c.reports {
            if let Some(&i) = before.by_report.get(&seq)
                && seen.insert(i)
                && let Some(p) = before.get(i)
            {
                prev_flags.extend(p.flag_names());
                prev_sectors.extend(p.sectors.iter().copied());
            }
        }
        for f in c.flag_names() {
            if ALERT_FLAGS.contains(&f.as_str()) && !prev_flags.contains(&f) {
                out.push(Trigger {
                    campaign: c.id,
                    reason: Reason::Flag { flag: f },
                });
            }
        }
        let gained: BTreeSet<Sector> = c.sectors.difference(&prev_sectors).copied().collect();
        if !gained.is_empty() && c.sectors.len() >= 2 {
            out.push(Trigger {
                campaign: c.id,
                reason: Reason::NewSectors { sectors: gained },
            });
        }
    }
    out
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

/// Mails one batch to every alert recipient, each copy through the council policy.
pub async fn send(
    store: &Store,
    config: &Config,
    mailer: &Mailer,
    set: &Arc<CampaignSet>,
    batch: &Batch,
    now: DateTime<Utc>,
) -> Result<AlertOutcome, MailError> {
    let cfg = &config.mail.alerts;
    let key = batch_key(batch);
    let (s, aud, set2, ids, max_tlp, k) = (
        store.clone(),
        cfg.audience.clone(),
        set.clone(),
        batch.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        cfg.max_tlp,
        key.clone(),
    );
    let (recipients, (reports, released), done) = tokio::task::spawn_blocking(move || {
        let r = digest::recipients(&s, &aud)?;
        let mut reports: HashMap<CampaignId, Vec<Report>> = HashMap::new();
        let mut released = HashSet::new();
        s.read(|conn| {
            for id in ids {
                if let Some(c) = set2.get(id) {
                    released.extend(store::releases::released(conn, &c.reports)?);
                    let rs = store::reports::get_many(conn, &c.reports)?
                        .into_iter()
                        .filter(|r| r.draft.tlp <= max_tlp)
                        .collect();
                    reports.insert(id, rs);
                }
            }
            Ok(())
        })?;
        let done = s.read(|conn| state::delivered(conn, KIND, &k))?;
        Ok::<_, store::StoreError>((r, (reports, released), done))
    })
    .await
    .map_err(|e| MailError::Message(format!("alert task failed: {e}")))??;

    let mut outcome = AlertOutcome::default();
    for r in recipients {
        if done.contains(&r.member.id) {
            continue;
        }
        let viewer = Viewer::of(&r.member);
        let lang = r.language(cfg.language);
        let t = Labels::of(lang);
        let mut items = Vec::new();
        let mut tlp = Tlp::Clear;
        for (id, reasons) in batch {
            let (Some(c), Some(rs)) = (set.get(*id), reports.get(id)) else {
                continue;
            };
            let Some(view) = viewer.campaign_detail(c, rs, &released) else {
                continue;
            };
            // Why a campaign spread can rest on reports this member may not see: outside
            // the secretariat a campaign is alerted only when all of it is visible.
            if !viewer.is_secretariat() && view.report_count != c.reports.len() {
                continue;
            }
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
        let to = digest::address(&r)?;
        let id = render::message_id(KIND, &key, &r.member.id.0, mailer.domain());
        let msg = render::message(mailer.from(), to, &id, &rendered, Utc::now())?;
        if let Err(e) = mailer.send(msg, KIND).await {
            let err = e.to_string();
            let _ = store
                .writer()
                .write(move |conn| state::record_failure(conn, KIND, &err, Utc::now()))
                .await;
            return Err(e);
        }
        let (k, m) = (key.clone(), r.member.id.clone());
        store
            .writer()
            .write(move |conn| state::record_delivery(conn, KIND, &k, &m, &id, Utc::now()))
            .await?;
        outcome.sent += 1;
    }
    if !cfg.webhooks.is_empty() {
        post_webhooks(config, batch, now).await;
    }
    tracing::info!(campaigns = batch.len(), sent = outcome.sent, "Alert sent.");
    Ok(outcome)
}

#[derive(Serialize)]
struct WebhookCampaign<'a> {
    id: String,
    reasons: &'a [Reason],
    link: String,
}

/// POSTs a batch as JSON: campaign ids, reason kinds and links only — no report, no
/// observable, no sector, no provider, because a webhook has no viewer to apply policy to.
async fn post_webhooks(config: &Config, batch: &Batch, now: DateTime<Utc>) {
    let payload = serde_json::json!({
        "at": now,
        "campaigns": batch.iter().map(|(id, reasons)| WebhookCampaign {
            id: id.to_string(),
            reasons,
            link: format!("{}/console/campaigns/{id}", config.public_url),
        }).collect::<Vec<_>>(),
    });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Cannot build the webhook client.");
            return;
        }
    };
    for url in &config.mail.alerts.webhooks {
        match client.post(url.clone()).json(&payload).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(
                status = r.status().as_u16(),
                host = url.host_str().unwrap_or(""),
                "Alert webhook refused the alert."
            ),
            Err(e) => {
                tracing::warn!(error = %e, host = url.host_str().unwrap_or(""), "Alert webhook failed.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::Campaign;
    use crate::model::Seq;

    fn set(campaigns: Vec<(u32, Vec<u64>, Vec<Sector>)>) -> CampaignSet {
        let mut s = CampaignSet::default();
        for (n, reports, sectors) in campaigns {
            let id = CampaignId {
                year: 2026,
                number: n,
            };
            let i = s.campaigns.len();
            for &r in &reports {
                s.by_report.insert(Seq(r), id);
            }
            s.by_id.insert(id, i);
            s.campaigns.push(std::sync::Arc::new(Campaign {
                id,
                reports: reports.into_iter().map(Seq).collect(),
                first_seen: Utc::now(),
                last_seen: Utc::now(),
                linking: Vec::new(),
                sectors: sectors.into_iter().collect(),
                flags: Vec::new(),
            }));
        }
        s
    }

    #[test]
    fn a_new_sector_triggers_once() {
        let a = set(vec![(1, vec![1, 2], vec![Sector::Telecom])]);
        let b = set(vec![(
            1,
            vec![1, 2, 3],
            vec![Sector::Telecom, Sector::Finance],
        )]);
        let t = triggers(&a, &b);
        assert_eq!(t.len(), 1);
        assert_eq!(
            t[0].reason,
            Reason::NewSectors {
                sectors: [Sector::Finance].into()
            }
        );
        // Nothing new since: no trigger.
        assert!(triggers(&b, &b).is_empty());
        // A single-sector campaign growing is no alert.
        let c = set(vec![(1, vec![1, 2, 3, 4], vec![Sector::Telecom])]);
        assert!(triggers(&a, &c).is_empty());
    }

    #[test]
    fn merges_compare_with_the_parts() {
        let a = set(vec![
            (1, vec![1], vec![Sector::Telecom]),
            (2, vec![2], vec![Sector::Finance]),
        ]);
        // Merged: both sectors existed before, but in different campaigns; the merged
        // campaign gained none relative to the union of its parts.
        let b = set(vec![(
            1,
            vec![1, 2],
            vec![Sector::Telecom, Sector::Finance],
        )]);
        assert!(triggers(&a, &b).is_empty());
        // A brand-new campaign spanning two sectors triggers.
        let c = set(vec![(3, vec![7, 8], vec![Sector::Water, Sector::Gas])]);
        assert_eq!(triggers(&CampaignSet::default(), &c).len(), 1);
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
                flag: "surge".into(),
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
