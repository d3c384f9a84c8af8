//! A steady stream of transactions into validators while a test does harm
//! to the network: transfers, and with a model inference calls too (QUORUM
//! and VANILLA through the devnet's demo contract), each recorded once a
//! validator accepts it; then the checks that none was lost or applied
//! twice, and that the validators hold the same blocks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolCall;
use gradnet_inference::abi::InferencePrecompile;
use serde_json::{json, Value};

use super::inference::mlp_request;
use super::ledger::{head, rpc, try_rpc, wait_until};

/// What to send, where and how often.
pub(crate) struct Traffic {
    pub key: B256,
    pub chain_id: u64,
    /// Validators' JSON-RPC, used in turn.
    pub urls: Vec<String>,
    /// Where the transfers (1 wei each) go.
    pub sink: Address,
    /// With a model: of every three transactions, a QUORUM call, a
    /// VANILLA call and a transfer.
    pub model: Option<String>,
    pub every: Duration,
}

/// What was accepted.
pub(crate) struct Sent {
    pub accepted: Vec<String>,
    pub transfers: u64,
}

/// Traffic being sent.
pub(crate) struct Sending {
    stop: Arc<AtomicBool>,
    accepted: Arc<Mutex<Vec<String>>>,
    handle: std::thread::JoinHandle<u64>,
}

impl Traffic {
    pub(crate) fn start(self) -> Sending {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(Mutex::new(vec![]));
        let handle = {
            let (stop, accepted) = (stop.clone(), accepted.clone());
            std::thread::spawn(move || {
                let (mut nonce, mut transfers, mut k) = (0u64, 0u64, 0usize);
                while !stop.load(Ordering::Relaxed) {
                    let call = self.model.as_ref().filter(|_| nonce % 3 != 2);
                    let (to, data, value, gas) = match call {
                        Some(cid) => {
                            let request = mlp_request(if nonce % 3 == 0 { 3 } else { 0 }, cid);
                            let data =
                                InferencePrecompile::runModelInferenceCall { request }.abi_encode();
                            (
                                gradnet_inference::demo_contract::ADDRESS,
                                data,
                                U256::ZERO,
                                1_000_000,
                            )
                        }
                        None => (self.sink, vec![], U256::from(1), 21_000),
                    };
                    let raw = gradnet_client::wallet::sign(
                        &gradnet_client::wallet::TxRequest {
                            chain_id: self.chain_id,
                            nonce,
                            to: Some(to),
                            value,
                            gas_limit: gas,
                            data: data.into(),
                            ..Default::default()
                        },
                        &self.key,
                    )
                    .unwrap();
                    k += 1;
                    let url = &self.urls[k % self.urls.len()];
                    // accepted now, or earlier by a validator whose answer
                    // was lost (a nonce always signs the same transaction
                    // here, so the one known is this one)
                    let sent = try_rpc(url, "eth_sendRawTransaction", json!([raw.to_string()]));
                    let took = sent.is_ok_and(|r| {
                        r["result"].is_string()
                            || ["already known", "nonce too low"]
                                .iter()
                                .any(|m| r["error"]["message"].as_str().unwrap_or("").contains(m))
                    });
                    if took {
                        let hash = alloy_primitives::keccak256(&raw);
                        accepted.lock().unwrap().push(hash.to_string());
                        transfers += u64::from(call.is_none());
                        nonce += 1;
                    }
                    std::thread::sleep(self.every);
                }
                transfers
            })
        };
        Sending {
            stop,
            accepted,
            handle,
        }
    }
}

impl Sending {
    /// Transactions accepted so far.
    pub(crate) fn accepted(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    /// Stops sending.
    pub(crate) fn stop(self) -> Sent {
        self.stop.store(true, Ordering::Relaxed);
        let transfers = self.handle.join().unwrap();
        let accepted = self.accepted.lock().unwrap().clone();
        Sent {
            accepted,
            transfers,
        }
    }
}

impl Sent {
    /// Every accepted transaction has a successful receipt on `url`, and
    /// the sink holds one wei per transfer: each applied once. Returns the
    /// blocks they landed in.
    pub(crate) fn assert_applied_once(
        &self,
        url: &str,
        sink: Address,
    ) -> std::collections::HashSet<String> {
        let mut blocks = std::collections::HashSet::new();
        for h in &self.accepted {
            let mut r = Value::Null;
            wait_until(120, &format!("the receipt of {h}"), || {
                r = rpc(url, "eth_getTransactionReceipt", json!([h]));
                !r.is_null()
            });
            assert_eq!(r["status"], "0x1", "{r}");
            blocks.insert(r["blockHash"].as_str().unwrap_or_default().to_string());
        }
        let b = rpc(
            url,
            "eth_getBalance",
            json!([format!("{sink:#x}"), "latest"]),
        );
        assert_eq!(
            super::ledger::quantity(&b),
            U256::from(self.transfers),
            "transfers to {sink} applied once each"
        );
        blocks
    }
}

/// Every validator at `urls` holds the same blocks (hash and state
/// commitment), once all have reached the first one's head; returns it.
pub(crate) fn assert_same_blocks(urls: &[String]) -> u64 {
    let last = head(&urls[0]);
    wait_until(60, "all validators at one height", || {
        urls.iter().all(|u| head(u) >= last)
    });
    for n in 1..=last {
        let block = |u: &str| {
            let b = rpc(u, "eth_getBlockByNumber", json!([format!("{n:#x}"), false]));
            json!([b["hash"], b["stateRoot"]])
        };
        let first = block(&urls[0]);
        for u in &urls[1..] {
            assert_eq!(block(u), first, "block {n} differs on {u} and {}", urls[0]);
        }
    }
    last
}
