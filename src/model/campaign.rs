//! Campaign identifiers and analysts' dispositions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Seq;

/// A campaign's stable id, `C-YYYY-NNNN`: the year the campaign was first seen and its
/// number within that year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CampaignId {
    pub year: u16,
    pub number: u32,
}

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "C-{:04}-{:04}", self.year, self.number)
    }
}

impl FromStr for CampaignId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid campaign id {s:?} (expected C-YYYY-NNNN)");
        let rest = s.strip_prefix("C-").ok_or_else(bad)?;
        let (year, number) = rest.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || number.len() < 4 {
            return Err(bad());
        }
        Ok(CampaignId {
            year: year.parse().map_err(|_| bad())?,
            number: number.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for CampaignId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CampaignId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The analyst's decision on a campaign, in the council's own categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    SharedPublic,
    SharedLimited,
    LowNeedKnown,
    LowNeedTransient,
    LowNeedOther,
    AbandonedNoConsent,
    AbandonedInsufficientSamples,
    AbandonedOther,
    UnderAnalysis,
}

impl Disposition {
    pub const ALL: [Disposition; 9] = [
        Disposition::SharedPublic,
        Disposition::SharedLimited,
        Disposition::LowNeedKnown,
        Disposition::LowNeedTransient,
        Disposition::LowNeedOther,
        Disposition::AbandonedNoConsent,
        Disposition::AbandonedInsufficientSamples,
        Disposition::AbandonedOther,
        Disposition::UnderAnalysis,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::SharedPublic => "shared-public",
            Disposition::SharedLimited => "shared-limited",
            Disposition::LowNeedKnown => "low-need-known",
            Disposition::LowNeedTransient => "low-need-transient",
            Disposition::LowNeedOther => "low-need-other",
            Disposition::AbandonedNoConsent => "abandoned-no-consent",
            Disposition::AbandonedInsufficientSamples => "abandoned-insufficient-samples",
            Disposition::AbandonedOther => "abandoned-other",
            Disposition::UnderAnalysis => "under-analysis",
        }
    }
}

impl FromStr for Disposition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Disposition::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<_> = Disposition::ALL.iter().map(|d| d.as_str()).collect();
                format!(
                    "unknown disposition {s:?} (expected one of: {})",
                    all.join(", ")
                )
            })
    }
}

/// What correlation changed in campaign ids: the store records it (campaign ids are
/// truth that analysts' decisions refer to), correlation produces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CampaignEvent {
    /// A new campaign.
    Created { id: CampaignId },
    /// Reports now belong to this campaign.
    Assigned { id: CampaignId, reports: Vec<Seq> },
    /// Campaigns `from` were merged into `into`.
    Merged {
        into: CampaignId,
        from: Vec<CampaignId>,
    },
    /// Campaign `from` split; part of it continues under `into`.
    Split { from: CampaignId, into: CampaignId },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_ids_round_trip() {
        let id: CampaignId = "C-2026-0042".parse().unwrap();
        assert_eq!(id.to_string(), "C-2026-0042");
        assert!("C-26-1".parse::<CampaignId>().is_err());
    }
}
