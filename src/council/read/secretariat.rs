//! What only the secretariat reads: the membership and the audit log. Any other viewer
//! gets nothing — the same answer as an empty council, never an error that says more.

use super::{ReadPath, Result, Viewer};
use crate::council::audit::{self, AuditEntry};
use crate::model::Member;
use crate::store::{self, members::MemberStatus};

impl ReadPath {
    /// Every member with its current status (secretariat only; empty for anyone else).
    pub async fn members(&self, viewer: &Viewer) -> Result<Vec<(Member, MemberStatus)>> {
        if !viewer.is_secretariat() {
            return Ok(Vec::new());
        }
        self.read(store::members::list_with_status).await
    }

    /// A member by id or exact name (secretariat only; `None` for anyone else).
    pub async fn member(&self, viewer: &Viewer, who: &str) -> Result<Option<Member>> {
        if !viewer.is_secretariat() {
            return Ok(None);
        }
        let who = who.to_string();
        self.read(move |conn| store::members::find(conn, &who))
            .await
    }

    /// The newest `limit` audit entries (secretariat only; empty for anyone else).
    pub async fn audit(&self, viewer: &Viewer, limit: usize) -> Result<Vec<AuditEntry>> {
        if !viewer.is_secretariat() {
            return Ok(Vec::new());
        }
        self.read(move |conn| audit::list(conn, None, None, limit))
            .await
    }
}
