//! The web console end to end in headless Chromium (Debian's, driven by
//! Playwright) against a real node with a ledger: explorer, hub upload,
//! playground, errors shown as the API words them. Screenshots are kept
//! in `target/console-screenshots`.

mod common;

use std::process::Command;

use common::ledger::*;
use common::*;
use gradnet_chain::genesis::{address_of, dev_keys, Genesis, GenesisValidator};

#[test]
fn the_console_explores_uploads_and_runs_models_in_a_browser() {
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/test (it installs Debian's chromium)"
    );
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("node");
    let key = dev_keys(1)[0];
    // the node is also the network's one inference node (its own API serves PIPE)
    let api_port = free_port();
    let node_public = node_key(&node_dir);
    let genesis = Genesis {
        chain_id: 9191,
        timestamp: 1_700_000_000,
        gas_limit: 30_000_000,
        base_fee: 1_000_000_000,
        validators: vec![GenesisValidator {
            public_key: node_public.clone(),
            power: 1,
            fee_recipient: alloy_primitives::Address::repeat_byte(3),
        }],
        alloc: [(
            address_of(&key).unwrap(),
            alloy_primitives::U256::from(10u128.pow(21)),
        )]
        .into(),
        code: Default::default(),
        inference_nodes: vec![gradnet_chain::genesis::GenesisInferenceNode {
            operator: alloy_primitives::Address::repeat_byte(0xaa),
            signing_key: node_public.clone(),
            endpoint: format!("http://127.0.0.1:{api_port}"),
            modes: vec![0, 3],
            models: vec![],
            stake: gradnet_chain::inference::registry::MIN_STAKE * alloy_primitives::U256::from(10),
        }],
        zk_models: vec![],
        tee: None,
    };
    let gpath = dir.path().join("genesis.json");
    std::fs::write(&gpath, serde_json::to_vec(&genesis).unwrap()).unwrap();
    let ports = Ports::free();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "node",
        "start",
        "--listen",
        &format!("127.0.0.1:{api_port}"),
        "--data-dir",
    ])
    .arg(&node_dir)
    .arg("--genesis")
    .arg(&gpath)
    .args([
        "--rpc-listen",
        &format!("127.0.0.1:{}", ports.rpc),
        "--p2p-listen",
        &format!("127.0.0.1:{}", ports.p2p),
        "--block-time-ms",
        "200",
    ])
    .env("GRADNET_LOG", "warn,informalsystems_malachitebft=error");
    let (_node, api) = spawn_node_api(cmd);

    // a transfer, sent through the console's own /rpc
    let raw = gradnet_chain::wallet::sign(
        &gradnet_chain::wallet::TxRequest {
            chain_id: 9191,
            nonce: 0,
            to: Some(alloy_primitives::Address::repeat_byte(7)),
            value: alloy_primitives::U256::from(12345u64),
            gas_limit: 21_000,
            ..Default::default()
        },
        &key,
    )
    .unwrap();
    let hash = rpc(
        &format!("{api}/rpc"),
        "eth_sendRawTransaction",
        serde_json::json!([raw]),
    );
    let hash = hash.as_str().unwrap().to_string();

    // a tiny LLM (random weights: its words are noise) for the chat page
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(common::publish(
        &api,
        "tiny-llm",
        "model.gguf",
        gradnet_runtime::llm::sample::tiny_llama(1),
    ));
    // an inference transaction straight to the precompile, served by the node
    let onnx = gradnet_runtime::samples::mlp(4, 8, 3, 7);
    let (_, cid) = rt.block_on(common::publish(&api, "mlp", "model.onnx", onnx));
    let inference_tx = {
        use alloy_sol_types::SolCall;
        use gradnet_chain::inference::abi::*;
        let request = ModelInferenceRequest {
            mode: 0,
            modelCID: cid,
            input: ModelInput {
                numbers: vec![MultiDimensionalNumberTensor {
                    name: "x".into(),
                    values: [5i128, -10, 25, 30]
                        .iter()
                        .map(|&v| Number {
                            value: v,
                            decimals: 1,
                        })
                        .collect(),
                    shape: vec![1, 4],
                }],
                strings: vec![],
            },
        };
        let raw = gradnet_chain::wallet::sign(
            &gradnet_chain::wallet::TxRequest {
                chain_id: 9191,
                nonce: 1,
                to: Some(gradnet_chain::inference::precompile::ADDRESS),
                gas_limit: 1_000_000,
                data: InferencePrecompile::runModelInferenceCall { request }
                    .abi_encode()
                    .into(),
                ..Default::default()
            },
            &key,
        )
        .unwrap();
        let h = rpc(
            &format!("{api}/rpc"),
            "eth_sendRawTransaction",
            serde_json::json!([raw]),
        );
        h.as_str().unwrap().to_string()
    };
    let model = dir.path().join("model.onnx");
    std::fs::write(&model, gradnet_runtime::samples::mlp(4, 8, 3, 7)).unwrap();
    let shots =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    let out = Command::new("node")
        .arg(web.join("tests/console.mjs"))
        .args([&api, &hash])
        .arg(&model)
        .arg(&shots)
        .arg("tiny-llm")
        .arg(&inference_tx)
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
        "explorer",
        "search",
        "hub-upload",
        "playground",
        "playground-errors",
    ] {
        assert!(shots.join(format!("{s}.png")).exists(), "no screenshot {s}");
    }
}
