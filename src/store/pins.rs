//! Analysts' pins: merge and split requests the correlation engine must respect. The
//! council records them (`council::review`); the correlator reads the ones in force.

use crate::store::db::{Conn, params};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Result, StoreError, parse_ts};
use crate::model::{CampaignId, Seq};

/// A manual correlation request the engine must respect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PinKind {
    /// Keep these two campaigns together.
    Merge { a: CampaignId, b: CampaignId },
    /// Take these reports out of the campaign into a campaign of their own.
    Split {
        campaign: CampaignId,
        reports: Vec<Seq>,
    },
}

/// A recorded pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    pub id: i64,
    #[serde(flatten)]
    pub kind: PinKind,
    pub note: String,
    pub analyst: String,
    pub at: DateTime<Utc>,
}

/// The pins in force, oldest first: what the correlation engine must respect.
pub fn active(conn: &Conn) -> Result<Vec<Pin>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, campaign_a, campaign_b, reports, note, analyst, at FROM pins
         WHERE withdrawn_at IS NULL ORDER BY id",
    )?;
    let rows = stmt.query_map(params![], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, kind, a, b, reports, note, analyst, at) = row?;
        let bad = |e: String| StoreError::Corrupt(format!("pin {id}: {e}"));
        let kind = match (kind.as_str(), b, reports) {
            ("merge", Some(b), _) => PinKind::Merge {
                a: a.parse().map_err(bad)?,
                b: b.parse().map_err(bad)?,
            },
            ("split", _, Some(reports)) => {
                let list: Vec<u64> =
                    serde_json::from_str(&reports).map_err(|e| bad(e.to_string()))?;
                PinKind::Split {
                    campaign: a.parse().map_err(bad)?,
                    reports: list.into_iter().map(Seq).collect(),
                }
            }
            _ => return Err(bad("incomplete pin".into())),
        };
        out.push(Pin {
            id,
            kind,
            note,
            analyst,
            at: parse_ts(&at)?,
        });
    }
    Ok(out)
}
