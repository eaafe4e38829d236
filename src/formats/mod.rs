//! Input formats: every format becomes the same [`ReportDraft`]s and [`SightingDraft`]s.
//!
//! One module per format; [`parse`] is the single dispatch point and [`detect`] guesses the
//! format from content so that `musubi import` and feeds need no format name in the common
//! cases. Parsers are pure (bytes in, drafts out) and synchronous: callers run them off the
//! async runtime.
//!
//! The native JSON submission format is parsed by `formats::native` (owned by the HTTP
//! submission path); [`Format::Native`] only reserves its name here.

pub mod blocklist;
pub mod csaf;
pub mod extract;
pub mod kev;
pub mod misp;
pub mod native;
pub mod nvd;
pub mod rss;
pub mod stix21;
pub mod stix_pattern;

mod json;

use std::fmt;
use std::str::FromStr;

use crate::model::{ReportDraft, SightingDraft, Tlp};

pub use blocklist::BlocklistSpec;

/// The formats musubi reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// musubi's own submission JSON (parsed by `formats::native`, not by [`parse`]).
    Native,
    /// STIX 2.1 bundle (or a single STIX object).
    Stix21,
    /// MISP event JSON (`{"Event": ...}`, a bare event, or `{"response": [...]}`).
    Misp,
    /// MISP feed `manifest.json`; lists events, carries no reports itself
    /// (see [`misp::events_to_fetch`]).
    MispManifest,
    /// RSS 1.0 (RDF), RSS 2.0 and Atom.
    Rss,
    /// CSAF 2.0 advisory.
    Csaf,
    /// CISA Known Exploited Vulnerabilities, JSON.
    Kev,
    /// CISA Known Exploited Vulnerabilities, CSV.
    KevCsv,
    /// NVD CVE API 2.0 response or NVD JSON 1.1 data feed.
    Nvd,
    /// Line- or CSV-based blocklist.
    Blocklist(BlocklistSpec),
    /// Free text: observables are extracted by [`extract::extract`].
    Text,
}

impl Format {
    /// The name used in `feeds.toml` and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Stix21 => "stix",
            Format::Misp => "misp",
            Format::MispManifest => "misp-manifest",
            Format::Rss => "rss",
            Format::Csaf => "csaf",
            Format::Kev => "kev",
            Format::KevCsv => "kev-csv",
            Format::Nvd => "nvd",
            Format::Blocklist(_) => "blocklist",
            Format::Text => "text",
        }
    }

    /// Every accepted name, for error messages.
    pub const NAMES: &'static str = "native, stix, misp, misp-manifest, rss, csaf, kev, kev-csv, nvd, \
        blocklist, blocklist:<preset> (feodo, urlhaus, threatfox, spamhaus-drop, spamhaus-asndrop, \
        dshield, bambenek, plain), text";
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The text was not a format name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown format {0:?} (expected one of: {names})", names = Format::NAMES)]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        if let Some(preset) = lower.strip_prefix("blocklist:") {
            return BlocklistSpec::preset(preset)
                .map(Format::Blocklist)
                .ok_or_else(|| UnknownFormat(s.to_string()));
        }
        Ok(match lower.as_str() {
            "native" | "musubi" => Format::Native,
            "stix" | "stix2" | "stix21" | "stix-2.1" => Format::Stix21,
            "misp" | "misp-event" => Format::Misp,
            "misp-manifest" | "misp-feed" => Format::MispManifest,
            "rss" | "rdf" | "atom" => Format::Rss,
            "csaf" => Format::Csaf,
            "kev" | "kev-json" => Format::Kev,
            "kev-csv" => Format::KevCsv,
            "nvd" => Format::Nvd,
            "blocklist" | "csv" => Format::Blocklist(BlocklistSpec::default()),
            "text" | "txt" => Format::Text,
            _ => return Err(UnknownFormat(s.to_string())),
        })
    }
}

/// Defaults a parser applies where the input says nothing.
#[derive(Debug, Clone)]
pub struct ParseContext {
    /// TLP for items that carry no marking of their own.
    pub default_tlp: Tlp,
    /// The feed name (used in titles of batch reports such as blocklists). Feeds are
    /// public sources, so their names may appear in content.
    pub feed: Option<String>,
    /// Where the bytes came from (file path or redacted URL), for the caller's messages.
    /// Never copied into content: a file path often names the provider.
    pub source: Option<String>,
}

impl Default for ParseContext {
    fn default() -> Self {
        ParseContext {
            default_tlp: Tlp::Clear,
            feed: None,
            source: None,
        }
    }
}

impl ParseContext {
    pub fn with_tlp(default_tlp: Tlp) -> ParseContext {
        ParseContext {
            default_tlp,
            ..ParseContext::default()
        }
    }

    /// The feed name for batch titles, if the input is a feed. Deliberately not the
    /// source: an imported file's path is the provider's (e.g. `/srv/acme-soc/list.txt`),
    /// and titles are shown to every member and indexed.
    pub(crate) fn feed_label(&self) -> Option<&str> {
        self.feed.as_deref()
    }
}

/// What a parser produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub reports: Vec<ReportDraft>,
    pub sightings: Vec<SightingDraft>,
    /// Things the parser could not represent (an unsupported STIX pattern, an unknown MISP
    /// attribute type, a blocklist line that is no observable). Never silently dropped.
    pub warnings: Vec<String>,
    /// What became of each item of the input (a MISP attribute, a STIX object, a blocklist
    /// line, a feed entry): kept as it was, normalised, or skipped, and why. So that an
    /// operator, a submitter and the feed health can tell "all of it" from "most of it".
    pub items: Vec<ItemOutcome>,
}

impl Parsed {
    /// Records an item kept as it was.
    pub(crate) fn kept(&mut self, at: impl Into<String>) {
        self.items.push(ItemOutcome {
            at: at.into(),
            outcome: Outcome::Kept,
        });
    }

    /// Records an item kept after a change (and says so among the warnings).
    pub(crate) fn normalised(&mut self, at: impl Into<String>, why: impl Into<String>) {
        let (at, why) = (at.into(), why.into());
        self.warnings.push(format!("{at}: {why}"));
        self.items.push(ItemOutcome {
            at,
            outcome: Outcome::Normalised { why },
        });
    }

    /// Records an item kept after a change, already warned about in the format's words.
    pub(crate) fn normalised_quietly(&mut self, at: impl Into<String>, why: impl Into<String>) {
        self.items.push(ItemOutcome {
            at: at.into(),
            outcome: Outcome::Normalised { why: why.into() },
        });
    }

    /// Records an item that was not kept, and why. The caller has already warned (in the
    /// format's own words, often one warning for many items).
    pub(crate) fn skipped(&mut self, at: impl Into<String>, why: impl Into<String>) {
        self.items.push(ItemOutcome {
            at: at.into(),
            outcome: Outcome::Skipped { why: why.into() },
        });
    }

    /// How many items were kept, normalised and skipped.
    pub fn counts(&self) -> OutcomeCounts {
        OutcomeCounts::of(&self.items)
    }
}

/// What became of one item of an input, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ItemOutcome {
    /// Where the item is, in the input's own terms: a JSON path (`$.Event.Attribute[3]`),
    /// a STIX id, `line 12`. Never a file path (that names the provider).
    pub at: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Kept as it was, kept after a change, or not kept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Kept,
    /// Kept after a change the input did not ask for (e.g. `http://` assumed for a URL
    /// without a scheme).
    Normalised {
        why: String,
    },
    /// Not kept: an item with no observable, a value that is no observable.
    Skipped {
        why: String,
    },
}

/// The three counts of [`ItemOutcome`]s (import summary, API answers, feed health).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutcomeCounts {
    pub kept: usize,
    pub normalised: usize,
    pub skipped: usize,
}

impl OutcomeCounts {
    pub fn of(items: &[ItemOutcome]) -> OutcomeCounts {
        let mut c = OutcomeCounts::default();
        for i in items {
            c.add(&i.outcome);
        }
        c
    }

    pub fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Kept => self.kept += 1,
            Outcome::Normalised { .. } => self.normalised += 1,
            Outcome::Skipped { .. } => self.skipped += 1,
        }
    }

    pub fn merge(&mut self, other: OutcomeCounts) {
        self.kept += other.kept;
        self.normalised += other.normalised;
        self.skipped += other.skipped;
    }
}

/// Why input could not be parsed, and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Not JSON at all.
    #[error("{format}: invalid JSON at line {line}, column {column}: {message}")]
    Json {
        format: &'static str,
        line: usize,
        column: usize,
        message: String,
    },
    /// Well-formed input of the wrong shape.
    #[error("{format}: {path}: {message}")]
    Structure {
        format: &'static str,
        /// JSON path (`$.vulnerabilities[3].cveID`) or XML element path.
        path: String,
        message: String,
    },
    /// Not well-formed XML.
    #[error("{format}: malformed XML at line {line}, column {column}: {message}")]
    Xml {
        format: &'static str,
        line: usize,
        column: usize,
        message: String,
    },
    /// A line-based input (CSV, blocklist) was unreadable.
    #[error("{format}: line {line}: {message}")]
    Line {
        format: &'static str,
        line: u64,
        message: String,
    },
    /// The input is not UTF-8.
    #[error("{format}: input is not UTF-8 (byte {position})")]
    Encoding {
        format: &'static str,
        position: usize,
    },
    /// The format is parsed elsewhere (the native submission format).
    #[error("format {0} is parsed by the submission path, not by formats::parse")]
    HandledElsewhere(&'static str),
}

impl FormatError {
    pub(crate) fn structure(
        format: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> FormatError {
        FormatError::Structure {
            format,
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Decodes UTF-8 (dropping a BOM) or says where it is not.
pub(crate) fn utf8<'a>(format: &'static str, bytes: &'a [u8]) -> Result<&'a str, FormatError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| FormatError::Encoding {
        format,
        position: e.valid_up_to(),
    })
}

/// Parses `bytes` as `format`.
pub fn parse(format: &Format, bytes: &[u8], ctx: &ParseContext) -> Result<Parsed, FormatError> {
    match format {
        Format::Native => Err(FormatError::HandledElsewhere("native")),
        Format::Stix21 => stix21::parse(bytes, ctx),
        Format::Misp => misp::parse(bytes, ctx),
        Format::MispManifest => misp::parse_manifest(bytes).map(|m| Parsed {
            warnings: vec![format!(
                "misp manifest lists {} events; fetch them with misp::events_to_fetch",
                m.len()
            )],
            ..Parsed::default()
        }),
        Format::Rss => rss::parse(bytes, ctx),
        Format::Csaf => csaf::parse(bytes, ctx),
        Format::Kev => kev::parse_json(bytes, ctx),
        Format::KevCsv => kev::parse_csv(bytes, ctx),
        Format::Nvd => nvd::parse(bytes, ctx),
        Format::Blocklist(spec) => blocklist::parse(spec, bytes, ctx),
        Format::Text => parse_text(bytes, ctx),
    }
}

fn parse_text(bytes: &[u8], ctx: &ParseContext) -> Result<Parsed, FormatError> {
    let text = utf8("text", bytes)?;
    let mut draft = ReportDraft::new(
        first_line_title(text).unwrap_or_else(|| match ctx.feed_label() {
            Some(feed) => format!("Text from feed {feed}"),
            None => "Text import".to_string(),
        }),
        ctx.default_tlp,
    );
    draft.description = text.to_string();
    for o in extract::extract(text) {
        draft.push_observable(o, None);
    }
    let mut parsed = Parsed::default();
    if draft.indicators.is_empty() {
        parsed
            .warnings
            .push("text contains no recognisable observable".to_string());
    }
    // The text is the item: kept as one report, whatever it yields.
    parsed.kept("text");
    parsed.reports.push(draft);
    Ok(parsed)
}

fn first_line_title(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(200).collect())
}

/// `2000` → `2,000`, for titles.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Guesses the format from the content (the first few kilobytes suffice for most).
///
/// Returns `None` when nothing fits; plain text is never guessed, since any bytes are text —
/// the caller decides whether to fall back to [`Format::Text`].
pub fn detect(bytes: &[u8]) -> Option<Format> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let head_len = bytes.len().min(64 * 1024);
    let head = String::from_utf8_lossy(&bytes[..head_len]);
    let trimmed = head.trim_start();
    if trimmed.starts_with('<') {
        let lower = trimmed.to_ascii_lowercase();
        if lower.contains("<rss") || lower.contains("<rdf:rdf") || lower.contains("<feed") {
            return Some(Format::Rss);
        }
        return None;
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return detect_json(bytes, trimmed);
    }
    detect_lines(&head)
}

fn detect_json(bytes: &[u8], head: &str) -> Option<Format> {
    // Cheap markers first, full parse only to break ties.
    let has = |s: &str| head.contains(s);
    if has("\"vulnerabilities\"") && has("\"catalogVersion\"") {
        return Some(Format::Kev);
    }
    if has("\"CVE_Items\"") || (has("\"vulnerabilities\"") && has("\"resultsPerPage\"")) {
        return Some(Format::Nvd);
    }
    if has("\"csaf_version\"") {
        return Some(Format::Csaf);
    }
    if has("\"Event\"") || has("\"Attribute\"") {
        return Some(Format::Misp);
    }
    if has("\"spec_version\"") || has("\"type\": \"bundle\"") || has("\"type\":\"bundle\"") {
        return Some(Format::Stix21);
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let obj = value.as_object()?;
    if obj.get("type").and_then(|t| t.as_str()) == Some("bundle") {
        return Some(Format::Stix21);
    }
    if !obj.is_empty()
        && obj
            .values()
            .all(|v| v.get("timestamp").is_some() && v.get("info").is_some())
    {
        return Some(Format::MispManifest);
    }
    None
}

fn detect_lines(head: &str) -> Option<Format> {
    let lines: Vec<&str> = head
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(200)
        .collect();
    if let Some(first) = lines.first()
        && (first.starts_with("cveID,") || first.starts_with("\"cveID\""))
    {
        return Some(Format::KevCsv);
    }
    let data: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with('#') && !l.starts_with(';') && !l.starts_with("//"))
        .collect();
    if data.is_empty() {
        return None;
    }
    let spec = BlocklistSpec::default();
    let hits = data
        .iter()
        .filter(|l| blocklist::line_value(&spec, l).is_some())
        .count();
    // A blocklist is mostly observables, one a line; prose is not.
    (hits * 10 >= data.len() * 8).then_some(Format::Blocklist(spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for name in [
            "stix",
            "misp",
            "misp-manifest",
            "rss",
            "csaf",
            "kev",
            "kev-csv",
            "nvd",
            "blocklist",
            "text",
            "native",
        ] {
            let f: Format = name.parse().unwrap();
            assert_eq!(f.name(), name);
        }
        assert!(matches!(
            "blocklist:feodo".parse::<Format>().unwrap(),
            Format::Blocklist(BlocklistSpec { column: 1, .. })
        ));
        let err = "yaml".parse::<Format>().unwrap_err().to_string();
        assert!(err.contains("yaml") && err.contains("stix"), "{err}");
    }

    #[test]
    fn detect_plain_lists_and_not_prose() {
        assert!(matches!(
            detect(b"# list\n192.0.2.1\n198.51.100.7\n"),
            Some(Format::Blocklist(_))
        ));
        assert_eq!(
            detect(b"Dear colleagues, we saw strange traffic today."),
            None
        );
        assert_eq!(detect(b"<html><body>hi</body></html>"), None);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(2000), "2,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn text_title_never_names_the_source() {
        let ctx = ParseContext {
            source: Some("/srv/acme-soc/notes.txt".into()),
            ..ParseContext::default()
        };
        let p = parse(&Format::Text, b"\n\n", &ctx).unwrap();
        assert_eq!(p.reports[0].title, "Text import");
    }

    #[test]
    fn text_becomes_one_report() {
        let p = parse(
            &Format::Text,
            b"Phishing wave\nC2 at 203.0.113.9 and evil[.]example[.]com",
            &ParseContext::default(),
        )
        .unwrap();
        assert_eq!(p.reports.len(), 1);
        assert_eq!(p.reports[0].title, "Phishing wave");
        assert_eq!(p.reports[0].indicators.len(), 2);
    }
}
