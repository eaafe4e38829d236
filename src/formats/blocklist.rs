//! Blocklists: plain lists and CSV with a value column (Feodo Tracker, URLhaus, ThreatFox,
//! Spamhaus DROP, DShield, Bambenek, Maltrail trails, ...).
//!
//! A whole list becomes ONE report (a batch of entries published together), not one per
//! line: one line of a blocklist is no advisory, and a report per line would swamp the
//! store and the correlation graph. The report's `external_id` is a hash of the sorted
//! values, so re-polling an unchanged list is deduplicated.

use sha2::{Digest, Sha256};

use super::{FormatError, ParseContext, Parsed, utf8};
use crate::model::{Confidence, Observable, ObservableKind, ReportDraft};

const FORMAT: &str = "blocklist";

/// How to read a blocklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlocklistSpec {
    /// The kind of every value; `None` detects the kind per value.
    pub kind: Option<ObservableKind>,
    /// Zero-based column of the value.
    pub column: usize,
    /// Column delimiter; `None` splits on whitespace, `,`, `;` and `|` (plain lists).
    pub delimiter: Option<char>,
    /// Lines starting with one of these (after leading spaces) are comments.
    pub comment_prefixes: Vec<String>,
    /// Skip the first non-comment line (a CSV header).
    pub skip_header: bool,
    /// Zero-based column holding a prefix length that turns the value into a CIDR
    /// (DShield lists `start end prefix`).
    pub prefix_column: Option<usize>,
}

impl Default for BlocklistSpec {
    fn default() -> Self {
        BlocklistSpec {
            kind: None,
            column: 0,
            delimiter: None,
            comment_prefixes: vec!["#".into(), ";".into(), "//".into()],
            skip_header: false,
            prefix_column: None,
        }
    }
}

impl BlocklistSpec {
    /// Named presets for well-known lists (`blocklist:feodo` in `feeds.toml`).
    pub fn preset(name: &str) -> Option<BlocklistSpec> {
        let base = BlocklistSpec::default();
        let csv = |column| BlocklistSpec {
            column,
            delimiter: Some(','),
            ..BlocklistSpec::default()
        };
        Some(match name {
            "plain" => base,
            // "first_seen_utc","dst_ip","dst_port","c2_status","last_online","malware"
            "feodo" | "feodotracker" => BlocklistSpec {
                kind: Some(ObservableKind::Ipv4),
                skip_header: true,
                ..csv(1)
            },
            // # id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter
            "urlhaus" => BlocklistSpec {
                kind: Some(ObservableKind::Url),
                ..csv(2)
            },
            // # "first_seen_utc","ioc_id","ioc_value","ioc_type",...
            "threatfox" => csv(2),
            // 1.4.0.0/17 ; SBL256893
            "spamhaus-drop" | "spamhaus" => BlocklistSpec {
                kind: Some(ObservableKind::Cidr),
                delimiter: Some(';'),
                ..base
            },
            "spamhaus-asndrop" => BlocklistSpec {
                kind: Some(ObservableKind::Asn),
                delimiter: Some(';'),
                ..base
            },
            // Start<TAB>End<TAB>Netblock<TAB>...
            "dshield" => BlocklistSpec {
                kind: Some(ObservableKind::Cidr),
                delimiter: Some('\t'),
                skip_header: true,
                prefix_column: Some(2),
                ..base
            },
            // ip,description,time,manpage
            "bambenek" => csv(0),
            _ => return None,
        })
    }

    fn is_comment(&self, line: &str) -> bool {
        let t = line.trim_start();
        self.comment_prefixes
            .iter()
            .any(|p| t.starts_with(p.as_str()))
    }
}

/// The observable on one data line, if any.
pub(crate) fn line_value(spec: &BlocklistSpec, line: &str) -> Option<Observable> {
    let fields: Vec<String> = match spec.delimiter {
        Some(d) => split_csv_line(line, d),
        None => line
            .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '|'))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    };
    let raw = fields.get(spec.column)?.trim();
    let raw = match spec.prefix_column.and_then(|c| fields.get(c)) {
        Some(p) if !raw.contains('/') => format!("{raw}/{}", p.trim()),
        _ => raw.to_string(),
    };
    match spec.kind {
        Some(kind) => Observable::parse(kind, &raw).ok().or_else(|| {
            (kind == ObservableKind::Cidr)
                .then(|| detect_value(&raw))
                .flatten()
        }),
        None => detect_value(&raw),
    }
}

/// Splits one CSV line, honouring double quotes.
fn split_csv_line(line: &str, delimiter: char) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == delimiter && !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// Detects the kind of a single value, most specific first.
pub fn detect_value(raw: &str) -> Option<Observable> {
    let raw = raw.trim().trim_matches('"');
    if raw.is_empty() {
        return None;
    }
    use ObservableKind::*;
    let kinds: &[ObservableKind] = if raw.contains("://") {
        &[Url]
    } else if raw.contains('/') {
        &[Cidr]
    } else if raw.contains('@') {
        &[Email]
    } else if raw.len() >= 32 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        &[Md5, Sha1, Sha256]
    } else if raw.to_ascii_uppercase().starts_with("CVE-") {
        &[Cve]
    } else if raw.to_ascii_uppercase().starts_with("AS")
        && raw[2..].bytes().all(|b| b.is_ascii_digit())
    {
        &[Asn]
    } else if let Some((host, port)) = raw
        .rsplit_once(':')
        .filter(|(h, p)| !h.contains(':') && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        // ThreatFox and C2 lists write `ip:port` / `host:port`; the port is not the IOC.
        let _ = port;
        return detect_value(host);
    } else {
        &[Ipv4, Ipv6, Domain]
    };
    let o = kinds.iter().find_map(|k| Observable::parse(*k, raw).ok())?;
    if o.kind() == Domain {
        let tld = o.value().rsplit('.').next().unwrap_or_default();
        if !super::extract::is_known_tld(tld) {
            return None;
        }
    }
    Some(o)
}

/// Parses a blocklist into one batch report.
pub fn parse(
    spec: &BlocklistSpec,
    bytes: &[u8],
    ctx: &ParseContext,
) -> Result<Parsed, FormatError> {
    let text = utf8(FORMAT, bytes)?;
    let mut parsed = Parsed::default();
    // Titled once the entries are counted; never after the source (see `feed_label`).
    let mut draft = ReportDraft::new(String::new(), ctx.default_tlp);
    draft.confidence = Confidence::Suspected;
    draft.tags.push("blocklist".to_string());
    let mut header_pending = spec.skip_header;
    let mut rejected: Vec<u64> = Vec::new();
    let mut comments = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if spec.is_comment(t) {
            if comments.len() < 3 {
                let c = t.trim_start_matches(['#', ';', '/', ' ']).trim();
                if c.len() > 8 {
                    comments.push(c.to_string());
                }
            }
            continue;
        }
        if header_pending {
            header_pending = false;
            continue;
        }
        match line_value(spec, t) {
            Some(o) => {
                draft.push_observable(o, None);
                parsed.kept(format!("line {line_no}"));
            }
            None => {
                rejected.push(line_no);
                parsed.skipped(
                    format!("line {line_no}"),
                    format!(
                        "no {} value",
                        spec.kind
                            .map_or("recognisable".to_string(), |k| k.to_string())
                    ),
                );
            }
        }
    }
    if !rejected.is_empty() {
        let shown: Vec<String> = rejected.iter().take(10).map(u64::to_string).collect();
        parsed.warnings.push(format!(
            "{} line(s) held no {} value and were skipped (lines {}{})",
            rejected.len(),
            spec.kind
                .map_or("recognisable".to_string(), |k| k.to_string()),
            shown.join(", "),
            if rejected.len() > 10 { ", ..." } else { "" }
        ));
    }
    if draft.indicators.is_empty() {
        parsed
            .warnings
            .push("blocklist holds no observable".to_string());
        return Ok(parsed);
    }
    let n = draft.indicators.len();
    let entries = format!(
        "{} {}",
        super::thousands(n),
        if n == 1 { "entry" } else { "entries" }
    );
    match ctx.feed_label() {
        // A public feed: its name and header comments are public too.
        Some(feed) => {
            draft.title = format!("Blocklist {feed}, {entries}");
            draft.description = format!(
                "{entries} from feed {feed}.{}",
                if comments.is_empty() {
                    String::new()
                } else {
                    format!(" {}", comments.join(" / "))
                }
            );
        }
        // A member's file: its header comments often say who generated it.
        None => {
            draft.title = format!("Blocklist import, {entries}");
            draft.description = format!("{entries}.");
            if !comments.is_empty() {
                draft.provenance_mut().notes = comments;
            }
        }
    }
    let mut values: Vec<String> = draft
        .indicators
        .iter()
        .map(|i| i.observable.key())
        .collect();
    values.sort();
    let mut h = Sha256::new();
    for v in &values {
        h.update(v.as_bytes());
        h.update([0]);
    }
    draft.external_id = Some(format!("blocklist:{}", &hex::encode(h.finalize())[..32]));
    parsed.reports.push(draft);
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_list_detects_kinds_and_reports_rejects() {
        let p = parse(
            &BlocklistSpec::default(),
            b"# comment\n192.0.2.1\nhttp://evil.example.com/x\nnot a value\nevil.example.net ; note\n",
            &ParseContext::default(),
        )
        .unwrap();
        assert_eq!(p.reports.len(), 1);
        let keys: Vec<String> = p.reports[0]
            .indicators
            .iter()
            .map(|i| i.observable.key())
            .collect();
        assert_eq!(
            keys,
            [
                "ipv4:192.0.2.1",
                "url:http://evil.example.com/x",
                "domain:evil.example.net"
            ]
        );
        assert!(p.warnings[0].contains("lines 4"), "{:?}", p.warnings);
    }

    #[test]
    fn imported_list_is_titled_neutrally() {
        let ctx = ParseContext {
            source: Some("/srv/acme-power-soc/blocklist.txt".into()),
            ..ParseContext::default()
        };
        let p = parse(
            &BlocklistSpec::default(),
            b"# generated by Acme Power SOC\n192.0.2.1\n192.0.2.2\n",
            &ctx,
        )
        .unwrap();
        let d = &p.reports[0];
        assert_eq!(d.title, "Blocklist import, 2 entries");
        assert_eq!(d.description, "2 entries.");
        let notes = &d.provenance.as_ref().unwrap().notes;
        assert_eq!(notes, &["generated by Acme Power SOC"]);

        let feed = ParseContext {
            feed: Some("feodo".into()),
            ..ParseContext::default()
        };
        let p = parse(&BlocklistSpec::default(), b"192.0.2.1\n", &feed).unwrap();
        assert_eq!(p.reports[0].title, "Blocklist feodo, 1 entry");
    }

    #[test]
    fn quoted_csv_column() {
        let spec = BlocklistSpec::preset("feodo").unwrap();
        let p = parse(
            &spec,
            b"\"first_seen_utc\",\"dst_ip\"\n\"2023-05-23 17:51:44\",\"192.9.135.73\",\"1194\"\n",
            &ParseContext::default(),
        )
        .unwrap();
        assert_eq!(p.reports[0].indicators.len(), 1);
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn same_values_same_external_id() {
        let a = parse(
            &BlocklistSpec::default(),
            b"192.0.2.1\n192.0.2.2\n",
            &ParseContext::default(),
        )
        .unwrap();
        let b = parse(
            &BlocklistSpec::default(),
            b"192.0.2.2\n192.0.2.1\n",
            &ParseContext::default(),
        )
        .unwrap();
        assert_eq!(a.reports[0].external_id, b.reports[0].external_id);
    }
}
