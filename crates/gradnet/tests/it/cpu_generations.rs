//! A devnet whose three inference nodes run on three CPU generations: this
//! machine's, and the same binary under `qemu-x86_64 -cpu Haswell` (AVX2 +
//! FMA) and `-cpu Nehalem` (SSE4.2 only). Their engines pick different
//! kernels, yet a QUORUM call agrees 3 of 3 and nobody is slashed, and each
//! node's `/v1/infer`, `/v1/embeddings` and Gemma 3 chat answers sign the
//! same output hash.

use alloy_primitives::U256;
use alloy_sol_types::{SolCall, SolValue};
use gradnet_inference::abi::*;

use crate::common;

use common::devnet::Devnet;
use common::inference::{mlp_request, node_record, operator};
use common::ledger::*;

#[test]
fn nodes_on_three_cpu_generations_agree_in_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start_with(
        dir.path(),
        4,
        // free off chain: the nodes' own /v1/infer answers are compared
        &[
            "--inference-cpu",
            "native,Haswell,Nehalem",
            "--prices",
            "0,0,0",
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();

    // the emulated nodes really run other kernels
    let isas: Vec<String> = net
        .inference
        .iter()
        .map(|u| {
            let h: serde_json::Value = rt.block_on(common::get_json(&format!("{u}/health")));
            assert_eq!(
                h["runtime"]["profile"],
                gradnet_types::DETERMINISTIC_PROFILE,
                "{h}"
            );
            h["isa"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(&isas[1..], ["avx2", "sse2"], "{isas:?}");

    // off chain: the same request signs the same output hash on each
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let cid = gradnet_types::cid::ContentId::of(&onnx).to_string();
    let hashes: Vec<serde_json::Value> = net
        .inference
        .iter()
        .map(|u| {
            let (s, r) = rt.block_on(common::post(
                &format!("{u}/v1/infer"),
                serde_json::json!({"model": cid, "inputs": {"x": [[0.5, -1.0, 0.25, 3.0], [1e-3, 7.0, -2.5, 0.0]]}}),
            ));
            assert_eq!(s, 200, "{r}");
            r["receipt"]["output_hash"].clone()
        })
        .collect();
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");

    // sentence embeddings (AVX2 natively and under Haswell, portable under
    // Nehalem): the same vectors, the same signed output hash
    let minilm = std::fs::read(common::real_model("all-minilm-l6-v2.safetensors")).unwrap();
    let embedded: Vec<serde_json::Value> = net
        .inference
        .iter()
        .map(|u| {
            rt.block_on(common::publish(u, "minilm", "minilm.safetensors", minilm.clone()));
            let (s, r) = rt.block_on(common::post(
                &format!("{u}/v1/embeddings"),
                serde_json::json!({"model": "minilm", "input": ["A cat sits on the mat.", "Verifiable inference on any CPU: héllo, 12345!"]}),
            ));
            assert_eq!(s, 200, "{r}");
            r["gradnet_receipt"]["output_hash"].clone()
        })
        .collect();
    assert!(embedded.iter().all(|h| *h == embedded[0]), "{embedded:?}");

    // Gemma 3 (Q5_0, Q8_0, Q4_K and Q6_K matrices on AVX2 or portable
    // kernels, sliding-window layers): the same greedy answer, same hash
    let gemma = std::fs::read(common::real_model("gemma-3-270m-q4_k_m.gguf")).unwrap();
    let answers: Vec<(serde_json::Value, serde_json::Value)> = net
        .inference
        .iter()
        .map(|u| {
            rt.block_on(common::publish(u, "gemma3", "gemma3.gguf", gemma.clone()));
            let (s, r) = rt.block_on(common::post(
                &format!("{u}/v1/chat/completions"),
                serde_json::json!({"model": "gemma3", "temperature": 0, "max_tokens": 6,
                    "messages": [{"role": "user", "content": "Name three colors of the rainbow."}]}),
            ));
            assert_eq!(s, 200, "{r}");
            (
                r["choices"][0]["message"]["content"].clone(),
                r["gradnet_receipt"]["output_hash"].clone(),
            )
        })
        .collect();
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");

    // on chain: a QUORUM-3 call from the demo contract
    let key: alloy_primitives::B256 = net.keys[2].parse().unwrap();
    let request = mlp_request(3, &cid);
    let raw = gradnet_client::wallet::sign(
        &gradnet_client::wallet::TxRequest {
            chain_id: 31337,
            nonce: 0,
            to: Some(gradnet_inference::demo_contract::ADDRESS),
            gas_limit: 1_000_000,
            data: InferencePrecompile::runModelInferenceCall { request }
                .abi_encode()
                .into(),
            ..Default::default()
        },
        &key,
    )
    .unwrap();
    let hash = rpc(&net.rpc, "eth_sendRawTransaction", serde_json::json!([raw]));
    let mut r = serde_json::Value::Null;
    wait_until(120, "the QUORUM call's receipt", || {
        r = rpc(
            &net.rpc,
            "eth_getTransactionReceipt",
            serde_json::json!([hash]),
        );
        !r.is_null()
    });
    assert_eq!(r["status"], "0x1", "{r}");
    let log = r["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["topics"].as_array().unwrap().is_empty())
        .unwrap_or_else(|| panic!("no result in {r}"));
    let data: alloy_primitives::Bytes = serde_json::from_value(log["data"].clone()).unwrap();
    let out = ModelOutput::abi_decode(&data).unwrap();
    assert_eq!(out.numbers[0].shape, vec![1, 3]);

    // all three asked, all three agreed: nobody slashed, everybody paid
    let number = r["blockNumber"].clone();
    let sidecar = rpc(&net.rpc, "gradnet_sidecar", serde_json::json!([number, 3]));
    let call = &sidecar["calls"][0];
    assert_eq!(call["asked"].as_array().unwrap().len(), 3, "{sidecar}");
    assert_eq!(
        call["decision"]["agreed"].as_array().unwrap().len(),
        3,
        "{sidecar}"
    );
    assert!(
        call["decision"]["dissenting"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{sidecar}"
    );
    for url in &net.rpcs {
        for i in 0..3 {
            let n = node_record(url, operator(i));
            assert_eq!((n.faults, n.slashed), (0, U256::ZERO), "node {i} on {url}");
            assert!(n.earnings > U256::ZERO, "node {i} was not paid on {url}");
            assert_eq!(n.profile, gradnet_types::DETERMINISTIC_PROFILE);
        }
    }
    net.stop();
}
