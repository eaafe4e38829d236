//! Members' sightings, kept for the flags (true positives keep a campaign alive).

use super::*;

impl Engine {
    /// Records a sighting. Only true-positive sightings change flags; others are ignored.
    pub fn add_sighting(&mut self, s: SightingFacts) {
        if s.kind != SightingKind::Seen {
            return;
        }
        let idx = self.sightings.len() as u32;
        self.sightings.push(Sight {
            at: s.at,
            sector: s.sector,
        });
        match s.target {
            SightingTarget::Observable(o) => {
                let mut fresh = Vec::new();
                let id = self.intern_hashed(hash_of(&o), o, &mut fresh);
                self.check_fresh(&fresh);
                self.sight_by_obs.entry(id).or_default().push(idx);
                self.dirty_postings(id);
                // It counts for every campaign carrying the value.
                self.for_live_views_counting(id, |live, _, _| live.sighting(idx, 1));
            }
            SightingTarget::Campaign(cid) => {
                self.sight_by_camp.entry(cid).or_default().push(idx);
                if let Some(&slot) = self.slot_of_id.get(&cid) {
                    let snap = self.snap.get_mut().unwrap_or_else(|e| e.into_inner());
                    snap.dirty.insert(slot);
                    if let Some(live) = snap.live.get_mut(&slot) {
                        live.sighting(idx, 1);
                    }
                }
            }
        }
    }
}
