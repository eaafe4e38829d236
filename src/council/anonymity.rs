//! Source anonymity: outside the secretariat nobody may learn or infer which member
//! provided a report.
//!
//! The rule itself is [`crate::council::policy::Viewer::source_label`]: anyone but the
//! secretariat sees a member's report as from "a council member", without a sector (a
//! sector with one or two members would name them as surely as their name). This module
//! keeps the scanner the tests use to prove that no output names a provider.

/// Every needle found in the haystack (case-insensitive), for tests that prove an output
/// names no provider: scan each output for the provider's name, id, token and sector.
/// Empty needles are ignored.
pub fn leak_scan(haystack: &str, needles: &[&str]) -> Vec<String> {
    let hay = haystack.to_lowercase();
    needles
        .iter()
        .filter(|n| !n.is_empty() && hay.contains(&n.to_lowercase()))
        .map(|n| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leak_scan_finds_needles_case_insensitively() {
        let found = leak_scan(
            r#"{"sector":"Water","x":"m121"}"#,
            &["water", "m121", "msb_abc", ""],
        );
        assert_eq!(found, ["water", "m121"]);
        assert!(leak_scan("nothing here", &["m121"]).is_empty());
    }
}
