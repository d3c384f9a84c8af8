//! `/v1/infer` over loopback HTTP vs the same inference called in process,
//! interleaved request by request, on PP-OCRv4 det and a small MLP.
//! The in-process side runs the runtime on already-typed tensors; the HTTP
//! side pays for JSON encoding, the request, parsing, checks and the receipt.
//! Usage: http-overhead [ONNXRUNTIME_LIB] (default engine: deterministic)

use std::sync::Arc;
use std::time::Instant;

use gradnet_api::{ApiConfig, AppState};
use gradnet_hub::{Hub, HubConfig};
use gradnet_runtime::{Backend, OnnxRunner, RuntimeConfig};
use gradnet_types::json::parse_inputs;
use gradnet_types::NodeKey;
use serde_json::json;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::open(dir.path(), HubConfig::default()).unwrap();
    let backend = match std::env::args().nth(1) {
        None => Backend::Deterministic,
        Some(library) => Backend::OnnxRuntime {
            library: library.into(),
        },
    };
    println!("engine: {}", backend.name());
    let state = AppState::new(
        hub.clone(),
        OnnxRunner::new(RuntimeConfig {
            backend,
            ..RuntimeConfig::default()
        })
        .unwrap(),
        NodeKey::generate(),
        ApiConfig::default(),
    );
    let base = gradnet_bench::serve_in_process(state.clone()).await;
    let client = reqwest::Client::new();

    let det = std::fs::read(gradnet_bench::models_dir().join("ppocr-v4-det.onnx"))
        .expect("run scripts/fetch-models");
    let cases = [
        (
            "PP-OCRv4 det 1x3x320x320",
            det,
            "x",
            gradnet_bench::nest(&gradnet_bench::pattern_image(320, 320), &[1, 3, 320, 320]),
            80,
        ),
        (
            "MLP 784-128-10, batch 1",
            gradnet_runtime::generated::mlp(784, 128, 10, 7),
            "x",
            gradnet_bench::nest(&gradnet_runtime::generated::weights(784, 1, 1.0), &[1, 784]),
            3000,
        ),
    ];
    for (label, bytes, name, input, iters) in cases {
        let cid = hub.put_bytes(&bytes).await.unwrap().cid;
        let rt: Arc<OnnxRunner> = state.runtime.clone();
        let model = rt.load(cid, &bytes).unwrap();
        let typed = model
            .signature
            .check(&parse_inputs(&json!({ name: input.clone() })).unwrap())
            .unwrap();
        let raw = raw_bytes(&typed[name]);
        let binary_header = serde_json::to_vec(&json!({"model": cid.to_string(), "inputs": { name: {"dtype": "f32", "shape": typed[name].shape(), "binary_data_size": raw.len()} }, "output_format": "binary"})).unwrap();
        for (encoding, body, header_len) in [
            (
                "JSON arrays",
                serde_json::to_vec(&json!({"model": cid.to_string(), "inputs": { name: input }})).unwrap(),
                None,
            ),
            (
                "base64",
                serde_json::to_vec(&json!({"model": cid.to_string(), "inputs": { name: base64(&typed[name]) }, "output_format": "base64"})).unwrap(),
                None,
            ),
            (
                "binary",
                [&binary_header[..], &raw[..]].concat(),
                Some(binary_header.len()),
            ),
        ] {
            // Bytes: resending the same body costs the client no copy
            let body = bytes::Bytes::from(body);
            let (mut local, mut remote) = (vec![], vec![]);
            for i in 0..iters + 5 {
                let s = Instant::now();
                let m = model.clone();
                let t = typed.clone();
                let r = rt.clone();
                tokio::task::spawn_blocking(move || r.run(&m, &t).unwrap())
                    .await
                    .unwrap();
                let l = s.elapsed().as_secs_f64() * 1e3;
                let s = Instant::now();
                let req = client.post(format!("{base}/v1/infer"));
                let req = match header_len {
                    None => req.header("content-type", "application/json"),
                    Some(n) => req
                        .header("content-type", "application/octet-stream")
                        .header("inference-header-content-length", n),
                };
                let resp = req.body(body.clone()).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                resp.bytes().await.unwrap();
                let h = s.elapsed().as_secs_f64() * 1e3;
                if i >= 5 {
                    local.push(l);
                    remote.push(h);
                }
            }
            let (l, h) = (gradnet_bench::median(local), gradnet_bench::median(remote));
            println!(
            "{label}, {encoding}: in-process {l:.3} ms, HTTP {h:.3} ms, ratio {:.3}x, added {:.0} µs per request (request body {} KiB)",
            h / l,
            (h - l) * 1e3,
            body.len() / 1024
        );
        }
    }
}

fn raw_bytes(t: &gradnet_types::Tensor) -> Vec<u8> {
    let gradnet_types::TensorData::F32(v) = t.data() else {
        panic!("f32 inputs")
    };
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn base64(t: &gradnet_types::Tensor) -> serde_json::Value {
    let raw = raw_bytes(t);
    json!({"dtype": "f32", "shape": t.shape(), "b64": data_encoding::BASE64.encode(&raw)})
}
