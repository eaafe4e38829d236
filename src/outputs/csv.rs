//! CSV: the one CSV writer every CSV output uses ([`SafeWriter`]), and the campaign export
//! (one row per observable of each campaign, for spreadsheets and SIEM lookups).
//!
//! The export is built only from [`CampaignExport`]s (the policy's views); no source column
//! exists; the `scope` column carries each campaign's sharing scope beside its TLP.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;

use super::CampaignExport;
use super::stix::timestamp;

/// A field as a spreadsheet may open it safely: a value starting with `=`, `+`, `-`, `@`
/// (or a tab or carriage return, which some spreadsheets skip before such a character) is
/// a formula to Excel, LibreOffice and Google Sheets — observables are attacker-chosen
/// text, so `=HYPERLINK(...)` in a filename or URL would run on the analyst's machine. A
/// leading `'` makes the spreadsheet show the value as text (OWASP "CSV injection").
pub fn neutralise(field: &str) -> Cow<'_, str> {
    if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{field}"))
    } else {
        Cow::Borrowed(field)
    }
}

/// The CSV writer of every CSV output (exports, the console's downloads): RFC 4180
/// quoting by the `csv` crate, and every field passed through [`neutralise`], so that no
/// output can forget it.
pub struct SafeWriter<W: Write> {
    inner: csv::Writer<W>,
}

impl<W: Write> SafeWriter<W> {
    pub fn new(out: W) -> SafeWriter<W> {
        SafeWriter {
            inner: csv::Writer::from_writer(out),
        }
    }

    /// Writes one record, every field neutralised.
    pub fn write_record<I, T>(&mut self, record: I) -> csv::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.inner.write_record(
            record
                .into_iter()
                .map(|f| neutralise(f.as_ref()).into_owned()),
        )
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(self) -> csv::Result<W> {
        self.inner
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))
    }
}

/// Rows as one CSV document (header first), for outputs that answer with a string.
pub fn to_string<R, I, T>(header: &[&str], rows: R) -> String
where
    R: IntoIterator<Item = I>,
    I: IntoIterator<Item = T>,
    T: AsRef<str>,
{
    let mut w = SafeWriter::new(Vec::new());
    let written = w
        .write_record(header)
        .and_then(|()| rows.into_iter().try_for_each(|r| w.write_record(r)));
    // Writing to memory fails only on a bug in the csv crate: an empty document then.
    match written.and_then(|()| w.into_inner()) {
        Ok(bytes) => String::from_utf8(bytes).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The header row of the campaign export.
pub const HEADER: [&str; 10] = [
    "campaign",
    "status",
    "tlp",
    "scope",
    "type",
    "value",
    "reports",
    "first_seen",
    "last_seen",
    "campaign_last_seen",
];

/// Writes the rows of the given campaigns; returns the number of data rows.
pub fn write_csv<W: Write>(out: W, exports: &[CampaignExport]) -> csv::Result<usize> {
    let mut w = SafeWriter::new(out);
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
                e.view.scope.map_or("", |s| s.as_str()).to_string(),
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
    w.into_inner()?.flush()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_neutralised() {
        let text = to_string(
            &["a", "b"],
            [
                ["=cmd|' /C calc'!A0", "a,b"],
                ["-x,y", "say \"x\""],
                ["+1", "@SUM(A1)"],
                ["\t=1", "plain.example"],
            ],
        );
        assert_eq!(
            text,
            "a,b\n'=cmd|' /C calc'!A0,\"a,b\"\n\"'-x,y\",\"say \"\"x\"\"\"\n'+1,'@SUM(A1)\n'\t=1,plain.example\n"
        );
    }
}
