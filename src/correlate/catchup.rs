//! Keeping the correlation projection in step with the store.
//!
//! At start-up the graph is built from every stored report and its groups are matched to the
//! campaign ids the store has recorded; afterwards it applies the reports committed since.
//! Whatever the engine changes in campaign ids is handed back to be recorded in the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::graph::Pin;
use super::rules::Rules;
use super::{CampaignEvent, Engine, IdBook, ReportFacts, SightingFacts, Source};
use crate::model::{MemberId, Sector, Seq};
use crate::store::{self, Store};

/// How many reports are read from the store at a time.
const BATCH: usize = 50_000;

/// How often a long first build logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The correlation engine together with how far it has read the store.
pub struct Correlator {
    engine: Engine,
    sectors: HashMap<MemberId, Option<Sector>>,
    applied: Seq,
    /// The last sighting applied.
    sightings: i64,
    /// The last pin set the engine was given (pins change rarely; compared each round).
    pins: Vec<Pin>,
}

impl Correlator {
    /// Builds the engine from everything in the store with the given rules. Returns the
    /// events to record.
    pub fn start(
        store: &Store,
        rules: Arc<Rules>,
    ) -> store::Result<(Correlator, Vec<CampaignEvent>)> {
        let (assignments, retired, sectors, pins) = store.read(|conn| {
            Ok((
                store::campaigns::assignments(conn)?,
                store::campaigns::all_ids(conn)?,
                member_sectors(conn)?,
                pins(conn)?,
            ))
        })?;
        let mut ids = IdBook::from_assignments(assignments);
        for id in retired {
            ids.reserve(id);
        }
        let mut me = Correlator {
            engine: Engine::with_rules(rules, ids),
            sectors,
            applied: Seq(0),
            sightings: 0,
            pins: pins.clone(),
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
                    let rows =
                        store.read(|conn| store::reports::facts_after(conn, after, BATCH))?;
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
                me.engine.load(batch);
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
        let events = me.engine.finish_load(pins);
        me.apply_sightings(store)?;
        Ok((me, events))
    }

    /// Re-correlates everything under new rules (SIGHUP); ids are kept by overlap.
    pub fn recorrelate(&mut self, rules: Arc<Rules>) -> Vec<CampaignEvent> {
        self.engine.recorrelate(rules)
    }

    /// Applies the reports stored since the last call. Returns the events to record.
    pub fn catch_up(&mut self, store: &Store) -> store::Result<Vec<CampaignEvent>> {
        let mut events = Vec::new();
        let pins = store.read(pins)?;
        if pins != self.pins {
            events.extend(self.engine.set_pins(pins.clone()));
            self.pins = pins;
        }
        loop {
            let rows = store.read(|conn| store::reports::facts_after(conn, self.applied, BATCH))?;
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
                events.extend(self.engine.add(facts));
            }
        }
        self.apply_sightings(store)?;
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
                self.engine.add_sighting(SightingFacts {
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

    pub fn engine(&self) -> &Engine {
        &self.engine
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
