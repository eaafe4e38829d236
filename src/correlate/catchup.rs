//! Keeping the correlation projection in step with the store.
//!
//! At start-up the graph is built from every stored report and its groups are matched to the
//! campaign ids the store has recorded; afterwards it applies the reports committed since.
//! Whatever the engine changes in campaign ids is handed back to be recorded in the store.

use std::collections::HashMap;

use super::{CampaignEvent, Engine, IdBook, ReportFacts, Source};
use crate::model::{MemberId, Sector, Seq};
use crate::store::{self, Store};

/// How many reports are read from the store at a time.
const BATCH: usize = 50_000;

/// The correlation engine together with how far it has read the store.
pub struct Correlator {
    engine: Engine,
    sectors: HashMap<MemberId, Option<Sector>>,
    applied: Seq,
}

impl Correlator {
    /// Builds the engine from everything in the store. Returns the events to record.
    pub fn start(store: &Store) -> store::Result<(Correlator, Vec<CampaignEvent>)> {
        let (assignments, retired, sectors) = store.read(|conn| {
            Ok((
                store::campaigns::assignments(conn)?,
                store::campaigns::all_ids(conn)?,
                member_sectors(conn)?,
            ))
        })?;
        let mut ids = IdBook::from_assignments(assignments);
        for id in retired {
            ids.reserve(id);
        }
        let mut me = Correlator {
            engine: Engine::new(IdBook::default()),
            sectors,
            applied: Seq(0),
        };
        let mut all = Vec::new();
        loop {
            let rows = store.read(|conn| store::reports::facts_after(conn, me.applied, BATCH))?;
            let Some(last) = rows.last() else { break };
            me.applied = last.seq;
            for row in rows {
                all.push(me.facts(row));
            }
        }
        let (engine, events) = Engine::build(ids, all);
        me.engine = engine;
        Ok((me, events))
    }

    /// Applies the reports stored since the last call. Returns the events to record.
    pub fn catch_up(&mut self, store: &Store) -> store::Result<Vec<CampaignEvent>> {
        let mut events = Vec::new();
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
        Ok(events)
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

fn member_sectors(conn: &rusqlite::Connection) -> store::Result<HashMap<MemberId, Option<Sector>>> {
    Ok(store::members::list(conn)?
        .into_iter()
        .map(|m| (m.id, m.sector))
        .collect())
}
