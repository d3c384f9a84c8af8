//! A byzantine validator among four (`--byzantine-validator all`): when it
//! proposes it drops an honest node's answer, answers with a node that was
//! not sampled, forges and replays node signatures, marks agreed calls
//! unserved, replays the parent's sidecar, lies about the state, sends two
//! blocks for one round, withholds or garbles its proposal parts; and it
//! votes for everything unchecked. The three honest validators refuse each
//! attack by the check that catches it (their metrics count it), keep the
//! equivocation as evidence signed by the attacker, slash no honest node,
//! and the chain goes on: every accepted transaction lands once, and all
//! four agree on every block.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use serde_json::Value;

use crate::common;
use common::devnet::Devnet;
use common::inference::{node_record, operator};
use common::ledger::head;
use common::load::{assert_same_blocks, Traffic};

/// A metric's value in a node's `/metrics` (0 when absent).
fn metric(api: &str, name: &str) -> u64 {
    let text = reqwest::blocking::get(format!("{api}/metrics"))
        .and_then(|r| r.text())
        .unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

const STRATEGIES: [(&str, Option<&str>); 10] = [
    ("drop-answer", Some("sidecar-missed")),
    ("unsampled", Some("sidecar-sampling")),
    ("forge-signature", Some("sidecar-signature")),
    ("replay-signature", Some("sidecar-signature")),
    ("wrong-decision", Some("sidecar-decision")),
    ("replay-sidecar", Some("sidecar-completeness")),
    ("bad-results", Some("execution")),
    ("equivocate", Some("equivocation")),
    // nothing to refuse: the honest validators time out and move on
    ("withhold", None),
    ("garble", Some("stream-signature")),
];

#[test]
fn honest_validators_refuse_every_attack_of_a_byzantine_one_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start_with(
        dir.path(),
        4,
        &["--prices", "0,0,0", "--byzantine-validator", "all"],
    );
    let byz = net.apis[3].clone();
    let honest = [0usize, 1, 2];
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let cid = gradnet_types::cid::ContentId::of(&onnx).to_string();
    let key: B256 = net.keys[2].parse().unwrap();

    // a steady stream of inference transactions (QUORUM and VANILLA) and
    // transfers, each recorded once a validator accepts it
    let sink = Address::repeat_byte(0x77);
    let traffic = Traffic {
        key,
        chain_id: 31337,
        urls: vec![net.rpc.clone()],
        sink,
        model: Some(cid),
        every: Duration::from_millis(60),
    }
    .start();

    // the longest time between two commits while it attacks
    let mut longest = Duration::ZERO;
    let (mut last_head, mut last_at) = (head(&net.rpc), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(300);
    let applied = |s: &str| {
        metric(
            &byz,
            &format!("gradnet_byzantine_applied_total{{strategy=\"{s}\"}}"),
        )
    };
    // per strategy: the longest time from an attack to the attacked
    // height's commit (by an honest proposer, a round later)
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut pending: Vec<(&str, u64, Instant)> = vec![];
    let mut recovery: HashMap<&str, Duration> = HashMap::new();
    // every strategy at least twice
    while STRATEGIES.iter().any(|(s, _)| applied(s) < 2) {
        let now = head(&net.rpc);
        for (s, _) in STRATEGIES {
            let n = applied(s);
            if n > *seen.get(s).unwrap_or(&0) {
                seen.insert(s, n);
                pending.push((s, now, Instant::now()));
            }
        }
        pending.retain(|(s, at, t)| {
            let done = head(&net.rpc) > *at;
            if done {
                let r = recovery.entry(s).or_default();
                *r = (*r).max(t.elapsed());
            }
            !done
        });
        assert!(
            Instant::now() < deadline,
            "the byzantine validator did not try every strategy twice within 300 s: {:?}",
            STRATEGIES
                .iter()
                .map(|(s, _)| (s, applied(s)))
                .collect::<Vec<_>>()
        );
        let h = head(&net.rpc);
        if h > last_head {
            longest = longest.max(last_at.elapsed());
            (last_head, last_at) = (h, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let sent = traffic.stop();

    // each attack refused by every honest validator, by the check that catches it
    let mut table = vec![];
    for (strategy, check) in STRATEGIES {
        let Some(check) = check else { continue };
        let counts: Vec<u64> = honest
            .iter()
            .map(|&i| {
                metric(
                    &net.apis[i],
                    &format!("gradnet_consensus_refused_total{{check=\"{check}\"}}"),
                )
            })
            .collect();
        table.push((strategy, check, applied(strategy), counts.clone()));
        assert!(
            counts.iter().all(|&c| c >= 1),
            "{strategy}: honest validators' refusals by {check}: {counts:?}"
        );
    }
    for (s, c, n, counts) in &table {
        eprintln!("{s:>17}: applied {n}, refused ({c}) by validators 0..2: {counts:?}, attacked height committed within {:?}", recovery.get(s));
    }
    eprintln!(
        "         withhold: applied {}, attacked height committed within {:?}",
        applied("withhold"),
        recovery.get("withhold")
    );
    eprintln!("longest gap between commits under attack: {longest:?}");
    // nothing else refused: honest proposals pass every check
    for i in honest {
        for check in [
            "other",
            "transactions",
            "parent",
            "timestamp",
            "coinbase",
            "proposer",
            "sidecar-order",
            "sidecar-encoding",
            "sidecar-signer",
            "stream-format",
            "stream-proposer",
        ] {
            let n = metric(
                &net.apis[i],
                &format!("gradnet_consensus_refused_total{{check=\"{check}\"}}"),
            );
            assert_eq!(n, 0, "validator {i} refused {n} proposals by {check}");
        }
    }
    // the attacker itself refused nothing: it votes unchecked
    assert_eq!(
        metric(&byz, "gradnet_consensus_refused_total{check=\"execution\"}"),
        0
    );

    // the equivocation evidence: both streams signed by the attacker's key
    let genesis = gradnet_ledger::genesis::Genesis::from_json(
        &std::fs::read(dir.path().join("genesis.json")).unwrap(),
    )
    .unwrap();
    let attacker_key = genesis.validators[3].public_key.clone();
    let evidence_dir = dir.path().join("node0/consensus/evidence");
    let file = std::fs::read_dir(&evidence_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", evidence_dir.display()))
        .next()
        .expect("an equivocation file")
        .unwrap()
        .path();
    let e: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    check_equivocation(&e, &attacker_key, &genesis);

    // every accepted transaction lands, once, successfully
    assert!(
        sent.accepted.len() > 20,
        "only {} transactions sent",
        sent.accepted.len()
    );
    sent.assert_applied_once(&net.rpcs[1], sink);

    // no honest inference node slashed, on any validator
    let stake = U256::from(100u64) * U256::from(10u64).pow(U256::from(18));
    for url in &net.rpcs {
        for i in 0..3 {
            let n = node_record(url, operator(i));
            assert_eq!((n.stake, n.faults), (stake, 0), "node {i} on {url}");
        }
    }

    // all four (the attacker too) agree on every block
    assert_same_blocks(&net.rpcs);
    net.stop();
}

/// Both streams of the evidence are the attacker's signatures over
/// different blocks for one height and round.
fn check_equivocation(e: &Value, attacker_key: &str, g: &gradnet_ledger::genesis::Genesis) {
    use gradnet_consensus::context::{
        round_from_code, Height, PublicKey, Signature, Signer, ValidatorId, TAG_STREAM,
    };
    use gradnet_consensus::parts::stream_body;
    let key = PublicKey::from_bytes(hex::decode(attacker_key).unwrap().try_into().unwrap());
    let proposer = ValidatorId::of(&key);
    assert_eq!(e["proposer"].as_str().unwrap(), proposer.0.to_string());
    let s = &e["streams"];
    assert_ne!(s[0]["block"], s[1]["block"], "{e}");
    let round = |c: &Value| round_from_code(c.as_u64().unwrap()).unwrap();
    for st in s.as_array().unwrap() {
        let block: B256 = st["block"].as_str().unwrap().parse().unwrap();
        let body = stream_body(
            Height(e["height"].as_u64().unwrap()),
            round(&e["round"]),
            round(&st["pol_round"]),
            &proposer,
            &block,
        );
        let sig = hex::decode(st["signature"].as_str().unwrap()).unwrap();
        let sig = Signature::from_bytes(sig.try_into().unwrap());
        let signed = Signer::domain(TAG_STREAM, &g.hash(), &body);
        assert!(
            key.verify(&signed, &sig).is_ok(),
            "the evidence's signature does not hold: {e}"
        );
    }
}
