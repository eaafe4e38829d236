//! Sharing scope: a restriction a provider adds on top of TLP.

use serde::{Deserialize, Serialize};

/// A restriction a provider may add on top of TLP. The narrower of the two applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// The provider and the secretariat only (e.g. material shared for analysis only).
    ProviderAndSecretariat,
    /// Council members only; not to be passed on to anyone outside the council.
    CouncilMembers,
    /// Council members and the organisations they support (e.g. an ISAC's own members).
    MembersAndSupported,
}

impl Scope {
    pub const ALL: [Scope; 3] = [
        Scope::ProviderAndSecretariat,
        Scope::CouncilMembers,
        Scope::MembersAndSupported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ProviderAndSecretariat => "provider-and-secretariat",
            Scope::CouncilMembers => "council-members",
            Scope::MembersAndSupported => "members-and-supported",
        }
    }

    /// How restrictive the scope is (higher = narrower), to find a campaign's narrowest part.
    pub fn narrowness(scope: Option<Scope>) -> u8 {
        match scope {
            None => 0,
            Some(Scope::MembersAndSupported) => 1,
            Some(Scope::CouncilMembers) => 2,
            Some(Scope::ProviderAndSecretariat) => 3,
        }
    }

    /// The narrower of two scopes.
    pub fn narrowest(a: Option<Scope>, b: Option<Scope>) -> Option<Scope> {
        if Scope::narrowness(a) >= Scope::narrowness(b) {
            a
        } else {
            b
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown scope {s:?} (expected provider-and-secretariat, council-members or members-and-supported)"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{ReportDraft, Scope, Tlp};

    #[test]
    fn old_stored_drafts_still_parse_and_new_fields_round_trip() {
        let old = r#"{"title":"t","description":"","tlp":"amber","confidence":"unconfirmed","indicators":[],"tags":[]}"#;
        let d: ReportDraft = serde_json::from_str(old).unwrap();
        assert_eq!((d.scope, d.recipients.len()), (None, 0));
        // Drafts without the new fields serialise exactly as before.
        assert!(!serde_json::to_string(&d).unwrap().contains("scope"));
        let mut d = ReportDraft::new("t", Tlp::Red);
        d.scope = Some(Scope::CouncilMembers);
        d.recipients = vec![crate::model::MemberId("m050".into())];
        let json = serde_json::to_string(&d).unwrap();
        assert!(
            json.contains(r#""scope":"council-members","recipients":["m050"]"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<ReportDraft>(&json).unwrap(), d);
    }
}
