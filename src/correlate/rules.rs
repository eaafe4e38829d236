//! Correlation and flag rules, loaded from the operators' `rules/` directory.
//!
//! `rules/correlation.toml` (weights, threshold, frequency decay and cap),
//! `rules/flags.toml` (flag thresholds) and `rules/warninglists/*.json` (MISP warning
//! lists). [`Rules::load`] checks everything and lists every problem with its file and key
//! before failing, so that an operator fixes a reload in one go; the shipped defaults are
//! compiled in ([`Rules::default`]) so that musubi runs without a `rules/` directory.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use chrono::Duration;
use rayon::prelude::*;
use toml::{Table, Value};

use super::suppress::{Warninglist, Warninglists};
use crate::model::ObservableKind;

/// Everything correlation and flagging are configured by.
#[derive(Debug, Clone)]
pub struct Rules {
    pub link: LinkRules,
    pub flags: FlagRules,
    pub warninglists: Warninglists,
}

/// How reports link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRules {
    /// Summed weight two reports must share to be linked.
    pub threshold: u32,
    /// Weight per kind, indexed like [`ObservableKind::ALL`].
    pub weights: [u32; ObservableKind::ALL.len()],
    /// Above this many reports a value's weight halves each time its count doubles.
    pub decay_after: usize,
    /// Above this many reports a value never links.
    pub cap: usize,
}

impl LinkRules {
    pub fn weight_of(&self, kind: ObservableKind) -> u32 {
        self.weights[kind_index(kind)]
    }

    /// The weight of a value of `kind` carried by `reports` reports (0 above the cap).
    ///
    /// Step-wise rather than smooth on purpose: the weight only changes when the count
    /// crosses `decay_after × 2^k`, so the incremental engine re-checks a value's links a
    /// handful of times in its life instead of on every report.
    pub fn weight(&self, kind: ObservableKind, reports: usize) -> u32 {
        if reports > self.cap {
            return 0;
        }
        self.weight_of(kind) >> self.decay_steps(reports)
    }

    /// How many times the weight has halved at this count.
    pub fn decay_steps(&self, reports: usize) -> u32 {
        if reports <= self.decay_after || self.decay_after == 0 {
            return 0;
        }
        // Smallest k with reports <= decay_after << k.
        let mut k = 0u32;
        while reports > self.decay_after.saturating_mul(1 << k.min(62)) {
            k += 1;
        }
        k.min(31)
    }
}

/// Weights for kinds a `[weights]` table leaves out, in [`ObservableKind::ALL`] order (the
/// same as the shipped `correlation.toml`; a test checks it).
const DEFAULT_WEIGHTS: [u32; ObservableKind::ALL.len()] =
    [60, 60, 40, 100, 70, 100, 150, 150, 150, 80, 30, 0, 10, 0, 0];

pub(crate) fn kind_index(kind: ObservableKind) -> usize {
    ObservableKind::ALL
        .iter()
        .position(|k| *k == kind)
        .expect("ALL lists every kind")
}

/// Thresholds of the flags.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagRules {
    pub cross_sector_min: usize,
    pub cross_sector_window: Duration,
    pub stale_quiet: Duration,
    pub stale_base: f64,
    pub stale_tau: Duration,
    pub stale_delta: f64,
    pub stale_threshold: f64,
    pub known_min_percent: f64,
    pub novel_max_percent: f64,
    pub surge_min: usize,
    pub surge_window: Duration,
}

impl FlagRules {
    /// MISP's polynomial decay: `base × (1 − (t/τ)^(1/δ))`, clamped at 0.
    pub fn decay_score(&self, since: Duration) -> f64 {
        let t = since.num_seconds().max(0) as f64;
        let tau = self.stale_tau.num_seconds().max(1) as f64;
        let score = self.stale_base * (1.0 - (t / tau).powf(1.0 / self.stale_delta));
        score.max(0.0)
    }

    /// How long after the last activity the decay score drops below the threshold.
    pub fn decay_below_after(&self) -> Duration {
        if self.stale_base <= 0.0 || self.stale_threshold > self.stale_base {
            return Duration::zero();
        }
        let ratio = (1.0 - self.stale_threshold / self.stale_base).max(0.0);
        let secs = self.stale_tau.num_seconds() as f64 * ratio.powf(self.stale_delta);
        // Strictly below: one second past the crossing.
        Duration::seconds(secs.ceil() as i64 + 1)
    }
}

/// One problem in the rules, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesProblem {
    pub file: PathBuf,
    /// Dotted key (`weights.sha256`), or empty for the whole file.
    pub key: String,
    pub message: String,
}

impl fmt::Display for RulesProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}

/// Every problem found while loading rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RulesError {
    pub problems: Vec<RulesProblem>,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid rules ({} problems)", self.problems.len())?;
        for p in &self.problems {
            write!(f, "; {p}")?;
        }
        Ok(())
    }
}

const CORRELATION: &str = include_str!("../../rules/correlation.toml");
const FLAGS: &str = include_str!("../../rules/flags.toml");

macro_rules! shipped_lists {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../../rules/warninglists/", $name, ".json")))),+]
    };
}

/// The shipped warning lists (file stem, text).
const SHIPPED_LISTS: &[(&str, &str)] = shipped_lists!(
    "akamai",
    "cisco_top1000",
    "cloudflare",
    "common-ioc-false-positive",
    "empty-hashes",
    "google",
    "ipv6-linklocal",
    "microsoft-office365",
    "microsoft",
    "multicast",
    "public-dns-v4",
    "public-dns-v6",
    "rfc1918",
    "rfc3849",
    "rfc5735",
    "rfc6598",
    "rfc6761",
    "security-provider-blogpost",
    "ti-falsepositives",
    "tranco10k",
    "url-shortener",
    "whats-my-ip",
);

impl Default for Rules {
    /// The shipped rules (a clone of [`Rules::shipped`]).
    fn default() -> Rules {
        Rules::shipped().as_ref().clone()
    }
}

impl Rules {
    /// The shipped rules, parsed once per process (the lists hold ~100k entries).
    pub fn shipped() -> Arc<Rules> {
        static SHIPPED: OnceLock<Arc<Rules>> = OnceLock::new();
        SHIPPED
            .get_or_init(|| {
                let started = std::time::Instant::now();
                let lists = SHIPPED_LISTS
                    .iter()
                    .map(|(id, text)| {
                        (PathBuf::from(format!("warninglists/{id}.json")), *id, *text)
                    })
                    .collect::<Vec<_>>();
                let rules = Rules::parse(
                    (Path::new("correlation.toml"), CORRELATION),
                    (Path::new("flags.toml"), FLAGS),
                    lists.iter().map(|(p, id, t)| (p.as_path(), *id, *t)),
                )
                .expect("shipped rules are valid (checked by a test)");
                tracing::debug!(
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "Parsed the shipped rules."
                );
                Arc::new(rules)
            })
            .clone()
    }

    /// Shipped link and flag rules without warning lists (for tests and benchmarks that
    /// want every value to link).
    pub fn without_warninglists() -> Rules {
        Rules {
            warninglists: Warninglists::default(),
            ..Rules::default()
        }
    }

    /// Loads `dir/correlation.toml`, `dir/flags.toml` and `dir/warninglists/*.json`.
    /// A missing TOML file takes the shipped defaults; a missing warninglists folder means
    /// no lists.
    pub fn load(dir: &Path) -> Result<Rules, RulesError> {
        let mut problems = Vec::new();
        let mut read = |name: &str, default: &'static str| -> (PathBuf, String) {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => (path, text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (path, default.to_string()),
                Err(e) => {
                    problems.push(RulesProblem {
                        file: path.clone(),
                        key: String::new(),
                        message: format!("cannot read: {e}"),
                    });
                    (path, default.to_string())
                }
            }
        };
        let correlation = read("correlation.toml", CORRELATION);
        let flags = read("flags.toml", FLAGS);
        let mut lists = Vec::new();
        let list_dir = dir.join("warninglists");
        match std::fs::read_dir(&list_dir) {
            Ok(entries) => {
                let mut paths: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .collect();
                paths.sort();
                for path in paths {
                    match std::fs::read_to_string(&path) {
                        Ok(text) => {
                            let id = path
                                .file_stem()
                                .map(|s| s.to_string_lossy().into_owned())
                                .unwrap_or_default();
                            lists.push((path, id, text));
                        }
                        Err(e) => problems.push(RulesProblem {
                            file: path,
                            key: String::new(),
                            message: format!("cannot read: {e}"),
                        }),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => problems.push(RulesProblem {
                file: list_dir,
                key: String::new(),
                message: format!("cannot read directory: {e}"),
            }),
        }
        let parsed = Rules::parse(
            (&correlation.0, &correlation.1),
            (&flags.0, &flags.1),
            lists
                .iter()
                .map(|(p, id, t)| (p.as_path(), id.as_str(), t.as_str())),
        );
        match parsed {
            Ok(rules) if problems.is_empty() => Ok(rules),
            Ok(_) => Err(RulesError { problems }),
            Err(mut e) => {
                problems.append(&mut e.problems);
                Err(RulesError { problems })
            }
        }
    }

    fn parse<'a>(
        correlation: (&Path, &str),
        flags: (&Path, &str),
        lists: impl Iterator<Item = (&'a Path, &'a str, &'a str)>,
    ) -> Result<Rules, RulesError> {
        let mut problems = Vec::new();
        let link = parse_link(correlation.0, correlation.1, &mut problems);
        let flag_rules = parse_flags(flags.0, flags.1, &mut problems);
        // The lists are parsed side by side: the shipped ones are 3 MB of JSON, parsed at
        // every start before the daemon is ready.
        let lists: Vec<_> = lists.collect();
        let results: Vec<_> = lists
            .par_iter()
            .map(|&(path, id, text)| (path, Warninglist::parse(id, text)))
            .collect();
        let mut parsed = Vec::new();
        for (path, result) in results {
            match result {
                Ok(l) => parsed.push(l),
                Err(errs) => problems.extend(errs.into_iter().map(|(key, message)| RulesProblem {
                    file: path.to_path_buf(),
                    key,
                    message,
                })),
            }
        }
        if !problems.is_empty() {
            return Err(RulesError { problems });
        }
        Ok(Rules {
            link,
            flags: flag_rules,
            warninglists: Warninglists::new(parsed),
        })
    }
}

/// Reads typed values out of a TOML table, recording a problem for every wrong or unknown
/// key instead of stopping at the first.
struct Checker<'a> {
    file: &'a Path,
    problems: &'a mut Vec<RulesProblem>,
}

impl Checker<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(RulesProblem {
            file: self.file.to_path_buf(),
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn table<'t>(&mut self, root: &'t Table, key: &str) -> Option<&'t Table> {
        match root.get(key) {
            None => None,
            Some(Value::Table(t)) => Some(t),
            Some(_) => {
                self.problem(key, "must be a table");
                None
            }
        }
    }

    fn unknown(&mut self, table: &Table, prefix: &str, known: &[&str]) {
        for k in table.keys() {
            if !known.contains(&k.as_str()) {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                self.problem(
                    &key,
                    format!("unknown key (expected one of: {})", known.join(", ")),
                );
            }
        }
    }

    fn uint(
        &mut self,
        table: Option<&Table>,
        prefix: &str,
        key: &str,
        default: u64,
        max: u64,
    ) -> u64 {
        let full = format!("{prefix}.{key}");
        match table.and_then(|t| t.get(key)) {
            None => default,
            Some(Value::Integer(n)) if *n >= 0 && (*n as u64) <= max => *n as u64,
            Some(Value::Integer(n)) => {
                self.problem(
                    &full,
                    format!("is {n} (expected a whole number from 0 to {max})"),
                );
                default
            }
            Some(other) => {
                self.problem(
                    &full,
                    format!("is a {} (expected a whole number)", other.type_str()),
                );
                default
            }
        }
    }

    fn float(
        &mut self,
        table: Option<&Table>,
        prefix: &str,
        key: &str,
        default: f64,
        min: f64,
        max: f64,
    ) -> f64 {
        let full = format!("{prefix}.{key}");
        let v = match table.and_then(|t| t.get(key)) {
            None => return default,
            Some(Value::Float(f)) => *f,
            Some(Value::Integer(n)) => *n as f64,
            Some(other) => {
                self.problem(
                    &full,
                    format!("is a {} (expected a number)", other.type_str()),
                );
                return default;
            }
        };
        if !(min..=max).contains(&v) || v.is_nan() {
            self.problem(
                &full,
                format!("is {v} (expected a number from {min} to {max})"),
            );
            return default;
        }
        v
    }
}

fn parse_toml(file: &Path, text: &str, problems: &mut Vec<RulesProblem>) -> Table {
    match text.parse::<Table>() {
        Ok(t) => t,
        Err(e) => {
            problems.push(RulesProblem {
                file: file.to_path_buf(),
                key: String::new(),
                message: format!("invalid TOML: {}", e.message()),
            });
            Table::new()
        }
    }
}

fn parse_link(file: &Path, text: &str, problems: &mut Vec<RulesProblem>) -> LinkRules {
    let root = parse_toml(file, text, problems);
    let mut c = Checker { file, problems };
    c.unknown(&root, "", &["link", "weights", "frequency"]);
    let link = c.table(&root, "link");
    if let Some(t) = link {
        c.unknown(t, "link", &["threshold"]);
    }
    let threshold = c.uint(link, "link", "threshold", 100, 1_000_000) as u32;
    if threshold == 0 {
        c.problem("link.threshold", "is 0 (every pair of reports would link)");
    }
    let mut weights = [0u32; ObservableKind::ALL.len()];
    let w = c.table(&root, "weights");
    if let Some(t) = w {
        let names: Vec<&str> = ObservableKind::ALL.iter().map(|k| k.as_str()).collect();
        c.unknown(t, "weights", &names);
    }
    for (i, kind) in ObservableKind::ALL.iter().enumerate() {
        weights[i] = c.uint(
            w,
            "weights",
            kind.as_str(),
            DEFAULT_WEIGHTS[i] as u64,
            1_000_000,
        ) as u32;
    }
    let freq = c.table(&root, "frequency");
    if let Some(t) = freq {
        c.unknown(t, "frequency", &["decay_after", "cap"]);
    }
    let decay_after = c.uint(freq, "frequency", "decay_after", 8, 1 << 30) as usize;
    let cap = c.uint(freq, "frequency", "cap", 64, 1 << 30) as usize;
    if cap < 2 {
        c.problem(
            "frequency.cap",
            format!("is {cap} (a value must be allowed in at least 2 reports to link anything)"),
        );
    }
    LinkRules {
        threshold,
        weights,
        decay_after,
        cap,
    }
}

fn parse_flags(file: &Path, text: &str, problems: &mut Vec<RulesProblem>) -> FlagRules {
    let root = parse_toml(file, text, problems);
    let mut c = Checker { file, problems };
    c.unknown(
        &root,
        "",
        &["cross-sector", "stale", "known", "novel", "surge"],
    );
    let cs = c.table(&root, "cross-sector");
    if let Some(t) = cs {
        c.unknown(t, "cross-sector", &["min_sectors", "window_days"]);
    }
    let st = c.table(&root, "stale");
    if let Some(t) = st {
        c.unknown(
            t,
            "stale",
            &["quiet_days", "base", "tau_days", "delta", "threshold"],
        );
    }
    let kn = c.table(&root, "known");
    if let Some(t) = kn {
        c.unknown(t, "known", &["min_percent"]);
    }
    let nv = c.table(&root, "novel");
    if let Some(t) = nv {
        c.unknown(t, "novel", &["max_percent"]);
    }
    let su = c.table(&root, "surge");
    if let Some(t) = su {
        c.unknown(t, "surge", &["min_reports", "window_hours"]);
    }
    let days = |d: f64| Duration::seconds((d * 86_400.0) as i64);
    FlagRules {
        cross_sector_min: c.uint(cs, "cross-sector", "min_sectors", 2, 13).max(1) as usize,
        cross_sector_window: Duration::days(
            c.uint(cs, "cross-sector", "window_days", 30, 36_500) as i64
        ),
        stale_quiet: Duration::days(c.uint(st, "stale", "quiet_days", 30, 36_500) as i64),
        stale_base: c.float(st, "stale", "base", 100.0, 0.0, 1e9),
        stale_tau: days(c.float(st, "stale", "tau_days", 90.0, 0.001, 36_500.0)),
        stale_delta: c.float(st, "stale", "delta", 1.0, 0.001, 1000.0),
        stale_threshold: c.float(st, "stale", "threshold", 30.0, 0.0, 1e9),
        known_min_percent: c.float(kn, "known", "min_percent", 50.0, 0.0, 100.0),
        novel_max_percent: c.float(nv, "novel", "max_percent", 0.0, 0.0, 100.0),
        surge_min: c.uint(su, "surge", "min_reports", 5, 1 << 30).max(1) as usize,
        surge_window: Duration::hours(c.uint(su, "surge", "window_hours", 24, 24 * 36_500) as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_parse_and_weigh_as_documented() {
        let rules = Rules::shipped();
        assert_eq!(rules.warninglists.len(), SHIPPED_LISTS.len());
        let l = &rules.link;
        assert_eq!(l.threshold, 100);
        assert_eq!(l.weight(ObservableKind::Sha256, 1), 150);
        assert_eq!(l.weight(ObservableKind::Cve, 1), 0);
        // Halving at each doubling past decay_after, zero past the cap.
        assert_eq!(l.weight(ObservableKind::Sha256, 8), 150);
        assert_eq!(l.weight(ObservableKind::Sha256, 9), 75);
        assert_eq!(l.weight(ObservableKind::Sha256, 16), 75);
        assert_eq!(l.weight(ObservableKind::Sha256, 17), 37);
        assert_eq!(l.weight(ObservableKind::Sha256, 64), 150 >> 3);
        assert_eq!(l.weight(ObservableKind::Sha256, 65), 0);
        assert_eq!(l.weights, DEFAULT_WEIGHTS);
    }

    /// Every entry of every shipped list suppresses the observable it spells, for every kind
    /// the list applies to: the lists are indexed once per entry and per family, so that an
    /// index that dropped a family or a kind would fail here on real data.
    #[test]
    fn every_shipped_entry_suppresses_what_it_names() {
        use crate::model::Observable;
        let rules = Rules::shipped();
        let mut checked = 0;
        for (id, text) in SHIPPED_LISTS {
            let list = Warninglist::parse(id, text).expect("shipped lists parse");
            for entry in &list.entries {
                if entry.starts_with('.') {
                    continue; // a suffix: matched below a name, not as one
                }
                for &kind in &list.applies {
                    if let Ok(o) = Observable::parse(kind, entry) {
                        assert!(
                            rules.warninglists.suppresses(&o),
                            "{id}: {entry} as {kind:?} is not suppressed"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 90_000, "only {checked} entries checked");
        // And what no list names goes through, in every family and kind the lists index.
        for (kind, value) in [
            ("ipv4", "45.77.1.2"),
            ("ipv6", "2a05:d014::1"),
            ("cidr", "45.77.0.0/16"),
            ("sha256", &"ab".repeat(32)),
            ("md5", &"cd".repeat(16)),
            ("domain", "musubi-test-unlisted.example"),
        ] {
            let o = Observable::parse_named(kind, value).unwrap();
            assert!(!rules.warninglists.suppresses(&o), "{kind} {value}");
        }
    }

    #[test]
    fn decay_matches_misp_polynomial() {
        let f = &Rules::shipped().flags;
        assert_eq!(f.decay_score(Duration::zero()), 100.0);
        assert!((f.decay_score(Duration::days(45)) - 50.0).abs() < 1e-9);
        assert_eq!(f.decay_score(Duration::days(200)), 0.0);
        let below = f.decay_below_after();
        assert!(f.decay_score(below) < 30.0);
        assert!(f.decay_score(below - Duration::seconds(2)) >= 30.0);
    }

    #[test]
    fn load_lists_every_problem_with_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("correlation.toml"),
            "[link]\nthreshold = -3\ncolour = 1\n[weights]\nsha256 = \"high\"\nsha512 = 5\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("flags.toml"), "[stale]\ndelta = 0\n").unwrap();
        std::fs::create_dir(dir.path().join("warninglists")).unwrap();
        std::fs::write(dir.path().join("warninglists/bad.json"), "{\"name\":\"x\"}").unwrap();
        let err = Rules::load(dir.path()).unwrap_err();
        let got: Vec<String> = err
            .problems
            .iter()
            .map(|p| {
                format!(
                    "{}:{}",
                    p.file.file_name().unwrap().to_string_lossy(),
                    p.key
                )
            })
            .collect();
        for want in [
            "correlation.toml:link.threshold",
            "correlation.toml:link.colour",
            "correlation.toml:weights.sha256",
            "correlation.toml:weights.sha512",
            "flags.toml:stale.delta",
            "bad.json:type",
            "bad.json:list",
        ] {
            assert!(got.contains(&want.to_string()), "missing {want} in {got:?}");
        }
        assert_eq!(got.len(), 7, "{got:?}");
        assert!(
            err.to_string().contains("weights.sha256: is a string"),
            "{err}"
        );
    }

    #[test]
    fn load_takes_defaults_for_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let rules = Rules::load(dir.path()).unwrap();
        assert_eq!(rules.link, Rules::shipped().link);
        assert!(rules.warninglists.is_empty());
        let shipped_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let loaded = Rules::load(&shipped_dir).unwrap();
        assert_eq!(loaded.warninglists.len(), SHIPPED_LISTS.len());
        assert_eq!(loaded.flags, Rules::shipped().flags);
    }
}
