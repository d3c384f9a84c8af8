//! Bad input gets a precise error and the node keeps serving.

use crate::common;

use common::*;
use gradnet_runtime::generated;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn expect(base: &str, body: Value, status: u16, code: &str, needle: &str) {
    let (s, v) = post(&format!("{base}/v1/infer"), body.clone()).await;
    assert_eq!(
        (s, v["error"]["code"].as_str().unwrap_or("")),
        (status, code),
        "{body} → {v}"
    );
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(needle),
        "message `{msg}` should mention `{needle}`"
    );
}

#[tokio::test]
async fn every_bad_input_gets_its_error_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        &["--max-request-bytes", "20000", "--max-blob-size", "200000"],
    );
    let base = node.url.clone();
    let (model, cid) = publish(&base, "two", "two.onnx", generated::two_inputs()).await;
    let good = json!({"model": model, "inputs": {"x": [[1.0, 2.0]], "k": [3]}});

    expect(
        &base,
        json!({"model": model, "inputs": {"x": [[1.0, 2.0]], "kk": [3]}}),
        400,
        "invalid_tensor",
        "unknown input `kk`",
    )
    .await;
    expect(
        &base,
        json!({"model": model, "inputs": {"x": [[1.0, 2.0]]}}),
        400,
        "invalid_tensor",
        "missing input `k`",
    )
    .await;
    expect(
        &base,
        json!({"model": model, "inputs": {"x": [[1.0, 2.0, 3.0]], "k": [3]}}),
        400,
        "invalid_tensor",
        "expects 2 at axis 1",
    )
    .await;
    expect(
        &base,
        json!({"model": model, "inputs": {"x": [[1.0, 2.0]], "k": [3.5]}}),
        400,
        "invalid_tensor",
        "cannot be represented as i64",
    )
    .await;
    expect(
        &base,
        json!({"model": model, "inputs": {"x": [["a", "b"]], "k": [3]}}),
        400,
        "invalid_tensor",
        "expected f32 values, got strings",
    )
    .await;
    expect(
        &base,
        json!({"model": model, "inputs": {"x": [[1.0, "b"]], "k": [3]}}),
        400,
        "invalid_tensor",
        "one type",
    )
    .await;
    expect(
        &base,
        json!({"model": model, "inputs": {"x": [[1.0], [1.0, 2.0]], "k": [3]}}),
        400,
        "invalid_tensor",
        "ragged",
    )
    .await;
    expect(
        &base,
        json!({"model": model, "inputs": {"x": [[{"a": 1}, 2]], "k": [3]}}),
        400,
        "invalid_tensor",
        "an object",
    )
    .await;
    expect(
        &base,
        json!({"model": model, "inputs": [1, 2]}),
        400,
        "invalid_tensor",
        "JSON object",
    )
    .await;
    expect(
        &base,
        json!({"model": model, "inputs": {}, "mode": "FAST"}),
        400,
        "invalid_json",
        "unknown inference mode",
    )
    .await;
    expect(
        &base,
        json!({"model": model, "inputs": {}, "mode": "ZKML"}),
        400,
        "unsupported_mode",
        "ZKML",
    )
    .await;
    expect(
        &base,
        json!({"inputs": {}}),
        400,
        "invalid_json",
        "missing field `model`",
    )
    .await;
    let unknown = gradnet_types::ContentId::of(b"no such model");
    expect(
        &base,
        json!({"model": unknown.to_string(), "inputs": {}}),
        404,
        "not_found",
        &unknown.to_string(),
    )
    .await;
    expect(
        &base,
        json!({"model": format!("{}x", &cid[..cid.len() - 1]), "inputs": {}}),
        400,
        "invalid_model",
        "content id",
    )
    .await;
    expect(
        &base,
        json!({"model": "nope@1.00/a.onnx", "inputs": {}}),
        404,
        "not_found",
        "`nope`",
    )
    .await;
    expect(
        &base,
        json!({"model": "two@1.00/missing.onnx", "inputs": {}}),
        404,
        "not_found",
        "missing.onnx",
    )
    .await;

    // malformed JSON and an oversized body
    let r = http()
        .post(format!("{base}/v1/infer"))
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_json"
    );
    let big = json!({"model": model, "inputs": {"x": vec![[1.0, 2.0]; 5000], "k": vec![1; 5000]}});
    let r = http()
        .post(format!("{base}/v1/infer"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "too_large"
    );

    // a corrupt ONNX upload is refused and not listed
    let mut corrupt = generated::mlp(4, 8, 2, 1);
    corrupt.truncate(corrupt.len() - 40);
    let (s, v) = upload(&base, "two", "1.00", "broken.onnx", corrupt).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("model_unloadable")),
        "{v}"
    );
    let (s, v) = upload(
        &base,
        "two",
        "1.00",
        "junk.onnx",
        b"not a model at all".to_vec(),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    // an upload over the blob limit
    let (s, v) = upload(&base, "two", "1.00", "huge.bin", vec![7u8; 300_000]).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (413, Some("too_large")),
        "{v}"
    );
    // a file name that is not a plain name
    let (s, _) = upload(&base, "two", "1.00", "../escape.onnx", vec![1]).await;
    assert_eq!(s, 400);
    // an upload to a version that does not exist
    let (s, _) = upload(&base, "two", "7.00", "a.bin", vec![1]).await;
    assert_eq!(s, 404);

    // a truncated upload: the client promises more bytes than it sends, then hangs up
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let part =
        "--XYZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"cut.bin\"\r\n\r\n";
    let head = format!("POST /api/v0/models/two/versions/1.00/files HTTP/1.1\r\nhost: {addr}\r\ncontent-type: multipart/form-data; boundary=XYZ\r\ncontent-length: 100000\r\n\r\n{part}");
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&[1u8; 5000]).await.unwrap();
    sock.shutdown().await.unwrap();
    let mut resp = String::new();
    let _ = sock.read_to_string(&mut resp).await;
    assert!(
        resp.is_empty() || resp.starts_with("HTTP/1.1 400"),
        "{resp}"
    );

    let files: Vec<Value> =
        get_json(&format!("{base}/api/v0/models/two/versions/1.00/files")).await;
    let names: Vec<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["two.onnx"],
        "nothing of the refused uploads is listed"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("hub/staging"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );

    // blobs: bad and unknown ids
    let r = http()
        .get(format!("{base}/api/v0/blobs/notacid"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http()
        .get(format!("{base}/api/v0/blobs/{unknown}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // a tampered receipt fails verification
    let (s, resp) = post(&format!("{base}/v1/infer"), good.clone()).await;
    assert_eq!(s, 200);
    let f = dir.path().join("resp.json");
    std::fs::write(&f, serde_json::to_vec(&resp).unwrap()).unwrap();
    assert!(node
        .cli(&["receipt", "verify", f.to_str().unwrap()])
        .status
        .success());
    let mut tampered = resp.clone();
    tampered["receipt"]["timestamp_ms"] = json!(1);
    std::fs::write(&f, serde_json::to_vec(&tampered).unwrap()).unwrap();
    let out = node.cli(&["receipt", "verify", f.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature does not verify"));
    let mut changed = resp.clone();
    changed["outputs"]["k1"] = json!([5]);
    std::fs::write(&f, serde_json::to_vec(&changed).unwrap()).unwrap();
    let out = node.cli(&["receipt", "verify", f.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("output hash mismatch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = node.cli(&[
        "receipt",
        "verify",
        "--signer",
        &"ab".repeat(32),
        dir.path().join("resp.json").to_str().unwrap(),
    ]);
    assert!(!out.status.success());

    // still serving
    let (s, v) = post(&format!("{base}/v1/infer"), good).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["outputs"]["k1"], json!([4]));
    let m = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("gradnet_http_errors_total{code=\"invalid_tensor\"} 9"),
        "{m}"
    );
}
