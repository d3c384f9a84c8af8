//! The gateway's cost, each side by side in one run on a devnet
//! (`bench/gateway-vs-direct` starts it):
//! 1. `/v1/infer` through the gateway (VANILLA) next to the same call sent
//!    straight to an inference node, interleaved in rounds;
//! 2. off-chain QUORUM-3 through the gateway next to VANILLA through it;
//! 3. off-chain QUORUM-3 next to an on-chain QUORUM-3 transaction (the
//!    devnet's demo contract calling the precompile: submit → receipt).
//!
//! Usage: gateway GATEWAY NODE RPC MODEL KEY

use std::time::Instant;

use alloy_primitives::{B256, U256};
use alloy_sol_types::SolCall;
use gradnet_inference::abi::{
    InferencePrecompile, ModelInferenceRequest, ModelInput, MultiDimensionalNumberTensor, Number,
};
use serde_json::json;

const ROUNDS: usize = 5;
const CALLS: usize = 200;
const ONCHAIN: usize = 10;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, gateway, node, rpc, model, key] = &args[..] else {
        eprintln!("usage: gateway GATEWAY NODE RPC MODEL KEY");
        std::process::exit(2);
    };
    let client = reqwest::Client::new();
    let body = |mode: &str| {
        serde_json::to_vec(
            &json!({"model": model, "inputs": {"x": [[0.5, -1.0, 0.25, 3.0]]}, "mode": mode}),
        )
        .unwrap()
    };
    let call = |url: String, body: Vec<u8>| {
        let client = client.clone();
        async move {
            let t = Instant::now();
            let r = client
                .post(format!("{url}/v1/infer"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.bytes().await.unwrap();
            assert!(
                status.is_success(),
                "{status}: {}",
                String::from_utf8_lossy(&text)
            );
            t.elapsed().as_secs_f64() * 1e6
        }
    };
    let (vanilla, quorum) = (body("VANILLA"), body("QUORUM"));
    for _ in 0..50 {
        call(gateway.clone(), vanilla.clone()).await;
        call(node.clone(), vanilla.clone()).await;
        call(gateway.clone(), quorum.clone()).await;
    }
    println!("1-2. /v1/infer, demo MLP 4-8-3, {CALLS} calls per side per round (median µs)");
    println!("round  direct  gateway  gw/direct  added   quorum-3  q3/vanilla");
    let (mut r1, mut add, mut r2, mut q3) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let (mut d, mut g, mut q) = (vec![], vec![], vec![]);
        for _ in 0..CALLS {
            d.push(call(node.clone(), vanilla.clone()).await);
            g.push(call(gateway.clone(), vanilla.clone()).await);
            q.push(call(gateway.clone(), quorum.clone()).await);
        }
        let (d, g, q) = (
            gradnet_bench::median(d),
            gradnet_bench::median(g),
            gradnet_bench::median(q),
        );
        r1.push(g / d);
        add.push(g - d);
        r2.push(q / g);
        q3.push(q);
        println!(
            "{round:>5}  {d:>6.0}  {g:>7.0}  {:>8.3}x  {:>5.0}  {q:>8.0}  {:>9.3}x",
            g / d,
            g - d,
            q / g
        );
    }
    println!(
        "median: gateway / direct {:.3}x, {:.0} µs added (goal <= 1.05x, <= 500 µs); quorum-3 / vanilla {:.3}x (goal <= 1.3x)",
        gradnet_bench::median(r1),
        gradnet_bench::median(add),
        gradnet_bench::median(r2)
    );

    // 3. the same QUORUM-3 as a transaction: submit, then its receipt
    let rpc_client = gradnet_client::Rpc::new(rpc).unwrap();
    let key: B256 = key.parse().unwrap();
    let mut sender = gradnet_client::Sender::new(rpc_client.clone(), key)
        .await
        .unwrap();
    let request = ModelInferenceRequest {
        mode: 3,
        modelCID: model.clone(),
        input: ModelInput {
            numbers: vec![MultiDimensionalNumberTensor {
                name: "x".into(),
                values: [(5i128, 1i128), (-1, 0), (25, 2), (3, 0)]
                    .iter()
                    .map(|&(value, decimals)| Number { value, decimals })
                    .collect(),
                shape: vec![1, 4],
            }],
            strings: vec![],
        },
    };
    let data = InferencePrecompile::runModelInferenceCall { request }.abi_encode();
    let mut onchain = vec![];
    for _ in 0..ONCHAIN {
        let t = Instant::now();
        let hash = sender
            .submit(
                Some(gradnet_inference::demo_contract::ADDRESS),
                U256::ZERO,
                data.clone(),
                1_000_000,
            )
            .await
            .unwrap();
        sender.succeeded(hash).await.unwrap();
        onchain.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let on = gradnet_bench::median(onchain.clone());
    let off = gradnet_bench::median(q3);
    println!(
        "3. QUORUM-3: on chain {:.0} ms median (min {:.0}, max {:.0}; {ONCHAIN} transactions, submit → receipt), off chain {:.2} ms: {:.0}x faster (goal >= 50x)",
        on / 1e3,
        onchain.iter().cloned().fold(f64::MAX, f64::min) / 1e3,
        onchain.iter().cloned().fold(0.0, f64::max) / 1e3,
        off / 1e3,
        on / off
    );
}
