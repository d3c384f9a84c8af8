//! PIPE end to end on one validator with inference nodes on loopback
//! ports: a contract's call to the precompile inside a block is served by
//! the sampled, registered nodes; a QUORUM call outvotes a faulty node,
//! which is slashed with evidence; a node that is down is replaced and
//! marked; a call nobody can serve reverts after its tries; fees go from
//! the sender to the agreeing nodes.

use crate::common;

use std::sync::Arc;

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::{SolCall, SolError, SolValue};
use common::*;
use gradnet_client::wallet::{sign, TxRequest};
use gradnet_inference::abi::{
    model_output, InferencePrecompile::runModelInferenceCall, ModelInferenceRequest, ModelInput,
    ModelOutput, MultiDimensionalNumberTensor, Number,
};
use gradnet_inference::precompile::Inferencer;
use gradnet_inference::registry::{self, IInferenceRegistry, INFERENCE_FEE, MIN_STAKE};
use gradnet_inference::sidecar::{Evidence, SLASH_MISSED_BPS, SLASH_WRONG_BPS};
use gradnet_inference::zk;
use gradnet_ledger::genesis::GenesisInferenceNode;
use gradnet_node::pipe::answer::{router, OutcomeSigner};
use gradnet_runtime::{OnnxRunner, RuntimeConfig};
use gradnet_types::cid::ContentId;
use gradnet_types::NodeKey;
use serde_json::{json, Value};

fn relay_initcode() -> Bytes {
    gradnet_inference::demo_contract::initcode()
}

struct InferenceNode {
    operator: Address,
    key: Arc<NodeKey>,
    url: String,
    server: tokio::task::JoinHandle<()>,
}

fn local(onnx: &[u8]) -> Local {
    Local {
        runtime: OnnxRunner::new(RuntimeConfig::default()).unwrap(),
        models: [(ContentId::of(onnx).to_string(), onnx.to_vec())].into(),
    }
}

async fn inference_node(i: u8, onnx: &[u8], perturb: bool) -> InferenceNode {
    serve_node(i, Arc::new(local(onnx)), perturb).await
}

async fn serve_node(i: u8, inferencer: Arc<dyn Inferencer>, perturb: bool) -> InferenceNode {
    let key = Arc::new(NodeKey::from_seed([0x40 + i; 32]));
    let answerer = OutcomeSigner {
        inferencer,
        key: key.clone(),
        perturb,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = router(Arc::new(answerer));
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    InferenceNode {
        operator: Address::repeat_byte(0xa0 + i),
        key,
        url,
        server,
    }
}

fn registered(n: &InferenceNode) -> GenesisInferenceNode {
    GenesisInferenceNode {
        operator: n.operator,
        signing_key: n.key.public_hex(),
        endpoint: n.url.clone(),
        modes: vec![0, 3],
        models: vec![],
        stake: MIN_STAKE * U256::from(10),
        engine: "gradnet-onnx/0.1.0".into(),
        profile: gradnet_types::DETERMINISTIC_PROFILE.into(),
        prices: None,
    }
}

fn request(cid: &str, mode: u8, x: [i128; 4]) -> ModelInferenceRequest {
    ModelInferenceRequest {
        mode,
        modelCID: cid.into(),
        input: ModelInput {
            numbers: vec![MultiDimensionalNumberTensor {
                name: "x".into(),
                values: x
                    .iter()
                    .map(|v| Number {
                        value: *v,
                        decimals: 1,
                    })
                    .collect(),
                shape: vec![1, 4],
            }],
            strings: vec![],
        },
    }
}

async fn send(dev: &Dev, key: usize, nonce: u64, to: Option<Address>, data: Bytes) -> Value {
    send_value(dev, key, nonce, to, U256::ZERO, data).await
}

async fn send_value(
    dev: &Dev,
    key: usize,
    nonce: u64,
    to: Option<Address>,
    value: U256,
    data: Bytes,
) -> Value {
    let raw = sign(
        &TxRequest {
            chain_id: CHAIN_ID,
            nonce,
            to,
            value,
            gas_limit: 2_000_000,
            data,
            ..Default::default()
        },
        &dev.keys[key],
    )
    .unwrap();
    let h = rpc(&dev.url, "eth_sendRawTransaction", json!([raw])).await;
    wait_receipt(&dev.url, h.as_str().unwrap()).await
}

async fn node_info(dev: &Dev, op: Address) -> IInferenceRegistry::InferenceNode {
    let data = IInferenceRegistry::getNodeCall { operator: op }.abi_encode();
    let out = rpc(
        &dev.url,
        "eth_call",
        json!([{"to": registry::ADDRESS, "data": Bytes::from(data)}, "latest"]),
    )
    .await;
    let out: Bytes = serde_json::from_value(out).unwrap();
    IInferenceRegistry::getNodeCall::abi_decode_returns(&out).unwrap()
}

fn logged_output(receipt: &Value) -> ModelOutput {
    let log = receipt["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["topics"].as_array().unwrap().is_empty())
        .unwrap_or_else(|| panic!("no LOG0 in {receipt}"));
    let data: Bytes = serde_json::from_value(log["data"].clone()).unwrap();
    ModelOutput::abi_decode(&data).unwrap()
}

/// The `Error(string)` a failed transaction reverted with.
fn revert_reason(receipt: &Value) -> String {
    let data: Bytes = serde_json::from_value(receipt["revertReason"].clone()).unwrap();
    alloy_sol_types::Revert::abi_decode(&data)
        .map(|r| r.reason)
        .unwrap_or_else(|_| format!("undecodable {data}"))
}

fn balance(v: Value) -> U256 {
    U256::from(hexq(&v))
}

#[tokio::test]
async fn quorum_outvotes_and_slashes_a_faulty_node_and_the_caller_gets_the_honest_result() {
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let cid = ContentId::of(&onnx).to_string();
    let nodes = vec![
        inference_node(0, &onnx, false).await,
        inference_node(1, &onnx, false).await,
        inference_node(2, &onnx, true).await,
    ];
    let regs: Vec<_> = nodes.iter().map(registered).collect();
    let dev = dev_with(|g| g.inference_nodes = regs).await;

    let deploy = send(&dev, 0, 0, None, relay_initcode()).await;
    assert_eq!(deploy["status"], "0x1", "{deploy}");
    let relay: Address = serde_json::from_value(deploy["contractAddress"].clone()).unwrap();

    // what the model gives, run directly
    let runtime = OnnxRunner::new(RuntimeConfig::default()).unwrap();
    let m = runtime.load(cid.parse().unwrap(), &onnx).unwrap();
    let inputs = gradnet_types::json::parse_inputs(&json!({"x": [[0.5, -1.0, 2.5, 3.0]]})).unwrap();
    let (_, direct) = runtime.infer(&m, &inputs).unwrap();
    let want = model_output(&direct, false).unwrap();

    let sender = gradnet_ledger::genesis::address_of(&dev.keys[0]).unwrap();
    let before = balance(rpc(&dev.url, "eth_getBalance", json!([sender, "latest"])).await);
    let call = runModelInferenceCall {
        request: request(&cid, 3, [5, -10, 25, 30]),
    };
    let r = send(&dev, 0, 1, Some(relay), call.abi_encode().into()).await;
    assert_eq!(r["status"], "0x1", "{r}");
    let got = logged_output(&r);
    assert!(!got.is_simulation_result);
    assert_eq!(got.numbers, want.numbers);

    // the faulty node lost 10% of its stake, with both signed results kept
    let stake = MIN_STAKE * U256::from(10);
    let bad = node_info(&dev, nodes[2].operator).await;
    assert_eq!(
        bad.stake,
        stake - stake * U256::from(SLASH_WRONG_BPS) / U256::from(10_000)
    );
    assert_eq!(bad.faults, 1);
    let ev = IInferenceRegistry::faultEvidenceCall {
        operator: nodes[2].operator,
        index: 0,
    };
    let out = rpc(
        &dev.url,
        "eth_call",
        json!([{"to": registry::ADDRESS, "data": Bytes::from(ev.abi_encode())}, "latest"]),
    )
    .await;
    let out: Bytes = serde_json::from_value(out).unwrap();
    let ev = IInferenceRegistry::faultEvidenceCall::abi_decode_returns(&out).unwrap();
    assert!(
        ev.reason.contains("differs from the majority"),
        "{}",
        ev.reason
    );
    let evidence: Evidence = alloy_rlp::Decodable::decode(&mut ev.evidence.as_ref()).unwrap();
    assert_eq!(evidence.dissent.node, nodes[2].operator);
    assert_ne!(evidence.majority.outcome, evidence.dissent.outcome);

    // the honest nodes each earned one fee; the sender paid two (plus gas)
    for n in &nodes[..2] {
        let info = node_info(&dev, n.operator).await;
        assert_eq!((info.earnings, info.faults), (INFERENCE_FEE, 0));
    }
    let after = balance(rpc(&dev.url, "eth_getBalance", json!([sender, "latest"])).await);
    let gas = U256::from(hexq(&r["gasUsed"]) * hexq(&r["effectiveGasPrice"]));
    assert_eq!(before - after, gas + INFERENCE_FEE * U256::from(2));

    // the faulty node now cools down: a VANILLA call goes to an honest one
    let call = runModelInferenceCall {
        request: request(&cid, 0, [1, 2, 3, 4]),
    };
    let r = send(&dev, 0, 2, Some(relay), call.abi_encode().into()).await;
    assert_eq!(r["status"], "0x1", "{r}");
    let inputs = gradnet_types::json::parse_inputs(&json!({"x": [[0.1, 0.2, 0.3, 0.4]]})).unwrap();
    let (_, direct) = runtime.infer(&m, &inputs).unwrap();
    assert_eq!(
        logged_output(&r).numbers,
        model_output(&direct, false).unwrap().numbers
    );

    // bad input in a block: a readable revert, and the chain goes on
    let mut unknown = request(&cid, 0, [1, 2, 3, 4]);
    unknown.modelCID = ContentId::of(b"nothing").to_string();
    let r = send(
        &dev,
        1,
        0,
        Some(relay),
        runModelInferenceCall { request: unknown }
            .abi_encode()
            .into(),
    )
    .await;
    assert_eq!(r["status"], "0x0");
    assert!(revert_reason(&r).contains("unknown model"), "{r}");
    let r = send(&dev, 1, 1, Some(relay), Bytes::from_static(&[1, 2, 3, 4])).await;
    assert_eq!(r["status"], "0x0");
    assert!(revert_reason(&r).contains("malformed call"), "{r}");
    let mut wrong = request(&cid, 0, [1, 2, 3, 4]);
    wrong.input.numbers[0].shape = vec![2, 2];
    let r = send(
        &dev,
        1,
        2,
        Some(relay),
        runModelInferenceCall { request: wrong }.abi_encode().into(),
    )
    .await;
    assert_eq!(r["status"], "0x0");
    assert!(revert_reason(&r).contains("shape"), "{r}");
    // a sender without the fee
    let poor = alloy_primitives::B256::repeat_byte(0x77);
    let poor_addr = gradnet_ledger::genesis::address_of(&poor).unwrap();
    let t = transfer(&dev.keys[1], 3, poor_addr, 1_000_000_000_000_000);
    let h = rpc(&dev.url, "eth_sendRawTransaction", json!([t])).await;
    wait_receipt(&dev.url, h.as_str().unwrap()).await;
    let raw = sign(
        &TxRequest {
            chain_id: CHAIN_ID,
            nonce: 0,
            to: Some(relay),
            gas_limit: 300_000,
            fees: gradnet_client::wallet::Fees::Dynamic {
                max_fee: 2_000_000_000,
                tip: 0,
            },
            data: runModelInferenceCall {
                request: request(&cid, 3, [1, 2, 3, 4]),
            }
            .abi_encode()
            .into(),
            ..Default::default()
        },
        &poor,
    )
    .unwrap();
    let h = rpc(&dev.url, "eth_sendRawTransaction", json!([raw])).await;
    let r = wait_receipt(&dev.url, h.as_str().unwrap()).await;
    assert_eq!(r["status"], "0x0");
    assert!(revert_reason(&r).contains("inference fee"), "{r}");
    for n in nodes {
        n.server.abort();
    }
}

#[tokio::test]
async fn a_node_that_is_down_is_replaced_and_a_call_nobody_serves_reverts_after_its_tries() {
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let cid = ContentId::of(&onnx).to_string();
    let nodes = vec![
        inference_node(0, &onnx, false).await,
        inference_node(1, &onnx, false).await,
        inference_node(2, &onnx, false).await,
        inference_node(3, &onnx, false).await,
    ];
    let regs: Vec<_> = nodes.iter().map(registered).collect();
    let dev = dev_with(|g| g.inference_nodes = regs).await;
    let deploy = send(&dev, 0, 0, None, relay_initcode()).await;
    let relay: Address = serde_json::from_value(deploy["contractAddress"].clone()).unwrap();

    // one node down: QUORUM of 4 (mode 3 | 4 << 4) needs 3 equal answers;
    // the three live nodes are paid, the one that missed loses 1%
    nodes[1].server.abort();
    let stake = MIN_STAKE * U256::from(10);
    let call = runModelInferenceCall {
        request: request(&cid, 0x43, [5, -10, 25, 30]),
    };
    let r = send(&dev, 0, 1, Some(relay), call.abi_encode().into()).await;
    assert_eq!(r["status"], "0x1", "{r}");
    for x in [&nodes[0], &nodes[2], &nodes[3]] {
        assert_eq!(node_info(&dev, x.operator).await.earnings, INFERENCE_FEE);
    }
    let down = node_info(&dev, nodes[1].operator).await;
    assert_eq!(down.faults, 1);
    assert_eq!(
        down.stake,
        stake - stake * U256::from(SLASH_MISSED_BPS) / U256::from(10_000)
    );

    // a second node down: the first sits out its cooldown, so QUORUM-3
    // samples the other three; the two live ones agree
    nodes[2].server.abort();
    let call = runModelInferenceCall {
        request: request(&cid, 3, [1, 1, 1, 1]),
    };
    let r = send(&dev, 0, 2, Some(relay), call.abi_encode().into()).await;
    assert_eq!(r["status"], "0x1", "{r}");
    assert_eq!(node_info(&dev, nodes[2].operator).await.faults, 1);
    assert_eq!(node_info(&dev, nodes[1].operator).await.faults, 1);

    // nobody up: the transaction waits, then reverts with the reason
    for n in &nodes {
        n.server.abort();
    }
    let call = runModelInferenceCall {
        request: request(&cid, 0, [7, 7, 7, 7]),
    };
    let r = send(&dev, 2, 0, Some(relay), call.abi_encode().into()).await;
    assert_eq!(r["status"], "0x0", "{r}");
    assert!(
        revert_reason(&r).contains("not served after 3 blocks"),
        "{r}"
    );
    // transfers keep going
    let t = transfer(&dev.keys[2], 1, Address::repeat_byte(9), 1);
    let h = rpc(&dev.url, "eth_sendRawTransaction", json!([t])).await;
    assert_eq!(
        wait_receipt(&dev.url, h.as_str().unwrap()).await["status"],
        "0x1"
    );
}

#[tokio::test]
async fn operators_register_stake_and_unbond_through_the_registry() {
    let dev = dev().await;
    let key = NodeKey::from_seed([0x55; 32]);
    let op = gradnet_ledger::genesis::address_of(&dev.keys[0]).unwrap();
    let call = |data: Vec<u8>, value: U256, nonce: u64, who: usize| {
        let raw = sign(
            &TxRequest {
                chain_id: CHAIN_ID,
                nonce,
                to: Some(registry::ADDRESS),
                value,
                gas_limit: 1_000_000,
                data: data.into(),
                ..Default::default()
            },
            &dev.keys[who],
        )
        .unwrap();
        let url = dev.url.clone();
        async move {
            let h = rpc(&url, "eth_sendRawTransaction", json!([raw])).await;
            wait_receipt(&url, h.as_str().unwrap()).await
        }
    };
    let register = |endpoint: &str| {
        IInferenceRegistry::registerCall {
            signingKey: alloy_primitives::B256::from_slice(&hex::decode(key.public_hex()).unwrap()),
            endpoint: endpoint.into(),
            modes: vec![0, 3],
            models: vec![],
        }
        .abi_encode()
    };
    let r = call(register("http://127.0.0.1:9"), MIN_STAKE, 0, 0).await;
    assert_eq!(r["status"], "0x1", "{r}");
    // NodeRegistered and Staked
    assert_eq!(r["logs"].as_array().unwrap().len(), 2, "{r}");
    let n = node_info(&dev, op).await;
    assert!(n.active);
    assert_eq!(
        (n.stake, n.modes.clone(), n.endpoint.as_str()),
        (MIN_STAKE, vec![0, 3], "http://127.0.0.1:9")
    );

    // refusals name the problem; the value goes back with the revert
    let r = call(register("http://127.0.0.1:9"), MIN_STAKE, 1, 0).await;
    assert!(revert_reason(&r).contains("already registered"), "{r}");
    let r = call(
        register("http://127.0.0.1:9"),
        MIN_STAKE / U256::from(2),
        0,
        1,
    )
    .await;
    assert!(revert_reason(&r).contains("below the minimum"), "{r}");
    let r = call(register("ftp://x"), MIN_STAKE, 1, 1).await;
    assert!(revert_reason(&r).contains("not http"), "{r}");

    // more stake, then unbond half: not active below the minimum, and
    // nothing to withdraw before the delay
    let r = call(
        IInferenceRegistry::stakeCall {}.abi_encode(),
        MIN_STAKE,
        2,
        0,
    )
    .await;
    assert_eq!(r["status"], "0x1", "{r}");
    let r = call(
        IInferenceRegistry::unbondCall {
            amount: MIN_STAKE + MIN_STAKE / U256::from(2),
        }
        .abi_encode(),
        U256::ZERO,
        3,
        0,
    )
    .await;
    assert_eq!(r["status"], "0x1", "{r}");
    let n = node_info(&dev, op).await;
    assert!(!n.active);
    assert_eq!(n.unbonding, MIN_STAKE + MIN_STAKE / U256::from(2));
    let r = call(
        IInferenceRegistry::withdrawCall {}.abi_encode(),
        U256::ZERO,
        4,
        0,
    )
    .await;
    assert!(revert_reason(&r).contains("nothing to withdraw yet"), "{r}");
    let r = call(
        IInferenceRegistry::unbondCall { amount: MIN_STAKE }.abi_encode(),
        U256::ZERO,
        5,
        0,
    )
    .await;
    assert!(revert_reason(&r).contains("cannot unbond"), "{r}");

    // the list of active nodes leaves it out now
    let out = rpc(
        &dev.url,
        "eth_call",
        json!([{"to": registry::ADDRESS, "data": Bytes::from(IInferenceRegistry::activeNodesCall {}.abi_encode())}, "latest"]),
    )
    .await;
    let out: Bytes = serde_json::from_value(out).unwrap();
    assert!(
        IInferenceRegistry::activeNodesCall::abi_decode_returns(&out)
            .unwrap()
            .is_empty()
    );
}

async fn send_gas(
    dev: &Dev,
    key: usize,
    nonce: u64,
    to: Address,
    data: Vec<u8>,
    gas: u64,
) -> Value {
    let raw = sign(
        &TxRequest {
            chain_id: CHAIN_ID,
            nonce,
            to: Some(to),
            gas_limit: gas,
            data: data.into(),
            ..Default::default()
        },
        &dev.keys[key],
    )
    .unwrap();
    let h = rpc(&dev.url, "eth_sendRawTransaction", json!([raw])).await;
    wait_receipt(&dev.url, h.as_str().unwrap()).await
}

#[tokio::test]
async fn a_batch_of_a_thousand_receipts_settles_and_one_forged_signature_rejects_a_batch() {
    use gradnet_inference::receipts::{self, CompactReceipt};
    use gradnet_types::mode::InferenceMode;
    use gradnet_types::receipt::{Receipt, ReceiptBody, RuntimeId};
    let key = NodeKey::from_seed([0x66; 32]);
    let keys = gradnet_ledger::genesis::dev_keys(3);
    let operator = gradnet_ledger::genesis::address_of(&keys[0]).unwrap();
    let pk = key.public_hex();
    let dev = dev_with(|g| {
        g.inference_nodes = vec![GenesisInferenceNode {
            operator,
            signing_key: pk.clone(),
            endpoint: "http://127.0.0.1:9".into(),
            modes: vec![0],
            models: vec![],
            stake: MIN_STAKE,
            engine: String::new(),
            profile: String::new(),
            prices: None,
        }]
    })
    .await;
    let receipt = |i: u64| -> Receipt {
        ReceiptBody {
            version: 1,
            kind: if i.is_multiple_of(3) { "llm" } else { "onnx" }.into(),
            request_hash: ContentId::of(&i.to_be_bytes()),
            model: ContentId::of(b"model"),
            output_hash: ContentId::of(&(i * 7).to_be_bytes()),
            mode: InferenceMode::Vanilla,
            runtime: RuntimeId {
                name: "gradnet-onnx".into(),
                version: "0.1.0".into(),
                profile: gradnet_types::DETERMINISTIC_PROFILE.into(),
            },
            node: key.public_hex(),
            timestamp_ms: 1_700_000_000_000 + i,
            charge: None,
        }
        .sign(&key)
    };
    let batch: Vec<Receipt> = (0..1000).map(receipt).collect();
    let leaves: Vec<_> = batch.iter().map(|r| receipts::leaf(r).unwrap()).collect();
    let root = receipts::root(&leaves);
    let cid = ContentId::of(&serde_json::to_vec(&batch).unwrap()).to_string();
    let post = IInferenceRegistry::postReceiptBatchCall {
        root,
        batchCid: cid.clone(),
        count: 1000,
    };
    let r = send_gas(&dev, 0, 0, registry::ADDRESS, post.abi_encode(), 1_000_000).await;
    assert_eq!(r["status"], "0x1", "{r}");
    let batch_info = |root| {
        let url = dev.url.clone();
        async move {
            let data = IInferenceRegistry::receiptBatchCall { root }.abi_encode();
            let out = rpc(
                &url,
                "eth_call",
                json!([{"to": registry::ADDRESS, "data": Bytes::from(data)}, "latest"]),
            )
            .await;
            let out: Bytes = serde_json::from_value(out).unwrap();
            IInferenceRegistry::receiptBatchCall::abi_decode_returns(&out).unwrap()
        }
    };
    for (n, chunk) in batch.chunks(250).enumerate() {
        let compact: Vec<CompactReceipt> = chunk
            .iter()
            .map(|r| CompactReceipt::of(r).unwrap())
            .collect();
        let call = IInferenceRegistry::verifyReceiptsCall {
            root,
            chunk: alloy_rlp::encode(&compact).into(),
        };
        let r = send_gas(
            &dev,
            0,
            1 + n as u64,
            registry::ADDRESS,
            call.abi_encode(),
            8_000_000,
        )
        .await;
        assert_eq!(r["status"], "0x1", "chunk {n}: {r}");
        let settled = r["logs"].as_array().unwrap().len();
        assert_eq!(
            settled,
            (n == 3) as usize,
            "ReceiptsSettled only after the last chunk"
        );
    }
    let info = batch_info(root).await;
    assert_eq!(
        (
            info.operator,
            info.batchCid.clone(),
            info.count,
            info.verified
        ),
        (operator, cid, 1000, 1000)
    );
    assert!(info.settledAt > 0);

    // anyone proves one receipt's inclusion against the settled root
    let i = 417;
    let proof = receipts::proof(&leaves, i);
    assert!(receipts::verify_proof(
        receipts::leaf(&batch[i]).unwrap(),
        i,
        1000,
        &proof,
        root
    ));
    assert!(!receipts::verify_proof(
        receipts::leaf(&batch[i + 1]).unwrap(),
        i,
        1000,
        &proof,
        root
    ));

    // a batch with one forged signature never settles
    let mut forged: Vec<Receipt> = (2000..2010).map(receipt).collect();
    let mut sig = hex::decode(&forged[3].signature).unwrap();
    sig[0] ^= 1;
    forged[3].signature = hex::encode(sig);
    let leaves: Vec<_> = forged.iter().map(|r| receipts::leaf(r).unwrap()).collect();
    let root2 = receipts::root(&leaves);
    let post = IInferenceRegistry::postReceiptBatchCall {
        root: root2,
        batchCid: "b3x".into(),
        count: 10,
    };
    assert_eq!(
        send_gas(&dev, 0, 5, registry::ADDRESS, post.abi_encode(), 1_000_000).await["status"],
        "0x1"
    );
    let compact: Vec<CompactReceipt> = forged
        .iter()
        .map(|r| CompactReceipt::of(r).unwrap())
        .collect();
    let call = IInferenceRegistry::verifyReceiptsCall {
        root: root2,
        chunk: alloy_rlp::encode(&compact).into(),
    };
    let r = send_gas(&dev, 0, 6, registry::ADDRESS, call.abi_encode(), 8_000_000).await;
    assert_eq!(r["status"], "0x0");
    assert!(
        revert_reason(&r).contains("receipt 3 of batch"),
        "{}",
        revert_reason(&r)
    );
    let info = batch_info(root2).await;
    assert_eq!((info.verified, info.settledAt), (0, 0));
    // a settled batch cannot be posted again; an unknown one cannot be verified
    let post = IInferenceRegistry::postReceiptBatchCall {
        root,
        batchCid: "b3y".into(),
        count: 1,
    };
    let r = send_gas(&dev, 0, 7, registry::ADDRESS, post.abi_encode(), 1_000_000).await;
    assert!(revert_reason(&r).contains("posted already"), "{r}");
}

/// A workflow contract: each call runs a fixed request through 0xF4 and
/// appends keccak(result) to its history (slot 0: count, slot n: n-th hash).
fn workflow_initcode(request: &[u8]) -> Vec<u8> {
    let len = request.len() as u16;
    let mut rt = vec![0x61];
    rt.extend(len.to_be_bytes());
    rt.extend([
        0x61, 0x00, 0x2f, 0x60, 0x00, 0x39, 0x60, 0x00, 0x60, 0x00, 0x61,
    ]);
    rt.extend(len.to_be_bytes());
    rt.extend([
        0x60, 0x00, 0x60, 0x00, 0x60, 0xf4, 0x5a, 0xf1, 0x50, // CALL 0xF4, drop success
        0x3d, 0x60, 0x00, 0x60, 0x00, 0x3e, // RETURNDATACOPY
        0x3d, 0x60, 0x00, 0x20, // keccak(result)
        0x60, 0x00, 0x54, 0x60, 0x01, 0x01, 0x80, 0x60, 0x00, 0x55, 0x55, 0x00, // history
    ]);
    assert_eq!(rt.len(), 0x2f);
    rt.extend_from_slice(request);
    let rlen = rt.len() as u16;
    let mut code = vec![0x61];
    code.extend(rlen.to_be_bytes());
    code.extend([0x80, 0x61, 0x00, 0x0d, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3]);
    code.extend(rt);
    code
}

#[tokio::test]
async fn a_scheduled_workflow_runs_its_model_at_its_frequency_and_stops_at_its_end_time() {
    use gradnet_inference::scheduler::{self, IWorkflowScheduler};
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let cid = ContentId::of(&onnx).to_string();
    let nodes = [
        inference_node(0, &onnx, false).await,
        inference_node(1, &onnx, false).await,
    ];
    let regs: Vec<_> = nodes.iter().map(registered).collect();
    let dev = dev_with(|g| g.inference_nodes = regs).await;
    let call = runModelInferenceCall {
        request: request(&cid, 0, [5, -10, 25, 30]),
    };
    let r = send(
        &dev,
        0,
        0,
        None,
        workflow_initcode(&call.abi_encode()).into(),
    )
    .await;
    assert_eq!(r["status"], "0x1", "{r}");
    let workflow: Address = serde_json::from_value(r["contractAddress"].clone()).unwrap();

    let slot = |n: u64| {
        let url = dev.url.clone();
        async move {
            let v = rpc(
                &url,
                "eth_getStorageAt",
                json!([workflow, format!("{n:#x}"), "latest"]),
            )
            .await;
            serde_json::from_value::<U256>(v).unwrap()
        }
    };
    let head_time = || {
        let url = dev.url.clone();
        async move {
            let b = rpc(&url, "eth_getBlockByNumber", json!(["latest", false])).await;
            hexq(&b["timestamp"]) as u64
        }
    };
    let end = head_time().await + 3;
    let register = IWorkflowScheduler::registerTaskCall {
        contractAddress: workflow,
        endTime: U256::from(end),
        frequency: U256::from(1),
    };
    let raw = sign(
        &TxRequest {
            chain_id: CHAIN_ID,
            nonce: 1,
            to: Some(scheduler::ADDRESS),
            value: U256::from(ETH),
            gas_limit: 500_000,
            data: register.abi_encode().into(),
            ..Default::default()
        },
        &dev.keys[0],
    )
    .unwrap();
    let h = rpc(&dev.url, "eth_sendRawTransaction", json!([raw])).await;
    let r = wait_receipt(&dev.url, h.as_str().unwrap()).await;
    assert_eq!(r["status"], "0x1", "{r}");

    // it runs once a second until its end time, then stops
    while head_time().await <= end + 1 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let runs = slot(0).await;
    assert!(
        (U256::from(3)..=U256::from(4)).contains(&runs),
        "{runs} runs"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(slot(0).await, runs, "no run after the end time");

    // each run kept the nodes' result (not a simulation)
    let runtime = OnnxRunner::new(RuntimeConfig::default()).unwrap();
    let m = runtime.load(cid.parse().unwrap(), &onnx).unwrap();
    let inputs = gradnet_types::json::parse_inputs(&json!({"x": [[0.5, -1.0, 2.5, 3.0]]})).unwrap();
    let (_, direct) = runtime.infer(&m, &inputs).unwrap();
    let want = runModelInferenceCall::abi_encode_returns(&model_output(&direct, false).unwrap());
    let want = U256::from_be_bytes(alloy_primitives::keccak256(&want).0);
    for n in 1..=runs.to::<u64>() {
        assert_eq!(slot(n).await, want, "run {n}");
    }
    // the task's bookkeeping: runs, and one fee per run from its deposit
    let out = rpc(
        &dev.url,
        "eth_call",
        json!([{"to": scheduler::ADDRESS, "data": Bytes::from(IWorkflowScheduler::getTaskCall { contractAddress: workflow }.abi_encode())}, "latest"]),
    )
    .await;
    let out: Bytes = serde_json::from_value(out).unwrap();
    let task = IWorkflowScheduler::getTaskCall::abi_decode_returns(&out).unwrap();
    assert_eq!(U256::from(task.runs), runs);
    assert_eq!(task.deposit, U256::from(ETH) - INFERENCE_FEE * runs);

    // refusals: not a contract, an end time in the past
    let bad = IWorkflowScheduler::registerTaskCall {
        contractAddress: Address::repeat_byte(5),
        endTime: U256::from(end + 100),
        frequency: U256::from(1),
    };
    let r = send(
        &dev,
        1,
        0,
        Some(scheduler::ADDRESS),
        bad.abi_encode().into(),
    )
    .await;
    assert!(revert_reason(&r).contains("is not a contract"), "{r}");
    let bad = IWorkflowScheduler::registerTaskCall {
        contractAddress: workflow,
        endTime: U256::from(1),
        frequency: U256::from(1),
    };
    let r = send(
        &dev,
        1,
        1,
        Some(scheduler::ADDRESS),
        bad.abi_encode().into(),
    )
    .await;
    assert!(revert_reason(&r).contains("is not after now"), "{r}");
}

/// An inference node that also proves: ONNX through `Local`, ZKML with
/// the model's circuit and proving key.
struct Prover {
    local: Local,
    cid: String,
    model: gradnet_zk::QuantModel,
    keys: Arc<gradnet_zk::Keys>,
    fault: ProofFault,
}

/// How a faulty prover cheats (besides `OutcomeSigner::perturb`, which changes
/// the output after proving).
#[derive(Clone)]
enum ProofFault {
    None,
    /// Proves with another model's circuit and key.
    OtherModel(gradnet_zk::QuantModel, Arc<gradnet_zk::Keys>),
    /// Flips a byte of a valid proof.
    Tamper,
}

impl Inferencer for Prover {
    fn admit(self: Arc<Self>) -> Result<Arc<dyn Inferencer>, String> {
        Ok(self)
    }

    fn run_model(
        &self,
        model: &str,
        inputs: &Value,
    ) -> Result<gradnet_types::tensor::NamedTensors, String> {
        self.local.run_model(model, inputs)
    }
    fn complete(
        &self,
        r: &gradnet_inference::abi::LLMCompletionRequest,
    ) -> Result<gradnet_inference::abi::LLMCompletionResponse, String> {
        self.local.complete(r)
    }
    fn chat(
        &self,
        r: &gradnet_inference::abi::LLMChatRequest,
    ) -> Result<gradnet_inference::abi::LLMChatResponse, String> {
        self.local.chat(r)
    }
    fn zk_prove(&self, model: &str, input: &ModelInput) -> Result<(Vec<u8>, Vec<i64>), String> {
        if model != self.cid {
            return Err(format!("ZKML: no proving key for {model}"));
        }
        let x = zk::quantize_input(input, self.model.frac_bits)?;
        let (model, keys) = match &self.fault {
            ProofFault::OtherModel(m, k) => (m, k),
            _ => (&self.model, &self.keys),
        };
        let (y, proof) = gradnet_zk::prove(model, &keys.proving, &x).map_err(|e| e.to_string())?;
        let mut proof = gradnet_zk::keys::proof_to_bytes(&proof);
        if matches!(self.fault, ProofFault::Tamper) {
            proof[40] ^= 0x08;
        }
        Ok((proof, y))
    }
}

async fn eth_call(dev: &Dev, to: Address, data: Vec<u8>) -> Result<Bytes, Value> {
    let r = rpc_raw(
        &dev.url,
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_call",
               "params": [{"to": to, "data": Bytes::from(data)}, "latest"]}),
    )
    .await;
    match r.get("result") {
        Some(v) => Ok(serde_json::from_value(v.clone()).unwrap()),
        None => Err(r["error"].clone()),
    }
}

#[tokio::test]
async fn zkml_results_are_proved_checked_by_validators_and_by_contracts() {
    use ark_std::rand::SeedableRng;
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let cid = ContentId::of(&onnx).to_string();
    let model = gradnet_zk::onnx::compile(&onnx, 10).unwrap();
    let keys = Arc::new(
        gradnet_zk::setup(&model, &mut ark_std::rand::rngs::StdRng::seed_from_u64(11)).unwrap(),
    );
    let other =
        gradnet_zk::onnx::compile(&gradnet_runtime::generated::mlp(4, 8, 3, 8), 10).unwrap();
    let other_keys = Arc::new(
        gradnet_zk::setup(&other, &mut ark_std::rand::rngs::StdRng::seed_from_u64(12)).unwrap(),
    );
    let prover = |i: u8, perturb: bool, fault: ProofFault| {
        let p = Prover {
            local: local(&onnx),
            cid: cid.clone(),
            model: model.clone(),
            keys: keys.clone(),
            fault,
        };
        serve_node(i, Arc::new(p), perturb)
    };
    // the faulty provers are the only ZKML nodes at first (a changed
    // output, another model's proof, a tampered proof); the honest one
    // joins later
    let faulty = vec![
        prover(1, true, ProofFault::None).await,
        prover(
            3,
            false,
            ProofFault::OtherModel(other.clone(), other_keys.clone()),
        )
        .await,
        prover(4, false, ProofFault::Tamper).await,
    ];
    let honest = prover(2, false, ProofFault::None).await;
    let regs = faulty
        .iter()
        .map(|n| {
            let mut reg = registered(n);
            reg.modes = vec![0, 1, 3];
            reg
        })
        .collect();
    let dev = dev_with(|g| g.inference_nodes = regs).await;
    let deploy = send(&dev, 0, 0, None, relay_initcode()).await;
    let relay: Address = serde_json::from_value(deploy["contractAddress"].clone()).unwrap();
    let zk_call = |x: [i128; 4]| -> Bytes {
        runModelInferenceCall {
            request: request(&cid, 1, x),
        }
        .abi_encode()
        .into()
    };

    // no key registered: a readable revert, no node is asked or blamed
    let r = send(&dev, 0, 1, Some(relay), zk_call([5, -10, 25, 30])).await;
    assert_eq!(r["status"], "0x0");
    assert!(
        revert_reason(&r).contains("no verifying key registered"),
        "{r}"
    );

    // the key goes on chain; malformed bytes and a second owner are refused
    let vk_bytes = keys.verifying.to_bytes();
    let register = |bytes: Vec<u8>| -> Bytes {
        IInferenceRegistry::registerZkModelCall {
            modelCID: cid.clone(),
            verifyingKey: bytes.into(),
        }
        .abi_encode()
        .into()
    };
    let r = send(
        &dev,
        1,
        0,
        Some(registry::ADDRESS),
        register(vk_bytes[..100].to_vec()),
    )
    .await;
    assert!(revert_reason(&r).contains("malformed verifying key"), "{r}");
    let r = send(
        &dev,
        1,
        1,
        Some(registry::ADDRESS),
        register(vk_bytes.clone()),
    )
    .await;
    assert_eq!(r["status"], "0x1", "{r}");
    let r = send(
        &dev,
        2,
        0,
        Some(registry::ADDRESS),
        register(vk_bytes.clone()),
    )
    .await;
    assert!(revert_reason(&r).contains("only it may replace"), "{r}");
    let info = eth_call(
        &dev,
        registry::ADDRESS,
        IInferenceRegistry::zkModelCall {
            modelCID: cid.clone(),
        }
        .abi_encode(),
    )
    .await
    .unwrap();
    let info = IInferenceRegistry::zkModelCall::abi_decode_returns(&info).unwrap();
    assert_eq!(info.keyId.0, keys.verifying.id().0);
    assert_eq!((info.fracBits, info.inputs, info.outputs), (10, 4, 3));

    // each faulty prover's result does not verify: every validator refuses
    // it, the call reverts and the node is slashed with its signed result
    // (each sits out after its fault, so three calls meet all three)
    for nonce in 2..5 {
        let r = send(&dev, 0, nonce, Some(relay), zk_call([5, -10, 25, 30])).await;
        assert_eq!(r["status"], "0x0");
        let why = revert_reason(&r);
        assert!(
            why.contains("the proof does not verify") || why.contains("ZKML: malformed proof"),
            "{r}"
        );
    }
    let stake = MIN_STAKE * U256::from(10);
    for n in &faulty {
        let bad = node_info(&dev, n.operator).await;
        assert_eq!(
            (bad.stake, bad.faults),
            (
                stake - stake * U256::from(SLASH_WRONG_BPS) / U256::from(10_000),
                1
            )
        );
        let ev = eth_call(
            &dev,
            registry::ADDRESS,
            IInferenceRegistry::faultEvidenceCall {
                operator: n.operator,
                index: 0,
            }
            .abi_encode(),
        )
        .await
        .unwrap();
        let ev = IInferenceRegistry::faultEvidenceCall::abi_decode_returns(&ev).unwrap();
        assert_eq!(ev.reason, "ZKML proof does not verify");
    }

    // the honest prover registers; the faulty ones are cooling down
    let mut join = registered(&honest);
    join.modes = vec![1];
    let call = IInferenceRegistry::registerCall {
        signingKey: join.signing_key.parse().unwrap(),
        endpoint: join.endpoint.clone(),
        modes: join.modes.clone(),
        models: vec![],
    };
    let r = send_value(
        &dev,
        2,
        1,
        Some(registry::ADDRESS),
        MIN_STAKE,
        call.abi_encode().into(),
    )
    .await;
    assert_eq!(r["status"], "0x1", "{r}");
    let honest_op = gradnet_ledger::genesis::address_of(&dev.keys[2]).unwrap();

    // a proved result: exactly the circuit's output for the quantized input
    let x = model.quantize(&[0.5, -1.0, 2.5, 3.0]).unwrap();
    let y = model.forward(&x).unwrap();
    let r = send(&dev, 0, 5, Some(relay), zk_call([5, -10, 25, 30])).await;
    assert_eq!(r["status"], "0x1", "{r}");
    let got = logged_output(&r);
    assert_eq!(got, zk::model_output(&keys.verifying, &y));
    assert_eq!(node_info(&dev, honest_op).await.earnings, INFERENCE_FEE);
    // close to float inference
    let runtime = OnnxRunner::new(RuntimeConfig::default()).unwrap();
    let m = runtime.load(cid.parse().unwrap(), &onnx).unwrap();
    let inputs = gradnet_types::json::parse_inputs(&json!({"x": [[0.5, -1.0, 2.5, 3.0]]})).unwrap();
    let (_, direct) = runtime.infer(&m, &inputs).unwrap();
    let gradnet_types::tensor::TensorData::F32(float) = direct.values().next().unwrap().data()
    else {
        panic!("float output expected")
    };
    for (f, q) in float.iter().zip(model.dequantize(&y)) {
        assert!((f - q).abs() < 0.01, "{float:?} vs {y:?}");
    }

    // contracts verify proofs directly at 0x…F7
    let (y2, proof) = gradnet_zk::prove(&model, &keys.proving, &x).unwrap();
    let proof = gradnet_zk::keys::proof_to_bytes(&proof);
    let verify = |model: &str, out: &[i64], proof: &[u8]| {
        let c = zk::IZkVerifier::verifyInferenceCall {
            modelCID: model.into(),
            input: x
                .iter()
                .map(|v| alloy_primitives::I256::try_from(*v).unwrap())
                .collect(),
            output: out
                .iter()
                .map(|v| alloy_primitives::I256::try_from(*v).unwrap())
                .collect(),
            proof: proof.to_vec().into(),
        };
        let dev = &dev;
        async move {
            eth_call(dev, zk::VERIFIER_ADDRESS, c.abi_encode())
                .await
                .map(|b| zk::IZkVerifier::verifyInferenceCall::abi_decode_returns(&b).unwrap())
        }
    };
    assert_eq!(verify(&cid, &y2, &proof).await, Ok(true));
    let mut changed = y2.clone();
    changed[1] -= 1;
    assert_eq!(verify(&cid, &changed, &proof).await, Ok(false));
    let mut tampered = proof.clone();
    tampered[5] ^= 0x10;
    assert_eq!(verify(&cid, &y2, &tampered).await, Ok(false));
    // a proof for another model, against this model's key
    let (oy, oproof) = gradnet_zk::prove(&other, &other_keys.proving, &x).unwrap();
    let oproof = gradnet_zk::keys::proof_to_bytes(&oproof);
    assert_eq!(verify(&cid, &oy, &oproof).await, Ok(false));
    let e = verify("b3unknown", &y2, &proof).await.unwrap_err();
    assert!(e.to_string().contains("no verifying key registered"), "{e}");
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn tee_calls_go_only_to_active_approved_enclaves() {
    use gradnet_inference::tee_registry::{self, ITEERegistry};
    use gradnet_tee::dev::DevEnclave;
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let cid = ContentId::of(&onnx).to_string();
    let dev_root = DevEnclave::from_seed(b"pipe-test").unwrap();
    let pcrs: std::collections::BTreeMap<u64, Vec<u8>> =
        (0..3).map(|i| (i, vec![i as u8 + 1; 48])).collect();
    let measurement = alloy_primitives::B256::from(gradnet_tee::measurement(&pcrs).unwrap());
    // two nodes claim TEE; only the first will have an enclave (the second
    // alters its results, so a call it served would show)
    let enclave = inference_node(3, &onnx, false).await;
    let pretender = inference_node(4, &onnx, true).await;
    let regs: Vec<_> = [&enclave, &pretender]
        .iter()
        .map(|n| {
            let mut r = registered(n);
            r.modes = vec![2];
            r
        })
        .collect();
    let dev = dev_with(|g| {
        g.inference_nodes = regs;
        g.tee = Some(gradnet_ledger::genesis::GenesisTee {
            admin: gradnet_ledger::genesis::address_of(&g_key(0)).unwrap(),
            roots: vec![dev_root.root_der().to_vec().into()],
            approved: vec![],
            max_heartbeat_age: Some(3),
        });
    })
    .await;
    let deploy = send(&dev, 0, 0, None, relay_initcode()).await;
    let relay: Address = serde_json::from_value(deploy["contractAddress"].clone()).unwrap();
    let tee_call = |x: [i128; 4]| -> Bytes {
        runModelInferenceCall {
            request: request(&cid, 2, x),
        }
        .abi_encode()
        .into()
    };
    let reg_call = |data: Vec<u8>| -> Bytes { data.into() };
    let key: [u8; 32] = hex::decode(enclave.key.public_hex())
        .unwrap()
        .try_into()
        .unwrap();
    let tls = b"enclave TLS certificate (DER)".to_vec();
    let register = |doc: Vec<u8>, public_key: Vec<u8>| {
        reg_call(
            ITEERegistry::registerTEEWithAttestationCall {
                attestation: doc.into(),
                publicKey: public_key.into(),
                tlsCertificate: tls.clone().into(),
                paymentAddress: enclave.operator,
                endpoint: enclave.url.clone(),
                teeType: 0,
            }
            .abi_encode(),
        )
    };
    let attest =
        |root: &DevEnclave, pcrs: &std::collections::BTreeMap<u64, Vec<u8>>, k: &[u8; 32]| {
            root.attest(pcrs, &gradnet_tee::binding(k, &tls), None, unix_now())
                .unwrap()
        };
    let to = Some(tee_registry::ADDRESS);

    // no enclave yet: nobody may serve the call
    let r = send(&dev, 0, 1, Some(relay), tee_call([5, -10, 25, 30])).await;
    assert!(
        revert_reason(&r).contains("0 eligible node(s) serve mode 2"),
        "{r}"
    );

    // the measurement is not approved; only the admin approves
    let r = send(
        &dev,
        1,
        0,
        to,
        register(attest(&dev_root, &pcrs, &key), key.to_vec()),
    )
    .await;
    assert!(revert_reason(&r).contains("is not approved"), "{r}");
    let approve = reg_call(
        ITEERegistry::approvePCRCall {
            pcrHash: measurement,
            description: "test image".into(),
        }
        .abi_encode(),
    );
    let r = send(&dev, 1, 1, to, approve.clone()).await;
    assert!(revert_reason(&r).contains("only the admin"), "{r}");
    let r = send(&dev, 0, 2, to, approve).await;
    assert_eq!(r["status"], "0x1", "{r}");

    // refusals: a wrong PCR (another image), an untrusted root, a key not
    // bound in the user data
    let mut other_image = pcrs.clone();
    other_image.get_mut(&2).unwrap()[0] = 0xee;
    let r = send(
        &dev,
        1,
        2,
        to,
        register(attest(&dev_root, &other_image, &key), key.to_vec()),
    )
    .await;
    assert!(revert_reason(&r).contains("is not approved"), "{r}");
    let stranger = DevEnclave::from_seed(b"not pinned").unwrap();
    let r = send(
        &dev,
        1,
        3,
        to,
        register(attest(&stranger, &pcrs, &key), key.to_vec()),
    )
    .await;
    assert!(
        revert_reason(&r).contains("does not chain to a pinned root"),
        "{r}"
    );
    let r = send(
        &dev,
        1,
        4,
        to,
        register(attest(&dev_root, &pcrs, &[1; 32]), key.to_vec()),
    )
    .await;
    assert!(revert_reason(&r).contains("does not bind"), "{r}");

    // registered: TEE calls go to the enclave, never to the pretender
    let r = send(
        &dev,
        1,
        5,
        to,
        register(attest(&dev_root, &pcrs, &key), key.to_vec()),
    )
    .await;
    assert_eq!(r["status"], "0x1", "{r}");
    let id = tee_registry::tee_id(&key);
    let view = |data: Vec<u8>| {
        let dev = &dev;
        async move {
            let out = rpc(
                &dev.url,
                "eth_call",
                json!([{"to": tee_registry::ADDRESS, "data": Bytes::from(data)}, "latest"]),
            )
            .await;
            serde_json::from_value::<Bytes>(out).unwrap()
        }
    };
    let info = view(ITEERegistry::getTEECall { teeId: id }.abi_encode()).await;
    let info = ITEERegistry::getTEECall::abi_decode_returns(&info).unwrap();
    assert!(info.enabled);
    assert_eq!(
        (info.pcrHash, info.publicKey.to_vec()),
        (measurement, key.to_vec())
    );
    let is_dev = view(ITEERegistry::isDevEnclaveCall { teeId: id }.abi_encode()).await;
    assert!(
        ITEERegistry::isDevEnclaveCall::abi_decode_returns(&is_dev).unwrap(),
        "dev enclaves say so"
    );

    let runtime = OnnxRunner::new(RuntimeConfig::default()).unwrap();
    let m = runtime.load(cid.parse().unwrap(), &onnx).unwrap();
    let inputs = gradnet_types::json::parse_inputs(&json!({"x": [[0.5, -1.0, 2.5, 3.0]]})).unwrap();
    let want = model_output(&runtime.infer(&m, &inputs).unwrap().1, false).unwrap();
    for nonce in 3..6 {
        let r = send(&dev, 0, nonce, Some(relay), tee_call([5, -10, 25, 30])).await;
        assert_eq!(r["status"], "0x1", "{r}");
        let got = logged_output(&r);
        assert_eq!(got.numbers, want.numbers);
        // served by a dev enclave, and the result says so
        assert_eq!(
            got.jsons,
            vec![gradnet_inference::abi::JsonScalar {
                name: "tee".into(),
                value: gradnet_inference::precompile::DEV_ENCLAVE_JSON.into()
            }]
        );
    }
    assert_eq!(
        node_info(&dev, pretender.operator).await.earnings,
        U256::ZERO
    );
    assert_eq!(
        node_info(&dev, enclave.operator).await.earnings,
        INFERENCE_FEE * U256::from(3)
    );

    // heartbeats: a stale one and a forged one are refused; without a
    // fresh one the enclave goes inactive and TEE calls are not served
    let sign = |ts: u64| {
        let m = tee_registry::heartbeat_message(CHAIN_ID, &id, ts);
        enclave.key.sign(&m).to_vec()
    };
    let r = send(
        &dev,
        1,
        6,
        to,
        tee_registry::heartbeat_call(id, unix_now() - 30, sign(unix_now() - 30)),
    )
    .await;
    assert!(revert_reason(&r).contains("stale"), "{r}");
    let now = unix_now();
    let r = send(
        &dev,
        1,
        7,
        to,
        tee_registry::heartbeat_call(id, now, sign(now + 1)),
    )
    .await;
    assert!(
        revert_reason(&r).contains("not signed by the enclave's key"),
        "{r}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let active = view(ITEERegistry::isActiveCall { teeId: id }.abi_encode()).await;
    assert!(
        !ITEERegistry::isActiveCall::abi_decode_returns(&active).unwrap(),
        "stale heartbeat"
    );
    let r = send(&dev, 0, 6, Some(relay), tee_call([1, 2, 3, 4])).await;
    assert!(
        revert_reason(&r).contains("0 eligible node(s) serve mode 2"),
        "{r}"
    );
    let now = unix_now();
    let r = send(
        &dev,
        1,
        8,
        to,
        tee_registry::heartbeat_call(id, now, sign(now)),
    )
    .await;
    assert_eq!(r["status"], "0x1", "{r}");
    let r = send(&dev, 0, 7, Some(relay), tee_call([1, 2, 3, 4])).await;
    assert_eq!(r["status"], "0x1", "{r}");

    // a revoked measurement deactivates every enclave running it
    let revoke = reg_call(
        ITEERegistry::revokePCRCall {
            pcrHash: measurement,
        }
        .abi_encode(),
    );
    let r = send(&dev, 0, 8, to, revoke).await;
    assert_eq!(r["status"], "0x1", "{r}");
    let active = view(ITEERegistry::isActiveCall { teeId: id }.abi_encode()).await;
    assert!(
        !ITEERegistry::isActiveCall::abi_decode_returns(&active).unwrap(),
        "revoked"
    );
    let r = send(&dev, 0, 9, Some(relay), tee_call([1, 2, 3, 4])).await;
    assert!(
        revert_reason(&r).contains("0 eligible node(s) serve mode 2"),
        "{r}"
    );
}

fn g_key(i: u64) -> alloy_primitives::B256 {
    gradnet_ledger::genesis::dev_key(i)
}
