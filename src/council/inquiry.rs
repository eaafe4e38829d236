//! Inquiries on advisories and campaigns (#15 item 8).
//!
//! In the council's own cases the secretariat, after a public alert, asks the task force
//! (class 1) what its members know, and members answer with further information. Here the
//! secretariat opens an inquiry on an advisory (or a campaign) for chosen member classes;
//! members of those classes see it and answer with reports linked to it. A member report
//! answering an advisory is a member submission, so it is a campaign (an attack activity),
//! and that campaign shows the advisory as its public context even when it shares no value
//! with it (`council::read::advisories::answered_context`).
//!
//! The answers are shown as they arrive through the policy (a viewer sees the answers it
//! may see), never with a provider's name, and with the number of organisations only as a
//! k-anonymous bucket.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::audit;
use super::explain::organisations_bucket;
use super::read::ids::{ShownCampaignId, ShownReportId};
use crate::model::{MemberClass, MemberId, ReportDraft, ReportId, Tlp};
use crate::store::inquiries::{self, InquiryTarget};
use crate::store::{self, Op};

/// Audit action of an opened inquiry.
pub const AUDIT_OPEN: &str = "inquiry-open";

/// Longest question kept.
pub const QUESTION_MAX: usize = 4000;

/// Opens an inquiry for `classes` (members only: the secretariat sees every inquiry).
pub fn open_inquiry(
    target: InquiryTarget,
    question: String,
    classes: Vec<MemberClass>,
    analyst: String,
    at: DateTime<Utc>,
) -> Op<i64> {
    Op::new(move |conn| {
        let id = inquiries::open(conn, &target, &question, &classes, &analyst, at)?;
        let what = match &target {
            InquiryTarget::Advisory(seq) => format!("advisory R-{}", seq.0),
            InquiryTarget::Campaign(c) => c.to_string(),
        };
        audit::record(conn, at, &analyst, AUDIT_OPEN, &inquiry_id(id), &what)?;
        Ok(id)
    })
}

/// Stores `member`'s reports answering inquiry `inquiry`, in one transaction with the
/// answer records. `None` (nothing stored) when the inquiry does not exist or was not
/// opened for the member's class: the same for both, as "not found".
pub fn answer_with_reports(
    inquiry: i64,
    member: MemberId,
    drafts: Vec<ReportDraft>,
    at: DateTime<Utc>,
) -> Op<Option<Vec<ReportId>>> {
    Op::new(move |conn| {
        let Some(inq) = inquiries::get(conn, inquiry)? else {
            return Ok(None);
        };
        let Some(m) = store::members::find(conn, &member.0)? else {
            return Ok(None);
        };
        if m.id != member || !inq.classes.contains(&m.class) {
            return Ok(None);
        }
        let origin = crate::model::Origin::Submission { member };
        let mut ids = Vec::with_capacity(drafts.len());
        for d in &drafts {
            let id = store::reports::insert(conn, &origin, d, at)?.id();
            inquiries::answer(conn, inquiry, id.0, at)?;
            ids.push(id);
        }
        Ok(Some(ids))
    })
}

/// The shown id of an inquiry.
pub fn inquiry_id(id: i64) -> String {
    format!("I-{id}")
}

/// An inquiry id as given in a path: `I-<n>` or `<n>`.
pub fn parse_inquiry_id(s: &str) -> Option<i64> {
    s.strip_prefix("I-").unwrap_or(s).parse().ok()
}

/// One inquiry as a viewer sees it.
#[derive(Debug, Clone, Serialize)]
pub struct InquiryView {
    pub id: String,
    pub opened_at: DateTime<Utc>,
    pub question: String,
    pub about: InquiryAbout,
    /// The classes asked: secretariat only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<MemberClass>>,
    /// Answers the viewer may see, in the order they arrived; never with a provider.
    pub answers: Vec<AnswerView>,
    /// Distinct organisations among those answers, as a k-anonymous bucket.
    pub organisations: &'static str,
}

/// What an inquiry is about, as the viewer may see it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InquiryAbout {
    Advisory {
        /// The advisory's feed item (public context).
        #[serde(skip_serializing_if = "Option::is_none")]
        item: Option<ShownReportId>,
        title: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        link: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        feed: Option<String>,
    },
    Campaign {
        /// Shown only if the viewer may see the campaign.
        #[serde(skip_serializing_if = "Option::is_none")]
        campaign: Option<ShownCampaignId>,
    },
}

/// One answer: the report (through the policy), without its provider.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerView {
    pub report: ShownReportId,
    pub title: String,
    pub tlp: Tlp,
    pub received_at: DateTime<Utc>,
    /// The campaign the answer is part of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<ShownCampaignId>,
}

/// The organisations bucket of answers by `providers`.
pub fn answered_by(providers: usize) -> &'static str {
    organisations_bucket(providers)
}
