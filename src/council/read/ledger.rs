//! The give-and-take ledger and time-to-share as one viewer may receive them.
//!
//! - The ledger (`council::ledger`): the secretariat receives every member's row and the
//!   task-force candidates (audited: it names every member); a member its own row only,
//!   computed through its own visibility; an audience nothing.
//! - Time-to-share (`council::stats::share_times`): for the secretariat only. Its figures
//!   rest on every campaign, hidden parts included, and its per-campaign waiting times name
//!   campaigns a member may not see.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::ids::{self, ShownCampaignId};
use super::{ReadPath, Result, Viewer};
use crate::council::ledger::{Ledger, LedgerBook, LedgerRow};
use crate::council::stats::{self, ShareTimes, TimeToShare};

/// Campaigns listed as waiting longest (dashboard, digest).
pub const WAITING_LISTED: usize = 10;

/// The ledger as one viewer receives it.
#[derive(Debug, Clone)]
pub enum LedgerView {
    /// The secretariat: every member's row and the task-force candidates.
    Council(Ledger),
    /// A member: its own row.
    Own(LedgerRow),
}

/// A campaign waiting for the council's disposition, as the secretariat sees it.
#[derive(Debug, Clone, Serialize)]
pub struct WaitingCampaign {
    pub id: ShownCampaignId,
    /// Its first member submission.
    pub submitted: DateTime<Utc>,
    /// When it was first shared beyond class 1, if it was.
    pub shared: Option<DateTime<Utc>>,
    /// Seconds since the first member submission.
    pub waited_seconds: i64,
}

impl WaitingCampaign {
    pub(in crate::engine) fn of(viewer: &Viewer, t: &ShareTimes, now: DateTime<Utc>) -> Self {
        WaitingCampaign {
            id: ids::campaign(viewer, t.campaign),
            submitted: t.submitted,
            shared: t.shared,
            waited_seconds: (now - t.submitted).num_seconds(),
        }
    }
}

/// Time-to-share over the last 30 and 90 days and the campaigns waiting longest: the
/// secretariat's dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct ShareOverview {
    pub last_30_days: TimeToShare,
    pub last_90_days: TimeToShare,
    pub waiting_longest: Vec<WaitingCampaign>,
}

impl ReadPath {
    /// The ledger for the viewer: every row for the secretariat, its own for a member,
    /// `None` for anyone else (an audience; a member the store does not know).
    pub async fn ledger(&self, viewer: &Viewer, now: DateTime<Utc>) -> Result<Option<LedgerView>> {
        if viewer.member_id().is_none() {
            return Ok(None);
        }
        let who = viewer.clone();
        let view = self
            .read(move |conn| {
                let book = LedgerBook::read(conn, now)?;
                Ok(if who.is_secretariat() {
                    Some(LedgerView::Council(book.ledger()))
                } else {
                    book.own_row(&who).map(LedgerView::Own)
                })
            })
            .await?;
        // Every member's figures, by name: a secretariat read worth an audit line.
        if let (Some(LedgerView::Council(_)), Some(analyst)) = (&view, viewer.member_id()) {
            self.audit_read(analyst.0.clone(), "ledger".into()).await?;
        }
        Ok(view)
    }

    /// Time-to-share over the campaigns brought in during the last 30 and 90 days, and the
    /// campaigns waiting longest: the secretariat only (`None` for anyone else).
    pub async fn time_to_share(
        &self,
        viewer: &Viewer,
        now: DateTime<Utc>,
    ) -> Result<Option<ShareOverview>> {
        if !viewer.is_secretariat() {
            return Ok(None);
        }
        let viewer = viewer.clone();
        self.read(move |conn| {
            let times = stats::share_times(conn, now)?;
            let window = |days| TimeToShare::of(&times, now - TimeDelta::days(days), now);
            Ok(Some(ShareOverview {
                last_30_days: window(30),
                last_90_days: window(90),
                waiting_longest: stats::waiting_longest(&times, WAITING_LISTED)
                    .iter()
                    .map(|t| WaitingCampaign::of(&viewer, t, now))
                    .collect(),
            }))
        })
        .await
    }
}
