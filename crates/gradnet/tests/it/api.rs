//! The hub and inference API end to end over real HTTP against the real
//! binary: publish → list → download → infer → verify; restart; overload.

use crate::common;

use common::*;
use gradnet_runtime::generated;
use serde_json::{json, Value};

#[tokio::test]
async fn publish_download_infer_verify_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let base = node.url.clone();
    let bytes = generated::mlp(4, 16, 3, 11);
    let (model, cid) = publish(&base, "mlp", "model.onnx", bytes.clone()).await;
    assert_eq!(model, "mlp@1.00/model.onnx");

    // listings
    let repos: Vec<Value> = get_json(&format!("{base}/api/v0/models")).await;
    assert_eq!(repos.len(), 1);
    assert_eq!(repos[0]["name"], "mlp");
    let files: Vec<Value> =
        get_json(&format!("{base}/api/v0/models/mlp/versions/1.00/files")).await;
    assert_eq!(files[0]["cid"], cid.as_str());
    assert_eq!(files[0]["size"], bytes.len());
    let (s, v2) = post(
        &format!("{base}/api/v0/models/mlp/versions"),
        json!({"notes": "big change", "is_major": true}),
    )
    .await;
    assert_eq!((s, v2["versionString"].as_str()), (201, Some("2.00")));

    // download: identical bytes, and ranges
    let r = http()
        .get(format!("{base}/api/v0/blobs/{cid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);
    let r = http()
        .get(format!("{base}/api/v0/blobs/{cid}"))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 10-19/{}", bytes.len())
    );
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes[10..20]);
    let r = http()
        .get(format!("{base}/api/v0/blobs/{cid}"))
        .header("range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes[bytes.len() - 5..]);
    let r = http()
        .get(format!("{base}/api/v0/blobs/{cid}"))
        .header("range", format!("bytes={}-", bytes.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);

    // the signature endpoint
    let sig: Value = get_json(&format!("{base}/api/v0/signature/{model}")).await;
    assert_eq!(
        sig["signature"]["inputs"][0],
        json!({"name": "x", "dtype": "f32", "shape": ["N", 4]})
    );

    // inference by path and by content id give the same signed result
    let x = json!({"x": [[0.5, -1.0, 0.25, 2.0], [1.0, 1.0, 1.0, 1.0]]});
    let (s, a) = post(
        &format!("{base}/v1/infer"),
        json!({"model": model, "inputs": x}),
    )
    .await;
    assert_eq!(s, 200, "{a}");
    let (_, b) = post(
        &format!("{base}/v1/infer"),
        json!({"model": cid, "inputs": x, "mode": "VANILLA"}),
    )
    .await;
    assert_eq!(a["receipt"]["output_hash"], b["receipt"]["output_hash"]);
    assert_eq!(a["receipt"]["request_hash"], b["receipt"]["request_hash"]);
    assert_eq!(a["receipt"]["model"], cid.as_str());
    assert_eq!(
        a["output_types"]["y"],
        json!({"dtype": "f32", "shape": [2, 3]})
    );
    let health: Value = get_json(&format!("{base}/health")).await;
    assert_eq!(a["receipt"]["node"], health["node"]);

    // the fixed-point form of the same inputs is the same request
    let fixed = json!({"numbers": [{"name": "x", "shape": [2, 4], "values": [
        {"value": 5, "decimals": 1}, {"value": -1, "decimals": 0}, {"value": 25, "decimals": 2}, {"value": 2, "decimals": 0},
        {"value": 1, "decimals": 0}, {"value": 1, "decimals": 0}, {"value": 1, "decimals": 0}, {"value": 1, "decimals": 0}]}]});
    let (s, c) = post(
        &format!("{base}/v1/infer"),
        json!({"model": model, "inputs": fixed, "output_format": "fixed_point"}),
    )
    .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["receipt"]["request_hash"], a["receipt"]["request_hash"]);
    assert_eq!(c["receipt"]["output_hash"], a["receipt"]["output_hash"]);
    assert_eq!(c["outputs"]["numbers"][0]["name"], "y");

    // and so is the binary (base64) form, answered in binary
    let raw: Vec<u8> = [0.5f32, -1.0, 0.25, 2.0, 1.0, 1.0, 1.0, 1.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let b64 =
        json!({"x": {"dtype": "f32", "shape": [2, 4], "b64": data_encoding::BASE64.encode(&raw)}});
    let (s, e) = post(
        &format!("{base}/v1/infer"),
        json!({"model": model, "inputs": b64, "output_format": "base64"}),
    )
    .await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(e["receipt"]["request_hash"], a["receipt"]["request_hash"]);
    assert_eq!(e["outputs"]["y"]["dtype"], "f32");

    // every response verifies offline, whatever its encoding
    for (i, resp) in [&a, &c, &e].iter().enumerate() {
        let f = dir.path().join(format!("resp{i}.json"));
        std::fs::write(&f, serde_json::to_vec(resp).unwrap()).unwrap();
        let out = node.cli(&["receipt", "verify", f.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("outputs: match"));
    }

    // metrics
    let m = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("gradnet_http_requests_total{route=\"/v1/infer\",status=\"200\"} 4"),
        "{m}"
    );
    assert!(
        m.contains("gradnet_http_errors_total{code=\"range_not_satisfiable\"} 1"),
        "{m}"
    );
    assert!(m.contains("gradnet_http_request_duration_seconds_bucket"));
    // the upload prepared the model once; every later request found it prepared
    assert!(m.contains("gradnet_model_cache_hits_total 5"), "{m}");
    assert!(m.contains("gradnet_model_cache_misses_total 1"), "{m}");
    assert!(m.contains(&format!("gradnet_hub_bytes_stored {}", bytes.len())));
    // the sampled history: every request above (not the polling of /metrics) in its intervals
    let h: Value = get_json(&format!("{base}/api/v0/metrics/history?window=15m")).await;
    assert_eq!(h["step_secs"], 5, "{h}");
    let points = h["points"].as_array().unwrap();
    assert!(!points.is_empty(), "{h}");
    assert!(points.iter().any(|p| p["p50"].as_f64().is_some()), "{h}");
    let r = http()
        .get(format!("{base}/api/v0/metrics/history?window=2d"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_window", "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("`2d`"),
        "{e}"
    );

    // restart on the same data dir: everything is still there, same key
    node.stop();
    let node = Node::start(dir.path(), &[]);
    let files: Vec<Value> = get_json(&format!(
        "{}/api/v0/models/mlp/versions/1.00/files",
        node.url
    ))
    .await;
    assert_eq!(files[0]["cid"], cid.as_str());
    let (s, d) = post(
        &format!("{}/v1/infer", node.url),
        json!({"model": model, "inputs": x}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(d["receipt"]["output_hash"], a["receipt"]["output_hash"]);
    assert_eq!(d["receipt"]["node"], a["receipt"]["node"]);
    let r = http()
        .get(format!("{}/api/v0/blobs/{cid}", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);
}

/// One worker and no queue: concurrent requests beyond it are refused with
/// 429 and Retry-After, the rest succeed, and the node keeps serving.
#[tokio::test]
async fn overload_is_refused_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--workers", "1", "--queue-depth", "0"]);
    let bytes = std::fs::read(real_model("ppocr-v4-det.onnx")).unwrap();
    let (model, _) = publish(&node.url, "det", "det.onnx", bytes).await;
    let body =
        json!({"model": model, "inputs": {"x": nest(&pattern_image(320, 320), &[1, 3, 320, 320])}});
    // warm the plan so every request below costs the same
    assert_eq!(
        post(&format!("{}/v1/infer", node.url), body.clone())
            .await
            .0,
        200
    );
    let reqs = (0..6).map(|_| {
        let url = format!("{}/v1/infer", node.url);
        let body = body.clone();
        tokio::spawn(async move {
            let r = http().post(url).json(&body).send().await.unwrap();
            (
                r.status().as_u16(),
                r.headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string()),
                r.json::<Value>().await.unwrap(),
            )
        })
    });
    let results = futures::future::join_all(reqs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    let refused: Vec<_> = results.iter().filter(|r| r.0 == 429).collect();
    assert!(
        !refused.is_empty(),
        "some of 6 concurrent requests must be refused: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(results.iter().all(|r| r.0 == 200 || r.0 == 429));
    for r in &refused {
        assert_eq!(r.1.as_deref(), Some("1"));
        assert_eq!(r.2["error"]["code"], "overloaded");
    }
    assert_eq!(post(&format!("{}/v1/infer", node.url), body).await.0, 200);
}

/// A model uploaded to one node runs on another that lists it as a hub
/// peer: fetched by content id, checked against the id (a peer serving
/// other bytes is passed over), kept; an id no peer has is a 404 that says
/// where it was looked for.
#[tokio::test]
async fn models_are_fetched_by_content_id_from_hub_peers() {
    // a peer that answers every request with the same wrong bytes
    let liar = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let liar_url = format!("http://{}", liar.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in liar.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
            );
        }
    });
    let (a_dir, b_dir, c_dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = Node::start(a_dir.path(), &[]);
    let b = Node::start(
        b_dir.path(),
        &["--hub-peer", &liar_url, "--hub-peer", &a.url],
    );
    let c = Node::start(c_dir.path(), &["--hub-peer", &liar_url]);
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let (_, cid) = publish(&a.url, "mlp", "model.onnx", onnx.clone()).await;
    let x = json!({"x": [[0.5, -1.0, 0.25, 3.0]]});
    let (s, on_a) = post(
        &format!("{}/v1/infer", a.url),
        json!({"model": cid, "inputs": x}),
    )
    .await;
    assert_eq!(s, 200, "{on_a}");
    let (s, on_b) = post(
        &format!("{}/v1/infer", b.url),
        json!({"model": cid, "inputs": x}),
    )
    .await;
    assert_eq!(s, 200, "{on_b}");
    assert_eq!(
        on_b["receipt"]["output_hash"],
        on_a["receipt"]["output_hash"]
    );
    assert_ne!(on_b["receipt"]["node"], on_a["receipt"]["node"]);
    // b keeps it: served from its own hub now
    let r = http()
        .get(format!("{}/api/v0/blobs/{cid}", b.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), onnx);
    // only the lying peer: refused, and the reason says why
    let (s, e) = post(
        &format!("{}/v1/infer", c.url),
        json!({"model": cid, "inputs": x}),
    )
    .await;
    assert_eq!(s, 404, "{e}");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("nor on the hub peers") && msg.contains("hash to"),
        "{msg}"
    );
    // an id nobody has
    let unknown = gradnet_types::cid::ContentId::of(b"no such model").to_string();
    let (s, e) = post(
        &format!("{}/v1/infer", b.url),
        json!({"model": unknown, "inputs": x}),
    )
    .await;
    assert_eq!(s, 404, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("HTTP 404"),
        "{e}"
    );
}
