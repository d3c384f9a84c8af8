//! The Python SDK (`python/`) against a devnet of 4 validators and 3 paid
//! inference nodes: its own pytest suite (python/tests), run with the
//! project venv that scripts/test prepares. The suite fails on a skip, so a
//! missing devnet or package cannot pass silently.

use crate::common::devnet::Devnet;
use crate::common::{self, publish, real_model};
use serde_json::json;

fn python() -> String {
    let python = std::env::var("GRADNET_PYTHON")
        .unwrap_or_else(|_| format!("{}/../../.venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run scripts/test (it creates .venv with the SDK's dependencies)"
    );
    python
}

#[test]
fn the_python_sdk_suite_passes_against_a_devnet() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path(), 4);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let gguf = std::fs::read(real_model("smollm2-135m-instruct-q4_1.gguf")).unwrap();
    for n in &net.inference {
        rt.block_on(publish(n, "smollm2", "smollm2.gguf", gguf.clone()));
    }
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let devnet = json!({
        "nodes": net.inference,
        "gateway": format!("{}/gateway", net.apis[1]),
        "rpc": net.rpc,
        "rpcs": net.rpcs,
        "keys": net.keys,
        // the inference nodes' operator keys (prices, redemption)
        "operators": (0..3)
            .map(|i| gradnet_ledger::genesis::dev_key(gradnet_ledger::genesis::DEV_OPERATOR_BASE + i).to_string())
            .collect::<Vec<_>>(),
        "bin": common::BIN,
        "models": common::models_dir(),
    });
    let out = std::process::Command::new(&python)
        .args(["-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider"])
        .arg(format!("{root}/python/tests"))
        .env("PYTHONPATH", format!("{root}/python"))
        .env("GRADNET_SDK_DEVNET", devnet.to_string())
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    net.stop();
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("skipped"), "a test was skipped:\n{text}");
}
