//! Mempool gossip: a validator passes the transactions its clients send on
//! to the other validators' JSON-RPC (`gradnet_relayTransactions`, batched
//! every few milliseconds), so that the next proposer has them whoever it
//! is. Relayed transactions go through the same checks as any other and
//! are not relayed again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::chain::Chain;

/// Transactions in one relay request at most.
pub const MAX_BATCH: usize = 2000;
/// Transactions waiting to be relayed at most (older ones are dropped:
/// they are still in this node's pool).
const MAX_WAITING: usize = 20_000;
/// Pause between batches, so that a burst goes out in few requests.
const BATCH_EVERY: Duration = Duration::from_millis(10);

#[derive(Default)]
pub struct Outbox {
    on: AtomicBool,
    waiting: Mutex<Vec<Bytes>>,
    ready: Notify,
}

impl Outbox {
    pub(crate) fn push(&self, raw: &[u8]) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        let mut w = self.waiting.lock();
        if w.len() < MAX_WAITING {
            w.push(Bytes::copy_from_slice(raw));
        }
        drop(w);
        self.ready.notify_one();
    }

    fn take(&self) -> Vec<Bytes> {
        std::mem::take(&mut *self.waiting.lock())
    }
}

/// Relays to `peers` (JSON-RPC URLs) until the task is dropped. A peer that
/// is down misses the batch; the transactions stay in this node's pool.
pub async fn run(chain: Arc<Chain>, peers: Vec<String>) {
    if peers.is_empty() {
        return;
    }
    chain.outbox.on.store(true, Ordering::Relaxed);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    loop {
        chain.outbox.ready.notified().await;
        tokio::time::sleep(BATCH_EVERY).await;
        let txs = chain.outbox.take();
        for batch in txs.chunks(MAX_BATCH) {
            let body = serde_json::json!({
                "jsonrpc": "2.0", "id": 1,
                "method": "gradnet_relayTransactions", "params": [batch],
            });
            let sends = peers.iter().map(|p| {
                let req = client.post(p).json(&body).send();
                async move {
                    if let Err(e) = req.await.and_then(|r| r.error_for_status()) {
                        tracing::debug!(peer = %p, "relay failed: {e}");
                    }
                }
            });
            futures::future::join_all(sends).await;
        }
    }
}
