//! Members of the council and the secretariat.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's id (`m001` for roster members, `m-<n>` for members added later).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemberId(pub String);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($wire => Ok($name::$variant),)+
                    other => Err(format!(
                        concat!("unknown ", $what, " {:?} (expected one of: {})"),
                        other,
                        [$($wire),+].join(", ")
                    )),
                }
            }
        }
    };
}

wire_enum!(
    /// The member's class in the council, or the secretariat role.
    MemberClass, "class" {
        Class1 => "class1",
        Class2 => "class2",
        General => "general",
        Secretariat => "secretariat",
    }
);

wire_enum!(
    /// The member's category, as in the council's roster.
    Category, "category" {
        Government => "government",
        IndependentAgency => "independent_agency",
        LocalGovernment => "local_government",
        CriticalInfrastructure => "critical_infrastructure",
        CyberBusiness => "cyber_business",
        EducationResearch => "education_research",
        Other => "other",
    }
);

wire_enum!(
    /// The thirteen critical-infrastructure sectors.
    Sector, "sector" {
        Telecom => "telecom",
        Finance => "finance",
        Aviation => "aviation",
        Airports => "airports",
        Railway => "railway",
        Electricity => "electricity",
        Gas => "gas",
        Medical => "medical",
        Water => "water",
        Logistics => "logistics",
        Chemical => "chemical",
        Credit => "credit",
        Petroleum => "petroleum",
    }
);

/// A member as the store keeps it (the token only as a hash, elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: MemberId,
    pub name: String,
    pub category: Category,
    pub sector: Option<Sector>,
    pub class: MemberClass,
}

impl Member {
    pub fn is_secretariat(&self) -> bool {
        self.class == MemberClass::Secretariat
    }
}
