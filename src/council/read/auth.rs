//! Authentication: the one check behind every credential (API Bearer token, TAXII Basic,
//! console session). It sits on the read path because it reads the store on every request
//! — the member's status and token generation *now*, never a copy taken at sign-in.

use super::{ReadPath, Result};
pub use crate::store::members::{Credential, Principal};

impl ReadPath {
    /// The member behind a credential, if it is valid now and the member is approved
    /// (`store::members::authenticate`). `None` for an unknown, revoked or outdated
    /// credential and for applied, suspended and expelled members alike.
    pub async fn authenticate(&self, credential: Credential) -> Result<Option<Principal>> {
        self.read(move |conn| crate::store::members::authenticate(conn, &credential))
            .await
    }
}
