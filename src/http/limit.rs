//! Per-member rate limiting: a token bucket per member, so that one runaway script cannot
//! starve the other members. One limiter for every way in — API (Bearer), TAXII (Basic or
//! Bearer) and console session — charged by [`super::auth::authenticate`]. Generous by
//! default — group commit makes bursts cheap — and answered with 429 and `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::model::MemberId;

/// Requests per second each member may sustain (`server.requests_per_second`).
pub const DEFAULT_RATE: f64 = crate::config::DEFAULT_REQUESTS_PER_SECOND;
/// Requests a member may send in one burst (`server.request_burst`).
pub const DEFAULT_BURST: f64 = crate::config::DEFAULT_REQUEST_BURST;

/// Token buckets per member.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<MemberId, (f64, Instant)>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(DEFAULT_RATE, DEFAULT_BURST)
    }
}

impl RateLimiter {
    pub fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate,
            burst,
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from the member's bucket. Err(seconds to wait) when empty.
    pub fn check(&self, member: &MemberId) -> Result<(), f64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limiter poisoned");
        let (tokens, last) = buckets.entry(member.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - *tokens) / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_limited_and_refills() {
        let limiter = RateLimiter::new(10.0, 3.0);
        let m = MemberId("m1".into());
        let other = MemberId("m2".into());
        assert!(limiter.check(&m).is_ok());
        assert!(limiter.check(&m).is_ok());
        assert!(limiter.check(&m).is_ok());
        let wait = limiter.check(&m).unwrap_err();
        assert!(wait > 0.0 && wait <= 0.1, "{wait}");
        assert!(limiter.check(&other).is_ok(), "buckets are per member");
        std::thread::sleep(std::time::Duration::from_millis(120));
        assert!(limiter.check(&m).is_ok(), "the bucket refills");
    }
}
