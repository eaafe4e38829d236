//! The languages musubi writes in: Japanese and English. One type for the console, mail
//! and the council's statistics, so that a label table is indexed the same way everywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A language a page, a mail or a table is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Ja,
    En,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::Ja, Language::En];

    /// The code as stored (`member_contacts.language`) and in URLs and cookies.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Ja => "ja",
            Language::En => "en",
        }
    }

    /// The other one (the console's language switch).
    pub fn other(self) -> Language {
        match self {
            Language::Ja => Language::En,
            Language::En => Language::Ja,
        }
    }

    /// The language of a code, if it is one of ours.
    pub fn parse(s: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Language {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Language::parse(s).ok_or_else(|| format!("unknown language {s:?} (expected ja or en)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_errors_name_the_choices() {
        for l in Language::ALL {
            assert_eq!(l.as_str().parse::<Language>(), Ok(l));
            assert_eq!(l.other().other(), l);
        }
        assert_eq!(
            "fr".parse::<Language>(),
            Err("unknown language \"fr\" (expected ja or en)".to_string())
        );
    }
}
