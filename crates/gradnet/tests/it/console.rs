//! The web console end to end in headless Chromium (Debian's, driven by
//! Playwright) against a running `gradnet devnet` (4 validators, 3
//! inference nodes), served by its first validator: a new block after a
//! transaction, the network, inference through the chain in every mode with
//! its result checked in the browser, a model uploaded and run (on the node
//! and, fetched by the inference nodes, through the chain), a name published
//! on chain from the browser (and refused to another account), a browser
//! wallet that signs in once for a session, a paid call on an inference
//! node (deposit, voucher, charge in the receipt), chat, health
//! charts, and errors shown as the API words them. Screenshots are kept in
//! `target/console-screenshots`.

use crate::common;

use std::process::Command;

use common::devnet::Devnet;

#[test]
fn the_console_explores_uploads_and_runs_models_on_a_devnet_in_a_browser() {
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/test (it installs Debian's chromium)"
    );
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(&dir.path().join("devnet"), 4);
    // a tiny LLM (random weights: its words are noise) for the chat page
    let rt = tokio::runtime::Runtime::new().unwrap();
    // (also in each inference node's hub, for chat through the chain)
    for api in std::iter::once(&net.api).chain(&net.inference) {
        rt.block_on(common::publish(
            api,
            "tiny-llm",
            "model.gguf",
            gradnet_runtime::llm::sample::tiny_llama(1),
        ));
    }
    // the devnet's demo model: in every inference node's hub, its ZK key registered
    let demo = gradnet_types::cid::ContentId::of(&gradnet_runtime::generated::mlp(4, 8, 3, 7));
    let model = dir.path().join("model.onnx");
    std::fs::write(&model, gradnet_runtime::generated::mlp(4, 6, 2, 11)).unwrap();
    let shots =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    let out = Command::new("node")
        .arg(web.join("tests/console.mjs"))
        .env("CONSOLE_URL", &net.api)
        .env("CONSOLE_KEY", &net.keys[0])
        .env("TRANSFER_KEY", &net.keys[1])
        .env("DEMO_MODEL", demo.to_string())
        .env("MODEL_FILE", &model)
        .env("LLM", "tiny-llm")
        .env("PAID_NODE", &net.inference[0])
        .env("SHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .current_dir(&web)
        .output()
        .expect("node (Node.js) on PATH");
    assert!(
        out.status.success(),
        "console.mjs: {}{}\n(screenshots in {})",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        shots.display()
    );
    for s in [
        "explorer-new-block",
        "network",
        "playground-QUORUM",
        "playground-ZKML",
        "playground-TEE",
        "inference-tx",
        "hub-upload",
        "hub-errors",
        "playground",
        "playground-uploaded-QUORUM",
        "playground-errors",
        "chat",
        "chat-TEE",
        "health",
    ] {
        assert!(shots.join(format!("{s}.png")).exists(), "no screenshot {s}");
    }
    net.stop();
}
