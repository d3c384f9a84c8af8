//! Blocks built by one node, checked by re-execution on another, kept
//! across restarts; a block that does not match its execution is refused.

use crate::common;

use alloy_primitives::{Address, B256, U256};
use common::*;
use gradnet_ledger::chain::Chain;
use gradnet_ledger::exec::{self, BlockParams};
use gradnet_ledger::genesis::{address_of, dev_keys};
use gradnet_ledger::mempool::PoolConfig;

/// The serving step of a proposer without inference nodes: nothing served.
fn no_inference(
    _: &gradnet_inference::sidecar::RegistryView,
    _: Vec<gradnet_inference::precompile::Miss>,
    _: std::time::Instant,
) -> Vec<gradnet_inference::sidecar::ServedCall> {
    vec![]
}

fn params(t: u64) -> BlockParams {
    BlockParams {
        timestamp: 1_700_000_000 + t,
        proposer: Address::repeat_byte(1),
        coinbase: Address::repeat_byte(0xfe),
    }
}

#[test]
fn validators_reexecute_proposals_and_state_survives_restarts() {
    let keys = dev_keys(3);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Chain::open(da.path(), genesis(&keys), PoolConfig::default()).unwrap();
    let b = Chain::open(db.path(), genesis(&keys), PoolConfig::default()).unwrap();
    assert_eq!(a.head(), b.head());
    let to = Address::repeat_byte(9);
    for round in 0..3u64 {
        for (i, k) in keys.iter().enumerate() {
            for n in 0..4 {
                a.submit(&transfer(k, round * 4 + n, to, (i + 1) as u128))
                    .unwrap();
            }
        }
        let built = a.propose(&params(round + 1), 1000, &no_inference).unwrap();
        assert!(built.dropped.is_empty());
        assert_eq!(built.executed.block.transactions.len(), 12);
        // the other node re-executes the proposal and gets the same block
        let checked = exec::verify(
            &b.store.state().unwrap(),
            CHAIN_ID,
            &b.head(),
            &built.executed.block,
        )
        .unwrap();
        assert_eq!(checked.block, built.executed.block);
        assert_eq!(checked.diff, built.executed.diff);
        a.commit(&built.executed, &[]).unwrap();
        b.commit(&checked, &[]).unwrap();
        assert!(a.pool.is_empty());
    }
    assert_eq!(a.head(), b.head());
    assert_eq!(a.head().number, 3);
    let bal = |c: &Chain| c.account(&to).unwrap().balance;
    assert_eq!(bal(&a), U256::from((1 + 2 + 3) * 12));
    assert_eq!(bal(&a), bal(&b));

    // tampered proposals are refused
    for k in &keys {
        a.submit(&transfer(k, 12, to, 1)).unwrap();
    }
    let good = a
        .propose(&params(10), 1000, &no_inference)
        .unwrap()
        .executed
        .block;
    let state = b.store.state().unwrap();
    let mut bad = good.clone();
    bad.header.state_root = B256::repeat_byte(1);
    assert!(exec::verify(&state, CHAIN_ID, &b.head(), &bad).is_err());
    let mut bad = good.clone();
    bad.transactions.pop();
    assert!(exec::verify(&state, CHAIN_ID, &b.head(), &bad).is_err());
    let mut bad = good.clone();
    bad.header.gas_used += 1;
    assert!(exec::verify(&state, CHAIN_ID, &b.head(), &bad).is_err());
    let mut bad = good.clone();
    bad.transactions.push(bad.transactions[0].clone());
    assert!(exec::verify(&state, CHAIN_ID, &b.head(), &bad).is_err());
    let mut bad = good.clone();
    bad.header.number += 1;
    assert!(exec::verify(&state, CHAIN_ID, &b.head(), &bad).is_err());
    drop(state);

    // restart: the same head and state from the same directory
    let head = b.head();
    let balance = bal(&b);
    drop(b);
    let b = Chain::open(db.path(), genesis(&keys), PoolConfig::default()).unwrap();
    assert_eq!(b.head(), head);
    assert_eq!(bal(&b), balance);
    assert_eq!(b.account(&address_of(&keys[0]).unwrap()).unwrap().nonce, 12);
    drop(b);
    // another genesis on the same directory is refused
    let mut other = genesis(&keys);
    other.chain_id = 7;
    let err = Chain::open(db.path(), other, PoolConfig::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("holds another chain"), "{err}");
}

#[test]
fn the_pool_orders_by_nonce_and_tip_replaces_and_evicts() {
    use gradnet_client::wallet::{sign, Fees, TxRequest};
    let keys = dev_keys(3);
    let dir = tempfile::tempdir().unwrap();
    let cfg = PoolConfig {
        capacity: 4,
        nonce_window: 64,
    };
    let c = Chain::open(dir.path(), genesis(&keys), cfg).unwrap();
    let to = Address::repeat_byte(3);
    let tx = |k: &B256, nonce: u64, tip: u128| {
        sign(
            &TxRequest {
                chain_id: CHAIN_ID,
                nonce,
                to: Some(to),
                gas_limit: 21_000,
                fees: Fees::Dynamic {
                    max_fee: 100_000_000_000,
                    tip,
                },
                ..Default::default()
            },
            k,
        )
        .unwrap()
    };
    // sender 0: nonces 1 then 0 (gap filled later); sender 1: higher tip
    c.submit(&tx(&keys[0], 1, 5)).unwrap();
    c.submit(&tx(&keys[0], 0, 5)).unwrap();
    c.submit(&tx(&keys[1], 0, 50)).unwrap();
    let order: Vec<(Address, u64)> = c
        .pool
        .pending(|_| 0, 1_000_000_000, 10)
        .iter()
        .map(|t| (t.sender, t.nonce()))
        .collect();
    let (s0, s1) = (address_of(&keys[0]).unwrap(), address_of(&keys[1]).unwrap());
    assert_eq!(order, [(s1, 0), (s0, 0), (s0, 1)]);
    // replacement: same fee refused, 10% more accepted
    assert!(c.submit(&tx(&keys[1], 0, 50)).is_err());
    let e = c.submit(&tx(&keys[1], 0, 54)).unwrap_err().to_string();
    assert_eq!(e, "replacement transaction underpriced");
    // full: a cheap newcomer is refused, a better one evicts the cheapest tail
    c.submit(&tx(&keys[1], 1, 50)).unwrap();
    assert_eq!(c.pool.len(), 4);
    assert_eq!(
        c.submit(&tx(&keys[2], 0, 1)).unwrap_err().to_string(),
        "txpool is full"
    );
    c.submit(&tx(&keys[2], 0, 100)).unwrap();
    assert_eq!(c.pool.len(), 4);
    assert_eq!(c.pool.queued_nonces(&s0), [0]);
}

/// The state at each recent block reads as it was then (balances, nonces,
/// accounts that did not exist yet); blocks beyond what is kept are refused
/// by name, and archive mode keeps them all.
#[test]
fn recent_blocks_state_reads_as_it_was() {
    let keys = dev_keys(2);
    let dir = tempfile::tempdir().unwrap();
    let a = Chain::open(dir.path(), genesis(&keys), PoolConfig::default()).unwrap();
    a.store.set_state_history(Some(4));
    let to = Address::repeat_byte(7);
    let sender = address_of(&keys[0]).unwrap();
    let mut seen = vec![(0u64, U256::ZERO, 0u64)];
    for round in 0..8u64 {
        a.submit(&transfer(&keys[0], round, to, 10 + round as u128))
            .unwrap();
        let built = a.propose(&params(round + 1), 1000, &no_inference).unwrap();
        a.commit(&built.executed, &[]).unwrap();
        let head = a.head().number;
        seen.push((head, a.account(&to).unwrap().balance, round + 1));
        for &(n, balance, nonce) in &seen {
            let r = a.store.state_at(n);
            if n + 4 < head {
                let e = r.err().expect("pruned state is refused").to_string();
                assert!(e.contains("historical state is not available"), "{e}");
                assert!(e.contains(&format!("blocks {} to {head}", head - 4)), "{e}");
                continue;
            }
            let s = r.unwrap();
            let got = s.account(&to).unwrap().map(|i| i.balance);
            assert_eq!(
                got,
                (n > 0).then_some(balance),
                "balance at {n} (head {head})"
            );
            let got_nonce = s.account(&sender).unwrap().map_or(0, |i| i.nonce);
            assert_eq!(got_nonce, if n == 0 { 0 } else { nonce }, "nonce at {n}");
        }
    }
    let e = a
        .store
        .state_at(a.head().number + 1)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not found"), "{e}");
    // archive mode keeps every block from here on
    a.store.set_state_history(None);
    for round in 8..14u64 {
        a.submit(&transfer(&keys[0], round, to, 1)).unwrap();
        let built = a.propose(&params(round + 1), 1000, &no_inference).unwrap();
        a.commit(&built.executed, &[]).unwrap();
    }
    let head = a.head().number;
    let old = a.store.state_at(head - 6).unwrap();
    assert_eq!(
        old.account(&sender).unwrap().unwrap().nonce,
        8,
        "archive keeps the state at block {}",
        head - 6
    );
}
