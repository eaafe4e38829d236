//! The kinds of flag correlation raises on a campaign, and **the one label table** every
//! output (console, mail, statistics) shows them with.
//!
//! The rules that raise each kind live in `correlate::flags` and `rules/flags.toml`. Adding
//! a flag means: its row in the `flag_kinds!` table here, its rule there. Nothing
//! else lists or names flags: outputs iterate [`FlagKind::ALL`], and how the council treats
//! a kind (whether it alerts, which digest list shows it, where it ranks in the review
//! queue) is a column of its row, read through [`FlagKind::alerts`],
//! [`FlagKind::digest_list`] and [`FlagKind::review_rank`]. `tests/it/flag_homes.rs` fails
//! when a file elsewhere names a kind.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Language;

/// Declares [`FlagKind`], [`FlagKind::ALL`] and the label table from one list of rows, so
/// that a kind cannot exist without its name and both labels, nor be missing from `ALL`.
macro_rules! flag_kinds {
    ($($(#[$doc:meta])* $kind:ident => $name:literal, $en:literal, $ja:literal;
        alert: $alert:literal, digest: $digest:expr, review: $review:literal;)+) => {
        /// A kind of flag. Serialised (API, STIX labels, MISP tags, webhooks) as its
        /// kebab-case name, which is also its table in `rules/flags.toml`.
        ///
        /// Equality, order and hash are those of the name ([`FlagKind::as_str`]), so that a
        /// kind may stand for its name (`Borrow<str>`): a list of kinds joins like a list of
        /// names, and sorts the same.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum FlagKind {
            $($(#[$doc])* #[serde(rename = $name)] $kind,)+
        }

        impl FlagKind {
            /// Every kind, in the order pickers list them.
            pub const ALL: &'static [FlagKind] = &[$(FlagKind::$kind),+];

            /// The label table's row: (name, English, Japanese).
            const fn row(self) -> (&'static str, &'static str, &'static str) {
                match self {
                    $(FlagKind::$kind => ($name, $en, $ja),)+
                }
            }

            /// The council's treatment of the kind: (alert, digest list, review rank).
            const fn treatment(self) -> (bool, Option<DigestList>, u8) {
                match self {
                    $(FlagKind::$kind => ($alert, $digest, $review),)+
                }
            }
        }
    };
}

// The one label table. The name is the serialised form and the rules file's table; the
// labels are what people read (English keeps the name). The second line of a row is how
// the council treats the kind:
// - `alert`: gaining it raises an immediate alert;
// - `digest`: the digest list that shows campaigns with it (`None`: only the full list);
// - `review`: its rank in the review queue, lower first (see [`FlagKind::review_rank`]);
//   4 is "any other flag", 5 "likely low need".
flag_kinds! {
    /// Reports or true-positive sightings from several sectors within a window.
    CrossSector => "cross-sector", "cross-sector", "分野横断";
        alert: true, digest: Some(DigestList::CrossSector), review: 1;
    /// No activity for a while and a decayed score.
    Stale => "stale", "stale", "沈静化";
        alert: false, digest: None, review: 5;
    /// Most member observables already appear in public feeds.
    Known => "known", "known", "既知";
        alert: false, digest: None, review: 5;
    /// Member observables that (almost) no public feed carries.
    Novel => "novel", "novel", "新規";
        alert: false, digest: Some(DigestList::Novel), review: 2;
    /// Many reports within a few hours.
    Surge => "surge", "surge", "急増";
        alert: true, digest: Some(DigestList::CrossSector), review: 3;
}

/// The digest's lists of flagged campaigns (the `cross-sector` and `novel` sections of
/// `[digest] sections`); each kind says which one shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestList {
    /// Campaigns spreading: across sectors, or fast.
    CrossSector,
    /// Campaigns with material public feeds do not carry.
    Novel,
}

impl FlagKind {
    /// The name (`cross-sector`, ...).
    pub const fn as_str(self) -> &'static str {
        self.row().0
    }

    /// Whether gaining this flag raises an immediate alert.
    pub const fn alerts(self) -> bool {
        self.treatment().0
    }

    /// The digest list that shows campaigns with this flag.
    pub const fn digest_list(self) -> Option<DigestList> {
        self.treatment().1
    }

    /// Its rank in the review queue, lower first: 1 to 3 for the kinds the council looks
    /// at first, 4 for any other, 5 for kinds of likely low need. A campaign ranks as its
    /// best flag, and ranks 0 when it holds both a rank-1 and a rank-2 flag (spreading
    /// across sectors and seen nowhere public: the council's reason to exist).
    pub const fn review_rank(self) -> u8 {
        self.treatment().2
    }

    /// What a reader of `lang` sees.
    pub const fn label(self, lang: Language) -> &'static str {
        match lang {
            Language::En => self.row().1,
            Language::Ja => self.row().2,
        }
    }
}

impl fmt::Display for FlagKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown flag name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown flag {0:?} (expected one of: {names})", names = FlagKind::ALL.join(", "))]
pub struct UnknownFlag(pub String);

impl FromStr for FlagKind {
    type Err = UnknownFlag;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FlagKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownFlag(s.to_string()))
    }
}

impl Borrow<str> for FlagKind {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for FlagKind {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialOrd for FlagKind {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for FlagKind {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serialised_form_and_parse_back() {
        for &k in FlagKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(k.as_str().parse::<FlagKind>(), Ok(k));
            assert_eq!(
                serde_json::from_value::<FlagKind>(k.as_str().into()).unwrap(),
                k
            );
        }
        let err = "custom".parse::<FlagKind>().unwrap_err().to_string();
        for k in FlagKind::ALL {
            assert!(err.contains(k.as_str()), "{err}");
        }
    }

    #[test]
    fn every_kind_has_both_labels_and_no_two_share_one() {
        for lang in Language::ALL {
            let mut seen = std::collections::HashSet::new();
            for &k in FlagKind::ALL {
                assert!(!k.label(lang).is_empty());
                assert!(seen.insert(k.label(lang)), "{k} {lang}: label used twice");
            }
        }
        // The one Japanese word for cross-sector (the console said 複数業種, the digest 分野横断).
        assert_eq!(FlagKind::CrossSector.label(Language::Ja), "分野横断");
    }

    #[test]
    fn a_kind_stands_for_its_name() {
        let kinds = [FlagKind::Surge, FlagKind::CrossSector, FlagKind::Stale];
        assert_eq!(kinds.join(", "), "surge, cross-sector, stale");
        let mut sorted = kinds;
        sorted.sort();
        let mut names = kinds.map(FlagKind::as_str);
        names.sort();
        assert_eq!(sorted.map(FlagKind::as_str), names);
        let set: std::collections::HashSet<FlagKind> = kinds.into();
        assert!(set.contains("surge"));
    }
}
