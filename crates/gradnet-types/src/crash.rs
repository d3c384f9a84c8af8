//! Crash points for fault tests. With `GRADNET_CRASH_AT=name` (or
//! `name@n`) the process aborts the first (n-th) time it reaches the point
//! `name`: no destructors, no flushing, as a power cut or SIGKILL would
//! leave it. Unset, a point costs an atomic load.
//!
//! Points: `consensus-commit` (a block decided, not yet in the store),
//! `store-commit` (a block written in the store's transaction, not yet
//! committed), `sync-commit` (a block from block sync, before its commit),
//! `hub-chunk` (an upload with chunks on disk, not finished),
//! `hub-finish` (an upload's chunks moved, its manifest not written),
//! `redeem-sent` (vouchers redeemed on chain, not yet recorded).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static AT: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn parse(v: &str) -> Option<(String, u64)> {
    let (name, n) = match v.split_once('@') {
        Some((name, n)) => (name, n.parse().ok()?),
        None => (v, 1),
    };
    (!name.is_empty() && n > 0).then(|| (name.to_string(), n))
}

/// Aborts the process here if `GRADNET_CRASH_AT` names this point (and
/// this is its n-th hit).
pub fn point(name: &str) {
    let at = AT.get_or_init(|| {
        std::env::var("GRADNET_CRASH_AT")
            .ok()
            .and_then(|v| parse(&v))
    });
    if let Some((n, k)) = at {
        if n == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *k {
            eprintln!("crash point `{name}` reached (GRADNET_CRASH_AT): aborting");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_points_parse_their_name_and_hit() {
        assert_eq!(parse("store-commit"), Some(("store-commit".into(), 1)));
        assert_eq!(parse("sync-commit@3"), Some(("sync-commit".into(), 3)));
        assert_eq!(parse("x@0"), None);
        assert_eq!(parse("x@y"), None);
        assert_eq!(parse(""), None);
        // unset here: a point is a no-op
        point("store-commit");
    }
}
