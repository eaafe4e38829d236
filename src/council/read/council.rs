//! The council's own material as one viewer sees it — feedback requests, review history,
//! pins, the audit log. What viewers *do* about what they see (sightings, feedback answers
//! and requests, pins) is in [`crate::council::acts`].
//!
//! Secretariat-only reads answer `None` to anyone else (the HTTP layer turns that into the
//! same 404 as an unknown route) and are audited here, where they happen.

use chrono::Utc;

use super::{ReadPath, Result, Viewer};
use crate::correlate::{Campaign, CampaignSet};
use crate::council::audit::{self, AuditEntry};
use crate::council::feedback::{self, FeedbackRequest, RequestProgress};
use crate::council::review::{self, DispositionRecord, Pin};
use crate::council::views::CampaignView;
use crate::model::CampaignId;
use crate::store::StoreError;

/// Why a member's request was refused. Visibility never shows through: what the viewer
/// may not see is [`Refused::NotFound`], exactly like what does not exist.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Absent, or hidden from this viewer (the same answer for both). `what` names the kind
    /// of thing asked for, which the asker already knows.
    #[error("no {what} with that id")]
    NotFound { what: &'static str },
    /// A field of the request is out of bounds.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The request is valid but the state does not allow it (closed, already answered).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Refused {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Refused {
        Refused::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// A secretariat-only feedback request with how it is going.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestWithProgress {
    pub request: FeedbackRequest,
    pub progress: Option<RequestProgress>,
}

/// An open feedback request as a member sees it: the request (without the analyst) and the
/// campaign through the reports the member may see.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenRequest {
    #[serde(serialize_with = "request_without_campaign")]
    pub request: FeedbackRequest,
    /// Carries the campaign's id as the member is shown it (`ids`).
    pub campaign: CampaignView,
}

/// The request without its campaign field: the internal campaign id would count campaigns
/// (#14 finding 7); the member finds the campaign, with its opaque id, beside the request.
fn request_without_campaign<S: serde::Serializer>(
    r: &FeedbackRequest,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(None)?;
    m.serialize_entry("id", &r.id)?;
    m.serialize_entry("question", &r.question)?;
    m.serialize_entry("classes", &r.classes)?;
    m.serialize_entry("created_at", &r.created_at)?;
    if let Some(closed) = &r.closed_at {
        m.serialize_entry("closed_at", closed)?;
    }
    m.end()
}

/// Whether the viewer may see some part of the campaign (it exists and holds at least one
/// report the viewer may see).
pub(in crate::engine) fn sees_campaign(
    conn: &crate::store::db::Conn,
    viewer: &Viewer,
    set: &CampaignSet,
    id: CampaignId,
) -> Result<bool> {
    let Some(c) = set.get(id) else {
        return Ok(false);
    };
    let metas = super::load::metas(conn, &[c])?;
    Ok(metas.iter().flatten().any(|m| viewer.may_see(m)))
}

impl ReadPath {
    /// The open feedback requests meant for the viewer's class that it has not answered,
    /// each only if the viewer may see some part of its campaign, with the campaign as the
    /// viewer sees it.
    pub async fn open_feedback(&self, viewer: &Viewer) -> Result<Vec<OpenRequest>> {
        let set = self.campaign_set();
        let viewer = viewer.clone();
        self.read(move |conn| {
            let requests: Vec<(_, &Campaign)> = feedback::open_for(conn, &viewer)?
                .into_iter()
                .filter_map(|r| set.get(r.campaign).map(|c| (r, c)))
                .collect();
            let campaigns: Vec<&Campaign> = requests.iter().map(|(_, c)| *c).collect();
            let metas = super::load::metas(conn, &campaigns)?;
            Ok(requests
                .into_iter()
                .zip(metas)
                .filter_map(|((request, c), metas)| {
                    viewer
                        .campaign_view(c, &metas)
                        .map(|campaign| OpenRequest { request, campaign })
                })
                .collect())
        })
        .await
    }

    /// Secretariat: a feedback request and its progress (audited).
    pub async fn feedback_request(
        &self,
        viewer: &Viewer,
        id: i64,
    ) -> Result<Option<RequestWithProgress>> {
        let Some(analyst) = viewer.analyst() else {
            return Ok(None);
        };
        let found = self
            .read(move |conn| {
                let Some(request) = feedback::get(conn, id)? else {
                    return Ok(None);
                };
                let progress = feedback::progress(conn, id).ok();
                Ok(Some(RequestWithProgress { request, progress }))
            })
            .await?;
        if found.is_some() {
            self.audit_read(analyst, format!("feedback {id}")).await?;
        }
        Ok(found)
    }

    /// Secretariat: the full disposition history of a campaign (audited).
    pub async fn disposition_history(
        &self,
        viewer: &Viewer,
        id: CampaignId,
    ) -> Result<Option<Vec<DispositionRecord>>> {
        let Some(analyst) = viewer.analyst() else {
            return Ok(None);
        };
        let history = self.read(move |conn| review::history(conn, id)).await?;
        self.audit_read(analyst, format!("dispositions {id}"))
            .await?;
        Ok(Some(history))
    }

    /// Secretariat: the pins in force.
    pub async fn pins(&self, viewer: &Viewer) -> Result<Option<Vec<Pin>>> {
        if viewer.analyst().is_none() {
            return Ok(None);
        }
        Ok(Some(self.read(review::active_pins).await?))
    }

    /// Secretariat: the audit log, oldest first, optionally one actor's.
    pub async fn audit_log(
        &self,
        viewer: &Viewer,
        actor: Option<String>,
        limit: usize,
    ) -> Result<Option<Vec<AuditEntry>>> {
        if viewer.analyst().is_none() {
            return Ok(None);
        }
        let entries = self
            .read(move |conn| audit::list(conn, None, actor.as_deref(), limit))
            .await?;
        Ok(Some(entries))
    }

    pub(super) async fn audit_read(&self, actor: String, what: String) -> Result<()> {
        self.store
            .writer()
            .write(move |conn| {
                audit::record(conn, Utc::now(), &actor, audit::action::READ, &what, "")
            })
            .await?;
        Ok(())
    }
}
