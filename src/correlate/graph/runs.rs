//! Many short lists of numbers in one vector: the postings of every value, the links of
//! every report.
//!
//! A `Vec<u32>` per value cost 24 bytes plus a heap block of at least 32 bytes even for
//! the millions of values seen once: at 1M reports (2.5M distinct values) the postings
//! alone were a few hundred MB. Here every list is a run `start..start + len` of one
//! vector, with room for `cap` numbers: 12 bytes per list plus 4 per number.
//!
//! A full correlation lays the runs out end to end from their final lengths
//! ([`Runs::lay_out`]) and fills them in parallel, each thread a range of lists
//! ([`Runs::chunks_mut`]). Incremental adds push to any list: a full run moves to the end
//! of the vector with twice the room, leaving a hole; when the holes are half of the
//! vector, every run is packed again ([`Runs::compact`]). A list that outgrows [`LONG`]
//! numbers moves to a vector of its own: the popular values that an hour of adds touches
//! again and again would otherwise move their long runs (and leave their holes) each time
//! they double.

use rayon::prelude::*;

/// Where one list lives in [`Runs::flat`] (or, when `cap` is [`OWN`], `Runs::long[start]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Run {
    start: u32,
    len: u32,
    cap: u32,
}

/// Lists of `u32` numbered `0..len()`, in one vector.
#[derive(Debug, Clone, Default)]
pub(super) struct Runs {
    runs: Vec<Run>,
    flat: Vec<u32>,
    /// Slots of `flat` that no run covers any more (left behind by runs that moved).
    holes: usize,
    /// Lists that grew past [`LONG`] numbers after the layout.
    long: Vec<Vec<u32>>,
}

/// Packing is not worth it below this many holes.
const COMPACT_MIN: usize = 1 << 16;

/// A list that grows past this many numbers moves to a vector of its own. (Tiny in test
/// builds, so that the property tests exercise both places.)
const LONG: u32 = if cfg!(test) { 8 } else { 256 };

/// The `cap` of a run that lives in `Runs::long`.
const OWN: u32 = u32::MAX;

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("the correlation graph holds fewer than 2^32 postings and links")
}

impl Runs {
    /// Number of lists.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.runs.len()
    }

    /// Numbers in all lists.
    pub(super) fn total(&self) -> usize {
        self.runs.iter().map(|r| r.len as usize).sum()
    }

    /// Adds an empty list (numbered `len()` before the call).
    pub(super) fn push_list(&mut self) {
        self.runs.push(Run {
            start: to_u32(self.flat.len()),
            len: 0,
            cap: 0,
        });
    }

    /// Makes room for `n` more lists.
    pub(super) fn reserve_lists(&mut self, n: usize) {
        self.runs.reserve(n);
    }

    /// The list `i`.
    #[inline]
    pub(super) fn get(&self, i: u32) -> &[u32] {
        let r = self.runs[i as usize];
        if r.cap == OWN {
            return &self.long[r.start as usize];
        }
        &self.flat[r.start as usize..(r.start + r.len) as usize]
    }

    /// Appends `x` to list `i`.
    pub(super) fn push(&mut self, i: u32, x: u32) {
        let r = &mut self.runs[i as usize];
        if r.cap == OWN {
            self.long[r.start as usize].push(x);
            r.len += 1;
            return;
        }
        if r.len < r.cap {
            self.flat[(r.start + r.len) as usize] = x;
            r.len += 1;
            return;
        }
        if (r.start + r.cap) as usize == self.flat.len() {
            // The last run grows in place.
            self.flat.push(x);
            r.cap += 1;
            r.len += 1;
            to_u32(self.flat.len());
            return;
        }
        let old = *r;
        self.holes += old.cap as usize;
        if old.len >= LONG {
            let mut own = Vec::with_capacity(2 * (old.len as usize + 1));
            own.extend_from_slice(&self.flat[old.start as usize..(old.start + old.len) as usize]);
            own.push(x);
            self.runs[i as usize] = Run {
                start: to_u32(self.long.len()),
                len: old.len + 1,
                cap: OWN,
            };
            self.long.push(own);
            return;
        }
        let cap = (old.cap * 2).max(2);
        let start = self.flat.len();
        to_u32(start + cap as usize);
        self.flat
            .extend_from_within(old.start as usize..(old.start + old.len) as usize);
        self.flat.push(x);
        self.flat.resize(start + cap as usize, 0);
        self.runs[i as usize] = Run {
            start: start as u32,
            len: old.len + 1,
            cap,
        };
        if self.holes >= COMPACT_MIN && self.holes * 2 >= self.flat.len() {
            self.compact();
        }
    }

    /// Keeps the numbers of list `i` that `keep` accepts, in order.
    pub(super) fn retain(&mut self, i: u32, mut keep: impl FnMut(u32) -> bool) {
        let r = &mut self.runs[i as usize];
        if r.cap == OWN {
            let own = &mut self.long[r.start as usize];
            own.retain(|&x| keep(x));
            r.len = own.len() as u32;
            return;
        }
        let run = &mut self.flat[r.start as usize..(r.start + r.len) as usize];
        let mut kept = 0;
        for j in 0..run.len() {
            if keep(run[j]) {
                run[kept] = run[j];
                kept += 1;
            }
        }
        r.len = kept as u32;
    }

    /// Packs every run of `flat` end to end, each with room for its numbers only.
    pub(super) fn compact(&mut self) {
        let total: usize = self
            .runs
            .iter()
            .filter(|r| r.cap != OWN)
            .map(|r| r.len as usize)
            .sum();
        let mut flat = Vec::with_capacity(total);
        for r in self.runs.iter_mut().filter(|r| r.cap != OWN) {
            let start = flat.len();
            flat.extend_from_slice(&self.flat[r.start as usize..(r.start + r.len) as usize]);
            *r = Run {
                start: start as u32,
                len: r.len,
                cap: r.len,
            };
        }
        self.flat = flat;
        self.holes = 0;
    }

    /// Empties every list and lays them out end to end with room for `lens[i]` numbers each
    /// (fill them with [`Runs::chunks_mut`] or [`Runs::push`]).
    pub(super) fn lay_out(&mut self, lens: impl ExactSizeIterator<Item = u32>) {
        self.runs.clear();
        self.runs.reserve_exact(lens.len());
        let mut at = 0usize;
        for cap in lens {
            self.runs.push(Run {
                start: to_u32(at),
                len: 0,
                cap,
            });
            at += cap as usize;
        }
        to_u32(at);
        self.flat = vec![0; at];
        self.holes = 0;
        self.long = Vec::new();
    }

    /// The lists in chunks of `span` (the last may be shorter), each writable on its own
    /// thread. After [`Runs::lay_out`] only (the runs must be in list order).
    pub(super) fn chunks_mut(
        &mut self,
        span: usize,
    ) -> impl IndexedParallelIterator<Item = Chunk<'_>> {
        let span = span.max(1);
        let mut chunks = Vec::with_capacity(self.runs.len().div_ceil(span));
        let mut flat: &mut [u32] = &mut self.flat;
        let mut base = 0usize;
        for (c, runs) in self.runs.chunks_mut(span).enumerate() {
            let end = runs.last().map_or(base, |r| (r.start + r.cap) as usize);
            debug_assert!(runs.first().is_none_or(|r| r.start as usize == base));
            let (mine, rest) = std::mem::take(&mut flat).split_at_mut(end - base);
            flat = rest;
            chunks.push(Chunk {
                lo: (c * span) as u32,
                base,
                runs,
                flat: mine,
            });
            base = end;
        }
        chunks.into_par_iter()
    }
}

/// The lists `lo..lo + runs.len()` of a [`Runs`], writable on one thread.
pub(super) struct Chunk<'a> {
    lo: u32,
    base: usize,
    runs: &'a mut [Run],
    flat: &'a mut [u32],
}

impl Chunk<'_> {
    /// The first list of the chunk.
    pub(super) fn lo(&self) -> u32 {
        self.lo
    }

    /// One past the last list of the chunk.
    pub(super) fn hi(&self) -> u32 {
        self.lo + self.runs.len() as u32
    }

    /// Appends `x` to list `i` (in the chunk, within the room laid out for it).
    #[inline]
    pub(super) fn push(&mut self, i: u32, x: u32) {
        let r = &mut self.runs[(i - self.lo) as usize];
        assert!(
            r.len < r.cap,
            "a run is filled within the room laid out for it"
        );
        self.flat[r.start as usize - self.base + r.len as usize] = x;
        r.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        NewList,
        Push(usize, u32),
        Retain(usize, u32),
        Compact,
        /// Lays out from the model's lengths and refills every list from the model, in
        /// parallel chunks of this span.
        Relay(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => Just(Op::NewList),
            8 => (any::<usize>(), any::<u32>()).prop_map(|(i, x)| Op::Push(i, x)),
            1 => (any::<usize>(), 1u32..5).prop_map(|(i, m)| Op::Retain(i, m)),
            1 => Just(Op::Compact),
            1 => (1usize..8).prop_map(Op::Relay),
        ]
    }

    fn agree(runs: &Runs, model: &[Vec<u32>]) -> Result<(), TestCaseError> {
        prop_assert_eq!(runs.len(), model.len());
        prop_assert_eq!(runs.total(), model.iter().map(Vec::len).sum::<usize>());
        for (i, m) in model.iter().enumerate() {
            prop_assert_eq!(runs.get(i as u32), m.as_slice(), "list {}", i);
        }
        Ok(())
    }

    proptest! {
        /// Every operation leaves each list as a `Vec<Vec<u32>>` has it.
        #[test]
        fn runs_agree_with_a_vec_per_list(ops in prop::collection::vec(op(), 1..300)) {
            let mut runs = Runs::default();
            let mut model: Vec<Vec<u32>> = Vec::new();
            for op in ops {
                match op {
                    Op::NewList => {
                        runs.push_list();
                        model.push(Vec::new());
                    }
                    Op::Push(i, x) if !model.is_empty() => {
                        let i = i % model.len();
                        runs.push(i as u32, x);
                        model[i].push(x);
                    }
                    Op::Retain(i, m) if !model.is_empty() => {
                        let i = i % model.len();
                        runs.retain(i as u32, |x| x % m != 0);
                        model[i].retain(|x| x % m != 0);
                    }
                    Op::Compact => runs.compact(),
                    Op::Relay(span) => {
                        runs.lay_out(model.iter().map(|m| m.len() as u32));
                        runs.chunks_mut(span).for_each(|mut chunk| {
                            for i in chunk.lo()..chunk.hi() {
                                for &x in &model[i as usize] {
                                    chunk.push(i, x);
                                }
                            }
                        });
                    }
                    _ => {}
                }
                agree(&runs, &model)?;
            }
        }
    }

    #[test]
    fn moved_runs_leave_holes_that_packing_removes() {
        let mut runs = Runs::default();
        for _ in 0..3 {
            runs.push_list();
        }
        for x in 0..6 {
            runs.push(0, x);
            runs.push(1, x + 100);
        }
        assert!(runs.holes > 0);
        let before: Vec<Vec<u32>> = (0..3).map(|i| runs.get(i).to_vec()).collect();
        runs.compact();
        assert_eq!(runs.holes, 0);
        assert_eq!(runs.flat.len(), 12);
        let after: Vec<Vec<u32>> = (0..3).map(|i| runs.get(i).to_vec()).collect();
        assert_eq!(before, after);
        runs.push(2, 7);
        assert_eq!(runs.get(2), &[7]);
    }

    #[test]
    fn a_long_list_moves_to_a_vector_of_its_own() {
        let mut runs = Runs::default();
        runs.lay_out([1u32, 1].into_iter());
        // Pushed in turn, so that neither list is the last run of the vector (which grows
        // in place).
        for x in 0..100 {
            runs.push(0, x);
            runs.push(1, 1000 + x);
        }
        // The first to outgrow `LONG` away from the end moved out; the other is then the
        // last run and grows in place.
        assert_eq!(runs.long.len(), 1);
        assert_eq!(runs.get(0), (0..100).collect::<Vec<u32>>().as_slice());
        assert_eq!(runs.get(1), (1000..1100).collect::<Vec<u32>>().as_slice());
        // The flat vector holds the list at its end and the holes of the moves up to `LONG`.
        assert!(runs.flat.len() <= 100 + 4 * LONG as usize);
        runs.retain(0, |x| x % 2 == 0);
        runs.compact();
        assert_eq!(runs.flat.len(), 100);
        assert_eq!(runs.get(0).len(), 50);
        assert_eq!(runs.total(), 150);
    }

    #[test]
    #[should_panic(expected = "room laid out")]
    fn a_chunk_refuses_to_overflow_a_run() {
        let mut runs = Runs::default();
        runs.lay_out([1u32, 1].into_iter());
        runs.chunks_mut(2).for_each(|mut c| {
            c.push(0, 1);
            c.push(0, 2);
        });
    }
}
