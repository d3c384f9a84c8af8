//! A devnet of four validators whose links run through a faulty network
//! (`common::chaos`): latency with jitter and lost segments, one validator
//! silently partitioned and healed, then one cut off, then two, then
//! healed; with transfers and inference transactions in flight all along.
//! Safety always (no two blocks final at one height, checked continuously),
//! liveness while three of four can talk, catch-up after healing, and every
//! accepted transaction applied exactly once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::Address;
use serde_json::json;

use crate::common;
use common::chaos::{Chaos, Faults};
use common::devnet::{Devnet, DevnetPorts};
use common::ledger::{head, try_rpc, wait_until};
use common::load::{assert_same_blocks, Sent, Traffic};

/// Watches every validator's head block; any two hashes seen for one
/// height are a fork.
fn monitor(rpcs: Vec<String>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut seen: HashMap<u64, (String, usize)> = HashMap::new();
        let mut forks = vec![];
        while !stop.load(Ordering::Relaxed) {
            for (i, u) in rpcs.iter().enumerate() {
                let Ok(b) = try_rpc(u, "eth_getBlockByNumber", json!(["latest", false])) else {
                    continue;
                };
                let b = &b["result"];
                let (Some(n), Some(h)) = (b["number"].as_str(), b["hash"].as_str()) else {
                    continue;
                };
                let n = u64::from_str_radix(n.trim_start_matches("0x"), 16).unwrap();
                let e = seen.entry(n).or_insert((h.to_string(), i));
                if e.0 != h {
                    forks.push(format!(
                        "block {n}: {} on validator {}, {h} on validator {i}",
                        e.0, e.1
                    ));
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        forks
    })
}

#[test]
fn a_faulty_network_never_forks_recovers_and_loses_no_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let ports = DevnetPorts::free(4);
    let (chaos, base) = Chaos::new(4, ports.p2p, ports.rpc);
    let net = Devnet::start_on(
        dir.path(),
        &ports,
        &["--prices", "0,0,0", "--links-via", &base.to_string()],
    );
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let cid = gradnet_types::cid::ContentId::of(&onnx).to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let watch = monitor(net.rpcs.clone(), stop.clone());
    // one sender on the validators that stay connected, one on all four
    let sinks = [Address::repeat_byte(0x61), Address::repeat_byte(0x62)];
    let traffic = |key: &str, urls: &[String], sink| {
        Traffic {
            key: key.parse().unwrap(),
            chain_id: 31337,
            urls: urls.to_vec(),
            sink,
            model: Some(cid.clone()),
            every: Duration::from_millis(80),
        }
        .start()
    };
    let senders = [
        traffic(&net.keys[0], &net.rpcs[..2], sinks[0]),
        traffic(&net.keys[1], &net.rpcs, sinks[1]),
    ];
    let mut table: Vec<(String, String)> = vec![];
    let timed = |what: &str, secs: u64, f: &mut dyn FnMut() -> bool| {
        let t = Instant::now();
        wait_until(secs, what, f);
        t.elapsed()
    };

    // latency 40 ± 30 ms and 2% of segments lost on every link
    chaos.set_all(Faults {
        delay_ms: 40,
        jitter_ms: 30,
        loss_permille: 20,
    });
    let h = head(&net.rpc);
    let t = timed("10 blocks over a slow, lossy network", 90, &mut || {
        (0..4).all(|i| head(&net.rpcs[i]) >= h + 10)
    });
    table.push((
        "40±30 ms, 2% loss: 10 blocks on all four".into(),
        format!("{t:.1?}"),
    ));

    // one validator behind a silent partition (connections hang, nothing
    // crosses): the other three go on; healed, it catches up
    chaos.silence(3);
    let (h, cut) = (head(&net.rpc), head(&net.rpcs[3]));
    let t = timed(
        "three of four commit 10 blocks past a silent partition",
        90,
        &mut || head(&net.rpc) >= h + 10,
    );
    table.push((
        "validator 3 silently partitioned: 10 blocks on the other three".into(),
        format!("{t:.1?}"),
    ));
    assert!(
        head(&net.rpcs[3]) <= cut + 1,
        "a partitioned validator committed blocks"
    );
    chaos.heal();
    let target = head(&net.rpc);
    let t = timed(
        "the silently partitioned validator catches up",
        90,
        &mut || head(&net.rpcs[3]) >= target,
    );
    table.push(("healed: validator 3 caught up".into(), format!("{t:.1?}")));

    // one validator cut off: the other three go on
    chaos.isolate(3);
    let (h, cut) = (head(&net.rpc), head(&net.rpcs[3]));
    let t = timed("three of four commit 10 blocks", 90, &mut || {
        head(&net.rpc) >= h + 10
    });
    table.push((
        "validator 3 isolated: 10 blocks on the other three".into(),
        format!("{t:.1?}"),
    ));
    assert!(
        head(&net.rpcs[3]) <= cut + 1,
        "an isolated validator committed blocks"
    );

    // two cut off: nothing is final, nothing forks
    chaos.isolate(2);
    std::thread::sleep(Duration::from_secs(2));
    let stalled: Vec<u64> = (0..4).map(|i| head(&net.rpcs[i])).collect();
    std::thread::sleep(Duration::from_secs(5));
    let after: Vec<u64> = (0..4).map(|i| head(&net.rpcs[i])).collect();
    assert_eq!(after, stalled, "blocks committed by two of four");
    table.push((
        "validators 2 and 3 isolated: blocks in 5 s".into(),
        "0".into(),
    ));

    // healed: progress, and the two catch up
    chaos.heal();
    let top = *stalled.iter().max().unwrap();
    let t = timed("progress after healing", 90, &mut || {
        head(&net.rpc) >= top + 3
    });
    table.push(("healed: first 3 blocks".into(), format!("{t:.1?}")));
    let target = head(&net.rpc);
    let t = timed("all four at one height after healing", 90, &mut || {
        (0..4).all(|i| head(&net.rpcs[i]) >= target)
    });
    table.push((
        "healed: validators 2 and 3 caught up".into(),
        format!("{t:.1?}"),
    ));
    chaos.set_all(Faults::default());

    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let sent: Vec<Sent> = senders.into_iter().map(|s| s.stop()).collect();
    let forks = watch.join().unwrap();
    assert!(forks.is_empty(), "forks seen: {forks:?}");

    // every accepted transaction applied, once; every validator the same blocks
    for (s, sink) in sent.iter().zip(sinks) {
        assert!(s.accepted.len() > 20, "only {} accepted", s.accepted.len());
        s.assert_applied_once(&net.rpcs[3], sink);
    }
    let last = assert_same_blocks(&net.rpcs);
    let txs: usize = sent.iter().map(|s| s.accepted.len()).sum();
    table.push((
        "transactions accepted / applied / lost".into(),
        format!("{txs} / {txs} / 0"),
    ));
    table.push((
        "blocks checked on all four / forks".into(),
        format!("{last} / 0"),
    ));
    for (what, v) in &table {
        eprintln!("{what:>55}: {v}");
    }
    net.stop();
}
