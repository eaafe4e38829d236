//! CSV export: one row per observable of each campaign, for spreadsheets and SIEM lookups.
//!
//! Built only from [`CampaignExport`]s (the policy's views); no source column exists.

use std::collections::BTreeMap;
use std::io::Write;

use super::CampaignExport;
use super::stix::timestamp;

/// The header row.
pub const HEADER: [&str; 9] = [
    "campaign",
    "status",
    "tlp",
    "type",
    "value",
    "reports",
    "first_seen",
    "last_seen",
    "campaign_last_seen",
];

/// Writes the rows of the given campaigns; returns the number of data rows.
pub fn write_csv<W: Write>(out: W, exports: &[CampaignExport]) -> csv::Result<usize> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(HEADER)?;
    let mut rows = 0;
    for e in exports {
        let status = if e.view.unconfirmed {
            "unconfirmed"
        } else {
            "confirmed"
        };
        let mut seen = BTreeMap::new();
        for r in &e.reports {
            let at = r.summary.received_at;
            for i in &r.indicators {
                let entry = seen
                    .entry((i.observable.kind(), i.observable.value().to_string()))
                    .or_insert((at, at, 0usize));
                entry.0 = entry.0.min(at);
                entry.1 = entry.1.max(at);
                entry.2 += 1;
            }
        }
        for ((kind, value), (first, last, n)) in seen {
            w.write_record([
                e.view.id.to_string(),
                status.to_string(),
                e.view.tlp.label().to_string(),
                kind.as_str().to_string(),
                value,
                n.to_string(),
                timestamp(first),
                timestamp(last),
                timestamp(e.view.last_seen),
            ])?;
            rows += 1;
        }
    }
    w.flush()?;
    Ok(rows)
}
