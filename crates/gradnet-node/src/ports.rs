//! Loopback ports for a devnet's nodes (and the tests that start them).
//!
//! A port found free with a bind to port 0 is an ephemeral port: between
//! the check and the node's own bind, the kernel may give it to any
//! outgoing connection as its source port, and the node fails with "address
//! in use". So ports are picked below the kernel's ephemeral range, where
//! it never assigns them on its own, at random, and never twice by one
//! process (tests start several devnets at once).

use std::collections::hash_map::RandomState;
use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::sync::Mutex;

/// Ports this process handed out.
static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// The lowest port the kernel uses for outgoing connections (Linux's
/// `ip_local_port_range`; its default elsewhere).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// The first of `n` consecutive free ports on 127.0.0.1, below the
/// ephemeral range.
pub fn free_ports(n: u16) -> std::io::Result<u16> {
    const LOW: u16 = 10_000;
    let high = ephemeral_start().max(LOW + 1000);
    let span = u64::from(high - LOW - n.min(high - LOW - 1));
    let random = RandomState::new();
    for attempt in 0u64..2000 {
        let mut h = random.build_hasher();
        h.write_u64(attempt);
        let base = LOW + (h.finish() % span) as u16;
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if (base..base + n).any(|p| given.contains(&p)) {
            continue;
        }
        let held: Vec<_> = (0..n)
            .map_while(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == n as usize {
            given.extend(base..base + n);
            return Ok(base);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no {n} consecutive free ports on 127.0.0.1 below {high}"),
    ))
}

/// One free port ([`free_ports`] of one).
pub fn free_port() -> std::io::Result<u16> {
    free_ports(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_free_below_the_ephemeral_range_and_never_given_twice() {
        let start = ephemeral_start();
        let mut seen = BTreeSet::new();
        for _ in 0..50 {
            let base = free_ports(4).unwrap();
            assert!(base >= 10_000 && base + 4 <= start.max(11_000), "{base}");
            for p in base..base + 4 {
                assert!(seen.insert(p), "port {p} given twice");
                TcpListener::bind(("127.0.0.1", p)).unwrap();
            }
        }
    }
}
