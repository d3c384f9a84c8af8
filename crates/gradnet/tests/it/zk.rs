//! `gradnet zk setup|prove|verify` as a user types them: keys uploaded to a
//! node's hub, a proof checked against a key fetched by content id, and
//! every way a proof or a model can be wrong.

use crate::common;

use common::*;
use gradnet_runtime::generated;
use serde_json::Value;

fn run(node: &Node, args: &[&str]) -> (bool, String, String) {
    let out = node.cli(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn ok(node: &Node, args: &[&str]) -> String {
    let (success, stdout, stderr) = run(node, args);
    assert!(success, "{args:?}: {stderr}");
    stdout
}

#[test]
fn setup_prove_verify_and_every_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node"), &[]);
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::write(p("mlp.onnx"), generated::mlp(16, 8, 4, 1)).unwrap();
    std::fs::write(p("other.onnx"), generated::mlp(16, 8, 4, 2)).unwrap();
    std::fs::write(p("sig.onnx"), generated::sigmoid_softmax()).unwrap();
    ok(&node, &["model", "create", "mlp"]);
    ok(&node, &["model", "version", "mlp"]);

    let meta: Value = serde_json::from_str(&ok(
        &node,
        &[
            "zk",
            "setup",
            &p("mlp.onnx"),
            "--out",
            &p("keys"),
            "--samples",
            "64",
            "--upload",
            "mlp@1.00",
        ],
    ))
    .unwrap();
    assert_eq!(meta["frac_bits"], 13);
    assert!(
        meta["accuracy"]["argmax_agreement"].as_f64().unwrap() >= 0.95,
        "{meta}"
    );
    assert!(
        meta["accuracy"]["max_abs_error"].as_f64().unwrap() < 0.01,
        "{meta}"
    );
    let vk_cid = meta["verifying_key"].as_str().unwrap().to_string();
    let files = ok(&node, &["model", "files", "mlp", "1.00"]);
    assert!(
        files.contains(&vk_cid) && files.contains("mlp.zk.pk"),
        "{files}"
    );

    let input = format!("{:?}", generated::weights(16, 9, 1.0));
    ok(
        &node,
        &[
            "zk",
            "prove",
            &p("mlp.onnx"),
            "--keys",
            &p("keys"),
            "--input",
            &input,
            "-o",
            &p("proof.json"),
        ],
    );
    // by file and by content id from the hub
    for vk in [p("keys/verifying.key"), vk_cid.clone()] {
        let out = ok(&node, &["zk", "verify", &p("proof.json"), "--vk", &vk]);
        assert!(out.starts_with("proof valid"), "{out}");
    }

    // a changed output
    let mut bundle: Value =
        serde_json::from_slice(&std::fs::read(p("proof.json")).unwrap()).unwrap();
    bundle["output"][0] = (bundle["output"][0].as_i64().unwrap() + 1).into();
    std::fs::write(p("changed.json"), bundle.to_string()).unwrap();
    let (success, _, err) = run(
        &node,
        &["zk", "verify", &p("changed.json"), "--vk", &vk_cid],
    );
    assert!(
        !success && err.contains("does not verify for this input and output"),
        "{err}"
    );

    // a tampered proof
    let mut bundle: Value =
        serde_json::from_slice(&std::fs::read(p("proof.json")).unwrap()).unwrap();
    let proof = bundle["proof"].as_str().unwrap();
    let flipped = if &proof[10..11] == "0" { "1" } else { "0" };
    bundle["proof"] = format!("{}{flipped}{}", &proof[..10], &proof[11..]).into();
    std::fs::write(p("tampered.json"), bundle.to_string()).unwrap();
    let (success, _, err) = run(
        &node,
        &["zk", "verify", &p("tampered.json"), "--vk", &vk_cid],
    );
    assert!(!success && err.contains("proof"), "{err}");

    // a proof for another model, checked with this model's key
    ok(
        &node,
        &[
            "zk",
            "setup",
            &p("other.onnx"),
            "--out",
            &p("other-keys"),
            "--samples",
            "8",
        ],
    );
    ok(
        &node,
        &[
            "zk",
            "prove",
            &p("other.onnx"),
            "--keys",
            &p("other-keys"),
            "--input",
            &input,
            "-o",
            &p("other.json"),
        ],
    );
    let (success, _, err) = run(&node, &["zk", "verify", &p("other.json"), "--vk", &vk_cid]);
    assert!(!success && err.contains("the proof is for model"), "{err}");

    // keys for another model
    let (success, _, err) = run(
        &node,
        &[
            "zk",
            "prove",
            &p("mlp.onnx"),
            "--keys",
            &p("other-keys"),
            "--input",
            &input,
        ],
    );
    assert!(!success && err.contains("are for model"), "{err}");
    // wrong input length, a model the compiler refuses
    let (success, _, err) = run(
        &node,
        &[
            "zk",
            "prove",
            &p("mlp.onnx"),
            "--keys",
            &p("keys"),
            "--input",
            "[1, 2, 3]",
        ],
    );
    assert!(
        !success && err.contains("input has 3 values, the model takes 16"),
        "{err}"
    );
    let (success, _, err) = run(
        &node,
        &["zk", "setup", &p("sig.onnx"), "--out", &p("sig-keys")],
    );
    assert!(
        !success && err.contains("does not support these operators: Sigmoid, Softmax"),
        "{err}"
    );
}
