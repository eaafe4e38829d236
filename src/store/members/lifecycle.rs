//! A member's life in the council: applied, approved, suspended, expelled, with its
//! history and intake cohort.

use super::*;
use crate::store::db::params;

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

pub(super) fn record_status(
    conn: &Conn,
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
pub fn apply(conn: &Conn, member: &Member, at: chrono::DateTime<Utc>, actor: &str) -> Result<()> {
    add(conn, member)?;
    conn.execute(
        "UPDATE members SET status = 'applied' WHERE id = ?1",
        params![member.id.0],
    )?;
    record_status(conn, &member.id, MemberStatus::Applied, at, actor, "")
}

/// The member's current status.
pub fn status(conn: &Conn, id: &MemberId) -> Result<Option<MemberStatus>> {
    let s: Option<String> = conn
        .query_row(
            "SELECT status FROM members WHERE id = ?1",
            params![id.0],
            |r| r.get(0),
        )
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
    conn: &Conn,
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
            params![id.0, i64::from(c)],
        )?;
    }
    if to == MemberStatus::Expelled {
        revoke_tokens(conn, id, at)?;
    }
    record_status(conn, id, to, at, actor, note)
}

/// The member's cohort (intake period), if known.
pub fn cohort(conn: &Conn, id: &MemberId) -> Result<Option<u32>> {
    let c: Option<Option<u32>> = conn
        .query_row(
            "SELECT cohort FROM members WHERE id = ?1",
            params![id.0],
            |r| r.get(0),
        )
        .optional()?;
    Ok(c.flatten())
}

/// The member's status history, oldest first.
pub fn status_history(conn: &Conn, id: &MemberId) -> Result<Vec<StatusChange>> {
    let mut stmt = conn.prepare_cached(
        "SELECT status, at, actor, note FROM member_status WHERE member_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![id.0], |r| {
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
            at: crate::store::parse_ts(&at)?,
            actor,
            note,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Conn<'static> {
        crate::store::open_in_memory().unwrap()
    }

    /// The real roster as plain members (the council reads the roster format; the store
    /// only stores what it is given), all general.
    fn roster() -> Vec<Member> {
        let entries: Vec<serde_json::Value> = serde_json::from_slice(include_bytes!(
            "../../../tests/fixtures/council/roster-2020-06-05.json"
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
                params![],
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
