//! Interning: each distinct observable value gets a dense number once.
//!
//! Numbers follow the order in which values are first seen (report by report), so a
//! build and the incremental path number the same values alike whatever the thread count.
//! The hash → number map is split into [`SHARDS`] maps by hash, so that a batch is interned
//! on every core at once: each shard looks up and collects the new values of its own
//! hashes, and only the numbering of the new values (a merge by first occurrence) is serial.

use super::*;

/// Shards of the hash → number map (a power of two).
pub(super) const SHARDS: usize = 64;

pub(super) fn hash_of(o: &Observable) -> u64 {
    let mut h = FxHasher::default();
    o.hash(&mut h);
    h.finish()
}

/// The shard of a hash: its high bits after a mix (the map itself rehashes the key, so
/// keys sharing their shard bits do not crowd its buckets).
pub(super) fn shard_of(h: u64) -> usize {
    ((h ^ (h >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARDS.trailing_zeros())) as usize
}

/// A report's observables with URL hosts added, each with its hash (computed off the
/// engine, in parallel during a build).
pub(super) fn expand(observables: Vec<Observable>) -> Vec<(u64, Observable)> {
    let mut out = Vec::with_capacity(observables.len() + 2);
    for o in observables {
        if let Some(host) = o.url_host() {
            out.push((hash_of(&host), host));
        }
        out.push((hash_of(&o), o));
    }
    out
}

/// Marks a shard-local number of a value new in the batch (else: an engine number).
const NEW: u32 = 1 << 31;

/// What one shard found for its occurrences of a batch.
#[derive(Default)]
struct ShardPass {
    /// (occurrence, engine number or `NEW | local number`), in occurrence order.
    found: Vec<(u32, u32)>,
    /// Values new to the engine: (first occurrence, hash, value), by local number.
    fresh: Vec<(u32, u64, Observable)>,
    /// Engine numbers of the fresh values, once assigned.
    numbers: Vec<u32>,
}

impl Engine {
    pub(super) fn lookup(&self, o: &Observable) -> Option<u32> {
        let h = hash_of(o);
        match self.by_hash[shard_of(h)].get(&h) {
            Some(&id) if self.values[id as usize] == *o => Some(id),
            Some(_) => self.collisions.get(o).copied(),
            None => None,
        }
    }

    /// The number of a value already interned (`h` is its hash).
    fn known(&self, h: u64, o: &Observable) -> Option<u32> {
        match self.by_hash[shard_of(h)].get(&h) {
            Some(&id) if self.values[id as usize] == *o => Some(id),
            Some(_) => self.collisions.get(o).copied(),
            None => None,
        }
    }

    /// Interns a value; new ids are pushed to `fresh` for a warning-list check.
    pub(super) fn intern_hashed(&mut self, h: u64, o: Observable, fresh: &mut Vec<u32>) -> u32 {
        if let Some(id) = self.known(h, &o) {
            return id;
        }
        let id = self.values.len() as u32;
        self.push_value(h, o);
        fresh.push(id);
        id
    }

    /// Gives `o` the next number and records it in the hash map.
    fn push_value(&mut self, h: u64, o: Observable) {
        let id = self.values.len() as u32;
        if let std::collections::hash_map::Entry::Vacant(e) = self.by_hash[shard_of(h)].entry(h) {
            e.insert(id);
        } else {
            self.collisions.insert(o.clone(), id);
        }
        self.push_value_unmapped(o);
    }

    /// Gives `o` the next number without touching the hash map (the caller records it).
    fn push_value_unmapped(&mut self, o: Observable) {
        let id = self.values.len() as u32;
        let kind = kind_index(o.kind()) as u8;
        if o.kind() == ObservableKind::Email
            && let Some((_, domain)) = o.value().rsplit_once('@')
        {
            self.mail_domains
                .entry(domain.to_ascii_lowercase().into())
                .or_default()
                .push(id);
        }
        self.values.push(o);
        self.obs.push(Obs {
            kind,
            listed: false,
            direct_cidr: false,
            count: 0,
            feeds: 0,
            postings: Vec::new(),
        });
    }

    /// Interns every value of a batch of reports on all cores and returns each report's
    /// value numbers (sorted, distinct). New values are numbered in the
    /// order of their first occurrence, exactly as interning them one by one would.
    pub(super) fn intern_batch(&mut self, reports: Vec<Vec<(u64, Observable)>>) -> Vec<Box<[u32]>> {
        let lens: Vec<usize> = reports.iter().map(Vec::len).collect();
        let total: usize = lens.iter().sum();
        assert!(total < NEW as usize, "a batch holds fewer than 2^31 values");
        // Occurrences to their shard, in order: chunks of reports in parallel, then each
        // shard's pieces end to end.
        let chunk = reports
            .len()
            .div_ceil(rayon::current_num_threads() * 4)
            .max(1);
        let mut starts = Vec::with_capacity(reports.len() / chunk + 1);
        let mut at = 0u32;
        for (i, l) in lens.iter().enumerate() {
            if i % chunk == 0 {
                starts.push(at);
            }
            at += *l as u32;
        }
        let mut reports = reports;
        let mut pieces: Vec<Vec<Vec<(u32, u64, Observable)>>> = Vec::new();
        let mut chunks = Vec::new();
        while !reports.is_empty() {
            let rest = reports.split_off(reports.len().min(chunk));
            chunks.push(std::mem::replace(&mut reports, rest));
        }
        chunks
            .into_par_iter()
            .zip(starts)
            .map(|(chunk, start)| {
                let mut by_shard: Vec<Vec<(u32, u64, Observable)>> =
                    (0..SHARDS).map(|_| Vec::new()).collect();
                for (occ, (h, o)) in (start..).zip(chunk.into_iter().flatten()) {
                    by_shard[shard_of(h)].push((occ, h, o));
                }
                by_shard
            })
            .collect_into_vec(&mut pieces);
        let mut shards: Vec<Vec<(u32, u64, Observable)>> =
            (0..SHARDS).map(|_| Vec::new()).collect();
        for piece in pieces {
            for (s, part) in piece.into_iter().enumerate() {
                if shards[s].is_empty() {
                    shards[s] = part;
                } else {
                    shards[s].extend(part);
                }
            }
        }
        // Each shard: known values get their number, new ones a local number.
        let mut passes: Vec<ShardPass> = shards
            .into_par_iter()
            .map(|items| {
                let mut pass = ShardPass {
                    found: Vec::with_capacity(items.len()),
                    ..ShardPass::default()
                };
                let mut local: FxHashMap<u64, u32> = FxHashMap::default();
                let mut local_collisions: FxHashMap<Observable, u32> = FxHashMap::default();
                for (occ, h, o) in items {
                    if let Some(id) = self.known(h, &o) {
                        pass.found.push((occ, id));
                        continue;
                    }
                    let n = match local.get(&h) {
                        Some(&n) if pass.fresh[n as usize].2 == o => Some(n),
                        Some(_) => local_collisions.get(&o).copied(),
                        None => None,
                    };
                    let n = n.unwrap_or_else(|| {
                        let n = pass.fresh.len() as u32;
                        if let std::collections::hash_map::Entry::Vacant(e) = local.entry(h) {
                            e.insert(n);
                        } else {
                            local_collisions.insert(o.clone(), n);
                        }
                        pass.fresh.push((occ, h, o));
                        n
                    });
                    pass.found.push((occ, NEW | n));
                }
                pass
            })
            .collect();
        // Number the new values by first occurrence (the only serial step: one entry per
        // new value).
        let mut order: Vec<(u32, u32, u32)> = passes
            .iter()
            .enumerate()
            .flat_map(|(s, p)| {
                p.fresh
                    .iter()
                    .enumerate()
                    .map(move |(n, f)| (f.0, s as u32, n as u32))
            })
            .collect();
        order.par_sort_unstable();
        let base = self.values.len() as u32;
        for p in &mut passes {
            p.numbers = vec![0; p.fresh.len()];
        }
        for (k, &(_, s, n)) in order.iter().enumerate() {
            passes[s as usize].numbers[n as usize] = base + k as u32;
        }
        let mut slots: Vec<Option<(u64, Observable)>> = (0..order.len()).map(|_| None).collect();
        for p in &mut passes {
            for ((_, h, o), &id) in p.fresh.drain(..).zip(&p.numbers) {
                slots[(id - base) as usize] = Some((h, o));
            }
        }
        self.values.reserve(slots.len());
        self.obs.reserve(slots.len());
        let mut mapped: Vec<Vec<(u64, u32)>> = (0..SHARDS).map(|_| Vec::new()).collect();
        for slot in slots {
            let (h, o) = slot.expect("every new value has a number");
            mapped[shard_of(h)].push((h, self.values.len() as u32));
            self.push_value_unmapped(o);
        }
        // The hash maps, shard by shard; a hash already taken by another value goes to the
        // collisions (rare: a 64-bit hash).
        let values = &self.values;
        let collided: Vec<(u32, Observable)> = self
            .by_hash
            .par_iter_mut()
            .zip(mapped)
            .flat_map_iter(|(map, new)| {
                map.reserve(new.len());
                new.into_iter()
                    .filter_map(|(h, id)| match map.entry(h) {
                        std::collections::hash_map::Entry::Vacant(e) => {
                            e.insert(id);
                            None
                        }
                        std::collections::hash_map::Entry::Occupied(_) => {
                            Some((id, values[id as usize].clone()))
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        for (id, o) in collided {
            self.collisions.insert(o, id);
        }
        // Each occurrence's number, back in report order.
        let numbers: Vec<std::sync::atomic::AtomicU32> = (0..total)
            .map(|_| std::sync::atomic::AtomicU32::new(0))
            .collect();
        passes.par_iter().for_each(|p| {
            for &(occ, code) in &p.found {
                let id = if code & NEW != 0 {
                    p.numbers[(code & !NEW) as usize]
                } else {
                    code
                };
                numbers[occ as usize].store(id, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let numbers: Vec<u32> = numbers.into_iter().map(|a| a.into_inner()).collect();
        let mut offsets = Vec::with_capacity(lens.len() + 1);
        offsets.push(0usize);
        for l in lens {
            offsets.push(offsets[offsets.len() - 1] + l);
        }
        offsets
            .par_windows(2)
            .map(|w| {
                let mut ids = numbers[w[0]..w[1]].to_vec();
                ids.sort_unstable();
                ids.dedup();
                ids.into_boxed_slice()
            })
            .collect()
    }

    /// Checks new values against the warning lists and indexes new addresses.
    pub(super) fn check_fresh(&mut self, fresh: &[u32]) {
        for &id in fresh {
            let v = &self.values[id as usize];
            let listed = self.rules.warninglists.suppresses(v);
            self.obs[id as usize].listed = listed;
            if !listed && let Some(ip) = v.ip() {
                self.ips.insert(ip_key(ip), id);
            }
        }
    }

    pub(super) fn source_id(&mut self, source: Source) -> u32 {
        if let Some(&id) = self.source_ids.get(&source) {
            return id;
        }
        let id = self.sources.len() as u32;
        self.sources.push(source.clone());
        self.source_ids.insert(source, id);
        id
    }
}
