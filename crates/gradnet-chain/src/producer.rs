//! Block production by a single authority (a one-validator network): a
//! block whenever there are transactions and the interval since the last
//! block has passed, and an empty one each second otherwise, so that
//! clients waiting for "the next block" (ethers' `wait()`) see one.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_primitives::Address;

use crate::chain::Chain;
use crate::exec::BlockParams;

/// Transactions in one block at most (the gas limit usually binds first).
pub const MAX_BLOCK_TXS: usize = 10_000;
/// An empty block this often when nothing is pending.
pub const EMPTY_BLOCK_EVERY: Duration = Duration::from_secs(1);

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Produces blocks until the task is dropped.
pub async fn run(chain: Arc<Chain>, interval: Duration, proposer: Address, coinbase: Address) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if chain.pool.is_empty() && last.elapsed() < EMPTY_BLOCK_EVERY.max(interval) {
            continue;
        }
        last = tokio::time::Instant::now();
        let chain = chain.clone();
        let made = tokio::task::spawn_blocking(move || {
            let params = BlockParams {
                timestamp: now_secs().max(chain.head().timestamp),
                proposer,
                coinbase,
            };
            let built = chain.propose(&params, MAX_BLOCK_TXS)?;
            chain.commit(&built.executed)
        })
        .await;
        match made {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("block production failed: {e}"),
            Err(e) => tracing::error!("block production panicked: {e}"),
        }
    }
}
