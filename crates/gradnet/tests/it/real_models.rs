//! Real models (PP-OCRv4 detector and recogniser, from scripts/fetch-models)
//! through the hub and `/v1/infer`, checked against onnxruntime's outputs
//! (tests/fixtures, made by scripts/make-fixtures), and for determinism
//! across requests and thread counts.

use crate::common;

use common::*;
use serde_json::{json, Value};

/// gradnet's engine and onnxruntime sum in different orders and use
/// different approximations of exp and friends; on these models' outputs
/// (probabilities in [0, 1]) they differ by a few 1e-6 at most. 1e-4 still
/// catches any real divergence.
const ABS_TOL: f64 = 1e-4;

/// `exact`: the node runs the same onnxruntime build the fixture came from,
/// so every sampled value must match to the bit.
async fn check_against_onnxruntime(
    node: &Node,
    file: &str,
    fixture: &Value,
    exact: bool,
) -> String {
    let bytes = std::fs::read(real_model(file)).unwrap();
    let repo = file.trim_end_matches(".onnx");
    let (model, cid) = publish(&node.url, repo, file, bytes.clone()).await;
    assert_eq!(cid, gradnet_types::ContentId::of(&bytes).to_string());
    let f = &fixture[file];
    let (h, w) = (
        f["input_hw"][0].as_u64().unwrap() as usize,
        f["input_hw"][1].as_u64().unwrap() as usize,
    );
    let input = nest(&pattern_image(h, w), &[1, 3, h, w]);
    let (s, r) = post(
        &format!("{}/v1/infer", node.url),
        json!({"model": model, "inputs": {"x": input}}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let engine = if exact { "onnxruntime" } else { "gradnet-onnx" };
    assert_eq!(
        r["receipt"]["runtime"]["name"], engine,
        "receipts name the engine"
    );
    let out_name = f["output"].as_str().unwrap();
    let shape: Vec<u64> =
        serde_json::from_value(r["output_types"][out_name]["shape"].clone()).unwrap();
    assert_eq!(json!(shape), f["shape"]);
    let mut vals = vec![];
    flatten(&r["outputs"][out_name], &mut vals);
    let sum: f64 = vals.iter().sum();
    let want_sum = f["sum"].as_f64().unwrap();
    assert!(
        (sum - want_sum).abs() <= 1e-4 * want_sum.abs().max(1.0),
        "{file}: sum {sum} vs onnxruntime {want_sum}"
    );
    let mut worst = 0f64;
    for (i, v) in f["samples"].as_object().unwrap() {
        let i: usize = i.parse().unwrap();
        let want = v.as_f64().unwrap();
        worst = worst.max((vals[i] - want).abs());
        if exact {
            assert_eq!(
                vals[i] as f32, want as f32,
                "{file}[{i}]: onnxruntime engine differs from Python onnxruntime"
            );
        }
    }
    assert!(
        worst <= ABS_TOL,
        "{file}: max abs difference from onnxruntime {worst}"
    );
    if let Some(argmax) = f.get("argmax") {
        let classes = shape[2] as usize;
        let got: Vec<usize> = vals
            .chunks(classes)
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold((0, f64::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
                    .0
            })
            .collect();
        assert_eq!(
            json!(got),
            *argmax,
            "{file}: recognised characters differ from onnxruntime's"
        );
    }
    // same request again: the same output bits
    let (_, again) = post(
        &format!("{}/v1/infer", node.url),
        json!({"model": model, "inputs": {"x": nest(&pattern_image(h, w), &[1, 3, h, w])}}),
    )
    .await;
    assert_eq!(again["receipt"]["output_hash"], r["receipt"]["output_hash"]);
    assert_eq!(
        again["receipt"]["request_hash"],
        r["receipt"]["request_hash"]
    );
    r["receipt"]["output_hash"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn ppocr_det_and_rec_match_onnxruntime_and_are_deterministic_across_threads() {
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/ppocr-onnxruntime.json")).unwrap();
    let library = models_dir().join("libonnxruntime.so.1.32.0");
    let library = library.to_str().unwrap();
    for (engine, flags) in [
        ("gradnet-onnx", vec![]),
        (
            "onnxruntime",
            vec!["--backend", "onnxruntime", "--onnxruntime-lib", library],
        ),
    ] {
        let mut hashes = vec![];
        for threads in ["1", "2"] {
            let dir = tempfile::tempdir().unwrap();
            let mut args = vec!["--threads", threads];
            args.extend(&flags);
            let node = Node::start(dir.path(), &args);
            let health: Value = reqwest::get(format!("{}/health", node.url))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(health["runtime"]["name"], engine);
            let exact = engine == "onnxruntime";
            let det = check_against_onnxruntime(&node, "ppocr-v4-det.onnx", &fixture, exact).await;
            let rec = check_against_onnxruntime(&node, "ppocr-v4-rec.onnx", &fixture, exact).await;
            hashes.push((det, rec));
        }
        assert_eq!(
            hashes[0], hashes[1],
            "{engine}: 1 and 2 threads must give bit-identical outputs"
        );
    }
}
