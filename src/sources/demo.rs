//! Demo data for `musubi serve --demo`: the council's real roster and a few real reports,
//! embedded in the binary so that the demo runs anywhere, offline.

use chrono::Utc;
use serde::Deserialize;

use crate::formats::native;
use crate::model::{Category, Member, MemberClass, MemberId, Origin, Sector};
use crate::store::{self, Store};

/// The council's public roster as of 2020-06-05.
pub const ROSTER_JSON: &str = include_str!("../../tests/fixtures/council/roster-2020-06-05.json");

/// Demo submissions: (member id, file name, JSON).
const SUBMISSIONS: &[(&str, &str)] = &[
    (
        "m079-sunorcal-1.json",
        include_str!("../../tests/fixtures/native/m079-sunorcal-1.json"),
    ),
    (
        "m092-sunorcal-2.json",
        include_str!("../../tests/fixtures/native/m092-sunorcal-2.json"),
    ),
    (
        "m103-sunorcal-3.json",
        include_str!("../../tests/fixtures/native/m103-sunorcal-3.json"),
    ),
    (
        "m115-xorist-1.json",
        include_str!("../../tests/fixtures/native/m115-xorist-1.json"),
    ),
    (
        "m191-xorist-2.json",
        include_str!("../../tests/fixtures/native/m191-xorist-2.json"),
    ),
    (
        "m129-elf-1.json",
        include_str!("../../tests/fixtures/native/m129-elf-1.json"),
    ),
    (
        "m113-cleo-1.json",
        include_str!("../../tests/fixtures/native/m113-cleo-1.json"),
    ),
];

/// The demo analyst of the secretariat.
pub const DEMO_ANALYST: &str = "demo-analyst";

#[derive(Deserialize)]
struct RosterEntry {
    id: String,
    name_ja: String,
    category: Category,
    sector: Option<Sector>,
}

/// The class a roster member gets in the demo: the roster does not publish classes, so the
/// demo puts government bodies in task force class 1, infrastructure operators and cyber
/// businesses in class 2, everyone else among general members.
fn demo_class(category: Category) -> MemberClass {
    match category {
        Category::Government => MemberClass::Class1,
        Category::CriticalInfrastructure | Category::CyberBusiness => MemberClass::Class2,
        _ => MemberClass::General,
    }
}

/// What loading the demo did.
pub struct DemoLoaded {
    pub members: usize,
    pub reports: usize,
    /// The demo analyst's token, when the analyst was created now (shown once).
    pub analyst_token: Option<String>,
}

/// Loads the roster and the sample reports into an empty store; does nothing to a store
/// that already has members.
pub fn load(store: &Store) -> Result<DemoLoaded, store::StoreError> {
    let existing = store.read(|c| store::members::list(c).map(|m| m.len()))?;
    if existing > 0 {
        return Ok(DemoLoaded {
            members: existing,
            reports: store.read(store::reports::count)? as usize,
            analyst_token: None,
        });
    }
    let roster: Vec<RosterEntry> = serde_json::from_str(ROSTER_JSON)
        .map_err(|e| store::StoreError::Corrupt(format!("embedded roster: {e}")))?;
    let members: Vec<Member> = roster
        .into_iter()
        .map(|e| Member {
            class: demo_class(e.category),
            id: MemberId(e.id),
            name: e.name_ja,
            category: e.category,
            sector: e.sector,
        })
        .collect();
    let n = members.len();
    let analyst_token = store.writer().write_blocking(move |conn| {
        for m in &members {
            store::members::add(conn, m)?;
        }
        let analyst = Member {
            id: MemberId(DEMO_ANALYST.into()),
            name: "事務局 demo analyst".into(),
            category: Category::Government,
            sector: None,
            class: MemberClass::Secretariat,
        };
        store::members::add(conn, &analyst)?;
        store::members::issue_token(conn, &analyst.id)
    })?;
    let mut reports = 0;
    for (file, json) in SUBMISSIONS {
        let member = MemberId(file.split('-').next().unwrap_or_default().to_string());
        let drafts = native::parse_bytes(json.as_bytes())
            .map_err(|e| store::StoreError::Corrupt(format!("embedded demo {file}: {}", e[0])))?;
        reports += drafts.len();
        let origin = Origin::Submission { member };
        store.writer().write_blocking(move |conn| {
            for d in &drafts {
                store::reports::insert(conn, &origin, d, Utc::now())?;
            }
            Ok(())
        })?;
    }
    Ok(DemoLoaded {
        members: n + 1,
        reports,
        analyst_token: Some(analyst_token),
    })
}
