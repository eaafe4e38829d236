//! Importing the council's published roster.

use super::*;
use crate::store::db::params;

/// What a roster import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// The actor recorded for changes made by a roster import.
pub const ROSTER_IMPORT_ACTOR: &str = "roster-import";

/// Imports the roster's members (the council has read the roster file and chosen each new
/// member's class): new ids are added as approved members; known ids get the roster's name,
/// category and sector but keep their class, status and cohort (the secretariat may have
/// changed them since). The roster does not say which intake period a member joined in, so
/// imported members have no cohort.
pub fn import_roster(conn: &Conn, members: &[Member]) -> Result<ImportSummary> {
    let now = Utc::now();
    let mut summary = ImportSummary::default();
    for member in members {
        match find_by_id(conn, &member.id)? {
            Some(old) => {
                if old.name == member.name
                    && old.category == member.category
                    && old.sector == member.sector
                {
                    summary.unchanged += 1;
                    continue;
                }
                conn.execute(
                    "UPDATE members SET name = ?2, category = ?3, sector = ?4 WHERE id = ?1",
                    params![
                        member.id.0,
                        member.name,
                        member.category.as_str(),
                        member.sector.map(Sector::as_str)
                    ],
                )?;
                summary.updated += 1;
            }
            None => {
                add(conn, member)?;
                record_status(
                    conn,
                    &member.id,
                    MemberStatus::Approved,
                    now,
                    ROSTER_IMPORT_ACTOR,
                    "",
                )?;
                summary.added += 1;
            }
        }
    }
    Ok(summary)
}
