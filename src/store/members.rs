//! Members and their tokens. Tokens are stored only as SHA-256 hashes: a token is 32 random
//! bytes, so a fast hash is enough and a stolen database yields no usable token.

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{Result, StoreError, ts};
use crate::model::{Category, Member, MemberClass, MemberId, Sector};

/// The prefix of every token, so that a leaked one is recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "msb_";

/// A fresh random token (shown once, never stored).
pub fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn decode(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, Option<String>, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

fn to_member(raw: (String, String, String, Option<String>, String)) -> Result<Member> {
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

const SELECT: &str = "SELECT id, name, category, sector, class FROM members";

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

/// Issues a new token for the member and returns it (the only time it is visible).
pub fn issue_token(conn: &Connection, member: &MemberId) -> Result<String> {
    let token = new_token();
    conn.execute(
        "INSERT INTO tokens (hash, member_id, created_at) VALUES (?1, ?2, ?3)",
        params![token_hash(&token), member.0, ts(Utc::now())],
    )?;
    Ok(token)
}

/// The member a token belongs to, if the token is valid and not revoked.
pub fn by_token(conn: &Connection, token: &str) -> Result<Option<Member>> {
    let raw = conn
        .prepare_cached(
            "SELECT m.id, m.name, m.category, m.sector, m.class FROM tokens t
             JOIN members m ON m.id = t.member_id
             WHERE t.hash = ?1 AND t.revoked_at IS NULL AND m.status = 'approved'",
        )?
        .query_row([token_hash(token)], decode)
        .optional()?;
    raw.map(to_member).transpose()
}

/// A member by id, or by exact name.
pub fn find(conn: &Connection, id_or_name: &str) -> Result<Option<Member>> {
    let raw = conn
        .prepare_cached(&format!("{SELECT} WHERE id = ?1 OR name = ?1 ORDER BY id LIMIT 1"))?
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
