//! Heavy-tailed draws shared by the load generators (`loadgen`, `scale`): a few values recur
//! everywhere, most are rare, as in real sharing data.

use rand::Rng;

/// Cumulative Zipf(s = 1.1) weights over `n` ranks.
pub fn zipf_table(n: usize) -> Vec<f64> {
    let mut acc = 0.0;
    (1..=n.max(1))
        .map(|k| {
            acc += 1.0 / (k as f64).powf(1.1);
            acc
        })
        .collect()
}

/// A rank in `0..table.len()` drawn with the table's weights.
pub fn draw(table: &[f64], rng: &mut impl Rng) -> usize {
    let x = rng.random::<f64>() * table[table.len() - 1];
    table.partition_point(|&c| c < x).min(table.len() - 1)
}
