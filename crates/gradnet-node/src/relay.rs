//! Mempool gossip: a validator passes the transactions its clients send on
//! to the other validators' JSON-RPC (`gradnet_relayTransactions`, batched
//! every few milliseconds), so that the next proposer has them whoever it
//! is. Relayed transactions go through the same checks as any other and
//! are not relayed again.

use std::sync::Arc;
use std::time::Duration;

use gradnet_client::Rpc;
use gradnet_ledger::chain::Chain;
use gradnet_ledger::outbox::MAX_BATCH;

/// Pause between batches, so that a burst goes out in few requests.
const BATCH_EVERY: Duration = Duration::from_millis(10);
/// A peer that does not take a batch within this misses it.
const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// Relays to `peers` (JSON-RPC URLs) until the task is dropped. A peer that
/// is down misses the batch; the transactions stay in this node's pool.
pub async fn run(chain: Arc<Chain>, peers: Vec<String>) {
    if peers.is_empty() {
        return;
    }
    chain.outbox.open();
    let peers: Vec<Rpc> = peers
        .iter()
        .filter_map(|p| match Rpc::new(p) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(peer = %p, "not relaying to it: {e}");
                None
            }
        })
        .collect();
    loop {
        chain.outbox.ready().await;
        tokio::time::sleep(BATCH_EVERY).await;
        let txs = chain.outbox.take();
        for batch in txs.chunks(MAX_BATCH) {
            let sends = peers.iter().map(|p| async move {
                let sent = tokio::time::timeout(
                    PEER_TIMEOUT,
                    p.request::<_, serde_json::Value>(
                        "gradnet_relayTransactions",
                        (batch.to_vec(),),
                    ),
                )
                .await;
                match sent {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::debug!(peer = %p.url(), "relay failed: {e}"),
                    Err(_) => tracing::debug!(peer = %p.url(), "relay timed out"),
                }
            });
            futures::future::join_all(sends).await;
        }
    }
}
