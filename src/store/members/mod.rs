//! Members: who they are (this file), their tokens and the one authentication check
//! (`tokens`), their membership lifecycle (`lifecycle`) and the roster import (`roster`).

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{Result, StoreError, ts};
use crate::model::{Category, Member, MemberClass, MemberId, Sector};

mod lifecycle;
mod roster;
mod tokens;

pub use lifecycle::*;
pub use roster::*;
pub use tokens::*;

pub(super) fn decode(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, Option<String>, String)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

pub(super) fn to_member(raw: (String, String, String, Option<String>, String)) -> Result<Member> {
    let (id, name, category, sector, class) = raw;
    let bad = |what: String| StoreError::Corrupt(format!("member {id}: {what}"));
    Ok(Member {
        category: category.parse().map_err(bad)?,
        sector: sector.map(|s| s.parse()).transpose().map_err(bad)?,
        class: class.parse().map_err(bad)?,
        id: MemberId(id.clone()),
        name,
    })
}

pub(super) const SELECT: &str = "SELECT id, name, category, sector, class FROM members";

/// Adds a member (fails if the id or the name is taken).
pub fn add(conn: &Connection, member: &Member) -> Result<()> {
    let res = conn.execute(
        "INSERT INTO members (id, name, category, sector, class, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            member.id.0,
            member.name,
            member.category.as_str(),
            member.sector.map(Sector::as_str),
            member.class.as_str(),
            ts(Utc::now())
        ],
    );
    match res {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(StoreError::Conflict(format!(
                "a member with id {} or name {:?} already exists",
                member.id, member.name
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// The next free id for a member added by hand (`m226`, ... after the roster).
pub fn next_id(conn: &Connection) -> Result<MemberId> {
    let max: Option<i64> = conn.query_row(
        "SELECT max(CAST(substr(id, 2) AS INTEGER)) FROM members WHERE id GLOB 'm[0-9]*'",
        [],
        |r| r.get(0),
    )?;
    Ok(MemberId(format!("m{:03}", max.unwrap_or(0) + 1)))
}

/// A member by id, or by exact name.
pub fn find(conn: &Connection, id_or_name: &str) -> Result<Option<Member>> {
    let raw = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE id = ?1 OR name = ?1 ORDER BY id LIMIT 1"
        ))?
        .query_row([id_or_name], decode)
        .optional()?;
    raw.map(to_member).transpose()
}

/// All members, by id.
pub fn list(conn: &Connection) -> Result<Vec<Member>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} ORDER BY id"))?;
    let rows = stmt.query_map([], decode)?;
    rows.map(|r| to_member(r?)).collect()
}

/// Builds a member record from CLI-style arguments.
pub fn member(
    id: MemberId,
    name: &str,
    class: MemberClass,
    sector: Option<Sector>,
    category: Option<Category>,
) -> Member {
    let category = category.unwrap_or(if sector.is_some() {
        Category::CriticalInfrastructure
    } else {
        Category::Other
    });
    Member {
        id,
        name: name.to_string(),
        category,
        sector,
        class,
    }
}

// ---------------------------------------------------------------------------------------------
// Membership life cycle (council issue 5): roster import, status history, cohorts, tokens.

pub(super) fn find_by_id(conn: &Connection, id: &MemberId) -> Result<Option<Member>> {
    let raw = conn
        .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
        .query_row([&id.0], decode)
        .optional()?;
    raw.map(to_member).transpose()
}

/// Changes a member's class.
pub fn set_class(conn: &Connection, id: &MemberId, class: MemberClass) -> Result<()> {
    let n = conn.execute(
        "UPDATE members SET class = ?2 WHERE id = ?1",
        params![id.0, class.as_str()],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("no member with id {id}")));
    }
    Ok(())
}

/// All members with their status, by id.
pub fn list_with_status(conn: &Connection) -> Result<Vec<(Member, MemberStatus)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, category, sector, class, status FROM members ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| Ok((decode(r)?, r.get::<_, String>(5)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (raw, status) = row?;
        out.push((
            to_member(raw)?,
            status.parse().map_err(StoreError::Corrupt)?,
        ));
    }
    Ok(out)
}
