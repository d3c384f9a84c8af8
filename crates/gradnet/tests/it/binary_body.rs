//! Binary tensor bodies on `/v1/infer`: a JSON header, then raw
//! little-endian bytes (`Inference-Header-Content-Length` gives the header's
//! length). Same results and receipts as the JSON forms; malformed bodies get
//! precise errors.

use crate::common;

use common::*;
use gradnet_runtime::generated;
use serde_json::{json, Value};

async fn send(
    base: &str,
    header: &Value,
    data: &[u8],
    header_len: Option<usize>,
) -> reqwest::Response {
    let head = serde_json::to_vec(header).unwrap();
    let len = header_len.unwrap_or(head.len());
    http()
        .post(format!("{base}/v1/infer"))
        .header("content-type", "application/octet-stream")
        .header("inference-header-content-length", len.to_string())
        .body([&head[..], data].concat())
        .send()
        .await
        .unwrap()
}

fn le_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[tokio::test]
async fn binary_bodies_give_the_same_results_and_receipts_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let base = node.url.clone();
    let (model, _) = publish(&base, "two", "two.onnx", generated::two_inputs()).await;
    let x = [1.5f32, -2.0, 0.25, 8.0];
    let (s, plain) = post(
        &format!("{base}/v1/infer"),
        json!({"model": model, "inputs": {"x": [[1.5, -2.0], [0.25, 8.0]], "k": [3, 4]}}),
    )
    .await;
    assert_eq!(s, 200, "{plain}");

    // inputs in binary (their order in the header is the order of the bytes),
    // outputs in binary
    let k: Vec<u8> = [3i64, 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let header = json!({"model": model, "output_format": "binary", "inputs": {
        "k": {"dtype": "i64", "shape": [2], "binary_data_size": 16},
        "x": {"dtype": "f32", "shape": [2, 2], "binary_data_size": 16},
    }});
    let r = send(&base, &header, &[&k[..], &le_f32(&x)].concat(), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let json_len: usize = r.headers()["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = r.bytes().await.unwrap();
    let head: Value = serde_json::from_slice(&body[..json_len]).unwrap();
    let data = &body[json_len..];
    // outputs are named in order: k1 (i64, 2 values), y (f32, 4 values)
    assert_eq!(
        head["outputs"]["k1"],
        json!({"dtype": "i64", "shape": [2], "binary_data_size": 16})
    );
    assert_eq!(
        head["outputs"]["y"],
        json!({"dtype": "f32", "shape": [2, 2], "binary_data_size": 16})
    );
    let k1: Vec<i64> = data[..16]
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let y: Vec<f32> = data[16..]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(k1, [4, 5]);
    assert_eq!(json!(y), json!([3.0, -4.0, 0.5, 16.0]));
    assert_eq!(
        json!([k1, y]),
        json!([plain["outputs"]["k1"], [3.0, -4.0, 0.5, 16.0]])
    );
    // the receipt does not depend on the encoding
    assert_eq!(
        head["receipt"]["request_hash"],
        plain["receipt"]["request_hash"]
    );
    assert_eq!(
        head["receipt"]["output_hash"],
        plain["receipt"]["output_hash"]
    );
    let f = dir.path().join("receipt.json");
    std::fs::write(&f, serde_json::to_vec(&head["receipt"]).unwrap()).unwrap();
    let out = node.cli(&["receipt", "verify", f.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // binary and JSON tensors mix in one request; binary output from JSON input
    let header = json!({"model": model, "output_format": "binary", "inputs": {
        "k": [3, 4],
        "x": {"dtype": "f32", "shape": [2, 2], "binary_data_size": 16},
    }});
    let r = send(&base, &header, &le_f32(&x), None).await;
    assert_eq!(r.status(), 200);
    let (s, v) = post(
        &format!("{base}/v1/infer"),
        json!({"model": model, "output_format": "binary", "inputs": {"x": [[1.5, -2.0], [0.25, 8.0]], "k": [3, 4]}}),
    )
    .await;
    assert_eq!(s, 200, "a JSON request may not ask for binary outputs: {v}");
}

#[tokio::test]
async fn malformed_binary_bodies_are_refused_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let base = node.url.clone();
    let (model, _) = publish(&base, "two", "two.onnx", generated::two_inputs()).await;
    let x = le_f32(&[1.0, 2.0]);
    let k = 7i64.to_le_bytes();
    let header = |xs: Value| json!({"model": model, "inputs": {"x": {"dtype": "f32", "shape": [1, 2], "binary_data_size": xs}, "k": [7]}});
    let expect = |r: reqwest::Response, status: u16, needle: &'static str| async move {
        assert_eq!(r.status(), status);
        let v: Value = r.json().await.unwrap();
        let msg = v["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "`{msg}` should mention `{needle}`");
    };
    // sizes that do not add up
    expect(
        send(&base, &header(json!(12)), &x, None).await,
        400,
        "within the 8 bytes",
    )
    .await;
    expect(
        send(&base, &header(json!(4)), &x, None).await,
        400,
        "4 bytes, but 2 f32 values take 8",
    )
    .await;
    expect(
        send(&base, &header(json!(8)), &[&x[..], &k[..]].concat(), None).await,
        400,
        "8 bytes of binary data are not claimed",
    )
    .await;
    expect(
        send(&base, &header(json!("8")), &x, None).await,
        400,
        "byte count",
    )
    .await;
    // a header length beyond the body, or not a number
    expect(
        send(&base, &header(json!(8)), &x, Some(100_000)).await,
        400,
        "the body has",
    )
    .await;
    let r = http()
        .post(format!("{base}/v1/infer"))
        .header("content-type", "application/octet-stream")
        .header("inference-header-content-length", "ten")
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    expect(r, 400, "byte count").await;
    // octets without the header length
    let r = http()
        .post(format!("{base}/v1/infer"))
        .header("content-type", "application/octet-stream")
        .body(x.clone())
        .send()
        .await
        .unwrap();
    expect(r, 415, "Inference-Header-Content-Length").await;
    // `binary_data_size` in a plain JSON request, and both b64 and binary
    let (s, v) = post(&format!("{base}/v1/infer"), header(json!(8))).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("needs a binary request body"));
    let both = json!({"model": model, "inputs": {"x": {"dtype": "f32", "shape": [1, 2], "binary_data_size": 8, "b64": "AACAPwAAAEA="}, "k": [7]}});
    expect(send(&base, &both, &x, None).await, 400, "not both").await;
    // and the node still serves
    let ok = send(&base, &header(json!(8)), &x, None).await;
    assert_eq!(ok.status(), 200);
}
