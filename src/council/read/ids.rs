//! Member-facing ids: what a viewer outside the secretariat is shown instead of the
//! store's numbers.
//!
//! Internal ids count: `R-` is the store's sequence number, so the gap between two of a
//! member's own reports counts everyone else's submissions, and `C-YYYY-NNNN` tells a member
//! whose report joined an older campaign that someone reported the value before. Outside
//! the secretariat every id is therefore an **opaque id**: the internal number passed
//! through a keyed permutation of 64-bit values and written as 13 lowercase base32
//! characters (`R-…` for reports, `C-…` for campaigns). The permutation is a Feistel network
//! whose round function is HMAC-SHA256 under the council's secret (32 random bytes made once
//! by a store migration), so it is reversible by the council only and reveals neither
//! order, gaps nor age.
//!
//! - Views carry their id *as shown to their viewer* ([`ShownReportId`],
//!   [`ShownCampaignId`]): the view builders in [`crate::council::views`] call [`report`]
//!   and [`campaign`], so every output (API, TAXII, digests, console, exports) shows the
//!   right form without doing anything.
//! - Ids given by a viewer are read back with [`parse_report`] / [`parse_campaign`]: members
//!   and audiences may use only the opaque form; the secretariat may use either.
//! - A member's report that joins a campaign made only of reports it cannot see is shown
//!   exactly like a report that formed a new campaign alone: the campaign's opaque id is as
//!   random as a new one, and its view is computed from the visible parts only (one report,
//!   its own times, no flags), so the answer has the same fields and the same shape.
//!
//! The key is process-wide: the secret of the first store the process opens (one council per
//! process), read by the view builders, which have no store. Before any store is open (unit
//! tests that build views without one) a random key stands in.

use std::fmt;
use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use serde::{Serialize, Serializer};
use sha2::Sha256;

use super::Viewer;
use crate::model::{CampaignId, ReportId, Seq};
use crate::store;

/// Rounds of the Feistel network (four make a strong pseudo-random permutation; more cost
/// little: one HMAC each).
const ROUNDS: u8 = 8;
/// RFC 4648 base32, lowercase.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// 64 bits in 5-bit characters.
const OPAQUE_LEN: usize = 13;
/// Domain separation: report and campaign numbers map through different permutations.
const REPORT_DOMAIN: u8 = b'R';
const CAMPAIGN_DOMAIN: u8 = b'C';
const SIGHTING_DOMAIN: u8 = b'S';

/// The keyed permutation.
#[derive(Clone)]
pub struct IdKey {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for IdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.write_str("IdKey(..)")
    }
}

impl IdKey {
    pub fn new(secret: &[u8; 32]) -> IdKey {
        IdKey {
            mac: Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length"),
        }
    }

    fn round(&self, domain: u8, round: u8, half: u32) -> u32 {
        let mut mac = self.mac.clone();
        mac.update(&[domain, round]);
        mac.update(&half.to_be_bytes());
        let out = mac.finalize().into_bytes();
        u32::from_be_bytes([out[0], out[1], out[2], out[3]])
    }

    fn encrypt(&self, domain: u8, x: u64) -> u64 {
        let (mut l, mut r) = ((x >> 32) as u32, x as u32);
        for i in 0..ROUNDS {
            (l, r) = (r, l ^ self.round(domain, i, r));
        }
        (u64::from(l) << 32) | u64::from(r)
    }

    fn decrypt(&self, domain: u8, y: u64) -> u64 {
        let (mut l, mut r) = ((y >> 32) as u32, y as u32);
        for i in (0..ROUNDS).rev() {
            (l, r) = (r ^ self.round(domain, i, l), l);
        }
        (u64::from(l) << 32) | u64::from(r)
    }
}

impl IdKey {
    /// The opaque form of a report id under this key, for tools and tests that hold the
    /// council's secret (the leak harness reads it from a store it set up).
    pub fn opaque_report(&self, id: ReportId) -> String {
        format!("R-{}", encode(self.encrypt(REPORT_DOMAIN, id.0.0)))
    }

    /// The opaque form of a campaign id under this key (see [`IdKey::opaque_report`]).
    pub fn opaque_campaign(&self, id: CampaignId) -> String {
        format!("C-{}", encode(self.encrypt(CAMPAIGN_DOMAIN, pack(id))))
    }

    /// The report an opaque id names under this key.
    pub fn report_of(&self, opaque: &str) -> Option<ReportId> {
        let v = decode(opaque.strip_prefix("R-")?)?;
        Some(ReportId(Seq(self.decrypt(REPORT_DOMAIN, v))))
    }
}

/// The process's key, and whether it came from a store or stands in.
static KEY: RwLock<Option<(Arc<IdKey>, bool)>> = RwLock::new(None);

/// Makes `secret` the key of every opaque id in this process unless a store's key is in
/// place already (one council per process: a second store, in tests, shares the first's).
pub(super) fn install(secret: &[u8; 32]) {
    let mut slot = KEY.write().unwrap_or_else(|e| e.into_inner());
    if !matches!(*slot, Some((_, true))) {
        *slot = Some((Arc::new(IdKey::new(secret)), true));
    }
}

/// The key: the council's (the first store the process opened, [`store::process_id_secret`]),
/// else a random stand-in until a store is opened (unit tests that build views without one).
fn key() -> Arc<IdKey> {
    if let Some((k, true)) = KEY.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return k.clone();
    }
    if let Some(secret) = store::process_id_secret() {
        install(&secret);
    }
    let mut slot = KEY.write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| (Arc::new(IdKey::new(&rand::random())), false))
        .0
        .clone()
}

/// Whether the viewer is shown internal ids.
fn internal(viewer: &Viewer) -> bool {
    viewer.is_secretariat()
}

fn encode(v: u64) -> String {
    (0..OPAQUE_LEN)
        .map(|i| ALPHABET[((v >> (60 - 5 * i)) & 31) as usize] as char)
        .collect()
}

fn decode(s: &str) -> Option<u64> {
    if s.len() != OPAQUE_LEN {
        return None;
    }
    let mut v: u64 = 0;
    for (i, b) in s.bytes().enumerate() {
        let d = ALPHABET.iter().position(|&a| a == b)? as u64;
        // The first character carries the top 4 bits only.
        if i == 0 && d >= 16 {
            return None;
        }
        v = (v << 5) | d;
    }
    Some(v)
}

fn pack(id: CampaignId) -> u64 {
    (u64::from(id.year) << 32) | u64::from(id.number)
}

fn unpack(v: u64) -> Option<CampaignId> {
    Some(CampaignId {
        year: u16::try_from(v >> 32).ok()?,
        number: v as u32,
    })
}

/// A report id as its viewer is shown it: the internal `R-<seq>` for the secretariat, the
/// opaque `R-<13 base32>` for everyone else. Display and serialisation give that form only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShownReportId {
    internal: ReportId,
    opaque: Option<u64>,
}

/// A campaign id as its viewer is shown it: `C-YYYY-NNNN` for the secretariat, the opaque
/// `C-<13 base32>` for everyone else. Display and serialisation give that form only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShownCampaignId {
    internal: CampaignId,
    opaque: Option<u64>,
}

/// A sighting id as its viewer is shown it: `S-<row>` for the secretariat, the opaque
/// `S-<13 base32>` for everyone else; a string for both, so the answer has one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShownSightingId {
    internal: i64,
    opaque: Option<u64>,
}

impl fmt::Display for ShownSightingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.opaque {
            None => write!(f, "S-{}", self.internal),
            Some(v) => write!(f, "S-{}", encode(v)),
        }
    }
}

impl Serialize for ShownSightingId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl ShownReportId {
    /// The store's id behind it, for code that still keys its own tables by it (digest
    /// windows, console records). Never show it: that is what the shown form is for.
    /// To be scoped to `crate::engine` once every output reads through the read path.
    pub fn internal(&self) -> ReportId {
        self.internal
    }
}

impl ShownCampaignId {
    /// The campaign's internal id (see [`ShownReportId::internal`]); never show it.
    pub fn internal(&self) -> CampaignId {
        self.internal
    }
}

impl fmt::Display for ShownReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.opaque {
            None => self.internal.fmt(f),
            Some(v) => write!(f, "R-{}", encode(v)),
        }
    }
}

impl fmt::Display for ShownCampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.opaque {
            None => self.internal.fmt(f),
            Some(v) => write!(f, "C-{}", encode(v)),
        }
    }
}

impl Serialize for ShownReportId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for ShownCampaignId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The report id as `viewer` is shown it.
pub fn report(viewer: &Viewer, id: ReportId) -> ShownReportId {
    ShownReportId {
        internal: id,
        opaque: (!internal(viewer)).then(|| key().encrypt(REPORT_DOMAIN, id.0.0)),
    }
}

/// The campaign id as `viewer` is shown it.
pub fn campaign(viewer: &Viewer, id: CampaignId) -> ShownCampaignId {
    ShownCampaignId {
        internal: id,
        opaque: (!internal(viewer)).then(|| key().encrypt(CAMPAIGN_DOMAIN, pack(id))),
    }
}

/// A recorded sighting's id as `viewer` is shown it: `S-<row>` for the secretariat, an
/// opaque `S-…` for anyone else (sighting ids are a council-wide sequence: a member shown
/// them in order would count everyone else's sightings in between).
pub fn sighting(viewer: &Viewer, id: i64) -> ShownSightingId {
    ShownSightingId {
        internal: id,
        opaque: (!internal(viewer)).then(|| key().encrypt(SIGHTING_DOMAIN, id as u64)),
    }
}

/// The report a viewer's id names: the opaque form for anyone, the internal `R-<seq>` for
/// the secretariat only. `None` for anything else (the caller answers "not found", the
/// same as for a report that does not exist or is hidden).
pub fn parse_report(viewer: &Viewer, s: &str) -> Option<ReportId> {
    if let Some(id) = parse_opaque_report(s) {
        return Some(id);
    }
    let rest = s.strip_prefix("R-")?;
    if internal(viewer) && !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
        return rest.parse().ok().map(|n| ReportId(Seq(n)));
    }
    None
}

/// The report an opaque id names, for routes only the secretariat reaches (which may use
/// either form); `None` if `s` is not an opaque report id.
pub fn parse_opaque_report(s: &str) -> Option<ReportId> {
    let v = decode(s.strip_prefix("R-")?)?;
    Some(ReportId(Seq(key().decrypt(REPORT_DOMAIN, v))))
}

/// The campaign an opaque id names (see [`parse_opaque_report`]).
pub fn parse_opaque_campaign(s: &str) -> Option<CampaignId> {
    let v = decode(s.strip_prefix("C-")?)?;
    unpack(key().decrypt(CAMPAIGN_DOMAIN, v))
}

/// An id no campaign has (year 0): what an id a viewer may not use resolves to, so that a
/// write naming it is refused exactly like one naming an absent campaign.
pub const NO_CAMPAIGN: CampaignId = CampaignId { year: 0, number: 0 };

/// The campaign a viewer's id names: the opaque form for anyone, `C-YYYY-NNNN` for the
/// secretariat only; `None` otherwise.
pub fn parse_campaign(viewer: &Viewer, s: &str) -> Option<CampaignId> {
    if let Some(id) = parse_opaque_campaign(s) {
        return Some(id);
    }
    if internal(viewer) {
        return s.parse().ok();
    }
    None
}

/// A report just submitted, as the submitter is shown it (`POST /api/v1/reports`).
#[derive(Debug, Clone, Serialize)]
pub struct SubmittedReport {
    pub id: ShownReportId,
    /// The report's campaign: only when the submitter asked to wait for it and correlation
    /// placed the report in time. Opaque outside the secretariat, so a campaign the report
    /// joined (made of reports the submitter cannot see) reads exactly like a new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<ShownCampaignId>,
}

impl super::ReadPath {
    /// The answer to a submission of `reports` by `viewer`; with `wait`, after correlation
    /// has placed them (or the wait is over), naming their campaigns.
    pub async fn submitted(
        &self,
        viewer: &Viewer,
        reports: &[ReportId],
        wait: Option<std::time::Duration>,
    ) -> Vec<SubmittedReport> {
        let set = match wait {
            Some(wait) => {
                let newest = reports.iter().map(|id| id.0).max().unwrap_or(Seq(0));
                let mut rx = self.campaigns.clone();
                let _ = tokio::time::timeout(wait, rx.wait_for(|set| set.applied >= newest)).await;
                Some(self.campaign_set())
            }
            None => None,
        };
        reports
            .iter()
            .map(|&id| SubmittedReport {
                id: report(viewer, id),
                campaign: set
                    .as_ref()
                    .and_then(|set| set.of_report(id.0))
                    .map(|c| campaign(viewer, c.id)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MemberClass, MemberId};

    fn member() -> Viewer {
        Viewer::member(MemberId("m080".into()), MemberClass::General)
    }

    fn sec() -> Viewer {
        Viewer::member(MemberId("sec".into()), MemberClass::Secretariat)
    }

    #[test]
    fn a_sighting_id_is_a_string_for_every_viewer() {
        let shown = serde_json::to_value(sighting(&sec(), 12)).unwrap();
        assert_eq!(shown, serde_json::json!("S-12"));
        let shown = serde_json::to_value(sighting(&member(), 12)).unwrap();
        let s = shown.as_str().unwrap();
        assert!(s.starts_with("S-") && s.len() == 2 + OPAQUE_LEN, "{s}");
        assert_ne!(s, "S-12");
    }

    #[test]
    fn the_permutation_is_reversible_and_keyed() {
        let a = IdKey::new(&[1; 32]);
        let b = IdKey::new(&[2; 32]);
        for x in [0u64, 1, 2, 41, 42, u64::MAX, 1 << 40, 0xdead_beef] {
            assert_eq!(a.decrypt(REPORT_DOMAIN, a.encrypt(REPORT_DOMAIN, x)), x);
            assert_eq!(a.decrypt(CAMPAIGN_DOMAIN, a.encrypt(CAMPAIGN_DOMAIN, x)), x);
            assert_ne!(a.encrypt(REPORT_DOMAIN, x), b.encrypt(REPORT_DOMAIN, x));
            assert_ne!(a.encrypt(REPORT_DOMAIN, x), a.encrypt(CAMPAIGN_DOMAIN, x));
        }
        // Consecutive numbers land far apart: no order, no gaps.
        let ys: Vec<u64> = (1..=100).map(|x| a.encrypt(REPORT_DOMAIN, x)).collect();
        assert!(ys.windows(2).filter(|w| w[0] < w[1]).count() < 80);
    }

    #[test]
    fn base32_round_trips_and_rejects_malformed_ids() {
        for v in [0u64, 1, u64::MAX, 0x0123_4567_89ab_cdef] {
            let s = encode(v);
            assert_eq!(s.len(), OPAQUE_LEN);
            assert!(s.bytes().all(|b| ALPHABET.contains(&b)));
            assert_eq!(decode(&s), Some(v));
        }
        assert_eq!(
            decode("zaaaaaaaaaaaa"),
            None,
            "first character above 4 bits"
        );
        assert_eq!(decode("aaaaaaaaaaaa"), None);
        assert_eq!(decode("AAAAAAAAAAAAA"), None);
        assert_eq!(decode("aaaaaaaaaaaa1"), None);
    }

    #[test]
    fn members_see_and_use_opaque_ids_the_secretariat_either() {
        let id = ReportId(Seq(42));
        let c: CampaignId = "C-2026-0042".parse().expect("id");
        let shown = report(&member(), id).to_string();
        assert!(
            shown.starts_with("R-") && shown.len() == 2 + OPAQUE_LEN,
            "{shown}"
        );
        assert_eq!(report(&sec(), id).to_string(), "R-42");
        assert_eq!(parse_report(&member(), &shown), Some(id));
        assert_eq!(parse_report(&sec(), &shown), Some(id));
        assert_eq!(parse_report(&sec(), "R-42"), Some(id));
        assert_eq!(parse_report(&member(), "R-42"), None);
        assert_eq!(parse_report(&member(), "42"), None);
        let shown_c = campaign(&Viewer::PUBLIC, c).to_string();
        assert!(shown_c.starts_with("C-") && shown_c.len() == 2 + OPAQUE_LEN);
        assert_eq!(campaign(&member(), c).to_string(), shown_c);
        assert_eq!(campaign(&sec(), c).to_string(), "C-2026-0042");
        assert_eq!(parse_campaign(&member(), &shown_c), Some(c));
        assert_eq!(parse_campaign(&sec(), &shown_c), Some(c));
        assert_eq!(parse_campaign(&sec(), "C-2026-0042"), Some(c));
        assert_eq!(parse_campaign(&member(), "C-2026-0042"), None);
    }
}
