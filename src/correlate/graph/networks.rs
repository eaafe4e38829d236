//! Networks: an address matches a network that another report carries.

use super::*;

pub(super) fn ip_key(ip: IpAddr) -> (u8, u128) {
    match ip {
        IpAddr::V4(v4) => (4, u32::from(v4) as u128),
        IpAddr::V6(v6) => (6, u128::from(v6)),
    }
}

/// Addresses some report carries (not on a warning list), by value: the addresses inside a
/// network are a range. One map per family: an IPv4 key takes 4 bytes where a
/// `(family, u128)` key took 32 (41 MB of B-tree nodes at 1M reports).
#[derive(Debug, Default)]
pub(super) struct Addresses {
    v4: BTreeMap<u32, u32>,
    v6: BTreeMap<u128, u32>,
}

impl Addresses {
    pub(super) fn insert(&mut self, ip: IpAddr, id: u32) {
        match ip {
            IpAddr::V4(v4) => self.v4.insert(u32::from(v4), id),
            IpAddr::V6(v6) => self.v6.insert(u128::from(v6), id),
        };
    }

    pub(super) fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }

    /// The value numbers of the addresses of `family` (4 or 6) whose keys (as [`ip_key`]
    /// gives them) are in `lo..=hi`, in address order.
    pub(super) fn range(&self, family: u8, lo: u128, hi: u128) -> Vec<u32> {
        if family == 4 {
            let clamp = |k: u128| u32::try_from(k).unwrap_or(u32::MAX);
            if lo > u128::from(u32::MAX) {
                return Vec::new();
            }
            self.v4
                .range(clamp(lo)..=clamp(hi))
                .map(|(_, &id)| id)
                .collect()
        } else {
            self.v6.range(lo..=hi).map(|(_, &id)| id).collect()
        }
    }
}

/// The key of the network of `len` bits that contains `ip` (None past the address width).
fn net_key(ip: IpAddr, len: u8) -> Option<(u8, u128, u8)> {
    match ip {
        IpAddr::V4(v4) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            Some((4, u128::from(u32::from(v4) & mask), len))
        }
        IpAddr::V6(v6) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            Some((6, u128::from(v6) & mask, len))
        }
        _ => None,
    }
}

/// The key of a reported network.
pub(super) fn cidr_key(net: &IpNet) -> (u8, u128, u8) {
    let (family, addr) = ip_key(net.network());
    (family, addr, net.prefix_len())
}

impl Engine {
    /// Networks that reports carry and that contain an address of `obs`.
    pub(super) fn contained_of(&self, obs: &[u32]) -> Vec<u32> {
        let mut out = Vec::new();
        for &o in obs {
            if self.obs[o as usize].listed {
                continue;
            }
            let Some(ip) = self.values[o as usize].ip() else {
                continue;
            };
            let lens = match ip {
                IpAddr::V4(_) => &self.v4_lens,
                IpAddr::V6(_) => &self.v6_lens,
            };
            for &len in lens {
                if let Some(&c) = net_key(ip, len).and_then(|k| self.nets.get(&k))
                    && obs.binary_search(&c).is_err()
                {
                    out.push(c);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}
