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

fn decode(
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

/// The member a token belongs to, if the token is live and the member approved
/// ([`authenticate`] with a token).
pub fn by_token(conn: &Connection, token: &str) -> Result<Option<Member>> {
    Ok(authenticate(conn, &Credential::Token(token.to_string()))?.map(|p| p.member))
}

/// What a request presents to prove who it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A member token: `Authorization: Bearer`, or the password of TAXII's HTTP Basic.
    Token(String),
    /// A console session: the member it was opened for and the token generation it was
    /// opened under.
    Session { member: MemberId, generation: u64 },
}

/// A member who authenticated, with the token generation current at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub member: Member,
    pub generation: u64,
}

/// THE authentication check, for every kind of credential: the member as stored *now*, if
/// the credential is valid now — the token live (not revoked), or the session's generation
/// still the member's — and the member approved (the only active status: applied,
/// suspended and expelled members authenticate nowhere). Called on every request, so a
/// suspension, an expulsion or a rotation takes effect on the next one.
pub fn authenticate(conn: &Connection, credential: &Credential) -> Result<Option<Principal>> {
    let row = |r: &rusqlite::Row<'_>| Ok((decode(r)?, r.get::<_, i64>(5)?));
    let raw = match credential {
        Credential::Token(token) => conn
            .prepare_cached(
                "SELECT m.id, m.name, m.category, m.sector, m.class, m.token_generation
                 FROM tokens t JOIN members m ON m.id = t.member_id
                 WHERE t.hash = ?1 AND t.revoked_at IS NULL AND m.status = 'approved'",
            )?
            .query_row([token_hash(token)], row)
            .optional()?,
        Credential::Session { member, generation } => conn
            .prepare_cached(
                "SELECT id, name, category, sector, class, token_generation FROM members
                 WHERE id = ?1 AND status = 'approved' AND token_generation = ?2",
            )?
            .query_row(params![member.0, *generation as i64], row)
            .optional()?,
    };
    raw.map(|(m, generation)| {
        Ok(Principal {
            member: to_member(m)?,
            generation: generation as u64,
        })
    })
    .transpose()
}

/// Ends every console session of the member: called whenever its tokens or its status
/// change.
fn bump_generation(conn: &Connection, id: &MemberId) -> Result<()> {
    conn.execute(
        "UPDATE members SET token_generation = token_generation + 1 WHERE id = ?1",
        [&id.0],
    )?;
    Ok(())
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

/// Where a member stands. Only `approved` members authenticate ([`by_token`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    /// Applied; waits for the steering committee.
    Applied,
    /// Approved by the steering committee: a member.
    Approved,
    /// Temporarily barred; tokens stay but do not authenticate, reinstatement restores them.
    Suspended,
    /// Expelled for good; tokens are revoked at once. Past reports stay, marked.
    Expelled,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Applied => "applied",
            MemberStatus::Approved => "approved",
            MemberStatus::Suspended => "suspended",
            MemberStatus::Expelled => "expelled",
        }
    }

    /// Whether the life cycle allows going from `self` to `to`.
    pub fn may_become(self, to: MemberStatus) -> bool {
        use MemberStatus::*;
        matches!(
            (self, to),
            (Applied, Approved)
                | (Applied, Expelled)
                | (Approved, Suspended)
                | (Approved, Expelled)
                | (Suspended, Approved)
                | (Suspended, Expelled)
        )
    }
}

impl std::str::FromStr for MemberStatus {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "applied" => MemberStatus::Applied,
            "approved" => MemberStatus::Approved,
            "suspended" => MemberStatus::Suspended,
            "expelled" => MemberStatus::Expelled,
            other => {
                return Err(format!(
                    "unknown member status {other:?} (expected applied, approved, suspended or expelled)"
                ));
            }
        })
    }
}

/// The council's intake periods (第一期, 第二期, 第三期): cohort number and decision date.
pub const COHORTS: [(u32, &str); 3] = [(1, "2019-05-17"), (2, "2019-10-24"), (3, "2020-06-05")];

/// The cohort decided on `date`, if that date is an intake decision.
pub fn cohort_on(date: chrono::NaiveDate) -> Option<u32> {
    let d = date.format("%Y-%m-%d").to_string();
    COHORTS.iter().find(|(_, at)| *at == d).map(|(n, _)| *n)
}

/// One entry of a member's status history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusChange {
    pub status: MemberStatus,
    pub at: chrono::DateTime<Utc>,
    pub actor: String,
    pub note: String,
}

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
pub fn import_roster(conn: &Connection, members: &[Member]) -> Result<ImportSummary> {
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

fn find_by_id(conn: &Connection, id: &MemberId) -> Result<Option<Member>> {
    let raw = conn
        .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
        .query_row([&id.0], decode)
        .optional()?;
    raw.map(to_member).transpose()
}

fn record_status(
    conn: &Connection,
    id: &MemberId,
    status: MemberStatus,
    at: chrono::DateTime<Utc>,
    actor: &str,
    note: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO member_status (member_id, status, at, actor, note) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id.0, status.as_str(), ts(at), actor, note],
    )?;
    Ok(())
}

/// Records an application: the member exists but cannot authenticate until approved.
pub fn apply(
    conn: &Connection,
    member: &Member,
    at: chrono::DateTime<Utc>,
    actor: &str,
) -> Result<()> {
    add(conn, member)?;
    conn.execute(
        "UPDATE members SET status = 'applied' WHERE id = ?1",
        [&member.id.0],
    )?;
    record_status(conn, &member.id, MemberStatus::Applied, at, actor, "")
}

/// The member's current status.
pub fn status(conn: &Connection, id: &MemberId) -> Result<Option<MemberStatus>> {
    let s: Option<String> = conn
        .query_row("SELECT status FROM members WHERE id = ?1", [&id.0], |r| {
            r.get(0)
        })
        .optional()?;
    s.map(|s| {
        s.parse()
            .map_err(|e| StoreError::Corrupt(format!("member {id}: {e}")))
    })
    .transpose()
}

/// Moves a member along its life cycle and records who did it and why. Expulsion revokes
/// every token of the member in the same transaction, so no request authenticates after it.
/// Approval sets the cohort (given, or the intake period decided on that day).
pub fn set_status(
    conn: &Connection,
    id: &MemberId,
    to: MemberStatus,
    actor: &str,
    note: &str,
    at: chrono::DateTime<Utc>,
    cohort: Option<u32>,
) -> Result<()> {
    let from =
        status(conn, id)?.ok_or_else(|| StoreError::Conflict(format!("no member with id {id}")))?;
    if !from.may_become(to) {
        return Err(StoreError::Conflict(format!(
            "member {id} is {} and cannot become {}",
            from.as_str(),
            to.as_str()
        )));
    }
    conn.execute(
        "UPDATE members SET status = ?2 WHERE id = ?1",
        params![id.0, to.as_str()],
    )?;
    // Sessions opened before a status change never come back, not even on reinstatement.
    bump_generation(conn, id)?;
    if to == MemberStatus::Approved
        && let Some(c) = cohort.or_else(|| cohort_on(at.date_naive()))
    {
        conn.execute(
            "UPDATE members SET cohort = ?2 WHERE id = ?1 AND cohort IS NULL",
            params![id.0, c],
        )?;
    }
    if to == MemberStatus::Expelled {
        revoke_tokens(conn, id, at)?;
    }
    record_status(conn, id, to, at, actor, note)
}

/// The member's cohort (intake period), if known.
pub fn cohort(conn: &Connection, id: &MemberId) -> Result<Option<u32>> {
    let c: Option<Option<u32>> = conn
        .query_row("SELECT cohort FROM members WHERE id = ?1", [&id.0], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(c.flatten())
}

/// The member's status history, oldest first.
pub fn status_history(conn: &Connection, id: &MemberId) -> Result<Vec<StatusChange>> {
    let mut stmt = conn.prepare_cached(
        "SELECT status, at, actor, note FROM member_status WHERE member_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([&id.0], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (status, at, actor, note) = row?;
        out.push(StatusChange {
            status: status.parse().map_err(StoreError::Corrupt)?,
            at: super::parse_ts(&at)?,
            actor,
            note,
        });
    }
    Ok(out)
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

/// Revokes every live token of the member and ends its console sessions; returns how
/// many tokens.
pub fn revoke_tokens(conn: &Connection, id: &MemberId, at: chrono::DateTime<Utc>) -> Result<usize> {
    let n = conn.execute(
        "UPDATE tokens SET revoked_at = ?2 WHERE member_id = ?1 AND revoked_at IS NULL",
        params![id.0, ts(at)],
    )?;
    bump_generation(conn, id)?;
    Ok(n)
}

/// Replaces the member's tokens by a new one and returns it (the only time it is visible;
/// it is never logged). Only approved members get tokens.
pub fn rotate_token(conn: &Connection, id: &MemberId, at: chrono::DateTime<Utc>) -> Result<String> {
    match status(conn, id)? {
        Some(MemberStatus::Approved) => {}
        Some(other) => {
            return Err(StoreError::Conflict(format!(
                "member {id} is {} and gets no token",
                other.as_str()
            )));
        }
        None => return Err(StoreError::Conflict(format!("no member with id {id}"))),
    }
    revoke_tokens(conn, id, at)?;
    issue_token(conn, id)
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

#[cfg(test)]
mod lifecycle_tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut conn, std::path::Path::new(":memory:")).unwrap();
        conn
    }

    /// The real roster as plain members (the council reads the roster format; the store
    /// only stores what it is given), all general.
    fn roster() -> Vec<Member> {
        let entries: Vec<serde_json::Value> = serde_json::from_slice(include_bytes!(
            "../../tests/fixtures/council/roster-2020-06-05.json"
        ))
        .unwrap();
        entries
            .iter()
            .map(|e| {
                member(
                    MemberId(e["id"].as_str().unwrap().into()),
                    e["name_ja"].as_str().unwrap(),
                    MemberClass::General,
                    e["sector"].as_str().map(|s| s.parse().unwrap()),
                    e["category"].as_str().map(|c| c.parse().unwrap()),
                )
            })
            .collect()
    }

    #[test]
    fn roster_import_is_idempotent_and_keeps_undisclosed_ids() {
        let conn = db();
        let entries = roster();
        let s = import_roster(&conn, &entries).unwrap();
        assert_eq!(
            s,
            ImportSummary {
                added: 225,
                updated: 0,
                unchanged: 0
            }
        );
        let s = import_roster(&conn, &entries).unwrap();
        assert_eq!(
            s,
            ImportSummary {
                added: 0,
                updated: 0,
                unchanged: 225
            }
        );
        let all = list_with_status(&conn).unwrap();
        assert_eq!(all.len(), 225);
        let undisclosed: Vec<_> = all
            .iter()
            .filter(|(m, _)| m.name == "【非公表】")
            .map(|(m, _)| m.id.0.as_str())
            .collect();
        assert_eq!(undisclosed, ["m075", "m190", "m225"]);
        assert!(all.iter().all(|(_, s)| *s == MemberStatus::Approved));
        // A class changed by the secretariat survives a re-import.
        set_class(&conn, &MemberId("m121".into()), MemberClass::Class1).unwrap();
        import_roster(&conn, &entries).unwrap();
        assert_eq!(
            find(&conn, "m121").unwrap().unwrap().class,
            MemberClass::Class1
        );
    }

    #[test]
    fn life_cycle_and_tokens() {
        let conn = db();
        let t0 = chrono::DateTime::parse_from_rfc3339("2020-06-05T09:00:00Z")
            .unwrap()
            .to_utc();
        let m = member(
            MemberId("m300".into()),
            "Example Water Works",
            MemberClass::General,
            Some(Sector::Water),
            None,
        );
        apply(&conn, &m, t0, "secretariat").unwrap();
        assert_eq!(
            issue_token(&conn, &m.id)
                .map(|t| by_token(&conn, &t).unwrap())
                .unwrap(),
            None
        );
        assert!(rotate_token(&conn, &m.id, t0).is_err());
        set_status(
            &conn,
            &m.id,
            MemberStatus::Approved,
            "steering",
            "third intake",
            t0,
            None,
        )
        .unwrap();
        assert_eq!(cohort(&conn, &m.id).unwrap(), Some(3));
        let old = issue_token(&conn, &m.id).unwrap();
        assert_eq!(by_token(&conn, &old).unwrap().unwrap().id, m.id);
        let new = rotate_token(&conn, &m.id, t0).unwrap();
        assert_ne!(old, new);
        assert!(by_token(&conn, &old).unwrap().is_none());
        assert!(by_token(&conn, &new).unwrap().is_some());
        set_status(
            &conn,
            &m.id,
            MemberStatus::Suspended,
            "steering",
            "",
            t0,
            None,
        )
        .unwrap();
        assert!(by_token(&conn, &new).unwrap().is_none());
        set_status(
            &conn,
            &m.id,
            MemberStatus::Approved,
            "steering",
            "reinstated",
            t0,
            None,
        )
        .unwrap();
        assert!(by_token(&conn, &new).unwrap().is_some());
        set_status(
            &conn,
            &m.id,
            MemberStatus::Expelled,
            "steering",
            "breach",
            t0,
            None,
        )
        .unwrap();
        assert!(by_token(&conn, &new).unwrap().is_none());
        let live: i64 = conn
            .query_row(
                "SELECT count(*) FROM tokens WHERE member_id = 'm300' AND revoked_at IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(live, 0);
        let err = set_status(
            &conn,
            &m.id,
            MemberStatus::Approved,
            "steering",
            "",
            t0,
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "member m300 is expelled and cannot become approved"
        );
        let history: Vec<_> = status_history(&conn, &m.id)
            .unwrap()
            .into_iter()
            .map(|c| c.status.as_str())
            .collect();
        assert_eq!(
            history,
            ["applied", "approved", "suspended", "approved", "expelled"]
        );
    }
}

#[cfg(test)]
mod authentication_tests {
    use super::*;

    #[test]
    fn sessions_end_on_rotation_suspension_and_expulsion() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut conn, std::path::Path::new(":memory:")).unwrap();
        let t0 = Utc::now();
        let m = member(
            MemberId("m301".into()),
            "Example Gas",
            MemberClass::General,
            Some(Sector::Gas),
            None,
        );
        add(&conn, &m).unwrap();
        let token = issue_token(&conn, &m.id).unwrap();
        let p = authenticate(&conn, &Credential::Token(token.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(p.member.id, m.id);
        let session = |g| Credential::Session {
            member: m.id.clone(),
            generation: g,
        };
        assert!(
            authenticate(&conn, &session(p.generation))
                .unwrap()
                .is_some()
        );
        assert!(
            authenticate(&conn, &session(p.generation + 1))
                .unwrap()
                .is_none()
        );

        // Rotation: the old session and the old token end; a new session works.
        let new = rotate_token(&conn, &m.id, t0).unwrap();
        assert!(
            authenticate(&conn, &session(p.generation))
                .unwrap()
                .is_none()
        );
        assert!(
            authenticate(&conn, &Credential::Token(token))
                .unwrap()
                .is_none()
        );
        let p = authenticate(&conn, &Credential::Token(new.clone()))
            .unwrap()
            .unwrap();
        assert!(
            authenticate(&conn, &session(p.generation))
                .unwrap()
                .is_some()
        );

        // Suspension ends it, and reinstatement does not bring it back.
        set_status(&conn, &m.id, MemberStatus::Suspended, "s", "", t0, None).unwrap();
        assert!(
            authenticate(&conn, &session(p.generation))
                .unwrap()
                .is_none()
        );
        assert!(
            authenticate(&conn, &Credential::Token(new.clone()))
                .unwrap()
                .is_none()
        );
        set_status(&conn, &m.id, MemberStatus::Approved, "s", "", t0, None).unwrap();
        assert!(
            authenticate(&conn, &session(p.generation))
                .unwrap()
                .is_none()
        );
        let p = authenticate(&conn, &Credential::Token(new.clone()))
            .unwrap()
            .unwrap();
        assert!(
            authenticate(&conn, &session(p.generation))
                .unwrap()
                .is_some()
        );

        // Expulsion ends everything.
        set_status(&conn, &m.id, MemberStatus::Expelled, "s", "", t0, None).unwrap();
        assert!(
            authenticate(&conn, &session(p.generation))
                .unwrap()
                .is_none()
        );
        assert!(
            authenticate(&conn, &Credential::Token(new))
                .unwrap()
                .is_none()
        );
    }
}
