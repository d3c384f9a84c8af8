//! What authorizing a write costs the node, next to one `/v1/infer` call
//! over loopback HTTP on a small MLP, interleaved round by round in one run:
//! - a signed request: parsing the headers, hashing the EIP-712 typed data,
//!   recovering the account (secp256k1);
//! - the same plus recording its nonce in the hub (what every signed write
//!   pays);
//! - a session token: parsing it, its keyed hash, the sign-out lookup.
//!
//! Prints each round's ratios and the medians.

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
    let base = gradnet_bench::serve_in_process(state.clone()).await;
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

    // ... and with its nonce recorded, as the node does (a fresh one each time)
    let account = gradnet_client::wallet::address(&key)
        .unwrap()
        .to_checksum(None);
    let mut n = 0u64;
    let mut verify_and_record = || {
        verify();
        n += 1;
        let nonce = alloy_primitives::keccak256(n.to_be_bytes());
        let now = auth::now();
        hub.use_nonce(&account, nonce.as_slice(), now, now - 600)
            .unwrap();
    };

    // a session token, as the node checks it
    let (token, _) = state.sessions.issue(signed.account, auth::now() + 3600);
    let authorization = format!("Bearer {token}");
    let check_token = || {
        let t = gradnet_api::session::bearer(Some(&authorization)).unwrap();
        let s = state.sessions.check(t, auth::now()).unwrap();
        let a = s.account.to_checksum(None);
        assert!(!hub.nonce_used(&a, &s.id, s.expires_at).unwrap());
    };

    for _ in 0..50 {
        infer().await;
        verify();
        verify_and_record();
        check_token();
    }
    println!("round  infer call (us)  signature (us)  + nonce (us)  session token (us)  ratios: sig / +nonce / token");
    let (mut sig, mut rec, mut tok) = (vec![], vec![], vec![]);
    let time = |f: &mut dyn FnMut()| {
        let mut xs = vec![];
        for _ in 0..300 {
            let t = Instant::now();
            f();
            xs.push(t.elapsed().as_secs_f64() * 1e6);
        }
        gradnet_bench::median(xs)
    };
    for round in 0..5 {
        let mut calls = vec![];
        for _ in 0..300 {
            let t = Instant::now();
            infer().await;
            calls.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let call = gradnet_bench::median(calls);
        let a = time(&mut || verify());
        let b = time(&mut verify_and_record);
        let c = time(&mut || check_token());
        sig.push(a / call);
        rec.push(b / call);
        tok.push(c / call);
        println!(
            "{round:>5}  {call:>15.1}  {a:>14.1}  {b:>12.1}  {c:>18.2}  {:>6.1}% / {:.1}% / {:.2}%",
            100.0 * a / call,
            100.0 * b / call,
            100.0 * c / call
        );
    }
    let pct = |xs: Vec<f64>| 100.0 * gradnet_bench::median(xs);
    println!(
        "median, as a share of a /v1/infer call (goal <= 5%): signature check {:.1}%, signed write with its nonce {:.1}%, session token {:.2}%",
        pct(sig),
        pct(rec),
        pct(tok)
    );
}
