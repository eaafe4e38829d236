//! CSAF 2.0 advisories, and the discovery documents that lead to them
//! (`provider-metadata.json` → ROLIE feeds or a directory with `index.txt` / `changes.csv`).
//!
//! One advisory becomes one report with its CVEs; vendor and product names from the product
//! tree become tags (`vendor:Uniview`, `product:NVR301-04S2-P4`), which is how an analyst
//! asks "what hits our vendors". `document.distribution.tlp.label` sets the TLP.

use serde_json::Value;

use super::json::{self, array, parse_time, req_str, str_field};
use super::{FormatError, ParseContext, Parsed, utf8};
use crate::model::{Confidence, Observable, ObservableKind, ReportDraft, Tlp};

const FORMAT: &str = "csaf";

fn collect_branches(node: &Value, tags: &mut Vec<String>) {
    for b in array(node, "branches") {
        let prefix = match str_field(b, "category") {
            Some("vendor") => Some("vendor"),
            Some("product_name") | Some("product_family") => Some("product"),
            _ => None,
        };
        if let (Some(p), Some(name)) = (prefix, str_field(b, "name")) {
            let t = format!("{p}:{name}");
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        collect_branches(b, tags);
    }
}

/// Parses one CSAF 2.0 document.
pub fn parse(bytes: &[u8], ctx: &ParseContext) -> Result<Parsed, FormatError> {
    let v = json::parse(FORMAT, bytes)?;
    let doc = v.get("document").ok_or_else(|| {
        FormatError::structure(FORMAT, "$.document", "missing: not a CSAF document")
    })?;
    let title = req_str(FORMAT, doc, "$.document", "title")?;
    let tracking = doc
        .get("tracking")
        .ok_or_else(|| FormatError::structure(FORMAT, "$.document.tracking", "missing"))?;
    let id = req_str(FORMAT, tracking, "$.document.tracking", "id")?;
    let mut d = ReportDraft::new(format!("{id}: {title}"), ctx.default_tlp);
    d.external_id = Some(format!(
        "csaf:{}:{id}",
        doc.get("publisher")
            .and_then(|p| str_field(p, "namespace"))
            .unwrap_or("unknown")
    ));
    d.confidence = Confidence::Confirmed;
    d.observed_at = str_field(tracking, "initial_release_date")
        .or(str_field(tracking, "current_release_date"))
        .and_then(parse_time);
    if let Some(label) = doc
        .get("distribution")
        .and_then(|x| x.get("tlp"))
        .and_then(|t| str_field(t, "label"))
    {
        d.tlp = label.parse::<Tlp>().map_err(|e| {
            FormatError::structure(FORMAT, "$.document.distribution.tlp.label", e.to_string())
        })?;
    }
    let refs = array(doc, "references");
    d.link = refs
        .iter()
        .filter(|r| str_field(r, "category") == Some("self"))
        .filter_map(|r| str_field(r, "url"))
        .find(|u| !u.ends_with(".json"))
        .or_else(|| refs.iter().find_map(|r| str_field(r, "url")))
        .map(str::to_string);
    if let Some(c) = str_field(doc, "category") {
        d.tags.push(c.to_string());
    }
    let mut desc = Vec::new();
    for n in array(doc, "notes") {
        if matches!(
            str_field(n, "category"),
            Some("summary" | "description" | "general")
        ) && let Some(t) = str_field(n, "text")
        {
            desc.push(t.to_string());
        }
    }
    if let Some(tree) = v.get("product_tree") {
        collect_branches(tree, &mut d.tags);
    }
    let mut parsed_items = Vec::new();
    for (i, vuln) in array(&v, "vulnerabilities").iter().enumerate() {
        if let Some(cve) = str_field(vuln, "cve") {
            let o = Observable::parse(ObservableKind::Cve, cve).map_err(|e| {
                FormatError::structure(FORMAT, format!("$.vulnerabilities[{i}].cve"), e.to_string())
            })?;
            d.push_observable(o, str_field(vuln, "title").map(str::to_string));
        }
        // Each vulnerability is an item: its CVE (if any), CWE and notes go to the report.
        parsed_items.push(format!("$.vulnerabilities[{i}]"));
        if let Some(cwe) = vuln.get("cwe").and_then(|c| str_field(c, "id"))
            && !d.tags.iter().any(|t| t == cwe)
        {
            d.tags.push(cwe.to_string());
        }
        for n in array(vuln, "notes") {
            if str_field(n, "category") == Some("summary")
                && let Some(t) = str_field(n, "text")
            {
                desc.push(t.to_string());
            }
        }
    }
    d.description = desc.join("\n\n");
    let mut parsed = Parsed {
        reports: vec![d],
        ..Parsed::default()
    };
    parsed.kept("$.document");
    for at in parsed_items {
        parsed.kept(at);
    }
    Ok(parsed)
}

/// Where a provider publishes its advisories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub publisher: String,
    /// ROLIE feed URLs with their TLP label.
    pub rolie_feeds: Vec<(String, Option<Tlp>)>,
    /// Directory URLs (each holds `index.txt` and `changes.csv`), with a trailing `/`.
    pub directories: Vec<String>,
}

/// Parses `provider-metadata.json`.
pub fn parse_provider_metadata(bytes: &[u8]) -> Result<ProviderMetadata, FormatError> {
    let v = json::parse(FORMAT, bytes)?;
    let dists = array(&v, "distributions");
    if v.get("distributions").is_none() {
        return Err(FormatError::structure(
            FORMAT,
            "$.distributions",
            "missing: not a provider-metadata.json",
        ));
    }
    let mut m = ProviderMetadata {
        publisher: v
            .get("publisher")
            .and_then(|p| str_field(p, "name"))
            .unwrap_or_default()
            .to_string(),
        ..ProviderMetadata::default()
    };
    for d in dists {
        if let Some(dir) = str_field(d, "directory_url") {
            let dir = if dir.ends_with('/') {
                dir.to_string()
            } else {
                format!("{dir}/")
            };
            m.directories.push(dir);
        }
        if let Some(rolie) = d.get("rolie") {
            for f in array(rolie, "feeds") {
                if let Some(url) = str_field(f, "url") {
                    let tlp = str_field(f, "tlp_label").and_then(|t| t.parse().ok());
                    m.rolie_feeds.push((url.to_string(), tlp));
                }
            }
        }
    }
    Ok(m)
}

/// The advisory URLs of a ROLIE feed document (`feed.entry[].content.src`, else the
/// `self` link), newest entries first as the feed lists them.
pub fn rolie_advisory_urls(bytes: &[u8]) -> Result<Vec<String>, FormatError> {
    let v = json::parse(FORMAT, bytes)?;
    let feed = v
        .get("feed")
        .ok_or_else(|| FormatError::structure(FORMAT, "$.feed", "missing: not a ROLIE feed"))?;
    Ok(array(feed, "entry")
        .iter()
        .filter_map(|e| {
            e.get("content")
                .and_then(|c| str_field(c, "src"))
                .or_else(|| {
                    array(e, "link")
                        .iter()
                        .find(|l| str_field(l, "rel") == Some("self"))
                        .and_then(|l| str_field(l, "href"))
                })
                .map(str::to_string)
        })
        .collect())
}

/// What a CSAF feed URL answered with: the provider's discovery document, one ROLIE feed,
/// or an advisory itself. A feed pointed at `provider-metadata.json` walks the ROLIE feeds it
/// lists; one pointed at a ROLIE feed walks that feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsafDocument {
    ProviderMetadata,
    RolieFeed,
    Advisory,
}

/// Tells the three documents apart by their top-level keys (not JSON: an advisory, whose
/// parser reports the error).
pub fn sniff(bytes: &[u8]) -> CsafDocument {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return CsafDocument::Advisory;
    };
    if v.get("distributions").is_some() && v.get("document").is_none() {
        CsafDocument::ProviderMetadata
    } else if v.get("feed").is_some() {
        CsafDocument::RolieFeed
    } else {
        CsafDocument::Advisory
    }
}

/// One entry of a ROLIE feed: where the advisory is and when it last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolieEntry {
    /// Absolute URL (a relative `src` is resolved against the feed's URL).
    pub url: String,
    pub updated: Option<chrono::DateTime<chrono::Utc>>,
}

/// The entries of a ROLIE feed document (`feed.entry[]`: `content.src`, else the `self`
/// link; `updated`). Entries without a URL are reported by the caller's count, not here.
pub fn rolie_entries(feed_url: &str, bytes: &[u8]) -> Result<Vec<RolieEntry>, FormatError> {
    let v = json::parse(FORMAT, bytes)?;
    let feed = v
        .get("feed")
        .ok_or_else(|| FormatError::structure(FORMAT, "$.feed", "missing: not a ROLIE feed"))?;
    Ok(array(feed, "entry")
        .iter()
        .filter_map(|e| {
            let url = e
                .get("content")
                .and_then(|c| str_field(c, "src"))
                .or_else(|| {
                    array(e, "link")
                        .iter()
                        .find(|l| str_field(l, "rel") == Some("self"))
                        .and_then(|l| str_field(l, "href"))
                })?;
            Some(RolieEntry {
                url: join(feed_url, url),
                updated: str_field(e, "updated").and_then(parse_time),
            })
        })
        .collect())
}

fn join(base: &str, rel: &str) -> String {
    if rel.starts_with("https://") || rel.starts_with("http://") {
        return rel.to_string();
    }
    url::Url::parse(base)
        .and_then(|b| b.join(rel))
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("{base}{rel}"))
}

/// The advisory URLs listed in a directory's `index.txt` (one relative path a line).
pub fn index_txt_urls(directory_url: &str, bytes: &[u8]) -> Result<Vec<String>, FormatError> {
    let text = utf8(FORMAT, bytes)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| join(directory_url, l))
        .collect())
}

/// The advisory URLs in a directory's `changes.csv` (`"path","time"`) changed after `since`.
pub fn changes_csv_urls(
    directory_url: &str,
    bytes: &[u8],
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Vec<String>, FormatError> {
    let text = utf8(FORMAT, bytes)?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| FormatError::Line {
            format: FORMAT,
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let path = rec.get(0).unwrap_or_default().trim();
        let time = rec.get(1).map(str::trim).and_then(parse_time);
        if path.is_empty() {
            continue;
        }
        let Some(time) = time else {
            return Err(FormatError::Line {
                format: FORMAT,
                line,
                message: "second column is not a date and time".into(),
            });
        };
        if since.is_none_or(|s| time > s) {
            out.push(join(directory_url, path));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_listings() {
        let base = "https://example.com/.well-known/csaf/white/";
        assert_eq!(
            index_txt_urls(base, b"2024/a-1.json\n2024/a-2.json\n").unwrap(),
            [
                "https://example.com/.well-known/csaf/white/2024/a-1.json",
                "https://example.com/.well-known/csaf/white/2024/a-2.json"
            ]
        );
        let changes = b"\"2024/a-2.json\",\"2024-05-02T10:00:00Z\"\n\"2024/a-1.json\",\"2024-05-01T10:00:00Z\"\n";
        let since = parse_time("2024-05-01T12:00:00Z");
        assert_eq!(
            changes_csv_urls(base, changes, since).unwrap(),
            ["https://example.com/.well-known/csaf/white/2024/a-2.json"]
        );
        let err = changes_csv_urls(base, b"\"a.json\",\"soon\"\n", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "csaf: line 1: second column is not a date and time"
        );
    }
}
