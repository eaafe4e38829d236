//! The council's roster format (`roster-2020-06-05.json`) and the default class rule.
//!
//! The public roster lists every member with its category and, for critical infrastructure,
//! its sector, but not its class: the class is agreed between a member and the secretariat
//! and is not published. Import therefore assigns a deterministic default
//! ([`default_class`]) that the secretariat can change member by member afterwards.

use serde::Deserialize;

use crate::model::{Category, Member, MemberClass, MemberId, Sector};

/// The name the roster prints for members that asked not to be named.
pub const UNDISCLOSED_NAME: &str = "【非公表】";

/// One roster row, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub id: MemberId,
    /// The name exactly as printed; [`UNDISCLOSED_NAME`] for undisclosed members.
    pub name_ja: String,
    pub category: Category,
    pub sector: Option<Sector>,
    /// The group heading of the source (`① 情報通信`, `4 サイバー関連事業者等`).
    pub group_label_ja: String,
    pub position: u32,
    pub undisclosed: bool,
}

impl RosterEntry {
    /// The member record this entry becomes, with the class chosen by `class_of`.
    pub fn to_member(&self, class_of: fn(&RosterEntry) -> MemberClass) -> Member {
        Member {
            id: self.id.clone(),
            name: self.name_ja.clone(),
            category: self.category,
            sector: self.sector,
            class: class_of(self),
        }
    }
}

/// What was wrong with a roster file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RosterError {
    #[error("roster is not a JSON array of members: {0}")]
    Json(#[from] serde_json::Error),
    #[error("roster entry {index} ({id}): {what}")]
    Entry {
        index: usize,
        id: String,
        what: String,
    },
    #[error("roster entry {index}: id {id} appears twice")]
    DuplicateId { index: usize, id: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    name_ja: String,
    category: String,
    sector: Option<String>,
    group_label_ja: String,
    position: u32,
    undisclosed: bool,
}

/// Parses and validates a roster file: ids are unique and of the form `m` + digits, the
/// category and sector codes are known, a sector is present exactly for critical
/// infrastructure, and undisclosed members carry the undisclosed name.
pub fn parse(bytes: &[u8]) -> Result<Vec<RosterEntry>, RosterError> {
    let raw: Vec<RawEntry> = serde_json::from_slice(bytes)?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (index, r) in raw.into_iter().enumerate() {
        let bad = |what: String| RosterError::Entry {
            index,
            id: r.id.clone(),
            what,
        };
        let digits = r.id.strip_prefix('m').unwrap_or("");
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("id must be m followed by digits, e.g. m001".into()));
        }
        if !seen.insert(r.id.clone()) {
            return Err(RosterError::DuplicateId { index, id: r.id });
        }
        let category: Category = r.category.parse().map_err(bad)?;
        let sector: Option<Sector> = r
            .sector
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(bad)?;
        if (category == Category::CriticalInfrastructure) != sector.is_some() {
            return Err(bad(
                "a sector is required for critical_infrastructure and not allowed otherwise".into(),
            ));
        }
        if r.name_ja.trim().is_empty() {
            return Err(bad("name_ja is empty".into()));
        }
        if r.undisclosed != (r.name_ja == UNDISCLOSED_NAME) {
            return Err(bad(format!(
                "undisclosed must be true exactly when name_ja is {UNDISCLOSED_NAME}"
            )));
        }
        out.push(RosterEntry {
            id: MemberId(r.id),
            name_ja: r.name_ja,
            category,
            sector,
            group_label_ja: r.group_label_ja,
            position: r.position,
            undisclosed: r.undisclosed,
        });
    }
    Ok(out)
}

/// The class a roster member gets on import, by category:
///
/// - `cyber_business` → `class1`: security vendors bring analysis capacity, which is what
///   the task force's first class is for (they see new material first and help analyse it);
/// - `government` and `critical_infrastructure` → `class2`: they commit to share what they
///   see and receive material once the secretariat releases it;
/// - everyone else (independent agencies, local government, education and research,
///   other) → `general`.
///
/// The rule is deliberately coarse and deterministic, so that a re-import gives the same
/// classes; the secretariat corrects individual members with `musubi member set-class`.
pub fn default_class(entry: &RosterEntry) -> MemberClass {
    match entry.category {
        Category::CyberBusiness => MemberClass::Class1,
        Category::Government | Category::CriticalInfrastructure => MemberClass::Class2,
        Category::IndependentAgency
        | Category::LocalGovernment
        | Category::EducationResearch
        | Category::Other => MemberClass::General,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROSTER: &[u8] = include_bytes!("../../tests/fixtures/council/roster-2020-06-05.json");

    #[test]
    fn parses_the_real_roster() {
        let entries = parse(ROSTER).unwrap();
        assert_eq!(entries.len(), 225);
        assert_eq!(entries.iter().filter(|e| e.undisclosed).count(), 3);
        let water: Vec<_> = entries
            .iter()
            .filter(|e| e.sector == Some(Sector::Water))
            .collect();
        assert_eq!(water.len(), 1);
        assert_eq!(water[0].id.0, "m121");
        let count = |c| entries.iter().filter(|e| default_class(e) == c).count();
        // 62 cyber_business; 26 government + 50 critical infrastructure; 49 + 3 + 11 + 24.
        assert_eq!(count(MemberClass::Class1), 62);
        assert_eq!(count(MemberClass::Class2), 76);
        assert_eq!(count(MemberClass::General), 87);
    }

    #[test]
    fn bad_entries_are_named() {
        let err = parse(br#"[{"id":"m1","name_ja":"x","category":"critical_infrastructure","sector":null,"group_label_ja":"g","position":1,"undisclosed":false}]"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "roster entry 0 (m1): a sector is required for critical_infrastructure and not allowed otherwise"
        );
        let err = parse(br#"[{"id":"m1","name_ja":"x","category":"space","sector":null,"group_label_ja":"g","position":1,"undisclosed":false}]"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("roster entry 0 (m1): unknown category \"space\""),
            "{err}"
        );
        let one = r#"{"id":"m1","name_ja":"x","category":"other","sector":null,"group_label_ja":"g","position":1,"undisclosed":false}"#;
        let err = parse(format!("[{one},{one}]").as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), "roster entry 1: id m1 appears twice");
        assert!(parse(b"{}").is_err());
    }
}
