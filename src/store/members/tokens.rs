//! Tokens: issued, rotated and revoked, stored only as SHA-256 hashes (a token is 32
//! random bytes, so a fast hash is enough and a stolen database yields no usable token),
//! and the one authentication check.

use super::*;
use crate::store::db::params;

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

/// Issues a new token for the member and returns it (the only time it is visible).
pub fn issue_token(conn: &Conn, member: &MemberId) -> Result<String> {
    let token = new_token();
    conn.execute(
        "INSERT INTO tokens (hash, member_id, created_at) VALUES (?1, ?2, ?3)",
        params![token_hash(&token), member.0, ts(Utc::now())],
    )?;
    Ok(token)
}

/// The member a token belongs to, if the token is live and the member approved
/// ([`authenticate`] with a token).
pub fn by_token(conn: &Conn, token: &str) -> Result<Option<Member>> {
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
pub fn authenticate(conn: &Conn, credential: &Credential) -> Result<Option<Principal>> {
    let row = |r: &crate::store::db::Row<'_>| Ok((MemberRow::from_row(r)?, r.get::<_, i64>(5)?));
    let raw = match credential {
        Credential::Token(token) => conn
            .prepare_cached(
                "SELECT m.id, m.name, m.category, m.sector, m.class, m.token_generation
                 FROM tokens t JOIN members m ON m.id = t.member_id
                 WHERE t.hash = ?1 AND t.revoked_at IS NULL AND m.status = 'approved'",
            )?
            .query_row(params![token_hash(token)], row)
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
            member: m.into_member()?,
            generation: generation as u64,
        })
    })
    .transpose()
}

/// Ends every console session of the member: called whenever its tokens or its status
/// change.
pub(super) fn bump_generation(conn: &Conn, id: &MemberId) -> Result<()> {
    conn.execute(
        "UPDATE members SET token_generation = token_generation + 1 WHERE id = ?1",
        params![id.0],
    )?;
    Ok(())
}

/// Revokes every live token of the member and ends its console sessions; returns how
/// many tokens.
pub fn revoke_tokens(conn: &Conn, id: &MemberId, at: chrono::DateTime<Utc>) -> Result<usize> {
    let n = conn.execute(
        "UPDATE tokens SET revoked_at = ?2 WHERE member_id = ?1 AND revoked_at IS NULL",
        params![id.0, ts(at)],
    )?;
    bump_generation(conn, id)?;
    Ok(n)
}

/// Replaces the member's tokens by a new one and returns it (the only time it is visible;
/// it is never logged). Only approved members get tokens.
pub fn rotate_token(conn: &Conn, id: &MemberId, at: chrono::DateTime<Utc>) -> Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_on_rotation_suspension_and_expulsion() {
        let conn = crate::store::open_in_memory().unwrap();
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
