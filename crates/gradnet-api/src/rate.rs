//! Request rates per key (client address, account): a token bucket per key
//! that refills at `rate` per second up to `burst`, and tells a refused
//! caller when to come back. Buckets that have refilled are dropped, so
//! memory stays bounded by the keys active in the last few seconds.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a request was refused: the limit, and when a token is next free.
#[derive(Debug, Clone, Copy)]
pub struct Refusal {
    /// Requests per second.
    pub rate: u32,
    /// Requests above the rate allowed at once.
    pub burst: u32,
    /// When to retry.
    pub retry_after: Duration,
}

/// Tokens left in a key's bucket, and when they were counted.
type Bucket = (f64, Instant);

/// Token buckets by key.
pub struct RateLimiter<K> {
    rate: u32,
    burst: u32,
    /// The buckets, and when full ones were last dropped.
    buckets: Mutex<(HashMap<K, Bucket>, Instant)>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `rate` requests per second, `burst` at once (a rate of 0: no limit).
    pub fn new(rate: u32, burst: u32) -> Self {
        RateLimiter {
            rate,
            burst: burst.max(1),
            buckets: Mutex::new((HashMap::new(), Instant::now())),
        }
    }

    /// Takes a token for `key`, or says when one will be free.
    pub fn check(&self, key: K) -> Result<(), Refusal> {
        if self.rate == 0 {
            return Ok(());
        }
        let (rate, burst) = (self.rate as f64, self.burst as f64);
        let now = Instant::now();
        let mut g = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (buckets, swept) = &mut *g;
        // buckets full again carry no information: forget them now and then
        if now.duration_since(*swept) > Duration::from_secs(10) {
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
            *swept = now;
        }
        let (tokens, at) = buckets.entry(key).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        Err(Refusal {
            rate: self.rate,
            burst: self.burst,
            retry_after: Duration::from_secs_f64((1.0 - *tokens) / rate),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_with_a_wait_per_key() {
        let l = RateLimiter::new(1, 3);
        for _ in 0..3 {
            l.check("a").unwrap();
        }
        let r = l.check("a").unwrap_err();
        assert!(r.retry_after > Duration::ZERO && r.retry_after <= Duration::from_secs(1));
        l.check("b").unwrap(); // another key has its own bucket
        let off = RateLimiter::new(0, 0);
        for _ in 0..1000 {
            off.check(1).unwrap();
        }
    }
}
