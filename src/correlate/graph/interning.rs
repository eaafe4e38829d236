//! Interning: each distinct observable value gets a dense number once.

use super::*;

pub(super) fn hash_of(o: &Observable) -> u64 {
    let mut h = FxHasher::default();
    o.hash(&mut h);
    h.finish()
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

impl Engine {
    pub(super) fn lookup(&self, o: &Observable) -> Option<u32> {
        let h = hash_of(o);
        match self.by_hash.get(&h) {
            Some(&id) if self.values[id as usize] == *o => Some(id),
            Some(_) => self.collisions.get(o).copied(),
            None => None,
        }
    }

    /// Interns a value; new ids are pushed to `fresh` for a warning-list check.
    pub(super) fn intern_hashed(&mut self, h: u64, o: Observable, fresh: &mut Vec<u32>) -> u32 {
        match self.by_hash.get(&h) {
            Some(&id) if self.values[id as usize] == o => return id,
            Some(_) => {
                if let Some(&id) = self.collisions.get(&o) {
                    return id;
                }
            }
            None => {}
        }
        let id = self.values.len() as u32;
        let kind = kind_index(o.kind()) as u8;
        if let std::collections::hash_map::Entry::Vacant(e) = self.by_hash.entry(h) {
            e.insert(id);
        } else {
            self.collisions.insert(o.clone(), id);
        }
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
        fresh.push(id);
        id
    }

    /// Checks new values against the warning lists and indexes new addresses.
    pub(super) fn check_fresh(&mut self, fresh: &[u32]) {
        for &id in fresh {
            let v = &self.values[id as usize];
            let listed = self.rules.warninglists.check(v).is_some();
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
