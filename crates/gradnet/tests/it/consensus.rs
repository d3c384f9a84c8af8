//! Four validator processes on loopback reaching BFT consensus, and what
//! happens when some of them fail: one killed (SIGKILL) → the others keep
//! committing; restarted → it catches up by block sync and agrees; two of
//! four stopped → nothing is committed and nothing forks; one back → the
//! chain moves again. Transactions accepted throughout all land.

use crate::common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::{Address, U256};
use common::ledger::*;
use gradnet_client::wallet::{sign, TxRequest};
use gradnet_ledger::genesis::{address_of, dev_keys, Genesis, GenesisValidator};
use serde_json::json;

const CHAIN_ID: u64 = 4747;
const BLOCK_MS: u64 = 200;

struct Net {
    dirs: Vec<PathBuf>,
    ports: Vec<Ports>,
    genesis: PathBuf,
    nodes: Vec<Option<Killed>>,
    _root: tempfile::TempDir,
}

impl Net {
    fn new(n: usize, funded: &Address) -> Net {
        let root = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = (0..n).map(|i| root.path().join(format!("v{i}"))).collect();
        let validators = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| GenesisValidator {
                public_key: node_key(d),
                power: 1,
                fee_recipient: Address::repeat_byte(0x10 + i as u8),
            })
            .collect();
        let genesis = Genesis {
            chain_id: CHAIN_ID,
            timestamp: 1_700_000_000,
            gas_limit: 30_000_000,
            base_fee: 1_000_000_000,
            validators,
            alloc: [(*funded, U256::from(10u128.pow(24)))].into(),
            code: Default::default(),
            inference_nodes: vec![],
            zk_models: vec![],
            tee: None,
            escrow: None,
        };
        let gpath = root.path().join("genesis.json");
        std::fs::write(&gpath, serde_json::to_vec_pretty(&genesis).unwrap()).unwrap();
        Net {
            ports: (0..n).map(|_| Ports::free()).collect(),
            nodes: (0..n).map(|_| None).collect(),
            dirs,
            genesis: gpath,
            _root: root,
        }
    }

    fn start(&mut self, i: usize) {
        let peers: Vec<Ports> = (0..self.ports.len())
            .filter(|&j| j != i)
            .map(|j| self.ports[j].clone())
            .collect();
        self.nodes[i] = Some(start_validator(
            &self.dirs[i],
            &self.genesis,
            &self.ports[i],
            &peers,
            BLOCK_MS,
        ));
    }

    /// SIGKILL: no shutdown of any kind.
    fn kill(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    fn url(&self, i: usize) -> String {
        self.ports[i].url()
    }

    fn block_hash(&self, i: usize, n: u64) -> serde_json::Value {
        let b = rpc(
            &self.url(i),
            "eth_getBlockByNumber",
            json!([format!("{n:#x}"), false]),
        );
        json!([b["hash"], b["stateRoot"]])
    }

    /// Every listed node has the same blocks (hash and state commitment) up
    /// to the lowest head among them.
    fn assert_agree(&self, nodes: &[usize]) -> u64 {
        let low = nodes.iter().map(|&i| head(&self.url(i))).min().unwrap();
        for n in 1..=low {
            let first = self.block_hash(nodes[0], n);
            for &i in &nodes[1..] {
                assert_eq!(
                    self.block_hash(i, n),
                    first,
                    "validators {} and {i} differ at block {n}",
                    nodes[0]
                );
            }
        }
        low
    }
}

#[test]
fn four_validators_commit_tolerate_one_fault_and_never_fork() {
    let key = dev_keys(1)[0];
    let me = address_of(&key).unwrap();
    let mut net = Net::new(4, &me);
    for i in 0..4 {
        net.start(i);
    }
    let url0 = net.url(0);
    wait_until(60, "4 validators commit 3 blocks", || {
        (0..4).all(|i| head(&net.url(i)) >= 3)
    });

    // a steady stream of transfers into validator 0, recorded once accepted
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (accepted, stop, url) = (accepted.clone(), stop.clone(), url0.clone());
        std::thread::spawn(move || {
            let mut nonce = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let raw = sign(
                    &TxRequest {
                        chain_id: CHAIN_ID,
                        nonce,
                        to: Some(Address::repeat_byte(0x77)),
                        value: U256::from(1),
                        gas_limit: 21_000,
                        ..Default::default()
                    },
                    &key,
                )
                .unwrap();
                let r = try_rpc(&url, "eth_sendRawTransaction", json!([raw.to_string()])).unwrap();
                if let Some(h) = r["result"].as_str() {
                    accepted.lock().unwrap().push(h.to_string());
                    nonce += 1;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // one of four killed: the rest keep committing
    net.kill(3);
    let h = head(&url0);
    wait_until(30, "3 of 4 validators keep committing", || {
        head(&url0) >= h + 5
    });

    // restarted: it catches up and agrees
    net.start(3);
    let target = head(&url0);
    wait_until(60, "the restarted validator catches up", || {
        head(&net.url(3)) >= target
    });
    net.assert_agree(&[0, 1, 2, 3]);

    // two of four stopped: no block is committed
    net.kill(2);
    net.kill(3);
    std::thread::sleep(Duration::from_millis(3 * BLOCK_MS + 500));
    let stalled = (head(&url0), head(&net.url(1)));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        (head(&url0), head(&net.url(1))),
        stalled,
        "blocks committed without a quorum"
    );
    assert_eq!(
        net.block_hash(0, stalled.0),
        net.block_hash(1, stalled.0),
        "fork at {}",
        stalled.0
    );
    let sent_while_stalled = accepted.lock().unwrap().len();

    // one back: progress resumes, and the late ones catch up
    net.start(3);
    wait_until(60, "progress resumes with 3 of 4", || {
        head(&url0) >= stalled.0 + 3
    });
    net.start(2);
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() > sent_while_stalled,
        "no transfer accepted after the stall"
    );

    // no accepted transaction is lost, and everyone agrees on where it is
    let mut blocks = HashSet::new();
    for h in &accepted {
        let mut r = serde_json::Value::Null;
        wait_until(60, &format!("receipt of {h}"), || {
            r = rpc(&url0, "eth_getTransactionReceipt", json!([h]));
            !r.is_null()
        });
        assert_eq!(r["status"], "0x1");
        blocks.insert(r["blockHash"].as_str().unwrap().to_string());
    }
    let last = head(&url0);
    wait_until(60, "all four at the same height", || {
        (0..4).all(|i| head(&net.url(i)) >= last)
    });
    let agreed = net.assert_agree(&[0, 1, 2, 3]);
    assert!(agreed >= last);
    let balance = rpc(
        &net.url(2),
        "eth_getBalance",
        json!([format!("{:#x}", Address::repeat_byte(0x77)), "latest"]),
    );
    assert_eq!(balance, json!(format!("{:#x}", accepted.len())));
    assert!(
        blocks.len() > 3,
        "transfers landed in {} blocks only",
        blocks.len()
    );
}
