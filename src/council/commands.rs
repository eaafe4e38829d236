//! What the secretariat and members *do*, each as one typed store operation
//! ([`store::Op`]) with its audit record.
//!
//! The HTTP API, the console and the CLI all call these, so a release, a disposition or a
//! change of membership is written (and audited) in one place. Callers queue the operation
//! with [`store::StoreWriter::run`] (async) or `run_blocking` (CLI); none of them holds a
//! connection.

use chrono::{DateTime, Utc};

use super::audit;
use super::review::PinKind;
use crate::model::Disposition;
use crate::model::{CampaignId, Category, Member, MemberClass, MemberId, ReportId, Sector};
use crate::store::members::{ImportSummary, MemberStatus};
use crate::store::{self, Op, StoreError};

/// Releases a campaign: the reports it holds at this moment (later arrivals, merges and
/// pins wait for their own release). Returns how many reports the release covered.
pub fn release_campaign(campaign: CampaignId, analyst: String, at: DateTime<Utc>) -> Op<usize> {
    Op::new(move |conn| {
        let n = store::releases::release_campaign(conn, campaign, &analyst, at)?;
        audit::record(
            conn,
            at,
            &analyst,
            audit::action::RELEASE,
            &campaign.to_string(),
            &format!("{n} report(s)"),
        )?;
        Ok(n)
    })
}

/// Releases one report.
pub fn release_report(report: ReportId, analyst: String, at: DateTime<Utc>) -> Op<()> {
    Op::new(move |conn| {
        store::releases::release_report(conn, report.0, &analyst, at)?;
        audit::record(
            conn,
            at,
            &analyst,
            audit::action::RELEASE,
            &report.to_string(),
            "",
        )?;
        Ok(())
    })
}

/// Records an analyst's disposition of a campaign (with its history).
pub fn decide(
    campaign: CampaignId,
    disposition: Disposition,
    note: String,
    analyst: String,
    at: DateTime<Utc>,
) -> Op<i64> {
    Op::new(move |conn| super::review::decide(conn, campaign, disposition, &note, &analyst, at))
}

/// Records an analyst's merge or split pin (the correlator applies it at its next round).
pub fn pin(pin: PinKind, note: String, analyst: String, at: DateTime<Utc>) -> Op<i64> {
    Op::new(move |conn| match pin {
        PinKind::Merge { a, b } => super::review::pin_merge(conn, a, b, &note, &analyst, at),
        PinKind::Split { campaign, reports } => {
            super::review::pin_split(conn, campaign, &reports, &note, &analyst, at)
        }
    })
}

/// Enrols a member under the id and class it already has (a roster entry, a member moved
/// from another council server); no token is issued.
pub fn enrol(member: Member) -> Op<()> {
    Op::new(move |conn| store::members::add(conn, &member))
}

/// A new member, and the token it authenticates with (shown once).
pub fn add_member(
    name: String,
    class: MemberClass,
    sector: Option<Sector>,
    category: Option<Category>,
) -> Op<(MemberId, String)> {
    Op::new(move |conn| {
        let id = store::members::next_id(conn)?;
        let m = store::members::member(id.clone(), &name, class, sector, category);
        store::members::add(conn, &m)?;
        let token = store::members::issue_token(conn, &id)?;
        Ok((id, token))
    })
}

/// Imports the council's roster (adds and updates members).
pub fn import_roster(entries: Vec<super::roster::RosterEntry>) -> Op<ImportSummary> {
    Op::new(move |conn| {
        let members: Vec<Member> = entries
            .iter()
            .map(|e| e.to_member(super::roster::default_class))
            .collect();
        store::members::import_roster(conn, &members)
    })
}

/// A new token for a member (by id or exact name); older tokens stop working at once.
pub fn rotate_token(member: String, actor: String, at: DateTime<Utc>) -> Op<(MemberId, String)> {
    Op::new(move |conn| {
        let m = store::members::find(conn, &member)?
            .ok_or_else(|| StoreError::Conflict(format!("no member {member:?}")))?;
        let token = store::members::rotate_token(conn, &m.id, at)?;
        audit::record(conn, at, &actor, audit::action::TOKEN_ROTATE, &m.id.0, "")?;
        Ok((m.id, token))
    })
}

/// Moves a member (by id or exact name) to a new membership status.
pub fn set_member_status(
    member: String,
    to: MemberStatus,
    actor: String,
    note: String,
    at: DateTime<Utc>,
) -> Op<MemberId> {
    Op::new(move |conn| {
        let m = store::members::find(conn, &member)?
            .ok_or_else(|| StoreError::Conflict(format!("no member {member:?}")))?;
        store::members::set_status(conn, &m.id, to, &actor, &note, at, None)?;
        audit::record(
            conn,
            at,
            &actor,
            audit::action::MEMBER_STATUS,
            &m.id.0,
            to.as_str(),
        )?;
        Ok(m.id)
    })
}

/// Records one alert pass (`council::read::AlertWatch`): the triggers appended to the outbox
/// and the announced state changed, in one transaction, if the state is still at
/// `expected` (a deposed leader's pass writes nothing).
pub fn record_alert_pass(
    expected: Option<i64>,
    change: store::alerts::AnnouncedChange,
    outbox: Vec<store::alerts::OutboxEntry>,
    at: DateTime<Utc>,
) -> Op<store::alerts::Recorded> {
    Op::new(move |conn| store::alerts::record_pass(conn, expected, &change, &outbox, at))
}

/// Claims the pending alert triggers up to row `upto` as one batch before anything is sent
/// (or returns the batch already open); None if nothing is pending.
pub fn claim_alerts(upto: i64, at: DateTime<Utc>) -> Op<Option<String>> {
    Op::new(move |conn| store::alerts::claim(conn, upto, at))
}

/// Marks an alert batch done: every recipient has it (or was refused for good); forgets the
/// batches finished beyond the retention (`store::alerts::RETENTION_DAYS`) in the same
/// transaction and gives how many.
pub fn finish_alerts(batch: String, at: DateTime<Utc>) -> Op<usize> {
    Op::new(move |conn| store::alerts::finish(conn, &batch, at))
}
