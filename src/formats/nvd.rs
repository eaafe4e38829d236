//! NVD CVE data: the CVE API 2.0 response and the legacy JSON 1.1 data feeds.
//!
//! One report per CVE, carrying the CVE (and the CWE ids as tags). Vendor/product pairs of
//! vulnerable CPEs become tags so that an analyst can find "all Exchange CVEs".

use std::collections::BTreeSet;

use serde_json::Value;

use super::json::{self, array, parse_time, req_str, str_field};
use super::{FormatError, ParseContext, Parsed};
use crate::model::{Confidence, Observable, ObservableKind, ReportDraft};

const FORMAT: &str = "nvd";

/// Parses either NVD encoding, recognised by its top-level key.
pub fn parse(bytes: &[u8], ctx: &ParseContext) -> Result<Parsed, FormatError> {
    let v = json::parse(FORMAT, bytes)?;
    let mut parsed = Parsed::default();
    if let Some(items) = v.get("vulnerabilities").and_then(Value::as_array) {
        for (i, item) in items.iter().enumerate() {
            let path = format!("$.vulnerabilities[{i}].cve");
            let cve = item
                .get("cve")
                .ok_or_else(|| FormatError::structure(FORMAT, &path, "missing"))?;
            parsed.reports.push(api2(cve, &path, ctx)?);
            parsed.kept(path);
        }
    } else if let Some(items) = v.get("CVE_Items").and_then(Value::as_array) {
        for (i, item) in items.iter().enumerate() {
            let path = format!("$.CVE_Items[{i}]");
            parsed.reports.push(feed11(item, &path, ctx)?);
            parsed.kept(path);
        }
    } else {
        return Err(FormatError::structure(
            FORMAT,
            "$",
            "neither an API 2.0 response (vulnerabilities) nor a 1.1 feed (CVE_Items)",
        ));
    }
    Ok(parsed)
}

/// Where one page of a CVE API 2.0 answer sits in the whole result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvdPage {
    pub start_index: u64,
    pub results_per_page: u64,
    pub total_results: u64,
}

impl NvdPage {
    /// The `startIndex` of the next page, if there is one.
    pub fn next_start(&self) -> Option<u64> {
        let next = self.start_index.checked_add(self.results_per_page)?;
        (self.results_per_page > 0 && next < self.total_results).then_some(next)
    }
}

/// The paging fields of an API 2.0 answer (`startIndex`, `resultsPerPage`, `totalResults`);
/// `None` for a 1.1 data feed or anything else that does not page.
pub fn page_of(bytes: &[u8]) -> Option<NvdPage> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        start_index: u64,
        results_per_page: u64,
        total_results: u64,
    }
    let h: Head = serde_json::from_slice(bytes).ok()?;
    Some(NvdPage {
        start_index: h.start_index,
        results_per_page: h.results_per_page,
        total_results: h.total_results,
    })
}

fn english(descs: &[Value]) -> String {
    descs
        .iter()
        .find(|d| str_field(d, "lang") == Some("en"))
        .or(descs.first())
        .and_then(|d| str_field(d, "value"))
        .unwrap_or_default()
        .to_string()
}

fn cve_draft(
    id: &str,
    path: &str,
    description: String,
    published: Option<&str>,
    ctx: &ParseContext,
) -> Result<ReportDraft, FormatError> {
    let cve = Observable::parse(ObservableKind::Cve, id)
        .map_err(|e| FormatError::structure(FORMAT, format!("{path}.id"), e.to_string()))?;
    let mut short: String = description.chars().take(120).collect();
    if short.len() < description.len() {
        short.push('…');
    }
    let mut d = ReportDraft::new(format!("{}: {short}", cve.value()), ctx.default_tlp);
    d.description = description;
    d.confidence = Confidence::Confirmed;
    d.observed_at = published.and_then(parse_time);
    d.external_id = Some(format!("nvd:{}", cve.value()));
    d.link = Some(format!("https://nvd.nist.gov/vuln/detail/{}", cve.value()));
    d.tags.push("nvd".to_string());
    d.push_observable(cve, None);
    Ok(d)
}

/// `cpe:2.3:a:microsoft:exchange_server:...` → `microsoft:exchange_server`.
fn cpe_tag(cpe: &str) -> Option<String> {
    let parts: Vec<&str> = cpe.split(':').collect();
    let (vendor, product) = if parts.get(1) == Some(&"2.3") {
        (parts.get(3)?, parts.get(4)?)
    } else {
        (parts.get(2)?, parts.get(3)?)
    };
    Some(format!("cpe:{vendor}:{product}"))
}

fn collect_cpes(node: &Value, out: &mut BTreeSet<String>) {
    for m in array(node, "cpeMatch")
        .iter()
        .chain(array(node, "cpe_match"))
    {
        let vulnerable = m.get("vulnerable").and_then(Value::as_bool).unwrap_or(true);
        if let (true, Some(c)) = (
            vulnerable,
            str_field(m, "criteria").or(str_field(m, "cpe23Uri")),
        ) {
            out.extend(cpe_tag(c));
        }
    }
    for child in array(node, "children").iter().chain(array(node, "nodes")) {
        collect_cpes(child, out);
    }
}

fn api2(cve: &Value, path: &str, ctx: &ParseContext) -> Result<ReportDraft, FormatError> {
    let id = req_str(FORMAT, cve, path, "id")?;
    let mut d = cve_draft(
        id,
        path,
        english(array(cve, "descriptions")),
        str_field(cve, "published"),
        ctx,
    )?;
    for w in array(cve, "weaknesses") {
        for desc in array(w, "description") {
            if let Some(v) = str_field(desc, "value").filter(|v| v.starts_with("CWE-"))
                && !d.tags.iter().any(|t| t == v)
            {
                d.tags.push(v.to_string());
            }
        }
    }
    if cve.get("cisaExploitAdd").is_some() {
        d.tags.push("kev".to_string());
    }
    api2_cvss(&mut d, cve);
    let mut cpes = BTreeSet::new();
    for conf in array(cve, "configurations") {
        collect_cpes(conf, &mut cpes);
    }
    d.tags.extend(cpes);
    Ok(d)
}

/// Tags carrying the CVSS severity, score and vector, so that a campaign naming the CVE
/// can show them as public context (`cvss-severity:CRITICAL`, `cvss-score:9.8`,
/// `cvss-vector:CVSS:3.1/...`). `data` is a CVSS data object (`baseScore`,
/// `vectorString`, `baseSeverity` when the version has it), `severity` the severity where
/// the version keeps it outside (CVSS v2).
fn cvss_tags(d: &mut ReportDraft, data: &Value, severity: Option<&str>) {
    if let Some(s) = str_field(data, "baseSeverity").or(severity) {
        d.tags
            .push(format!("cvss-severity:{}", s.to_ascii_uppercase()));
    }
    if let Some(score) = data.get("baseScore").and_then(Value::as_f64) {
        d.tags.push(format!("cvss-score:{score:.1}"));
    }
    if let Some(v) = str_field(data, "vectorString") {
        d.tags.push(format!("cvss-vector:{v}"));
    }
}

/// API 2.0 `metrics`: the NVD's primary metric of the newest CVSS version present.
fn api2_cvss(d: &mut ReportDraft, cve: &Value) {
    let Some(metrics) = cve.get("metrics") else {
        return;
    };
    for key in [
        "cvssMetricV40",
        "cvssMetricV31",
        "cvssMetricV30",
        "cvssMetricV2",
    ] {
        let list = array(metrics, key);
        let chosen = list
            .iter()
            .find(|m| str_field(m, "type") == Some("Primary"))
            .or(list.first());
        if let Some(m) = chosen
            && let Some(data) = m.get("cvssData")
        {
            cvss_tags(d, data, str_field(m, "baseSeverity"));
            return;
        }
    }
}

/// JSON 1.1 `impact`: CVSS v3 if present, else v2.
fn feed11_cvss(d: &mut ReportDraft, item: &Value) {
    let Some(impact) = item.get("impact") else {
        return;
    };
    if let Some(data) = impact.get("baseMetricV3").and_then(|m| m.get("cvssV3")) {
        cvss_tags(d, data, None);
    } else if let Some(m) = impact.get("baseMetricV2")
        && let Some(data) = m.get("cvssV2")
    {
        cvss_tags(d, data, str_field(m, "severity"));
    }
}

fn feed11(item: &Value, path: &str, ctx: &ParseContext) -> Result<ReportDraft, FormatError> {
    let cve = item
        .get("cve")
        .ok_or_else(|| FormatError::structure(FORMAT, format!("{path}.cve"), "missing"))?;
    let meta = cve.get("CVE_data_meta").ok_or_else(|| {
        FormatError::structure(FORMAT, format!("{path}.cve.CVE_data_meta"), "missing")
    })?;
    let id = req_str(FORMAT, meta, &format!("{path}.cve.CVE_data_meta"), "ID")?;
    let descs = cve
        .get("description")
        .map(|d| array(d, "description_data"))
        .unwrap_or(&[]);
    let mut d = cve_draft(
        id,
        path,
        english(descs),
        str_field(item, "publishedDate"),
        ctx,
    )?;
    if let Some(pt) = cve.get("problemtype") {
        for p in array(pt, "problemtype_data") {
            for desc in array(p, "description") {
                if let Some(v) = str_field(desc, "value").filter(|v| v.starts_with("CWE-"))
                    && !d.tags.iter().any(|t| t == v)
                {
                    d.tags.push(v.to_string());
                }
            }
        }
    }
    feed11_cvss(&mut d, item);
    let mut cpes = BTreeSet::new();
    if let Some(conf) = item.get("configurations") {
        collect_cpes(conf, &mut cpes);
    }
    d.tags.extend(cpes);
    Ok(d)
}
