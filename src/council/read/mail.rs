//! Mail as each recipient receives it: who receives mail at all, a digest window and an
//! alert batch seen by one viewer (a member, the secretariat, or a webhook's audience).
//!
//! A window or a batch is read from the store once per run ([`DigestWindow`],
//! [`AlertBatch`]) and then shown to each recipient through [`Viewer`]: what they hold
//! stays private to this module, and outputs receive only [`CampaignView`]s and counts
//! computed from what that viewer may see.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::ShownCampaignId;
use super::ledger::WaitingCampaign;
use super::load::{self, Detail};
use super::{ReadPath, Result, Viewer};
use crate::council::CampaignView;
use crate::council::ledger::LedgerBook;
use crate::council::stats::{self, ShareTimes};
use crate::model::{CampaignId, Member, MemberId, ReportMeta, Seq, Tlp};
use crate::store::mail::WindowBounds;
use crate::store::{self, members::MemberStatus};

/// Someone mail goes to: an active member with an address.
#[derive(Debug, Clone)]
pub struct MailRecipient {
    pub member: MemberId,
    pub viewer: Viewer,
    pub email: String,
    /// The member's language code as recorded (`ja`, `en`).
    pub language: String,
}

/// A member looked up by the CLI's `digest preview --as`.
#[derive(Debug, Clone)]
pub struct MailMember {
    pub member: MemberId,
    pub viewer: Viewer,
    /// Only approved members receive mail: suspended, expelled and applying ones get none.
    pub active: bool,
    pub language: Option<String>,
}

/// A delivery failure, as the secretariat is told of it.
#[derive(Debug, Clone)]
pub struct MailFailureView {
    pub at: DateTime<Utc>,
    pub context: String,
    pub error: String,
}

impl ReadPath {
    /// The members mail goes to: approved members selected by `include` (a digest's or the
    /// alerts' audience) that have an address. Suspended and expelled members receive
    /// nothing, whatever the audience says (members without an address are logged and
    /// skipped).
    pub async fn mail_recipients<F>(&self, include: F) -> Result<Vec<MailRecipient>>
    where
        F: Fn(&Member) -> bool + Send + 'static,
    {
        self.read(move |conn| {
            let contacts = store::mail::contacts(conn)?;
            let mut out = Vec::new();
            for (m, status) in store::members::list_with_status(conn)? {
                if status != MemberStatus::Approved || !include(&m) {
                    continue;
                }
                match contacts.get(&m.id) {
                    Some(c) => out.push(MailRecipient {
                        member: m.id.clone(),
                        viewer: Viewer::of(&m),
                        email: c.email.clone(),
                        language: c.language.clone(),
                    }),
                    None => tracing::debug!(member = %m.id, "Member has no mail address; skipped."),
                }
            }
            Ok(out)
        })
        .await
    }

    /// One member by id or exact name, for previews; `None` if there is no such member.
    pub async fn mail_member(&self, id_or_name: &str) -> Result<Option<MailMember>> {
        let who = id_or_name.to_string();
        self.read(move |conn| {
            let Some(m) = store::members::find(conn, &who)? else {
                return Ok(None);
            };
            let status = store::members::status(conn, &m.id)?;
            let language = store::mail::contacts(conn)?
                .remove(&m.id)
                .map(|c| c.language);
            Ok(Some(MailMember {
                member: m.id.clone(),
                viewer: Viewer::of(&m),
                active: status == Some(MemberStatus::Approved),
                language,
            }))
        })
        .await
    }

    /// What a digest window holds, read once for all its recipients: the campaigns with a
    /// report the window covers and their reports up to `max_tlp` (reports above it never
    /// enter, whoever the recipient is), and the mail failures of the window.
    ///
    /// The reports are those of the window's seq range (`store::mail`), and the campaigns
    /// are looked up in a campaign snapshot that has applied them: the read waits up to
    /// `wait` for the correlator to reach the window's last report, and a window read from a
    /// snapshot still behind says so ([`DigestWindow::behind`]) rather than silently
    /// leaving out the campaigns of the reports not yet correlated.
    pub async fn digest_window(
        &self,
        window: WindowBounds,
        max_tlp: Tlp,
        wait: std::time::Duration,
    ) -> Result<DigestWindow> {
        if let Some(through) = window.through {
            let mut rx = self.campaigns.clone();
            let _ = tokio::time::timeout(wait, rx.wait_for(|set| set.applied >= through)).await;
        }
        let set = self.campaign_set();
        let (start, end) = (window.start, window.end);
        self.read(move |conn| {
            let seqs = store::mail::reports_received(conn, &window)?;
            let window_metas: Vec<ReportMeta> = store::reports::metas(conn, &seqs)?
                .into_iter()
                .filter(|m| m.tlp <= max_tlp)
                .collect();
            let mut seen = HashSet::new();
            let touched = seqs
                .iter()
                .filter_map(|seq| set.by_report.get(seq))
                .filter(|id| seen.insert(**id))
                .filter_map(|id| set.by_id.get(id))
                .map(|&i| set.campaigns[i].clone());
            let campaigns = load::details_vec(conn, touched, |r| r.draft.tlp <= max_tlp)?;
            let failures = store::mail::failures(conn, start, end)?;
            // Public context of every value of the window's campaigns, read once; each
            // recipient is shown the items it may see for the values it may see.
            let mut context = HashMap::new();
            for d in &campaigns {
                let mut values: Vec<crate::model::Observable> = d
                    .reports
                    .iter()
                    .flat_map(|r| r.draft.indicators.iter().map(|i| i.observable.clone()))
                    .collect();
                values.sort();
                values.dedup();
                context.insert(
                    d.campaign.id,
                    super::advisories::context_items(conn, &values)?,
                );
            }
            let ledger = LedgerBook::read(conn, end)?;
            let waiting =
                stats::waiting_longest(&stats::share_times(conn, end)?, super::WAITING_LISTED);
            Ok(DigestWindow {
                window,
                correlated: set.applied,
                context,
                campaigns,
                window_metas,
                failures,
                ledger,
                waiting,
            })
        })
        .await
    }

    /// The campaigns of an alert batch with their reports up to `max_tlp`, read once for
    /// all recipients and webhooks. Campaigns that no longer exist are left out.
    pub async fn alert_batch(&self, ids: Vec<CampaignId>, max_tlp: Tlp) -> Result<AlertBatch> {
        let set = self.campaign_set();
        self.read(move |conn| {
            let existing = ids
                .iter()
                .filter_map(|id| set.by_id.get(id))
                .map(|&i| set.campaigns[i].clone());
            let campaigns = load::details_vec(conn, existing, |r| r.draft.tlp <= max_tlp)?
                .into_iter()
                .map(|d| (d.campaign.id, d))
                .collect();
            Ok(AlertBatch { campaigns })
        })
        .await
    }
}

/// One digest window, read once; shown to each recipient through [`DigestWindow::view`].
/// Most public context items a digest shows per campaign.
const DIGEST_CONTEXT_MAX: usize = 5;

pub struct DigestWindow {
    window: WindowBounds,
    /// The last report the campaign snapshot read had applied.
    correlated: Seq,
    /// Feed items carrying each campaign's values, with their metas.
    context: HashMap<CampaignId, Vec<(crate::council::views::PublicContext, ReportMeta)>>,
    /// The campaigns with a report received in the window, with their reports up to
    /// `max_tlp`.
    campaigns: Vec<Detail>,
    /// Reports received in the window (up to `max_tlp`), their release included.
    window_metas: Vec<ReportMeta>,
    failures: Vec<store::mail::Failure>,
    /// The give-and-take ledger at the window's end (each member gets its own figure).
    ledger: LedgerBook,
    /// The campaigns waiting longest for a disposition at the window's end.
    waiting: Vec<ShareTimes>,
}

/// A digest window as one viewer may see it.
#[derive(Debug, Clone)]
pub struct DigestView {
    /// Campaigns with a report received in the window that the viewer may see, each shown
    /// through the viewer's reports only.
    pub campaigns: Vec<CampaignView>,
    /// The reports received in the window that the viewer may see.
    pub window: HashSet<Seq>,
    /// The campaigns (of `campaigns`) new in this window as the viewer sees them: none of
    /// their visible reports was covered by an earlier window (by seq; a window with the
    /// time fallback: first seen at or after its start).
    pub new: HashSet<ShownCampaignId>,
    /// How many reports the viewer may see were received in the window.
    pub reports_received: usize,
    /// Mail delivery failures of the window: for the secretariat only (they name members).
    pub failures: Vec<MailFailureView>,
    /// For a member: how many campaigns its reports contributed to were shared with the
    /// council (its own ledger figure, through its own visibility). `None` for anyone else.
    pub contributed_shared: Option<usize>,
    /// For the secretariat: the campaigns waiting longest for a disposition (empty for
    /// anyone else: waiting times name campaigns).
    pub waiting: Vec<WaitingCampaign>,
}

impl DigestWindow {
    pub fn start(&self) -> DateTime<Utc> {
        self.window.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.window.end
    }

    /// `(applied, through)` when the campaign snapshot read had not applied every report of
    /// the window: campaigns of the missing reports would be left out of this window and,
    /// their reports being covered by it, of every later one. The sender retries instead.
    pub fn behind(&self) -> Option<(Seq, Seq)> {
        self.window
            .through
            .filter(|t| self.correlated < *t)
            .map(|t| (self.correlated, t))
    }

    /// The window as `viewer` may see it.
    pub fn view(&self, viewer: &Viewer) -> DigestView {
        let window: HashSet<Seq> = self
            .window_metas
            .iter()
            .filter(|m| viewer.may_see(m))
            .map(|m| m.id.0)
            .collect();
        let campaigns: Vec<CampaignView> = self
            .campaigns
            .iter()
            .filter_map(|d| {
                let mut v = d.view(viewer)?;
                // Context for the values of the visible reports only.
                let visible: HashSet<&str> = v
                    .observables
                    .iter()
                    .flatten()
                    .map(|o| o.value.as_str())
                    .collect();
                v.context = self.context.get(&d.campaign.id).map(|items| {
                    items
                        .iter()
                        .filter(|(c, meta)| {
                            visible.contains(c.value.value.as_str()) && viewer.may_see(meta)
                        })
                        .map(|(c, _)| c.clone())
                        .take(DIGEST_CONTEXT_MAX)
                        .collect()
                });
                Some(v)
            })
            .filter(|v| {
                v.reports
                    .iter()
                    .any(|r| window.contains(&r.id.internal().0))
            })
            .collect();
        let new = campaigns
            .iter()
            .filter(|v| match self.window.after {
                Some(after) => v.reports.iter().all(|r| r.id.internal().0 > after),
                None => v.first_seen >= self.window.start,
            })
            .map(|v| v.id)
            .collect();
        let failures = if viewer.is_secretariat() {
            self.failures
                .iter()
                .map(|f| MailFailureView {
                    at: f.at,
                    context: f.context.clone(),
                    error: f.error.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let waiting = if viewer.is_secretariat() {
            self.waiting
                .iter()
                .map(|t| WaitingCampaign::of(viewer, t, self.window.end))
                .collect()
        } else {
            Vec::new()
        };
        DigestView {
            campaigns,
            reports_received: window.len(),
            window,
            new,
            failures,
            contributed_shared: self.ledger.own_row(viewer).map(|r| r.contributed_shared),
            waiting,
        }
    }
}

/// The campaigns of one alert batch, read once; shown through [`AlertBatch::view`].
pub struct AlertBatch {
    campaigns: HashMap<CampaignId, Detail>,
}

impl AlertBatch {
    /// The campaign as `viewer` may be alerted to it. Why a campaign spread can rest on
    /// reports the viewer may not see, so outside the secretariat a campaign is alerted
    /// only when the viewer sees every report of it (a webhook's audience included): an
    /// alert never tells anyone that hidden material exists.
    pub fn view(&self, viewer: &Viewer, id: CampaignId) -> Option<CampaignView> {
        let detail = self.campaigns.get(&id)?;
        let view = detail.view(viewer)?;
        (viewer.is_secretariat() || view.report_count == detail.campaign.reports.len())
            .then_some(view)
    }
}
