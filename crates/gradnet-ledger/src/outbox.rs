//! Transactions this node's clients sent, waiting for the relay (in the
//! node library) to pass them on to the other validators.

use std::sync::atomic::{AtomicBool, Ordering};

use alloy_primitives::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Transactions in one relay request at most.
pub const MAX_BATCH: usize = 2000;
/// Transactions waiting to be relayed at most (older ones are dropped:
/// they are still in this node's pool).
const MAX_WAITING: usize = 20_000;
/// The transactions waiting to be relayed.
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

    /// Starts collecting (a relay runs from now on).
    pub fn open(&self) {
        self.on.store(true, Ordering::Relaxed);
    }

    /// Waits until a transaction is waiting.
    pub async fn ready(&self) {
        self.ready.notified().await
    }

    /// The transactions waiting, oldest first; the outbox is empty after.
    pub fn take(&self) -> Vec<Bytes> {
        std::mem::take(&mut *self.waiting.lock())
    }
}
