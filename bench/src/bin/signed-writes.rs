//! What a signed write costs the node: checking a request's EIP-712
//! signature (parsing the headers, hashing the typed data, recovering the
//! account) next to one `/v1/infer` call over loopback HTTP on a small MLP,
//! interleaved round by round in one run. Prints each round's ratio and
//! the median.

use std::time::Instant;

use alloy_primitives::B256;
use gradnet_api::{ApiConfig, AppState};
use gradnet_client::auth;
use gradnet_hub::{Hub, HubConfig};
use gradnet_runtime::{OnnxRunner, RuntimeConfig};
use gradnet_types::NodeKey;
use serde_json::json;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::open(dir.path(), HubConfig::default()).unwrap();
    let state = AppState::new(
        hub.clone(),
        OnnxRunner::new(RuntimeConfig::default()).unwrap(),
        NodeKey::generate(),
        ApiConfig::default(),
    );
    let base = gradnet_bench::serve_in_process(state).await;
    let client = reqwest::Client::new();
    let bytes = gradnet_runtime::generated::mlp(784, 128, 10, 7);
    let cid = hub.put_bytes(&bytes).await.unwrap().cid;
    let input = gradnet_bench::nest(&gradnet_runtime::generated::weights(784, 1, 1.0), &[1, 784]);
    let body =
        serde_json::to_vec(&json!({"model": cid.to_string(), "inputs": {"x": input}})).unwrap();
    let infer = || async {
        let r = client
            .post(format!("{base}/v1/infer"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    };

    // a signed request's headers, as a node receives them
    let key = B256::repeat_byte(0x42);
    let chain = gradnet_api::DEFAULT_CHAIN_ID;
    let path = "/api/v0/models/risk/versions";
    let payload = br#"{"notes":"retrained","is_major":false}"#;
    let signed = auth::sign(&key, chain, "POST", path, auth::body_hash(payload)).unwrap();
    let pairs = signed.pairs();
    let verify = || {
        let h = auth::parse_headers(|n| pairs.iter().find(|p| p.0 == n).map(|p| p.1.as_str()))
            .unwrap()
            .unwrap();
        auth::verify(
            &h,
            chain,
            "POST",
            path,
            auth::body_hash(payload),
            h.timestamp,
        )
        .unwrap();
    };

    for _ in 0..50 {
        infer().await;
        verify();
    }
    println!("round  infer call (us)  signature check (us)  check / call");
    let mut ratios = vec![];
    for round in 0..5 {
        let mut calls = vec![];
        for _ in 0..300 {
            let t = Instant::now();
            infer().await;
            calls.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let mut checks = vec![];
        for _ in 0..300 {
            let t = Instant::now();
            verify();
            checks.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let (call, check) = (gradnet_bench::median(calls), gradnet_bench::median(checks));
        ratios.push(check / call);
        println!(
            "{round:>5}  {call:>15.1}  {check:>20.1}  {:>11.1}%",
            100.0 * check / call
        );
    }
    println!(
        "median: a signature check costs {:.1}% of a /v1/infer call (goal <= 5%)",
        100.0 * gradnet_bench::median(ratios)
    );
}
