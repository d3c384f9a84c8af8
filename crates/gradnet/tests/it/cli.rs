//! The same flow as a user types it: the `gradnet` binary's commands.

use crate::common;

use common::*;
use gradnet_runtime::generated;

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cli_publish_list_download_infer_verify() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node"), &[]);
    let model = dir.path().join("cnn.onnx");
    let bytes = generated::cnn(3);
    std::fs::write(&model, &bytes).unwrap();

    ok(node.cli(&[
        "model",
        "create",
        "digits",
        "--description",
        "a CNN",
        "--task",
        "classification",
        "--tag",
        "vision",
    ]));
    assert_eq!(
        ok(node.cli(&["model", "version", "digits", "--notes", "first"])).trim(),
        "1.00"
    );
    let up: serde_json::Value = serde_json::from_str(&ok(node.cli(&[
        "model",
        "upload",
        "digits",
        "1.00",
        model.to_str().unwrap(),
    ])))
    .unwrap();
    let cid = gradnet_types::ContentId::of(&bytes).to_string();
    assert_eq!(up["cid"], cid.as_str());
    assert!(ok(node.cli(&["model", "ls"])).starts_with("digits\tclassification\ta CNN"));
    let files = ok(node.cli(&["model", "files", "digits", "1.00"]));
    assert_eq!(files.trim(), format!("cnn.onnx\t{}\t{cid}", bytes.len()));

    let out = dir.path().join("back.onnx");
    ok(node.cli(&[
        "model",
        "download",
        "digits@1.00/cnn.onnx",
        "-o",
        out.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let out2 = dir.path().join("by-cid.onnx");
    ok(node.cli(&["model", "download", &cid, "--out", out2.to_str().unwrap()]));
    assert_eq!(std::fs::read(&out2).unwrap(), bytes);

    let img: Vec<Vec<f32>> = generated::weights(28 * 28, 4, 1.0)
        .chunks(28)
        .map(|r| r.to_vec())
        .collect();
    let input = dir.path().join("in.json");
    std::fs::write(
        &input,
        serde_json::to_vec(&serde_json::json!({"image": [[img]]})).unwrap(),
    )
    .unwrap();
    let saved = dir.path().join("resp.json");
    let printed: serde_json::Value = serde_json::from_str(&ok(node.cli(&[
        "infer",
        "--model",
        "digits/cnn.onnx",
        "--input",
        &format!("@{}", input.display()),
        "--save",
        saved.to_str().unwrap(),
    ])))
    .unwrap();
    assert_eq!(
        printed["output_types"]["logits"]["shape"],
        serde_json::json!([1, 10])
    );
    let report = ok(node.cli(&["receipt", "verify", saved.to_str().unwrap()]));
    assert!(
        report.contains("signature: valid") && report.contains("outputs: match"),
        "{report}"
    );
    // the receipt alone verifies too
    let receipt = dir.path().join("receipt.json");
    std::fs::write(&receipt, serde_json::to_vec(&printed["receipt"]).unwrap()).unwrap();
    ok(node.cli(&[
        "receipt",
        "verify",
        receipt.to_str().unwrap(),
        "--signer",
        printed["receipt"]["node"].as_str().unwrap(),
    ]));

    // errors reach the user as the node's code and message, with a failing exit
    let bad = node.cli(&[
        "infer",
        "--model",
        "digits/cnn.onnx",
        "--input",
        "{\"image\": [1]}",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid_tensor"));

    let key = dir.path().join("k.key");
    let public = ok(node.cli(&["keys", "new", "--out", key.to_str().unwrap()]));
    assert_eq!(public.trim().len(), 64);
    assert!(
        !node
            .cli(&["keys", "new", "--out", key.to_str().unwrap()])
            .status
            .success(),
        "never overwrites a key"
    );
    for sub in [
        &["--help"][..],
        &["model", "upload", "--help"],
        &["node", "start", "--help"],
        &["infer", "--help"],
    ] {
        assert!(ok(node.cli(sub)).contains("Usage"));
    }
}

#[test]
fn demo_runs_once() {
    let out = std::process::Command::new(BIN)
        .args(["demo", "--once", "--listen", "127.0.0.1:0"])
        .env("GRADNET_LOG", "warn")
        .env("GRADNET_MODELS_DIR", models_dir())
        .output()
        .unwrap();
    let text = ok(out);
    assert!(
        text.contains("receipt verified offline") && text.contains("outputs: match"),
        "{text}"
    );
    assert!(
        text.contains("ppocr-cls@1.00/ppocr-mobile-v2-cls.onnx"),
        "the demo uses the real model: {text}"
    );
    // and SmolLM2 answers one chat message, its receipt checked
    assert!(text.contains("The capital of France is Paris"), "{text}");
    assert!(
        text.contains("answer: matches the signed output hash"),
        "{text}"
    );
    // and a transfer goes through the node's chain to a final block
    assert!(text.contains("● chain: 1 ETH sent to"), "{text}");
    // (in block 1 unless an empty block came first: the chain makes one each
    // second, and a cold demo can take longer than that to get here)
    let block = text
        .split("final in block ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(block.is_some_and(|n| n >= 1), "{text}");
    // and a paid call off chain, redeemed at the escrow for what it charged
    assert!(text.contains("● paid off chain"), "{text}");
    assert!(text.contains("the escrow paid it 0.000003 ETH"), "{text}");
}

#[test]
fn cli_chat_and_completion_stream_and_save_verifiable_answers() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let f = dir.path().join("tiny.gguf");
    std::fs::write(&f, gradnet_runtime::llm::sample::tiny_llama(2)).unwrap();
    ok(node.cli(&["model", "create", "tiny"]));
    ok(node.cli(&["model", "version", "tiny"]));
    ok(node.cli(&["model", "upload", "tiny", "1.00", f.to_str().unwrap()]));
    let saved = dir.path().join("answer.json");
    for stream in [false, true] {
        let mut args = vec![
            "chat",
            "--model",
            "tiny",
            "--message",
            "hello",
            "--temperature",
            "0",
            "--max-tokens",
            "12",
            "--save",
            saved.to_str().unwrap(),
        ];
        if stream {
            args.push("--stream");
        }
        let out = node.cli(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("receipt verified"));
        ok(node.cli(&["receipt", "verify", saved.to_str().unwrap()]));
    }
    let out = node.cli(&[
        "completion",
        "--model",
        "tiny",
        "--prompt",
        "hello",
        "--max-tokens",
        "5",
        "--stream",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = node.cli(&["chat", "--model", "nope", "--message", "hi"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nope` does not exist"));
}

#[test]
fn a_node_that_cannot_start_its_engine_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args([
            "node",
            "start",
            "--dev-mode",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .args([
            "--backend",
            "onnxruntime",
            "--onnxruntime-lib",
            "/nonexistent/libort.so",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/libort.so"), "{err}");
    assert!(err.contains("scripts/fetch-models"), "{err}");
    let out = std::process::Command::new(BIN)
        .args(["node", "start", "--backend", "torch"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("deterministic") && err.contains("onnxruntime"),
        "{err}"
    );
}
