//! Source anonymity: what may be said about the sector of a report's provider.
//!
//! Outside the secretariat nobody may learn or infer which member provided a report. A
//! sector with one or two members names them as surely as their name would (the roster has
//! one water utility), so a sector is shown only when at least `k` members share it, and
//! otherwise a coarser label that covers enough members.

use std::collections::BTreeMap;

use crate::model::{Category, Member, Sector};

/// The default anonymity threshold: a sector is named only if at least this many members
/// belong to it.
pub const DEFAULT_K: usize = 3;

/// The label for a critical-infrastructure provider whose sector is too small to name.
pub const LABEL_CRITICAL_INFRASTRUCTURE: &str = "critical infrastructure";
/// The label for any other provider (or any provider when critical infrastructure itself is
/// too small to name).
pub const LABEL_COUNCIL_MEMBER: &str = "council member";

/// Chooses the label for a provider's sector, given the membership it must hide in.
#[derive(Debug, Clone)]
pub struct SectorLabeler {
    per_sector: BTreeMap<Sector, usize>,
    critical_infrastructure: usize,
    k: usize,
}

impl SectorLabeler {
    /// Counts sectors over `members` (pass the current members: expelled ones no longer
    /// hide anybody).
    pub fn new<'a>(members: impl IntoIterator<Item = &'a Member>, k: usize) -> SectorLabeler {
        let mut per_sector = BTreeMap::new();
        let mut critical_infrastructure = 0;
        for m in members {
            if m.is_secretariat() {
                continue;
            }
            if let Some(s) = m.sector {
                *per_sector.entry(s).or_insert(0) += 1;
            }
            if m.category == Category::CriticalInfrastructure {
                critical_infrastructure += 1;
            }
        }
        SectorLabeler {
            per_sector,
            critical_infrastructure,
            k: k.max(1),
        }
    }

    /// The label of a provider's sector: the sector's name if at least `k` members share it,
    /// else "critical infrastructure" if at least `k` critical-infrastructure members exist,
    /// else "council member". Providers without a sector are "council member".
    pub fn label(&self, sector: Option<Sector>) -> String {
        let Some(sector) = sector else {
            return LABEL_COUNCIL_MEMBER.to_string();
        };
        if self.per_sector.get(&sector).copied().unwrap_or(0) >= self.k {
            sector.as_str().to_string()
        } else if self.critical_infrastructure >= self.k {
            LABEL_CRITICAL_INFRASTRUCTURE.to_string()
        } else {
            LABEL_COUNCIL_MEMBER.to_string()
        }
    }

    /// Whether the sector is named as itself.
    pub fn names(&self, sector: Sector) -> bool {
        self.label(Some(sector)) == sector.as_str()
    }
}

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
    use crate::council::roster;

    fn members() -> Vec<Member> {
        roster::parse(include_bytes!(
            "../../tests/fixtures/council/roster-2020-06-05.json"
        ))
        .unwrap()
        .iter()
        .map(|e| e.to_member(roster::default_class))
        .collect()
    }

    #[test]
    fn small_sectors_are_coarsened_over_the_real_roster() {
        let labeler = SectorLabeler::new(&members(), DEFAULT_K);
        // Sectors with at least 3 members: telecom 13, finance 10, airports 9, medical 6,
        // logistics 3. The other eight (1 or 2 members each) are not named.
        let named: Vec<_> = Sector::ALL
            .iter()
            .filter(|s| labeler.names(**s))
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            named,
            ["telecom", "finance", "airports", "medical", "logistics"]
        );
        assert_eq!(
            labeler.label(Some(Sector::Water)),
            "critical infrastructure"
        );
        assert_eq!(
            labeler.label(Some(Sector::Petroleum)),
            "critical infrastructure"
        );
        assert_eq!(labeler.label(None), "council member");
        let strict = SectorLabeler::new(&members(), 10);
        assert_eq!(
            strict.label(Some(Sector::Medical)),
            "critical infrastructure"
        );
        assert_eq!(strict.label(Some(Sector::Finance)), "finance");
        let tiny = SectorLabeler::new(&members()[..3], 3);
        assert_eq!(tiny.label(Some(Sector::Water)), "council member");
    }

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
