//! The acts of one viewer on what it sees: a member's sighting and feedback answer, the
//! secretariat's feedback requests and merge/split pins.
//!
//! Named *acts* because each is something a council participant does, as distinct from
//! [`ReadPath`](crate::council::ReadPath), which only shows: the read path computes views,
//! this type changes what the council knows. It holds the same store and campaign
//! snapshots, but no search index, and every method takes the [`Viewer`] who acts.
//!
//! A member's sighting or feedback answer is a statement about something it can see, so the
//! visibility check and the write happen together, inside one store transaction: a member
//! cannot raise flags or alerts on a campaign it may not see, and the refusal for a hidden
//! target is byte for byte the refusal for one that does not exist.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::correlate::CampaignSet;
use crate::council::Viewer;
use crate::council::feedback;
use crate::council::read::{Refused, ShownSightingId, ids, sees_campaign};
use crate::council::review;
use crate::model::{CampaignId, MemberClass, Observable, Seq, SightingDraft, SightingTarget};
use crate::store::{self, Store, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// The write side of the council for viewers: what members and the secretariat do, each
/// checked against what the viewer may see in the transaction that writes it. Cheap to
/// clone.
#[derive(Clone)]
pub struct Acts {
    store: Store,
    campaigns: watch::Receiver<Arc<CampaignSet>>,
}

impl Acts {
    /// The acts of a running daemon, checked against the correlator's latest snapshot.
    pub fn new(store: Store, campaigns: watch::Receiver<Arc<CampaignSet>>) -> Acts {
        Acts { store, campaigns }
    }

    fn campaign_set(&self) -> Arc<CampaignSet> {
        self.campaigns.borrow().clone()
    }

    /// A member's sighting of an observable or a campaign it can see, and its id as the
    /// member is shown it.
    ///
    /// Bounds first (they do not depend on what exists), then visibility: a target the
    /// viewer may not see is refused exactly like one that does not exist.
    pub async fn record_sighting(
        &self,
        viewer: &Viewer,
        draft: SightingDraft,
        now: DateTime<Utc>,
    ) -> std::result::Result<ShownSightingId, Refused> {
        feedback::check_sighting(&draft, now)?;
        let Some(member) = viewer.member_id().cloned() else {
            return Err(not_found_target(&draft.target));
        };
        let set = self.campaign_set();
        let viewer = viewer.clone();
        self.store
            .writer()
            .write(move |conn| {
                let visible = match &draft.target {
                    SightingTarget::Campaign(id) => sees_campaign(conn, &viewer, &set, *id)?,
                    SightingTarget::Observable(o) => sees_observable(conn, &viewer, o)?,
                };
                if !visible {
                    return Ok(Err(not_found_target(&draft.target)));
                }
                let id = store::sightings::insert(conn, &member, &draft, now, None)?;
                Ok(Ok(ids::sighting(&viewer, id)))
            })
            .await?
    }

    /// A member's answer to a feedback request: only to an open request addressed to its
    /// class about a campaign it may see; anything else is "no feedback request".
    pub async fn answer_feedback(
        &self,
        viewer: &Viewer,
        request: i64,
        answer: feedback::Answer,
        now: DateTime<Utc>,
    ) -> std::result::Result<i64, Refused> {
        feedback::check_count(answer.count)?;
        let set = self.campaign_set();
        let viewer = viewer.clone();
        self.store
            .writer()
            .write(move |conn| {
                let Some(req) = feedback::get(conn, request)? else {
                    return Ok(Err(feedback::not_found()));
                };
                if !sees_campaign(conn, &viewer, &set, req.campaign)? {
                    return Ok(Err(feedback::not_found()));
                }
                feedback::answer(conn, &req, &viewer, &answer, now)
            })
            .await
            .map_err(conflict)?
    }

    /// Secretariat: opens a feedback request (`None` for anyone else).
    pub async fn request_feedback(
        &self,
        viewer: &Viewer,
        campaign: CampaignId,
        question: String,
        classes: Vec<MemberClass>,
    ) -> std::result::Result<Option<i64>, Refused> {
        self.by_secretariat(viewer, move |analyst, now| {
            store::Op::new(move |conn| {
                feedback::request(conn, campaign, &question, &classes, &analyst, now)
            })
        })
        .await
    }

    /// Secretariat: records a merge or split pin (`None` for anyone else).
    pub async fn pin(
        &self,
        viewer: &Viewer,
        pin: review::PinKind,
        note: String,
    ) -> std::result::Result<Option<i64>, Refused> {
        self.by_secretariat(viewer, move |analyst, now| {
            crate::council::commands::pin(pin, note, analyst, now)
        })
        .await
    }

    /// Runs the operation `act` builds for the analyst behind `viewer`, now; `None` when
    /// the viewer is not the secretariat. Conflicts (wrong state, bad pin) are the client's.
    async fn by_secretariat<T: Send + 'static>(
        &self,
        viewer: &Viewer,
        act: impl FnOnce(String, DateTime<Utc>) -> store::Op<T>,
    ) -> std::result::Result<Option<T>, Refused> {
        let Some(analyst) = viewer.analyst() else {
            return Ok(None);
        };
        let op = act(analyst, Utc::now());
        let out = self.store.writer().run(op).await.map_err(conflict)?;
        Ok(Some(out))
    }
}

/// Whether the viewer may see some report holding the observable.
fn sees_observable(conn: &crate::store::db::Conn, viewer: &Viewer, o: &Observable) -> Result<bool> {
    let seqs: Vec<Seq> = store::sightings::reports_holding(conn, o)?;
    // In bounded chunks: an over-correlated value can sit in very many reports, and the
    // first visible one answers the question.
    for chunk in seqs.chunks(500) {
        if store::reports::metas(conn, chunk)?
            .iter()
            .any(|m| viewer.may_see(m))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Conflicts of a secretariat write (wrong state, bad pin) are the client's.
fn conflict(e: StoreError) -> Refused {
    match e {
        StoreError::Conflict(m) => Refused::Conflict(m),
        other => Refused::Store(other),
    }
}

fn not_found_target(target: &SightingTarget) -> Refused {
    Refused::NotFound {
        what: match target {
            SightingTarget::Campaign(_) => "campaign",
            SightingTarget::Observable(_) => "observable",
        },
    }
}
