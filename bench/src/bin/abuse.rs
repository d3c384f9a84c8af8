//! What a normal client waits while strangers abuse a node: for each abuse
//! case, the node's answer to the abuser and a normal client's `/v1/infer`
//! latency on a small MLP during it, next to the same client's latency
//! with nobody abusing (measured in the same run, just before). The node
//! runs in this process under the default limits; abusers come from
//! 127.0.0.2 (127.0.0.1, the normal client, is trusted as loopback is).

use std::time::{Duration, Instant};

use gradnet_api::{ApiConfig, AppState, ServerLimits};
use gradnet_hub::{Hub, HubConfig};
use gradnet_runtime::{OnnxRunner, RuntimeConfig};
use gradnet_types::NodeKey;
use serde_json::json;
use tokio::io::AsyncWriteExt;

const ABUSER: &str = "127.0.0.2";

/// Median and max of a normal client's `/v1/infer` latency over `n` calls, in ms.
async fn normal(base: &str, body: &[u8], n: usize) -> (f64, f64) {
    let client = reqwest::Client::new();
    let mut t = vec![];
    for _ in 0..n {
        let s = Instant::now();
        let r = client
            .post(format!("{base}/v1/infer"))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("a normal client got no answer");
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        t.push(s.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let max = t.iter().cloned().fold(0.0, f64::max);
    (gradnet_bench::median(t), max)
}

fn abuser_client() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ABUSER.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let app = gradnet_api::router(state);
    tokio::spawn(gradnet_api::serve_app(
        listener,
        app,
        ServerLimits::default(),
        std::future::pending(),
    ));
    let mlp = gradnet_runtime::generated::mlp(784, 128, 10, 7);
    let cid = hub.put_bytes(&mlp).await.unwrap().cid;
    let bomb = gradnet_runtime::generated::expand_bomb(&[200_000, 200_000]);
    let bomb_cid = hub.put_bytes(&bomb).await.unwrap().cid;
    let input = gradnet_bench::nest(&gradnet_runtime::generated::weights(784, 1, 1.0), &[1, 784]);
    let body =
        serde_json::to_vec(&json!({"model": cid.to_string(), "inputs": {"x": input}})).unwrap();
    normal(&base, &body, 50).await; // warm up

    println!("| abuse case | what the node did | normal /v1/infer p50 / max during it (ms) | without abuse p50 (ms) | ratio p50 |");
    println!("|---|---|---|---|---|");
    let row = |case: &str, did: String, during: (f64, f64), quiet: f64| {
        println!(
            "| {case} | {did} | {:.2} / {:.1} | {quiet:.2} | {:.2}x |",
            during.0,
            during.1,
            during.0 / quiet
        );
    };

    // 1. 2000 connections sending half a request's headers
    let quiet = normal(&base, &body, 100).await.0;
    let mut slow = vec![];
    let (mut refused, t) = (0, Instant::now());
    for _ in 0..2000 {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{ABUSER}:0").parse().unwrap()).unwrap();
        match s.connect(addr).await {
            Ok(mut c) => {
                if c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .is_err()
                {
                    refused += 1;
                }
                slow.push(c);
            }
            Err(_) => refused += 1,
        }
    }
    let during = normal(&base, &body, 100).await;
    let opened = t.elapsed();
    row(
        "2000 connections with half-sent headers",
        format!("kept 256 (the per-address cap), closed the rest at once; cut off the 256 after the 10 s header deadline ({refused} writes failed while opening in {opened:.1?})"),
        during,
        quiet,
    );
    drop(slow);

    // 2. a flood of requests from one address
    let quiet = normal(&base, &body, 100).await.0;
    let flood = tokio::spawn({
        let base = base.clone();
        async move {
            let c = abuser_client();
            let (mut ok, mut limited) = (0u32, 0u32);
            let until = Instant::now() + Duration::from_secs(4);
            while Instant::now() < until {
                let rs = futures::future::join_all(
                    (0..32).map(|_| c.get(format!("{base}/health")).send()),
                )
                .await;
                for r in rs.into_iter().flatten() {
                    if r.status() == 429 {
                        limited += 1;
                    } else {
                        ok += 1;
                    }
                }
            }
            (ok, limited)
        }
    });
    let during = normal(&base, &body, 100).await;
    let (ok, limited) = flood.await.unwrap();
    row(
        "request flood from one address (32 at a time, 4 s)",
        format!("served {ok} (200/s, burst 400), refused {limited} with 429 + Retry-After"),
        during,
        quiet,
    );

    // 3. memory bombs: 200000 x 200000 floats asked of Expand, over and over
    tokio::time::sleep(Duration::from_secs(1)).await;
    let quiet = normal(&base, &body, 100).await.0;
    let bombs = tokio::spawn({
        let base = base.clone();
        async move {
            let c = reqwest::Client::new();
            let mut codes = std::collections::BTreeMap::new();
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                let r = c
                    .post(format!("{base}/v1/infer"))
                    .json(&json!({"model": bomb_cid.to_string(), "inputs": {"x": [1.0]}}))
                    .send()
                    .await
                    .unwrap();
                let v: serde_json::Value = r.json().await.unwrap();
                *codes
                    .entry(v["error"]["code"].as_str().unwrap_or("ok").to_string())
                    .or_insert(0) += 1;
            }
            codes
        }
    });
    let during = normal(&base, &body, 100).await;
    row(
        "memory bomb (Expand to 200000 x 200000 f32 = 160 GB), repeated for 3 s",
        format!(
            "refused every run before allocating: {:?}",
            bombs.await.unwrap()
        ),
        during,
        quiet,
    );

    // 4. forged signatures: hub writes signed by the wrong key, many at once
    let quiet = normal(&base, &body, 100).await.0;
    let forged = tokio::spawn({
        let base = base.clone();
        async move {
            let c = reqwest::Client::new();
            let key = alloy_primitives::B256::repeat_byte(9);
            let mut codes = std::collections::BTreeMap::new();
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                let payload = br#"{"name":"stolen"}"#;
                let h = gradnet_client::auth::sign(
                    &key,
                    1,
                    "POST",
                    "/api/v0/models",
                    gradnet_client::auth::body_hash(payload),
                )
                .unwrap();
                let mut req = c
                    .post(format!("{base}/api/v0/models"))
                    .header("content-type", "application/json")
                    .body(payload.to_vec());
                for (n, v) in h.pairs() {
                    req = req.header(n, v);
                }
                let v: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
                *codes
                    .entry(v["error"]["code"].as_str().unwrap_or("ok").to_string())
                    .or_insert(0) += 1;
            }
            codes
        }
    });
    let during = normal(&base, &body, 100).await;
    row(
        "hub writes signed for another chain, for 3 s",
        format!("refused every one with 401: {:?}", forged.await.unwrap()),
        during,
        quiet,
    );
}
