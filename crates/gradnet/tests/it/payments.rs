//! Paid inference on a devnet (real processes): a client deposits to two
//! inference nodes, makes 200 paid `/v1/infer` calls and 5 streamed chats
//! across them, both nodes redeem in batches, and the books agree to the
//! wei — the receipts' charges, what the escrow paid each node, and what
//! the client's channels say it spent. A withdrawal races a redemption; an
//! operator's new price is charged; a node killed with unredeemed vouchers
//! redeems them after its restart, and one killed between its redemption
//! landing and recording it is paid once and catches up; the unchanged
//! openai Python client pays with a default header.

use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};
use alloy_sol_types::{SolCall, SolEvent};
use gradnet_client::pay::Payer;
use gradnet_client::NodeClient;
use gradnet_ledger::genesis::{dev_key, DEV_OPERATOR_BASE};
use gradnet_types::payments::{IEscrow, ESCROW};
use serde_json::{json, Value};

use crate::common::{self, devnet::Devnet};

async fn channel(rpc: &str, payer: Address, payee: Address) -> IEscrow::Channel {
    let out = gradnet_client::Rpc::new(rpc)
        .unwrap()
        .call(ESCROW, IEscrow::channelCall { payer, payee }.abi_encode())
        .await
        .unwrap();
    IEscrow::channelCall::abi_decode_returns(&out).unwrap()
}

fn cli(node: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(common::BIN)
        .arg("--node")
        .arg(node)
        .args(args)
        .env("GRADNET_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until `f` holds, or fails naming `what`.
async fn until<F: std::future::Future<Output = bool>>(
    secs: u64,
    what: &str,
    mut f: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The operator account of the devnet's inference node `i`.
fn operators_of(i: u64) -> Address {
    gradnet_client::wallet::address(&dev_key(DEV_OPERATOR_BASE + i)).unwrap()
}

fn wei(v: &Value) -> U256 {
    v.as_str()
        .unwrap_or_else(|| panic!("not an amount: {v}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pays_two_nodes_and_the_books_agree_to_the_wei() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start_with(
        &dir.path().join("net"),
        4,
        &["--redeem-every", "3", "--withdrawal-delay", "8"],
    );
    let alice_key = net.keys[0].clone();
    let alice = gradnet_client::wallet::address(&alice_key.parse().unwrap()).unwrap();
    let nodes = [net.inference[0].clone(), net.inference[1].clone()];
    let operators: Vec<Address> = (0..2u64).map(operators_of).collect();
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let cid = gradnet_types::ContentId::of(&onnx).to_string();
    for node in &nodes {
        common::publish(
            node,
            "tiny-llm",
            "model.gguf",
            gradnet_runtime::llm::sample::tiny_llama(1),
        )
        .await;
        // a node asks for payment once it has read its prices from the chain
        until(60, "the node's 402", || async {
            let (st, _) = common::post(
                &format!("{node}/v1/infer"),
                json!({"model": cid, "inputs": {"x": [[1, 2, 3, 4]]}}),
            )
            .await;
            st == 402
        })
        .await;
        let terms: Value = common::get_json(&format!("{node}/api/v0/payments")).await;
        assert!(
            operators.iter().any(|o| terms["payee"] == json!(o)),
            "{terms}"
        );
        // the client deposits to each node through the CLI
        let (ok, out, err) = cli(
            node,
            &[
                "pay", "deposit", "0.01", "--key", &alice_key, "--rpc", &net.rpc,
            ],
        );
        assert!(ok, "{err}");
        assert!(out.contains("deposited 0.01"), "{out}");
    }

    // 100 paid calls at each node: vouchers of 50 calls each, signed as the nodes ask
    let price = U256::from(1_000_000_000_000u64);
    let mut charged = [U256::ZERO, U256::ZERO];
    for (i, node) in nodes.iter().enumerate() {
        let payer = std::sync::Arc::new(
            Payer::new(alice_key.parse().unwrap(), price * U256::from(50u64), 3600).unwrap(),
        );
        let c = NodeClient::new(node).with_payer(payer);
        for k in 0..100 {
            let r: Value = c
                .post(
                    "/v1/infer",
                    &json!({"model": cid, "inputs": {"x": [[k as f32, 0.5, -1.0, 2.0]]}}),
                )
                .await
                .unwrap_or_else(|e| panic!("call {k} at node {i}: {e}"));
            let (receipt, _) = gradnet_client::verify::verify_response(&r, None).unwrap();
            let charge = receipt
                .body
                .charge
                .expect("a paid answer's receipt names its charge");
            assert_eq!(wei(&json!(charge.amount)), price);
            charged[i] += price;
            assert_eq!(wei(&json!(charge.total)), charged[i]);
        }
        // 5 streamed chats across the two nodes: each charged its tokens
        for _ in 0..(if i == 0 { 3 } else { 2 }) {
            let mut last = Value::Null;
            c.post_sse::<gradnet_client::ClientError>(
                "/v1/chat/completions",
                &json!({"model": "tiny-llm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 6, "stream": true, "stream_options": {"include_usage": true}}),
                |v| {
                    if v.get("gradnet_charge").is_some() {
                        last = v;
                    }
                    Ok(())
                },
            )
            .await
            .unwrap();
            let receipt: gradnet_types::Receipt =
                serde_json::from_value(last["gradnet_receipt"].clone()).unwrap();
            receipt.verify().unwrap();
            let amount = wei(&last["gradnet_charge"]["amount"]);
            assert_eq!(
                json!(receipt.body.charge.unwrap().amount),
                last["gradnet_charge"]["amount"]
            );
            assert!(amount > U256::ZERO);
            charged[i] += amount;
        }
        let standing: Value = common::get_json(&format!("{node}/api/v0/payments/{alice}")).await;
        assert_eq!(wei(&standing["charged"]), charged[i], "{standing}");
    }

    // both nodes redeem on their own; the escrow then holds exactly what
    // the receipts say, and paid it out in Redeemed events
    for (i, node) in nodes.iter().enumerate() {
        let payee: Address = common::get_json::<Value>(&format!("{node}/api/v0/payments")).await
            ["payee"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let rpc = net.rpc.clone();
        let want = charged[i];
        until(60, "the node's redemption", || {
            let rpc = rpc.clone();
            async move { channel(&rpc, alice, payee).await.redeemed == want }
        })
        .await;
        let logs: Vec<Value> = gradnet_client::Rpc::new(&net.rpc)
            .unwrap()
            .request("eth_getLogs", json!([{"address": ESCROW, "fromBlock": "0x0", "toBlock": "latest", "topics": [IEscrow::Redeemed::SIGNATURE_HASH]}]))
            .await
            .unwrap();
        let payee_hex = alloy_primitives::hex::encode(payee);
        let paid: U256 = logs
            .iter()
            .filter(|l| l["topics"][2].as_str().unwrap().ends_with(&payee_hex))
            .map(|l| {
                let data = alloy_primitives::hex::decode(l["data"].as_str().unwrap()).unwrap();
                U256::from_be_slice(&data[32..64])
            })
            .sum();
        assert_eq!(
            paid, charged[i],
            "node {i}: the escrow paid what the receipts charged"
        );
        let metrics = reqwest::get(format!("{node}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("gradnet_payments_redeemed_wei_total"),
            "{metrics}"
        );
    }

    // a withdrawal races a redemption: charges made after it are still collected
    let c = NodeClient::new(&nodes[1]).with_payer(std::sync::Arc::new(
        Payer::new(alice_key.parse().unwrap(), price * U256::from(10u64), 3600).unwrap(),
    ));
    for _ in 0..3 {
        let _: Value = c
            .post(
                "/v1/infer",
                &json!({"model": cid, "inputs": {"x": [[1, 2, 3, 4]]}}),
            )
            .await
            .unwrap();
    }
    charged[1] += price * U256::from(3u64);
    let (ok, _, err) = cli(
        &nodes[1],
        &["pay", "withdraw", "--key", &alice_key, "--rpc", &net.rpc],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cli(
        &nodes[1],
        &[
            "pay", "withdraw", "--finish", "--key", &alice_key, "--rpc", &net.rpc,
        ],
    );
    assert!(
        !ok && err.contains("s from now"),
        "finished before the delay: {err}"
    );
    // the node takes no new work on the channel, and redeems what it charged
    let (st, e) = common::post(
        &format!("{}/v1/infer", nodes[1]),
        json!({"model": cid, "inputs": {"x": [[1, 2, 3, 4]]}}),
    )
    .await;
    assert_eq!(st, 402, "{e}");
    let payee: Address = common::get_json::<Value>(&format!("{}/api/v0/payments", nodes[1])).await
        ["payee"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let rpc = net.rpc.clone();
    let want = charged[1];
    until(30, "redemption during the withdrawal delay", || {
        let rpc = rpc.clone();
        async move { channel(&rpc, alice, payee).await.redeemed == want }
    })
    .await;
    let deposited = channel(&net.rpc, alice, payee).await.deposited;
    tokio::time::sleep(Duration::from_secs(9)).await;
    let (ok, out, err) = cli(
        &nodes[1],
        &[
            "pay", "withdraw", "--finish", "--key", &alice_key, "--rpc", &net.rpc,
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("withdrawn"), "{out}");
    let ch = channel(&net.rpc, alice, payee).await;
    assert_eq!(
        (ch.deposited, ch.redeemed),
        (want, want),
        "the rest went back: {deposited} deposited"
    );

    // an operator changes its price on chain; its node charges the new one
    let op0 = dev_key(DEV_OPERATOR_BASE).to_string();
    let (ok, _, err) = cli(
        &nodes[0],
        &[
            "pay",
            "prices",
            "--per-call",
            "0.000002",
            "--per-million-input",
            "0.001",
            "--per-million-output",
            "0.002",
            "--key",
            &op0,
            "--rpc",
            &net.rpc,
        ],
    );
    assert!(ok, "{err}");
    until(30, "the node's new price", || async {
        let t: Value = common::get_json(&format!("{}/api/v0/payments", nodes[0])).await;
        t["prices"]["perCall"] == "2000000000000"
    })
    .await;
    let c = NodeClient::new(&nodes[0]).with_payer(std::sync::Arc::new(
        Payer::new(alice_key.parse().unwrap(), price * U256::from(10u64), 3600).unwrap(),
    ));
    let r: Value = c
        .post(
            "/v1/infer",
            &json!({"model": cid, "inputs": {"x": [[1, 2, 3, 4]]}}),
        )
        .await
        .unwrap();
    assert_eq!(r["receipt"]["charge"]["amount"], "2000000000000", "{r}");
    charged[0] += price * U256::from(2u64);
    // the payer's view through the CLI, and the operator's redemption on demand
    let (ok, out, err) = cli(
        &nodes[0],
        &["pay", "status", "--key", &alice_key, "--rpc", &net.rpc],
    );
    assert!(ok, "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(wei(&status["node"]["charged"]), charged[0], "{status}");
    assert_eq!(status["prices"]["perCall"], "2000000000000", "{status}");
    let (ok, out, err) = cli(&nodes[0], &["pay", "terms"]);
    assert!(
        ok && out.contains("\"perMillionOutputTokens\": \"2000000000000000\""),
        "{out}{err}"
    );
    let (ok, out, err) = cli(&nodes[0], &["pay", "redeem", "--key", &op0]);
    assert!(ok && out.contains("redeemed"), "{out}{err}");
    let (rpc, want, op0_addr) = (net.rpc.clone(), charged[0], operators[0]);
    until(30, "the new charge redeemed", || {
        let rpc = rpc.clone();
        async move { channel(&rpc, alice, op0_addr).await.redeemed == want }
    })
    .await;
    // only the operator redeems its node's vouchers
    let (ok, _, err) = cli(&nodes[0], &["pay", "redeem", "--key", &alice_key]);
    assert!(!ok && err.contains("only this node's operator"), "{err}");

    // a node killed (SIGKILL) with unredeemed vouchers: restarted, it
    // redeems them: nothing it earned is lost
    let op2 = dev_key(DEV_OPERATOR_BASE + 2).to_string();
    let payee2 = operators_of(2);
    let data = dir.path().join("crashing-node");
    let flags = [
        "--operator-key",
        op2.as_str(),
        "--chain-rpc",
        net.rpc.as_str(),
        "--redeem-every",
        "3600",
        "--hub-peer",
        net.api.as_str(),
    ];
    let node = common::Node::start(&data, &flags);
    let url = node.url.clone();
    until(60, "the node's 402", || async {
        common::post(
            &format!("{url}/v1/infer"),
            json!({"model": cid, "inputs": {"x": [[1, 2, 3, 4]]}}),
        )
        .await
        .0 == 402
    })
    .await;
    // a deposit for three calls: the fourth is refused until the payer deposits more
    let (ok, _, err) = cli(
        &node.url,
        &[
            "pay", "deposit", "0.000003", "--key", &alice_key, "--rpc", &net.rpc,
        ],
    );
    assert!(ok, "{err}");
    let c = NodeClient::new(&node.url).with_payer(std::sync::Arc::new(
        Payer::new(alice_key.parse().unwrap(), price * U256::from(10u64), 3600).unwrap(),
    ));
    let body = json!({"model": cid, "inputs": {"x": [[1, 2, 3, 4]]}});
    let call = || c.post::<Value>("/v1/infer", &body);
    for _ in 0..3 {
        call().await.unwrap();
    }
    match call().await {
        Err(gradnet_client::ClientError::Api {
            status: 402, code, ..
        }) => assert_eq!(code, "insufficient_deposit"),
        other => panic!("a fourth call on a deposit for three: {other:?}"),
    }
    let (ok, _, err) = cli(
        &node.url,
        &[
            "pay", "deposit", "0.000002", "--key", &alice_key, "--rpc", &net.rpc,
        ],
    );
    assert!(ok, "{err}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..2 {
        call().await.unwrap();
    }
    drop(node);
    assert!(channel(&net.rpc, alice, payee2).await.redeemed.is_zero());
    let node = common::Node::start(&data, &flags);
    let standing: Value = common::get_json(&format!("{}/api/v0/payments/{alice}", node.url)).await;
    assert_eq!(
        wei(&standing["charged"]),
        price * U256::from(5u64),
        "{standing}"
    );
    // killed again just after its redemption lands on chain, before it
    // records it: the escrow has paid; restarted, the node redeems the same
    // voucher again, which pays nothing more, and its books catch up
    drop(node);
    let mut node = common::Node::start_env(&data, &flags, &[("GRADNET_CRASH_AT", "redeem-sent")]);
    let (ok, out, _) = cli(&node.url, &["pay", "redeem", "--key", &op2]);
    assert!(
        !ok,
        "the node answered its redemption though it crashed: {out}"
    );
    let status = node.child.wait().unwrap();
    assert!(!status.success(), "{status}");
    assert_eq!(
        channel(&net.rpc, alice, payee2).await.redeemed,
        price * U256::from(5u64),
        "the redemption landed before the crash"
    );
    let node = common::Node::start(&data, &flags);
    let (ok, out, err) = cli(&node.url, &["pay", "redeem", "--key", &op2]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        channel(&net.rpc, alice, payee2).await.redeemed,
        price * U256::from(5u64),
        "paid once"
    );
    let standing: Value = common::get_json(&format!("{}/api/v0/payments/{alice}", node.url)).await;
    assert_eq!(
        (wei(&standing["charged"]), wei(&standing["redeemed"])),
        (price * U256::from(5u64), price * U256::from(5u64)),
        "{standing}"
    );
    drop(node);

    // the unchanged openai client pays with a default header from `gradnet pay session`
    let (ok, header, err) = cli(&nodes[0], &["pay", "session", "0.001", "--key", &alice_key]);
    assert!(ok, "{err}");
    let python = std::env::var("GRADNET_PYTHON")
        .unwrap_or_else(|_| format!("{}/../../.venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    let script = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="unused", default_headers={"PAYMENT-SIGNATURE": sys.argv[2]})
r = c.chat.completions.create(model="tiny-llm", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
charge = r.model_extra["gradnet_charge"]
assert int(charge["amount"]) > 0, charge
print(charge["amount"])
"#;
    let out = tokio::process::Command::new(&python)
        .args(["-c", script, &nodes[0], header.trim()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    net.stop();
}
