//! Inquiries as one viewer sees them: the secretariat sees every inquiry; a member sees
//! those opened for its class. Answers are reports and pass through the policy like any
//! report; their providers are never named.

use std::collections::HashSet;

use super::{ReadPath, Result, Viewer, ids};
use crate::council::inquiry::{AnswerView, InquiryAbout, InquiryView, answered_by, inquiry_id};
use crate::model::{Origin, ReportId, Seq};
use crate::store;
use crate::store::inquiries::{InquiryRow, InquiryTarget};

impl ReadPath {
    /// The inquiries `viewer` may see, newest first.
    pub async fn inquiries(&self, viewer: &Viewer) -> Result<Vec<InquiryView>> {
        let set = self.campaign_set();
        let viewer = viewer.clone();
        self.read(move |conn| {
            let mut out = Vec::new();
            for row in store::inquiries::list(conn)? {
                if let Some(v) = inquiry_view(conn, &set, &viewer, row)? {
                    out.push(v);
                }
            }
            Ok(out)
        })
        .await
    }

    /// One inquiry; `None` when it does not exist or was not opened for the viewer.
    pub async fn inquiry(&self, viewer: &Viewer, id: i64) -> Result<Option<InquiryView>> {
        let set = self.campaign_set();
        let viewer = viewer.clone();
        self.read(move |conn| match store::inquiries::get(conn, id)? {
            Some(row) => inquiry_view(conn, &set, &viewer, row),
            None => Ok(None),
        })
        .await
    }

    /// What an inquiry the secretariat opens may be about: an advisory named by one of its
    /// feed items (`advisory`, a report id) or a campaign; `None` for anything else (a
    /// member report, an unknown id, or anyone but the secretariat).
    pub fn inquiry_target(
        &self,
        viewer: &Viewer,
        advisory: Option<&str>,
        campaign: Option<&str>,
    ) -> Option<InquiryTarget> {
        if !viewer.is_secretariat() {
            return None;
        }
        let set = self.campaign_set();
        match (advisory, campaign) {
            (Some(a), None) => {
                let ReportId(seq) = ids::parse_report(viewer, a)?;
                set.advisories
                    .iter()
                    .any(|adv| adv.reports.contains(&seq))
                    .then_some(InquiryTarget::Advisory(seq))
            }
            (None, Some(c)) => {
                let id = ids::parse_campaign(viewer, c)?;
                set.get(id).map(|_| InquiryTarget::Campaign(id))
            }
            _ => None,
        }
    }
}

fn inquiry_view(
    conn: &crate::store::db::Conn,
    set: &crate::correlate::CampaignSet,
    viewer: &Viewer,
    row: InquiryRow,
) -> Result<Option<InquiryView>> {
    let asked = viewer.is_secretariat() || viewer.class().is_some_and(|c| row.classes.contains(&c));
    if !asked {
        return Ok(None);
    }
    let about = match &row.target {
        InquiryTarget::Advisory(seq) => {
            let item = store::reports::get_many(conn, &[*seq])?.into_iter().next();
            match item.filter(|r| viewer.may_see(&r.meta_released(false))) {
                Some(r) => InquiryAbout::Advisory {
                    item: Some(ids::report(viewer, r.id)),
                    title: r.draft.title.clone(),
                    link: r.draft.link.clone(),
                    feed: match &r.origin {
                        Origin::FeedItem { feed } => Some(feed.clone()),
                        _ => None,
                    },
                },
                None => InquiryAbout::Advisory {
                    item: None,
                    title: String::new(),
                    link: None,
                    feed: None,
                },
            }
        }
        InquiryTarget::Campaign(id) => {
            let shown = match set.get(*id) {
                Some(c) => {
                    let metas = super::load::metas(conn, &[c])?;
                    viewer
                        .campaign_view(c, &metas[0])
                        .map(|_| ids::campaign(viewer, *id))
                }
                None => None,
            };
            InquiryAbout::Campaign { campaign: shown }
        }
    };
    let seqs: Vec<Seq> = store::inquiries::answers(conn, row.id)?;
    let metas = store::reports::metas(conn, &seqs)?;
    let reports = store::reports::get_many(conn, &seqs)?;
    let mut answers = Vec::new();
    let mut providers = HashSet::new();
    for seq in &seqs {
        let Some(meta) = metas.iter().find(|m| m.id.0 == *seq) else {
            continue;
        };
        let Some(summary) = viewer.report_summary(meta) else {
            continue;
        };
        if let Some(r) = reports.iter().find(|r| r.seq() == *seq)
            && let Origin::Submission { member } = &r.origin
        {
            providers.insert(member.clone());
        }
        answers.push(AnswerView {
            report: summary.id,
            title: summary.title,
            tlp: summary.tlp,
            received_at: summary.received_at,
            campaign: set.of_report(*seq).map(|c| ids::campaign(viewer, c.id)),
        });
    }
    Ok(Some(InquiryView {
        id: inquiry_id(row.id),
        opened_at: row.opened_at,
        question: row.question,
        about,
        classes: viewer.is_secretariat().then_some(row.classes),
        answers,
        organisations: answered_by(providers.len()),
    }))
}
