//! Keeping the correlation projection in step with the store.
//!
//! At start-up the graph is built from every stored report and its groups are matched to the
//! campaign ids the store has recorded; afterwards it applies the reports committed since.
//! Whatever the engine changes in campaign ids is handed back to be recorded in the store.
//!
//! When several nodes share one store only the leader records ids. A follower applies
//! reports only as far as the leader has recorded correlation (its watermark, in the same
//! transaction as its events) and shows its groups under the recorded ids
//! ([`Engine::adopt`]), so that it never shows an id the leader has not given. A follower
//! that becomes leader first follows to the watermark, then takes the recorded ids over
//! ([`Engine::take_over`]) and records from there. Every recording names the generation it
//! follows, so that a node that lost the lead without knowing it writes nothing.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use super::graph::Pin;
use super::rules::Rules;
use super::{
    CampaignEvent, CampaignSet, Engine, Explainer, IdBook, ReportFacts, SightingFacts, Source,
};
use crate::model::{MemberId, Role, Sector, Seq};
use crate::store::campaigns::{Recorded, Watermark};
use crate::store::{self, Store};

/// How many reports are read from the store at a time.
const BATCH: usize = 50_000;

/// How often a long first build logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The correlation engine together with how far it has read the store.
pub struct Correlator {
    /// Shared with the snapshots it takes, which explain campaigns on request
    /// ([`super::Explainer`]); written by this correlator only, one batch or report at a
    /// time, so a request waits at most that long.
    engine: Arc<RwLock<Engine>>,
    sectors: HashMap<MemberId, Option<Sector>>,
    applied: Seq,
    /// The last sighting applied.
    sightings: i64,
    /// The last pin set the engine was given (pins change rarely; compared each round).
    pins: Vec<Pin>,
    /// Whether this correlator records ids (leader) or adopts them (follower).
    role: Role,
    /// The leader's watermark as last recorded or adopted here: the generation is the one
    /// the next recording must follow.
    watermark: Watermark,
}

impl Correlator {
    /// Builds the engine from everything in the store with the given rules. Returns the
    /// events to record.
    pub fn start(
        store: &Store,
        rules: Arc<Rules>,
    ) -> store::Result<(Correlator, Vec<CampaignEvent>)> {
        Correlator::start_as(store, rules, Role::Leader)
    }

    /// [`Correlator::start`] in a role: a follower builds from the reports up to the
    /// leader's watermark, shows the recorded ids and returns no events.
    pub fn start_as(
        store: &Store,
        rules: Arc<Rules>,
        role: Role,
    ) -> store::Result<(Correlator, Vec<CampaignEvent>)> {
        let (watermark, assignments, retired, sectors, pins) = store.read(|conn| {
            // The watermark first: assignments read after it cover at least what it says.
            let watermark = store::campaigns::watermark(conn)?;
            Ok((
                watermark,
                store::campaigns::assignments(conn)?,
                store::campaigns::all_ids(conn)?,
                member_sectors(conn)?,
                pins(conn)?,
            ))
        })?;
        let limit = (role == Role::Follower).then_some(watermark.seq);
        let recorded = (role == Role::Follower).then(|| assignments.clone());
        let mut ids = IdBook::from_assignments(assignments);
        for id in retired {
            ids.reserve(id);
        }
        let mut me = Correlator {
            engine: Arc::new(RwLock::new(Engine::with_rules(rules, ids))),
            sectors,
            applied: Seq(0),
            sightings: 0,
            pins: pins.clone(),
            role,
            watermark,
        };
        // A first build over a million reports takes a while: the journal gets a line every
        // few seconds with how far it is and how fast it goes, instead of nothing. The store
        // is read on a thread of its own, one batch ahead of the engine (reading and decoding
        // the next batch overlaps interning this one; one batch in flight bounds the memory).
        let (began, mut logged, mut loaded) = (Instant::now(), Instant::now(), 0usize);
        std::thread::scope(|scope| -> store::Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let reader = scope.spawn(move || -> store::Result<()> {
                let mut after = Seq(0);
                loop {
                    let mut rows =
                        store.read(|conn| store::reports::facts_after(conn, after, BATCH))?;
                    if let Some(limit) = limit {
                        rows.retain(|r| r.seq <= limit);
                    }
                    let Some(last) = rows.last() else { break };
                    after = last.seq;
                    if tx.send(rows).is_err() {
                        break;
                    }
                }
                Ok(())
            });
            for rows in rx {
                let Some(last) = rows.last() else { continue };
                me.applied = last.seq;
                loaded += rows.len();
                let batch = rows.into_iter().map(|row| me.facts(row)).collect();
                me.engine_mut().load(batch);
                if logged.elapsed() >= PROGRESS_EVERY {
                    logged = Instant::now();
                    tracing::info!(
                        seq = me.applied.0,
                        reports = loaded,
                        per_s = (loaded as f64 / began.elapsed().as_secs_f64().max(1e-3)) as u64,
                        "Correlation catching up."
                    );
                }
            }
            reader.join().expect("the store reader does not panic")
        })?;
        let mut events = me.engine_mut().finish_load(pins);
        if let Some(recorded) = recorded {
            // What the build allocated is private: the groups take the recorded ids.
            events.clear();
            me.engine_mut().adopt(&recorded, true);
        }
        me.apply_sightings(store)?;
        Ok((me, events))
    }

    /// One round in `role`: a leader applies what was stored since and returns the events
    /// to record (then [`Correlator::recorded`]); a follower applies up to the leader's
    /// watermark and adopts its ids (no events). A change of role is handled here: a new
    /// leader first follows to the watermark, then takes the recorded ids over; a node
    /// that steps down matches every group to the recorded ids again.
    pub fn round(&mut self, store: &Store, role: Role) -> store::Result<Vec<CampaignEvent>> {
        match (self.role, role) {
            (Role::Leader, Role::Leader) => self.catch_up(store),
            (Role::Follower, Role::Follower) => {
                self.follow(store)?;
                Ok(Vec::new())
            }
            (Role::Follower, Role::Leader) => {
                self.follow(store)?;
                let mut events = self.take_over(store)?;
                self.role = Role::Leader;
                events.extend(self.catch_up(store)?);
                Ok(events)
            }
            (Role::Leader, Role::Follower) => {
                self.step_down(store)?;
                self.follow(store)?;
                Ok(Vec::new())
            }
        }
    }

    /// The role this correlator is in.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader's watermark as this correlator last recorded or adopted it.
    pub fn watermark(&self) -> Watermark {
        self.watermark
    }

    /// Whether a leader has anything to record: events, or reports applied past the
    /// watermark (followers wait for the watermark even when no id changed).
    pub fn needs_recording(&self, events: &[CampaignEvent]) -> bool {
        self.role == Role::Leader && (!events.is_empty() || self.applied > self.watermark.seq)
    }

    /// A leader's recording for [`Correlator::needs_recording`]: the events, through the
    /// reports applied, following the generation last seen.
    pub fn record_op(
        &self,
        events: Vec<CampaignEvent>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> store::Op<Recorded> {
        store::campaigns::record_through_op(events, at, self.applied, self.watermark.generation)
    }

    /// What became of a recording. Superseded (another node recorded meanwhile) or failed
    /// (`None`): the next round as leader matches everything to the store again and
    /// records the difference, so nothing the engine changed is lost.
    pub fn recorded(&mut self, outcome: Option<Recorded>) {
        match outcome {
            Some(Recorded::Done(w)) => self.watermark = w,
            Some(Recorded::Superseded(_)) | None => self.role = Role::Follower,
        }
    }

    /// Follower: applies the reports up to the leader's watermark and adopts the ids it
    /// recorded since the generation last read.
    fn follow(&mut self, store: &Store) -> store::Result<()> {
        let watermark = store.read(store::campaigns::watermark)?;
        let pins = store.read(pins)?;
        if pins != self.pins {
            // The leader records what the pins change; until then the groups they touch
            // keep recorded ids by overlap, or stay out of snapshots.
            self.engine_mut().set_pins(pins.clone());
            self.pins = pins;
        }
        self.apply_reports(store, Some(watermark.seq))?;
        let since = self.watermark.generation;
        let changed = if watermark.generation != since {
            store.read(|conn| store::campaigns::assignments_since(conn, since))?
        } else {
            Vec::new()
        };
        self.engine_mut().adopt(&changed, false);
        self.watermark = watermark;
        self.apply_sightings(store)
    }

    /// A leader stepping down: every group is matched to what is recorded (ids it gave but
    /// could not record are dropped from view until the new leader records them).
    fn step_down(&mut self, store: &Store) -> store::Result<()> {
        let (watermark, recorded) = store.read(|conn| {
            Ok((
                store::campaigns::watermark(conn)?,
                store::campaigns::assignments(conn)?,
            ))
        })?;
        self.engine_mut().adopt(&recorded, true);
        self.watermark = watermark;
        self.role = Role::Follower;
        Ok(())
    }

    /// A follower becoming leader: takes every recorded id over; returns what its groups
    /// change in the store (groups the old leader did not record, at most).
    fn take_over(&mut self, store: &Store) -> store::Result<Vec<CampaignEvent>> {
        let (watermark, assignments, retired) = store.read(|conn| {
            Ok((
                store::campaigns::watermark(conn)?,
                store::campaigns::assignments(conn)?,
                store::campaigns::all_ids(conn)?,
            ))
        })?;
        let mut book = IdBook::from_assignments(assignments);
        for id in retired {
            book.reserve(id);
        }
        self.watermark = watermark;
        Ok(self.engine_mut().take_over(book))
    }

    /// Re-correlates everything under new rules (SIGHUP); ids are kept by overlap.
    pub fn recorrelate(&mut self, rules: Arc<Rules>) -> Vec<CampaignEvent> {
        self.engine_mut().recorrelate(rules)
    }

    /// Applies the reports stored since the last call. Returns the events to record.
    pub fn catch_up(&mut self, store: &Store) -> store::Result<Vec<CampaignEvent>> {
        let mut events = Vec::new();
        let pins = store.read(pins)?;
        if pins != self.pins {
            events.extend(self.engine_mut().set_pins(pins.clone()));
            self.pins = pins;
        }
        events.extend(self.apply_reports(store, None)?);
        self.apply_sightings(store)?;
        Ok(events)
    }

    /// Applies the reports stored after the last applied one, up to `limit` if given.
    fn apply_reports(
        &mut self,
        store: &Store,
        limit: Option<Seq>,
    ) -> store::Result<Vec<CampaignEvent>> {
        let mut events = Vec::new();
        loop {
            if limit.is_some_and(|l| self.applied >= l) {
                break;
            }
            let mut rows =
                store.read(|conn| store::reports::facts_after(conn, self.applied, BATCH))?;
            if let Some(l) = limit {
                rows.retain(|r| r.seq <= l);
            }
            let Some(last) = rows.last() else { break };
            self.applied = last.seq;
            if rows.iter().any(|r| {
                r.member
                    .as_ref()
                    .is_some_and(|m| !self.sectors.contains_key(m))
            }) {
                self.sectors = store.read(member_sectors)?;
            }
            for row in rows {
                let facts = self.facts(row);
                events.extend(self.engine_mut().add(facts));
            }
        }
        Ok(events)
    }

    /// Feeds sightings stored since the last call to the flags (stale, cross-sector).
    fn apply_sightings(&mut self, store: &Store) -> store::Result<()> {
        loop {
            let after = self.sightings;
            let batch = store.read(|conn| store::sightings::after(conn, after, BATCH))?;
            let Some(last) = batch.last() else { break };
            self.sightings = last.id;
            for s in batch {
                let sector = self.sectors.get(&s.member).copied().flatten();
                self.engine_mut().add_sighting(SightingFacts {
                    at: s.draft.seen_at,
                    member: s.member,
                    sector,
                    target: s.draft.target,
                    kind: s.draft.kind,
                });
            }
        }
        Ok(())
    }

    pub fn applied(&self) -> Seq {
        self.applied
    }

    /// The engine, for reading (snapshots, tests).
    pub fn engine(&self) -> RwLockReadGuard<'_, Engine> {
        self.engine.read().unwrap_or_else(|e| e.into_inner())
    }

    fn engine_mut(&self) -> RwLockWriteGuard<'_, Engine> {
        self.engine.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A snapshot of every campaign that can explain its campaigns on request.
    pub fn snapshot(&self) -> CampaignSet {
        self.engine()
            .snapshot()
            .explained_by(Explainer(self.engine.clone()))
    }

    fn facts(&self, row: store::reports::FactsRow) -> ReportFacts {
        let source = match (row.member, row.feed) {
            (Some(member), _) => Source::Member {
                sector: self.sectors.get(&member).copied().flatten(),
                member,
            },
            (None, feed) => Source::Feed {
                feed: feed.unwrap_or_default(),
            },
        };
        ReportFacts {
            seq: row.seq,
            at: row.received_at,
            source,
            observables: row.observables,
        }
    }
}

fn member_sectors(
    conn: &crate::store::db::Conn,
) -> store::Result<HashMap<MemberId, Option<Sector>>> {
    Ok(store::members::list(conn)?
        .into_iter()
        .map(|m| (m.id, m.sector))
        .collect())
}

/// The analysts' active pins, as the engine takes them.
fn pins(conn: &crate::store::db::Conn) -> store::Result<Vec<Pin>> {
    use crate::store::pins::PinKind;
    Ok(store::pins::active(conn)?
        .into_iter()
        .map(|p| match p.kind {
            PinKind::Merge { a, b } => Pin::Merge(a, b),
            PinKind::Split { campaign, reports } => Pin::Split { campaign, reports },
        })
        .collect())
}
