//! Synthetic reports for benchmarks and load generators.
//!
//! Real sharing data is heavy-tailed: a few campaigns draw most reports, and a few values
//! (a popular C2 address, a commodity loader's hash) turn up across many unrelated reports
//! while most values are seen once or twice. The generator draws each report's campaign from
//! a Zipf-like distribution; a campaign's own infrastructure grows with its size (a big
//! activity rotates through many addresses and samples, a small one reuses a handful), and
//! reports draw from it Zipf-like too, so that links within a campaign come from its
//! mid-frequency values while its top values cross the decay steps and the cap. Values shared
//! across campaigns are commodity ones — mostly addresses (shared hosting, scanners), some
//! popular domains and tool hashes — which is where chaining comes from in real data.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{ReportFacts, Source};
use crate::model::{MemberId, Observable, ObservableKind, Sector, Seq};

/// Shape of the generated data.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub reports: usize,
    /// Mean observables per report (uniform in 1..=2×mean−1).
    pub observables_per_report: usize,
    /// Latent campaigns (activities) that reports are drawn from.
    pub campaigns: usize,
    /// Share of a report's values drawn from the global heavy-tailed pool rather than its
    /// campaign's own infrastructure.
    pub shared_fraction: f64,
    /// Zipf exponent of campaign popularity and of global value reuse.
    pub exponent: f64,
    /// Share of reports that come from public feeds.
    pub feed_fraction: f64,
    pub seed: u64,
    /// First report time; reports are spread one minute apart on average.
    pub start: DateTime<Utc>,
}

impl Default for SynthConfig {
    fn default() -> SynthConfig {
        SynthConfig {
            reports: 100_000,
            observables_per_report: 10,
            campaigns: 5_000,
            shared_fraction: 0.3,
            exponent: 1.1,
            feed_fraction: 0.1,
            seed: 42,
            start: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .expect("valid date"),
        }
    }
}

/// Most values of one campaign's own infrastructure.
const MAX_POOL: u64 = 1 << 24;

/// Popular domains and tool hashes shared across campaigns.
const COMMODITY: u64 = 256;

/// Zipf exponent of the draws within a campaign's own infrastructure: flatter than the
/// popularity of campaigns, so a campaign's values are spread over its reports.
const OWN_EXPONENT: f64 = 0.9;

/// An endless, deterministic stream of reports (seq 1, 2, ...).
#[derive(Debug)]
pub struct Synth {
    cfg: SynthConfig,
    rng: StdRng,
    seq: u64,
    /// Generalised harmonic number of the campaign popularity (normalises expected sizes).
    harmonic: f64,
}

impl Synth {
    pub fn new(cfg: SynthConfig) -> Synth {
        let rng = StdRng::seed_from_u64(cfg.seed);
        let harmonic = (1..=cfg.campaigns.max(1))
            .map(|k| (k as f64).powf(-cfg.exponent))
            .sum();
        Synth {
            cfg,
            rng,
            seq: 0,
            harmonic,
        }
    }

    /// The configured number of reports.
    pub fn generate(cfg: SynthConfig) -> Vec<ReportFacts> {
        let n = cfg.reports;
        Synth::new(cfg).take(n).collect()
    }

    /// Size of the infrastructure of the campaign of popularity rank `c`: about one value
    /// per two of its expected observable occurrences.
    fn pool_of(&self, c: u64) -> u64 {
        let share = ((c + 1) as f64).powf(-self.cfg.exponent) / self.harmonic;
        let own = 1.0 - self.cfg.shared_fraction;
        let occurrences = share * self.cfg.reports as f64 * self.cfg.observables_per_report as f64;
        ((occurrences * own / 2.0) as u64).clamp(4, MAX_POOL)
    }

    /// A commodity value, shared by unrelated campaigns.
    fn commodity(&mut self) -> Observable {
        let reports = self.cfg.reports as u64;
        let u: f64 = self.rng.random();
        // Addresses are many and mostly rare; the popular domains and tool hashes are few,
        // and most of them end up over the cap.
        let (kind, space, n) = if u < 0.7 {
            (ObservableKind::Ipv4, 1, reports.max(16))
        } else if u < 0.9 {
            (ObservableKind::Domain, 3, COMMODITY)
        } else {
            (ObservableKind::Sha256, 4, COMMODITY)
        };
        let id = self.zipf(n, self.cfg.exponent);
        value_of(kind, space, id)
    }

    /// A Zipf-like draw in `0..n` (continuous inverse-CDF approximation).
    fn zipf(&mut self, n: u64, s: f64) -> u64 {
        let u: f64 = self.rng.random();
        let n_f = n as f64;
        let x = if (s - 1.0).abs() < 1e-9 {
            n_f.powf(u)
        } else {
            ((n_f.powf(1.0 - s) - 1.0) * u + 1.0).powf(1.0 / (1.0 - s))
        };
        (x as u64).saturating_sub(1).min(n - 1)
    }
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A campaign's own value of a kind chosen by `id`, unique per (`space`, `id`).
fn value(space: u64, id: u64) -> Observable {
    let kind = match mix(id ^ (space << 56)) % 20 {
        0..=3 => ObservableKind::Sha256,
        4..=5 => ObservableKind::Md5,
        6..=10 => ObservableKind::Ipv4,
        11..=15 => ObservableKind::Domain,
        16..=18 => ObservableKind::Url,
        _ => ObservableKind::Cve,
    };
    value_of(kind, space, id)
}

/// A value of `kind`, unique per (`kind`, `space`, `id`).
fn value_of(kind: ObservableKind, space: u64, id: u64) -> Observable {
    let h = mix(id ^ (space << 56));
    let text = match kind {
        ObservableKind::Sha256 => format!(
            "{:016x}{:016x}{:016x}{:016x}",
            h,
            mix(h),
            mix(h + 1),
            mix(h + 2)
        ),
        ObservableKind::Md5 => format!("{:016x}{:016x}", h, mix(h)),
        ObservableKind::Ipv4 => {
            // Public-looking unicast space (skips 0/8, 10/8, 127/8 and 224/3).
            let a = 11 + (h >> 8) % 200;
            let a = if a == 127 { 128 } else { a };
            format!(
                "{a}.{}.{}.{}",
                (h >> 16) & 255,
                (h >> 24) & 255,
                1 + (h >> 32) % 254
            )
        }
        ObservableKind::Domain => format!("h{:x}.s{space}.example.net", h >> 20),
        ObservableKind::Url => format!("http://w{:x}.example.net/p/{}", h >> 40, h & 0xffff),
        // Campaign values of no linking weight.
        _ => format!("CVE-2025-{}", 1000 + h % 500),
    };
    Observable::parse(kind, &text).expect("synthetic values are valid")
}

/// Public /8 blocks that real threat data is full of (hosting, broadband, mobile) and
/// that no special-use range covers: no 0/8, 10/8, 100.64/10, 127/8, 169.254/16,
/// 172.16/12, 192.168/16, TEST-NETs, 198.18/15 or multicast. Addresses that still fall on
/// a warning list (a CDN's or a public resolver's range) are redrawn by the caller with
/// another `salt`.
const PUBLIC_FIRST_OCTETS: [u64; 48] = [
    5, 31, 37, 45, 46, 62, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 91, 92, 93, 94, 95,
    103, 109, 116, 118, 119, 122, 123, 124, 125, 139, 141, 147, 154, 156, 176, 178, 185, 188, 193,
    194, 195, 212, 213, 217,
];

/// Top-level domains in roughly the proportions seen in shared threat data (cumulative
/// weights out of 100): mostly .com, then cheap new gTLDs, country codes and .net/.org.
const TLDS: [(&str, u64); 18] = [
    ("com", 38),
    ("net", 46),
    ("org", 51),
    ("ru", 57),
    ("top", 62),
    ("xyz", 67),
    ("info", 71),
    ("cn", 74),
    ("io", 77),
    ("online", 80),
    ("site", 83),
    ("jp", 85),
    ("de", 87),
    ("br", 89),
    ("in", 91),
    ("co.uk", 93),
    ("shop", 96),
    ("cc", 100),
];

const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "net", "ser", "vo", "dra", "pix", "cor", "tel", "zen", "up", "data", "cloud",
    "sec", "host", "ly", "fi", "ro", "sta", "wex", "tri", "ban", "go",
];

fn hash_text(text: &str, salt: u64) -> u64 {
    text.bytes()
        .fold(mix(salt ^ 0x5eed), |h, b| mix(h ^ u64::from(b)))
}

/// A registrable domain for hash `h`: two to four syllables, sometimes digits, under a TLD
/// of the real mix.
fn realistic_domain(h: u64) -> String {
    let n = 2 + (h % 3) as usize;
    let mut label = String::new();
    let mut x = mix(h);
    for _ in 0..n {
        label.push_str(SYLLABLES[(x % SYLLABLES.len() as u64) as usize]);
        x = mix(x);
    }
    if x.is_multiple_of(4) {
        label.push_str(&format!("{}", x % 1000));
    }
    // Distinct per hash: a short suffix from the bits the syllables did not use.
    label.push_str(&format!("{:x}", (h >> 44) & 0xfff));
    let w = mix(h ^ 0x71d) % 100;
    let tld = TLDS.iter().find(|(_, c)| w < *c).map_or("com", |(t, _)| t);
    format!("{label}.{tld}")
}

/// The same observable in a realistic form: public unicast addresses, domains under a real
/// TLD mix, URLs on such hosts; hashes and CVEs as they are. Deterministic and one-to-one in
/// practice (64-bit hashes), so the generator's skew — which values recur, and across
/// which campaigns — is kept exactly: a scale run correlates as real data would, instead of
/// every address sitting in 10.0.0.0/8 on the RFC 1918 warning list. `salt` redraws a
/// value that a warning list would suppress.
pub fn realistic(o: &Observable, salt: u64) -> Observable {
    let h = hash_text(o.value(), salt);
    let text = match o.kind() {
        ObservableKind::Ipv4 => {
            let a = PUBLIC_FIRST_OCTETS[(h % PUBLIC_FIRST_OCTETS.len() as u64) as usize];
            format!(
                "{a}.{}.{}.{}",
                (h >> 8) & 255,
                (h >> 16) & 255,
                1 + (h >> 24) % 254
            )
        }
        ObservableKind::Domain => {
            let d = realistic_domain(h);
            // Some values are hosts under a registered domain, as C2 names often are.
            match (h >> 60) % 4 {
                0 => format!(
                    "{}.{d}",
                    ["cdn", "api", "mail", "update", "static"][(h % 5) as usize]
                ),
                _ => d,
            }
        }
        ObservableKind::Url => {
            // The host is drawn from the value's host part, so one host serves many paths.
            let (host, path) = o
                .value()
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once('/'))
                .unwrap_or((o.value(), ""));
            let host = realistic_domain(hash_text(host, salt));
            let p = hash_text(path, salt);
            let dir = [
                "wp-content/uploads",
                "admin",
                "files",
                "dl",
                "api/v1",
                "images",
            ][(p % 6) as usize];
            let ext = ["php", "exe", "zip", "js", "html", "bin"][((p >> 8) % 6) as usize];
            let scheme = if p.is_multiple_of(3) { "http" } else { "https" };
            format!("{scheme}://{host}/{dir}/{:x}.{ext}", p >> 20)
        }
        _ => return o.clone(),
    };
    Observable::parse(o.kind(), &text).unwrap_or_else(|_| o.clone())
}

impl Iterator for Synth {
    type Item = ReportFacts;

    fn next(&mut self) -> Option<ReportFacts> {
        self.seq += 1;
        let campaigns = self.cfg.campaigns.max(1) as u64;
        let campaign = self.zipf(campaigns, self.cfg.exponent);
        let pool = self.pool_of(campaign);
        let mean = self.cfg.observables_per_report.max(1);
        let k = self.rng.random_range(1..=2 * mean - 1);
        let mut observables = Vec::with_capacity(k);
        for _ in 0..k {
            if self.rng.random_bool(self.cfg.shared_fraction) {
                observables.push(self.commodity());
            } else {
                let j = self.zipf(pool, OWN_EXPONENT);
                observables.push(value(2, campaign * MAX_POOL + j));
            }
        }
        let source = if self.rng.random_bool(self.cfg.feed_fraction) {
            Source::Feed {
                feed: format!("feed-{}", self.rng.random_range(0..8)),
            }
        } else {
            let sectors = Sector::ALL;
            Source::Member {
                member: MemberId(format!("m{:03}", self.rng.random_range(1..=225))),
                sector: Some(sectors[self.rng.random_range(0..sectors.len())]),
            }
        };
        let at = self.cfg.start + Duration::seconds(self.seq as i64 * 60);
        Some(ReportFacts {
            seq: Seq(self.seq),
            at,
            source,
            observables,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_values_are_heavy_tailed_and_deterministic() {
        let cfg = SynthConfig {
            reports: 2_000,
            campaigns: 100,
            ..SynthConfig::default()
        };
        let a = Synth::generate(cfg.clone());
        let b = Synth::generate(cfg);
        assert_eq!(a, b);
        let mut counts: std::collections::HashMap<&Observable, usize> = Default::default();
        for r in &a {
            for o in &r.observables {
                *counts.entry(o).or_default() += 1;
            }
        }
        // The realistic form keeps the skew: the same number of distinct values.
        let realistic: std::collections::HashSet<Observable> =
            counts.keys().map(|o| realistic(o, 0)).collect();
        assert_eq!(realistic.len(), counts.len());
        for o in realistic
            .iter()
            .filter(|o| o.kind() == ObservableKind::Ipv4)
        {
            assert!(!o.value().starts_with("10."), "{}", o.value());
        }
        // Few realistic values fall on a shipped warning list (the scale run redraws those).
        let lists = &crate::correlate::rules::Rules::shipped().warninglists;
        let listed = realistic
            .iter()
            .filter(|o| lists.check(o).is_some())
            .count();
        assert!(
            listed * 100 < realistic.len(),
            "{listed} of {}",
            realistic.len()
        );
        let max = counts.values().copied().max().unwrap();
        let singletons = counts.values().filter(|&&c| c == 1).count();
        assert!(max > 50, "most popular value in {max} reports");
        assert!(
            singletons > counts.len() / 4,
            "{singletons} of {}",
            counts.len()
        );
    }
}
