//! The official `openai` Python package (from the project venv that
//! scripts/test prepares) against a node: tests/openai_client.py.

use crate::common;

use common::*;
use gradnet_runtime::llm::sample;

#[tokio::test]
async fn the_official_openai_client_works_unchanged() {
    let python = std::env::var("GRADNET_PYTHON")
        .unwrap_or_else(|_| format!("{}/../../.venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run scripts/test (it creates .venv with the openai package)"
    );
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let bytes = std::fs::read(real_model("smollm2-135m-instruct-q4_1.gguf")).unwrap();
    publish(&node.url, "smollm2", "smollm2.gguf", bytes).await;
    publish(&node.url, "tiny", "tiny.gguf", sample::tiny_llama(3)).await;
    let minilm = std::fs::read(real_model("all-minilm-l6-v2.safetensors")).unwrap();
    publish(&node.url, "minilm", "minilm.safetensors", minilm).await;
    let script = format!(
        "{}/../../tests/openai_client.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&node.url)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
