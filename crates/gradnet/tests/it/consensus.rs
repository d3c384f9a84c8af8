//! Four validator processes on loopback reaching BFT consensus, and what
//! happens when some of them fail: one killed (SIGKILL) → the others keep
//! committing; restarted → it catches up by block sync and agrees; two of
//! four stopped → nothing is committed and nothing forks; one back → the
//! chain moves again. Transactions accepted throughout all land.

use crate::common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::{Address, U256};
use common::ledger::*;
use common::net::{Net, BLOCK_MS, CHAIN_ID};
use gradnet_client::wallet::{sign, TxRequest};
use gradnet_ledger::genesis::{address_of, dev_keys};
use serde_json::json;

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
