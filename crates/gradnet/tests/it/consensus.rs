//! Four validator processes on loopback reaching BFT consensus, and what
//! happens when some of them fail: one killed (SIGKILL) → the others keep
//! committing; restarted → it catches up by block sync and agrees; two of
//! four stopped → nothing is committed and nothing forks; one back → the
//! chain moves again. Transactions accepted throughout all land.

use crate::common;

use std::time::Duration;

use alloy_primitives::Address;
use common::ledger::*;
use common::load::{assert_same_blocks, Traffic};
use common::net::{Net, BLOCK_MS, CHAIN_ID};
use gradnet_ledger::genesis::{address_of, dev_keys};

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
    let sink = Address::repeat_byte(0x77);
    let traffic = Traffic {
        key,
        chain_id: CHAIN_ID,
        urls: vec![url0.clone()],
        sink,
        model: None,
        every: Duration::from_millis(20),
    }
    .start();

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
    let sent_while_stalled = traffic.accepted();

    // one back: progress resumes, and the late ones catch up
    net.start(3);
    wait_until(60, "progress resumes with 3 of 4", || {
        head(&url0) >= stalled.0 + 3
    });
    net.start(2);
    let sent = traffic.stop();
    assert!(
        sent.accepted.len() > sent_while_stalled,
        "no transfer accepted after the stall"
    );

    // no accepted transaction is lost, and everyone agrees on where it is
    let blocks = sent.assert_applied_once(&net.url(2), sink);
    let urls: Vec<String> = (0..4).map(|i| net.url(i)).collect();
    assert_same_blocks(&urls);
    assert!(
        blocks.len() > 3,
        "transfers landed in {} blocks only",
        blocks.len()
    );
}
