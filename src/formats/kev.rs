//! CISA Known Exploited Vulnerabilities (KEV), JSON and CSV.
//!
//! Each catalogue entry is one report carrying its CVE: an entry is CISA's statement that
//! this CVE is exploited in the wild, which is exactly what the `known` flag needs. The
//! `external_id` is `kev:<CVE>`, so re-polling the catalogue adds only new entries.

use serde_json::Value;

use super::json::{self, parse_time, req_array, req_str, str_field};
use super::{FormatError, ParseContext, Parsed, utf8};
use crate::model::{Confidence, Observable, ObservableKind, ReportDraft};

const FORMAT_JSON: &str = "kev";
const FORMAT_CSV: &str = "kev-csv";

/// The fields of one entry, common to both encodings.
struct Entry<'a> {
    cve: &'a str,
    vendor: &'a str,
    product: &'a str,
    name: &'a str,
    date_added: &'a str,
    description: &'a str,
    action: &'a str,
    due: &'a str,
    ransomware: &'a str,
    notes: &'a str,
    cwes: Vec<String>,
}

fn draft(e: &Entry<'_>, ctx: &ParseContext) -> Result<ReportDraft, &'static str> {
    let cve = Observable::parse(ObservableKind::Cve, e.cve).map_err(|_| "cveID is not a CVE id")?;
    let title = if e.name.is_empty() {
        format!("KEV: {} {} ({})", e.vendor, e.product, cve.value())
    } else {
        format!("KEV: {} ({})", e.name, cve.value())
    };
    let mut d = ReportDraft::new(title, ctx.default_tlp);
    d.confidence = Confidence::Confirmed;
    d.observed_at = parse_time(e.date_added);
    d.description = format!(
        "{}\n\nRequired action: {} (due {}).{}",
        e.description,
        e.action,
        e.due,
        if e.notes.is_empty() {
            String::new()
        } else {
            format!("\nNotes: {}", e.notes)
        }
    );
    d.external_id = Some(format!("kev:{}", cve.value()));
    d.link = Some(format!("https://nvd.nist.gov/vuln/detail/{}", cve.value()));
    d.tags.push("kev".to_string());
    for t in [e.vendor, e.product] {
        if !t.is_empty() {
            d.tags.push(t.to_string());
        }
    }
    if e.ransomware.eq_ignore_ascii_case("known") {
        d.tags.push("ransomware".to_string());
    }
    d.tags.extend(e.cwes.iter().cloned());
    d.push_observable(cve, None);
    Ok(d)
}

/// Parses the KEV JSON catalogue.
pub fn parse_json(bytes: &[u8], ctx: &ParseContext) -> Result<Parsed, FormatError> {
    let v = json::parse(FORMAT_JSON, bytes)?;
    let vulns = req_array(FORMAT_JSON, &v, "$", "vulnerabilities")?;
    let mut parsed = Parsed::default();
    for (i, item) in vulns.iter().enumerate() {
        let path = format!("$.vulnerabilities[{i}]");
        let s = |k| str_field(item, k).unwrap_or_default();
        let e = Entry {
            cve: req_str(FORMAT_JSON, item, &path, "cveID")?,
            vendor: s("vendorProject"),
            product: s("product"),
            name: s("vulnerabilityName"),
            date_added: s("dateAdded"),
            description: s("shortDescription"),
            action: s("requiredAction"),
            due: s("dueDate"),
            ransomware: s("knownRansomwareCampaignUse"),
            notes: s("notes"),
            cwes: json::array(item, "cwes")
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        };
        match draft(&e, ctx) {
            Ok(d) => {
                parsed.reports.push(d);
                parsed.kept(path);
            }
            Err(msg) => {
                return Err(FormatError::structure(
                    FORMAT_JSON,
                    format!("{path}.cveID"),
                    msg,
                ));
            }
        }
    }
    Ok(parsed)
}

/// Parses the KEV CSV catalogue (header row required).
pub fn parse_csv(bytes: &[u8], ctx: &ParseContext) -> Result<Parsed, FormatError> {
    let text = utf8(FORMAT_CSV, bytes)?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let line_err = |line: u64, message: String| FormatError::Line {
        format: FORMAT_CSV,
        line,
        message,
    };
    let headers = rdr
        .headers()
        .map_err(|e| line_err(1, e.to_string()))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let cve_col = col("cveID").ok_or_else(|| line_err(1, "header has no cveID column".into()))?;
    let cols: Vec<Option<usize>> = [
        "vendorProject",
        "product",
        "vulnerabilityName",
        "dateAdded",
        "shortDescription",
        "requiredAction",
        "dueDate",
        "knownRansomwareCampaignUse",
        "notes",
        "cwes",
    ]
    .iter()
    .map(|n| col(n))
    .collect();
    let mut parsed = Parsed::default();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            line_err(line, e.to_string())
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let get = |i: usize| cols[i].and_then(|c| rec.get(c)).unwrap_or_default().trim();
        let e = Entry {
            cve: rec.get(cve_col).unwrap_or_default().trim(),
            vendor: get(0),
            product: get(1),
            name: get(2),
            date_added: get(3),
            description: get(4),
            action: get(5),
            due: get(6),
            ransomware: get(7),
            notes: get(8),
            cwes: get(9)
                .split([',', ';'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        };
        let d = draft(&e, ctx).map_err(|m| line_err(line, m.to_string()))?;
        parsed.reports.push(d);
        parsed.kept(format!("line {line}"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_cve_names_the_path() {
        let err = parse_json(
            br#"{"vulnerabilities":[{"cveID":"CVE-2024-0001"},{"cveID":"nope"}]}"#,
            &ParseContext::default(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "kev: $.vulnerabilities[1].cveID: cveID is not a CVE id"
        );
    }

    #[test]
    fn csv_errors_name_the_line() {
        let err = parse_csv(
            b"cveID,product\nCVE-2024-0001,x\nbad,y\n",
            &ParseContext::default(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "kev-csv: line 3: cveID is not a CVE id");
    }
}
