//! Members: who they are (this file), their tokens and the one authentication check
//! (`tokens`), their membership lifecycle (`lifecycle`) and the roster import (`roster`).

use crate::store::db::{Conn, OptionalExtension, params};
use chrono::Utc;
use sha2::{Digest, Sha256};

use super::{Result, StoreError, ts};
use crate::model::{Category, Member, MemberClass, MemberId, Sector};

mod lifecycle;
mod roster;
mod tokens;

pub use lifecycle::*;
pub use roster::*;
pub use tokens::*;

/// A row of `members` as [`SELECT`] reads it (columns 0 to 4); every read of a member
/// goes through it.
pub(super) struct MemberRow {
    id: String,
    name: String,
    category: String,
    sector: Option<String>,
    class: String,
}

impl MemberRow {
    pub(super) fn from_row(row: &crate::store::db::Row<'_>) -> crate::store::db::Result<MemberRow> {
        Ok(MemberRow {
            id: row.get(0)?,
            name: row.get(1)?,
            category: row.get(2)?,
            sector: row.get(3)?,
            class: row.get(4)?,
        })
    }

    pub(super) fn into_member(self) -> Result<Member> {
        let MemberRow {
            id,
            name,
            category,
            sector,
            class,
        } = self;
        let bad = |what: String| StoreError::Corrupt(format!("member {id}: {what}"));
        Ok(Member {
            category: category.parse().map_err(bad)?,
            sector: sector.map(|s| s.parse()).transpose().map_err(bad)?,
            class: class.parse().map_err(bad)?,
            id: MemberId(id.clone()),
            name,
        })
    }
}

/// The columns of [`MemberRow`]; a query that needs more appends them after these.
pub(super) const SELECT: &str = "SELECT id, name, category, sector, class FROM members";

/// Adds a member (fails if the id or the name is taken).
pub fn add(conn: &Conn, member: &Member) -> Result<()> {
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
        Err(e) if e.is_constraint_violation() => Err(StoreError::Conflict(format!(
            "a member with id {} or name {:?} already exists",
            member.id, member.name
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The next free id for a member added by hand (`m226`, ... after the roster).
pub fn next_id(conn: &Conn) -> Result<MemberId> {
    // Parsed here rather than in SQL: the engines disagree on patterns and on casting text
    // that is not a number.
    let ids = conn.query_map(
        "SELECT id FROM members WHERE id LIKE 'm%'",
        params![],
        |r| r.get::<_, String>(0),
    )?;
    let max = ids
        .iter()
        .filter_map(|id| id.strip_prefix('m')?.parse::<i64>().ok())
        .max();
    Ok(MemberId(format!("m{:03}", max.unwrap_or(0) + 1)))
}

/// A member by id, or by exact name.
pub fn find(conn: &Conn, id_or_name: &str) -> Result<Option<Member>> {
    let raw = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE id = ?1 OR name = ?1 ORDER BY id LIMIT 1"
        ))?
        .query_row(params![id_or_name], MemberRow::from_row)
        .optional()?;
    raw.map(MemberRow::into_member).transpose()
}

/// All members, by id.
pub fn list(conn: &Conn) -> Result<Vec<Member>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} ORDER BY id"))?;
    let rows = stmt.query_map(params![], MemberRow::from_row)?;
    rows.map(|r| r?.into_member()).collect()
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

pub(super) fn find_by_id(conn: &Conn, id: &MemberId) -> Result<Option<Member>> {
    let raw = conn
        .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
        .query_row(params![id.0], MemberRow::from_row)
        .optional()?;
    raw.map(MemberRow::into_member).transpose()
}

/// Changes a member's class.
pub fn set_class(conn: &Conn, id: &MemberId, class: MemberClass) -> Result<()> {
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
pub fn list_with_status(conn: &Conn) -> Result<Vec<(Member, MemberStatus)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, category, sector, class, status FROM members ORDER BY id",
    )?;
    let rows = stmt.query_map(params![], |r| {
        Ok((MemberRow::from_row(r)?, r.get::<_, String>(5)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (raw, status) = row?;
        out.push((
            raw.into_member()?,
            status.parse().map_err(StoreError::Corrupt)?,
        ));
    }
    Ok(out)
}
