//! The ledger through the real binary: `gradnet devnet` as a process, an
//! unmodified Ethereum client (ethers 6) and compiler (solcjs) from
//! tests/eth against it, `gradnet chain` commands, a clean stop, and the
//! state kept in `--data-dir` across runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common;

use common::devnet::Devnet;
use common::ledger::*;
use common::BIN;

fn eth_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/eth")
}

fn chain_cli(rpc: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["chain"])
        .args(args)
        .args(["--rpc", rpc])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn ethers_and_solidity_work_unchanged_on_a_devnet() {
    assert!(
        eth_dir().join("node_modules/ethers").exists(),
        "tests/eth/node_modules missing: run scripts/test (it installs ethers and solc from npm)"
    );
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path(), 4);
    assert_eq!(net.keys.len(), 3);
    // a model in the first validator's hub, for a contract to call
    let rt = tokio::runtime::Runtime::new().unwrap();
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let (model, cid) = rt.block_on(common::publish(&net.api, "mlp", "model.onnx", onnx));
    let out = Command::new("node")
        .arg(eth_dir().join("client.mjs"))
        .args([&net.rpc, &net.keys[0], &cid])
        .env("RPCS", net.rpcs.join(","))
        .output()
        .expect("node (Node.js) on PATH");
    assert!(
        out.status.success(),
        "client.mjs: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["chainId"], 31337);

    // the contract's prediction (eth_call through OpenGradient's precompile
    // ABI) is what /v1/infer answers for the same row
    let p = &summary["prediction"];
    assert_eq!(p["simulated"], true, "{summary}");
    let (s, direct) = rt.block_on(common::post(
        &format!("{}/v1/infer", net.api),
        serde_json::json!({"model": model, "inputs": {"x": [[0.05, -0.1, 0.25, 3.0]]}, "output_format": "fixed_point"}),
    ));
    assert_eq!(s, 200, "{direct}");
    let scaled = |v: &serde_json::Value, d: &serde_json::Value| {
        let v: String = v.as_str().map_or(v.to_string(), str::to_string);
        let d: i64 = d
            .as_str()
            .map_or(d.to_string(), str::to_string)
            .parse()
            .unwrap();
        format!("{v}e{}", -d).parse::<f64>().unwrap()
    };
    let got: Vec<f64> = (0..3)
        .map(|i| scaled(&p["values"][i], &p["decimals"][i]))
        .collect();
    let want: Vec<f64> = (0..3)
        .map(|i| {
            let n = &direct["outputs"]["numbers"][0]["values"][i];
            scaled(&n["value"], &n["decimals"])
        })
        .collect();
    assert_eq!(got, want);

    // in transactions, VANILLA, ZKML, TEE and QUORUM: the inference nodes'
    // verified result (not a simulation), kept alike on every validator;
    // ZKML's is the circuit's output (proved, checked by every validator),
    // exactly; TEE's comes from a registered (dev) enclave
    let circuit =
        gradnet_zk::onnx::compile(&gradnet_runtime::generated::mlp(4, 8, 3, 7), 13).unwrap();
    // 0.05, -0.1, 0.25, 3.0 at 2^13, rounded half away from zero
    let y = circuit.forward(&[410, -819, 2048, 24576]).unwrap();
    for mode in ["0", "1", "2", "3"] {
        let t = &p["tx"][mode];
        assert_eq!(t["simulated"], false, "mode {mode}: {t}");
        let got: Vec<f64> = (0..3)
            .map(|i| scaled(&t["values"][i], &t["decimals"][i]))
            .collect();
        if mode == "1" {
            let exact: Vec<String> = y
                .iter()
                .map(|v| (*v as i128 * 5i128.pow(13)).to_string())
                .collect();
            assert_eq!(t["values"], serde_json::json!(exact), "{t}");
            assert_eq!(t["decimals"], serde_json::json!(["13", "13", "13"]), "{t}");
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 0.01, "ZKML {got:?} vs float {want:?}");
            }
        } else {
            assert_eq!(got, want, "mode {mode}");
        }
        let kept = t["kept"].as_array().unwrap();
        assert_eq!(kept.len(), 4);
        for k in kept {
            assert_eq!(k["values"], t["values"], "mode {mode}: {t}");
            assert_eq!(k["decimals"], t["decimals"]);
        }
    }

    // every validator has the same block, state commitment, receipt and log
    let n = summary["block"].as_u64().unwrap();
    let inc = summary["increment"].as_str().unwrap();
    let mut seen = vec![];
    for url in &net.rpcs {
        let block = loop {
            let b = rpc(
                url,
                "eth_getBlockByNumber",
                serde_json::json!([format!("{n:#x}"), false]),
            );
            if !b.is_null() {
                break b;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let receipt = rpc(url, "eth_getTransactionReceipt", serde_json::json!([inc]));
        assert_eq!(receipt["status"], "0x1", "{url}");
        let logs = rpc(
            url,
            "eth_getLogs",
            serde_json::json!([{"fromBlock": format!("{n:#x}"), "toBlock": format!("{n:#x}")}]),
        );
        assert_eq!(logs.as_array().unwrap().len(), 1, "{url}: {logs}");
        seen.push((
            block["hash"].clone(),
            block["stateRoot"].clone(),
            receipt["blockHash"].clone(),
        ));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");

    // the CLI reads the same chain
    let status = chain_cli(&net.rpc, &["status"]);
    assert!(status.contains("chain id     31337"), "{status}");
    let tx = chain_cli(&net.rpc, &["tx", summary["increment"].as_str().unwrap()]);
    let tx: serde_json::Value = serde_json::from_str(&tx).unwrap();
    assert_eq!(tx["receipt"]["status"], "0x1");
    assert_eq!(tx["receipt"]["logs"].as_array().unwrap().len(), 1);
    let block = chain_cli(&net.rpc, &["block", &summary["block"].to_string()]);
    assert!(
        block.contains(summary["increment"].as_str().unwrap()),
        "{block}"
    );
    let head_before: u64 = {
        let b: serde_json::Value =
            serde_json::from_str(&chain_cli(&net.rpc, &["block", "latest"])).unwrap();
        quantity(&b["number"]).to::<u64>()
    };
    net.stop();

    // the same data dir: the chain resumes where it stopped
    let net = Devnet::start(dir.path(), 4);
    let b: serde_json::Value =
        serde_json::from_str(&chain_cli(&net.rpc, &["block", "latest"])).unwrap();
    let head = quantity(&b["number"]).to::<u64>();
    assert!(head >= head_before, "{head} < {head_before}");
    let tx = chain_cli(&net.rpc, &["tx", summary["transfer"].as_str().unwrap()]);
    assert!(tx.contains("\"status\": \"0x1\""), "{tx}");
    net.stop();
}

#[test]
fn devnet_refuses_a_network_without_validators() {
    let out = Command::new(BIN)
        .args(["devnet", "--validators", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--validators must be at least 1"), "{err}");
}

#[test]
fn a_killed_validator_loses_no_committed_block() {
    use gradnet_client::wallet::{sign, TxRequest};
    use gradnet_ledger::genesis::{address_of, dev_keys, Genesis, GenesisValidator};
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("node");
    let public = node_key(&node_dir);
    let key = dev_keys(1)[0];
    let genesis = Genesis {
        chain_id: 777,
        timestamp: 1_700_000_000,
        gas_limit: 30_000_000,
        base_fee: 1_000_000_000,
        validators: vec![GenesisValidator {
            public_key: public,
            power: 1,
            fee_recipient: alloy_primitives::Address::repeat_byte(1),
        }],
        alloc: [(
            address_of(&key).unwrap(),
            alloy_primitives::U256::from(10u128.pow(21)),
        )]
        .into(),
        code: Default::default(),
        inference_nodes: vec![],
        zk_models: vec![],
        tee: None,
        escrow: None,
    };
    let gpath = dir.path().join("genesis.json");
    std::fs::write(&gpath, serde_json::to_vec(&genesis).unwrap()).unwrap();
    let transfer = |nonce: u64| {
        sign(
            &TxRequest {
                chain_id: 777,
                nonce,
                to: Some(alloy_primitives::Address::repeat_byte(9)),
                value: alloy_primitives::U256::from(1),
                gas_limit: 21_000,
                ..Default::default()
            },
            &key,
        )
        .unwrap()
        .to_string()
    };
    let ports = Ports::free();
    let url = ports.url();
    let node = start_validator(&node_dir, &gpath, &ports, &[], 50);
    // transactions whose receipts the client saw, in several blocks
    let mut seen = vec![];
    for nonce in 0..20u64 {
        let h = rpc(
            &url,
            "eth_sendRawTransaction",
            serde_json::json!([transfer(nonce)]),
        );
        if nonce % 4 == 3 {
            loop {
                let r = rpc(&url, "eth_getTransactionReceipt", serde_json::json!([h]));
                if !r.is_null() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        seen.push(h);
    }
    let receipts: Vec<serde_json::Value> = seen
        .iter()
        .map(|h| loop {
            let r = rpc(&url, "eth_getTransactionReceipt", serde_json::json!([h]));
            if !r.is_null() {
                break r;
            }
            std::thread::sleep(Duration::from_millis(10));
        })
        .collect();
    // SIGKILL: no shutdown of any kind
    drop(node);
    let node = start_validator(&node_dir, &gpath, &ports, &[], 50);
    for (h, r) in seen.iter().zip(&receipts) {
        let again = rpc(&url, "eth_getTransactionReceipt", serde_json::json!([h]));
        assert_eq!(again["blockHash"], r["blockHash"], "{h}");
        assert_eq!(again["status"], "0x1");
    }
    let count = rpc(
        &url,
        "eth_getTransactionCount",
        serde_json::json!([address_of(&key).unwrap(), "latest"]),
    );
    assert_eq!(count, "0x14");
    // and it keeps going
    let h = rpc(
        &url,
        "eth_sendRawTransaction",
        serde_json::json!([transfer(20)]),
    );
    for _ in 0..500 {
        if !rpc(&url, "eth_getTransactionReceipt", serde_json::json!([h])).is_null() {
            drop(node);
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no block after the restart");
}

#[test]
fn init_makes_a_home_that_node_start_runs() {
    use gradnet_ledger::genesis::{Genesis, GenesisValidator};
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let ports = Ports::free();
    let init = |extra: &[&str]| {
        Command::new(BIN)
            .args(["init", "--home"])
            .arg(&home)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--rpc-listen",
                &format!("127.0.0.1:{}", ports.rpc),
                "--p2p-listen",
                &format!("127.0.0.1:{}", ports.p2p),
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = init(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let public = text
        .lines()
        .find_map(|l| l.strip_prefix("validator public key: "))
        .unwrap()
        .to_string();
    // a second init never overwrites a home
    let again = init(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialized"));
    // a bad peer address is refused before anything is written
    let bad = Command::new(BIN)
        .args(["init", "--home"])
        .arg(dir.path().join("other"))
        .args(["--peer", "not-an-address"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not-an-address"));
    assert!(!dir.path().join("other").exists());

    // a genesis that does not list this node's key: refused plainly
    let other = Genesis {
        chain_id: 9191,
        timestamp: 1_700_000_000,
        gas_limit: 30_000_000,
        base_fee: 1_000_000_000,
        validators: vec![GenesisValidator {
            public_key: node_key(&dir.path().join("someone-else")),
            power: 1,
            fee_recipient: alloy_primitives::Address::repeat_byte(3),
        }],
        alloc: Default::default(),
        code: Default::default(),
        inference_nodes: vec![],
        zk_models: vec![],
        tee: None,
        escrow: None,
    };
    std::fs::write(
        home.join("genesis.json"),
        serde_json::to_vec(&other).unwrap(),
    )
    .unwrap();
    let refused = Command::new(BIN)
        .args(["node", "start", "--dev-mode", "--home"])
        .arg(&home)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("is not one of the genesis's 1 validators"),
        "{err}"
    );

    let genesis = Genesis {
        chain_id: 9191,
        timestamp: 1_700_000_000,
        gas_limit: 30_000_000,
        base_fee: 1_000_000_000,
        validators: vec![GenesisValidator {
            public_key: public,
            power: 10,
            fee_recipient: alloy_primitives::Address::repeat_byte(3),
        }],
        alloc: Default::default(),
        code: Default::default(),
        inference_nodes: vec![],
        zk_models: vec![],
        tee: None,
        escrow: None,
    };
    std::fs::write(
        home.join("genesis.json"),
        serde_json::to_vec(&genesis).unwrap(),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["node", "start", "--dev-mode", "--home"])
        .arg(&home)
        .env("GRADNET_LOG", "warn,informalsystems_malachitebft=error");
    let _node = spawn_node(cmd);
    wait_until(30, "blocks from the home's node", || {
        head(&ports.url()) >= 2
    });
    assert_eq!(
        rpc(&ports.url(), "eth_chainId", serde_json::json!([])),
        "0x23e7"
    );
}

#[test]
fn eth_call_runs_hub_models_through_the_inference_precompile() {
    use alloy_sol_types::{SolCall, SolValue};
    use gradnet_inference::abi::*;
    use gradnet_ledger::genesis::{Genesis, GenesisValidator};
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("node");
    let genesis = Genesis {
        chain_id: 8181,
        timestamp: 1_700_000_000,
        gas_limit: 30_000_000,
        base_fee: 1_000_000_000,
        validators: vec![GenesisValidator {
            public_key: node_key(&node_dir),
            power: 1,
            fee_recipient: alloy_primitives::Address::repeat_byte(3),
        }],
        alloc: Default::default(),
        code: Default::default(),
        inference_nodes: vec![],
        zk_models: vec![],
        tee: None,
        escrow: None,
    };
    let gpath = dir.path().join("genesis.json");
    std::fs::write(&gpath, serde_json::to_vec(&genesis).unwrap()).unwrap();
    let ports = Ports::free();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "node",
        "start",
        "--dev-mode",
        "--listen",
        "127.0.0.1:0",
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
    ])
    .env("GRADNET_LOG", "warn,informalsystems_malachitebft=error");
    let (_node, api) = spawn_node_api(cmd);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let (model, cid) = rt.block_on(common::publish(&api, "mlp", "model.onnx", onnx));
    let input = json_inputs();
    let (s, direct) = rt.block_on(common::post(
        &format!("{api}/v1/infer"),
        serde_json::json!({"model": model, "inputs": input, "output_format": "fixed_point"}),
    ));
    assert_eq!(s, 200, "{direct}");

    // a contract's view of the same model: OpenGradient's ABI at 0x...F4
    let request = common::inference::mlp_request(0, &cid);
    let data = alloy_primitives::Bytes::from(
        InferencePrecompile::runModelInferenceCall { request }.abi_encode(),
    );
    let out = rpc(
        &ports.url(),
        "eth_call",
        serde_json::json!([{"to": "0x00000000000000000000000000000000000000F4", "data": data}, "latest"]),
    );
    let out: alloy_primitives::Bytes = serde_json::from_value(out).unwrap();
    let got = ModelOutput::abi_decode(&out).unwrap();
    assert!(got.is_simulation_result);
    // gas: 21,000 for the transaction, 10,000 + 3,000 per node + 16 per byte for the call
    let gas = rpc(
        &ports.url(),
        "eth_estimateGas",
        serde_json::json!([{"to": "0x00000000000000000000000000000000000000F4", "data": data}]),
    );
    let gas = quantity(&gas).to::<u64>();
    let min = 21_000 + gradnet_inference::precompile::inference_gas(1, data.len(), out.len());
    assert!((min..min + 40_000).contains(&gas), "{gas} vs {min}");
    let as_f64 = |v: String, d: String| {
        let d: i64 = d.parse().unwrap();
        format!("{v}e{}", -d).parse::<f64>().unwrap()
    };
    let got: Vec<f64> = got.numbers[0]
        .values
        .iter()
        .map(|n| as_f64(n.value.to_string(), n.decimals.to_string()))
        .collect();
    let want: Vec<f64> = direct["outputs"]["numbers"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| as_f64(n["value"].to_string(), n["decimals"].to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), 3);

    // a model the deterministic engine cannot run: stored, reported, and
    // refused with the operator named (never silently compared)
    let bad = gradnet_runtime::generated::with_unknown_op();
    let (bad_model, bad_cid) = rt.block_on(common::publish(&api, "fancy", "model.onnx", bad));
    let sig: serde_json::Value = rt.block_on(common::get_json(&format!(
        "{api}/api/v0/signature/{bad_cid}"
    )));
    assert_eq!(sig["runtime"]["runs_here"], false, "{sig}");
    assert_eq!(
        sig["runtime"]["engines"][0]["unsupported"][0], "com.example:FancyOp",
        "{sig}"
    );
    let (s, r) = rt.block_on(common::post(
        &format!("{api}/v1/infer"),
        serde_json::json!({"model": bad_model, "inputs": {"x": [[1.0, 2.0, 3.0, 4.0]]}}),
    ));
    assert_eq!(s, 422, "{r}");
    assert_eq!(r["error"]["code"], "model_unsupported", "{r}");
    let request = ModelInferenceRequest {
        mode: 3,
        modelCID: bad_cid,
        input: ModelInput {
            numbers: vec![MultiDimensionalNumberTensor {
                name: "x".into(),
                values: (0..4)
                    .map(|v| Number {
                        value: v,
                        decimals: 0,
                    })
                    .collect(),
                shape: vec![1, 4],
            }],
            strings: vec![],
        },
    };
    let data = alloy_primitives::Bytes::from(
        InferencePrecompile::runModelInferenceCall { request }.abi_encode(),
    );
    let err = try_rpc(
        &ports.url(),
        "eth_call",
        serde_json::json!([{"to": "0x00000000000000000000000000000000000000F4", "data": data}, "latest"]),
    )
    .unwrap();
    assert_eq!(err["error"]["code"], 3, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("com.example:FancyOp"),
        "{err}"
    );
}

/// The chain's model runs go through the node's inference service: an
/// `eth_call` and a PIPE transaction show in `/metrics` (runs by caller and
/// the latency histogram), and `--workers 1 --queue-depth 0` bounds them
/// too: while a long `/v1/infer` holds the only place, an `eth_call`, a
/// PIPE request and another `/v1/infer` are refused (not queued on
/// threads of their own), and served again once it ends.
#[test]
fn chain_model_runs_share_the_nodes_queue_and_metrics() {
    use alloy_primitives::U256;
    use alloy_sol_types::SolCall;
    use gradnet_inference::abi::*;
    use gradnet_ledger::genesis::*;
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("node");
    let public_key = node_key(&node_dir);
    let api_port = free_ports(1);
    let api = format!("http://127.0.0.1:{api_port}");
    let sender_key = dev_key(0);
    let sender = address_of(&sender_key).unwrap();
    let eth = U256::from(10u64).pow(U256::from(18));
    let det = gradnet_runtime::deterministic_id();
    let genesis = Genesis {
        chain_id: 8282,
        timestamp: 1_700_000_000,
        gas_limit: 30_000_000,
        base_fee: 1_000_000_000,
        validators: vec![GenesisValidator {
            public_key: public_key.clone(),
            power: 1,
            fee_recipient: alloy_primitives::Address::repeat_byte(3),
        }],
        alloc: [(sender, U256::from(100u64) * eth)].into(),
        code: [(
            gradnet_inference::demo_contract::ADDRESS,
            gradnet_inference::demo_contract::runtime_code(),
        )]
        .into(),
        // the node is its own (only) inference node
        inference_nodes: vec![GenesisInferenceNode {
            operator: address_of(&dev_key(DEV_OPERATOR_BASE)).unwrap(),
            signing_key: public_key,
            endpoint: api.clone(),
            modes: vec![0],
            models: vec![],
            stake: U256::from(100u64) * eth,
            engine: format!("{}/{}", det.name, det.version),
            profile: det.profile.clone(),
            prices: None,
        }],
        zk_models: vec![],
        tee: None,
        escrow: None,
    };
    let gpath = dir.path().join("genesis.json");
    std::fs::write(&gpath, serde_json::to_vec(&genesis).unwrap()).unwrap();
    let ports = Ports::free();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "node",
        "start",
        "--dev-mode",
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
        "100",
        "--workers",
        "1",
        "--queue-depth",
        "0",
        "--threads",
        "1",
    ])
    .env("GRADNET_LOG", "warn,informalsystems_malachitebft=error");
    let (_node, _) = spawn_node_api(cmd);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mlp = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let (_, cid) = rt.block_on(common::publish(&api, "mlp", "model.onnx", mlp));
    let busy = gradnet_runtime::generated::busy(8192, 48, 1);
    let (_, busy_cid) = rt.block_on(common::publish(&api, "busy", "model.onnx", busy));
    let metrics = || -> String {
        rt.block_on(async {
            common::http()
                .get(format!("{api}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    // a sample's value in the exposition, 0 when absent
    let value = |text: &str, series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    };
    let runs = |caller: &str, outcome: &str| {
        format!(
            "gradnet_model_runs_total{{caller=\"{caller}\",kind=\"onnx\",outcome=\"{outcome}\"}}"
        )
    };
    let timed = |caller: &str| {
        format!("gradnet_model_run_duration_seconds_count{{caller=\"{caller}\",kind=\"onnx\"}}")
    };
    // `runModelInference` on the MLP with the first input scaled by `k`
    let calldata = |k: i128, mode: u8| {
        let mut request = common::inference::mlp_request(mode, &cid);
        request.input.numbers[0].values[0].value = 5 * k;
        alloy_primitives::Bytes::from(
            InferencePrecompile::runModelInferenceCall { request }.abi_encode(),
        )
    };
    let eth_call = |k: i128| {
        try_rpc(
            &ports.url(),
            "eth_call",
            serde_json::json!([{"to": "0x00000000000000000000000000000000000000F4", "data": calldata(k, 0)}, "latest"]),
        )
        .unwrap()
    };

    // an eth_call and a PIPE transaction, both counted and timed
    let r = eth_call(1);
    assert!(r.get("result").is_some(), "{r}");
    let raw = gradnet_client::wallet::sign(
        &gradnet_client::wallet::TxRequest {
            chain_id: 8282,
            nonce: 0,
            to: Some(gradnet_inference::demo_contract::ADDRESS),
            gas_limit: 1_000_000,
            data: calldata(2, 0),
            ..Default::default()
        },
        &sender_key,
    )
    .unwrap();
    let hash = rpc(
        &ports.url(),
        "eth_sendRawTransaction",
        serde_json::json!([raw]),
    );
    let mut receipt = serde_json::Value::Null;
    wait_until(60, "the PIPE transaction's receipt", || {
        receipt = rpc(
            &ports.url(),
            "eth_getTransactionReceipt",
            serde_json::json!([hash]),
        );
        !receipt.is_null()
    });
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    let m = metrics();
    assert_eq!(value(&m, &runs("eth_call", "ok")), 1.0, "{m}");
    assert_eq!(value(&m, &timed("eth_call")), 1.0, "{m}");
    assert!(value(&m, &runs("pipe", "ok")) >= 1.0, "{m}");
    assert!(value(&m, &timed("pipe")) >= 1.0, "{m}");

    // a long run holds the node's only place
    let long = {
        let api = api.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(common::post(
                &format!("{api}/v1/infer"),
                serde_json::json!({"model": busy_cid, "inputs": {"x": [[0.5, -1.0, 0.25, 3.0]]}}),
            ))
        })
    };
    wait_until(60, "the long run to start", || {
        value(&metrics(), "gradnet_inference_running") == 1.0
    });
    let refused = eth_call(3);
    assert_eq!(refused["error"]["code"], 3, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at capacity"),
        "{refused}"
    );
    let body = gradnet_inference::pipe::AnswerRequest {
        chain_id: 8282,
        calls: vec![calldata(4, 0)],
    };
    let (status, pipe) = rt.block_on(common::post(
        &format!("{api}{}", gradnet_inference::pipe::ANSWER_PATH),
        serde_json::to_value(&body).unwrap(),
    ));
    assert_eq!(
        (status, pipe["error"]["code"].as_str()),
        (429, Some("overloaded")),
        "{pipe}"
    );
    let (status, infer) = rt.block_on(common::post(
        &format!("{api}/v1/infer"),
        serde_json::json!({"model": cid, "inputs": {"x": [[1.0, 2.0, 3.0, 4.0]]}}),
    ));
    assert_eq!(
        (status, infer["error"]["code"].as_str()),
        (429, Some("overloaded")),
        "{infer}"
    );
    let m = metrics();
    assert_eq!(
        value(&m, "gradnet_inference_running"),
        1.0,
        "the long run ended too soon to test the bound"
    );
    assert_eq!(value(&m, &runs("eth_call", "refused")), 1.0, "{m}");
    assert_eq!(value(&m, &runs("pipe", "refused")), 1.0, "{m}");
    assert_eq!(value(&m, &runs("infer", "refused")), 1.0, "{m}");
    let (status, out) = long.join().unwrap();
    eprintln!("long run done at {:?}", std::time::SystemTime::now());
    assert_eq!(status, 200, "{out}");
    // nothing is held: the same calls are served again
    let r = eth_call(3);
    assert!(r.get("result").is_some(), "{r}");
    let m = metrics();
    assert_eq!(value(&m, &runs("eth_call", "ok")), 2.0, "{m}");
    assert_eq!(value(&m, &runs("infer", "ok")), 1.0, "{m}");
}

fn json_inputs() -> serde_json::Value {
    serde_json::json!({"x": [[0.5, -1.0, 0.25, 3.0]]})
}

/// The devnet with one faulty inference node (`--byzantine 1`): a QUORUM
/// call from the demo contract gets the honest nodes' output (the same as
/// `/v1/infer`), the faulty node is outvoted and loses 10% of its stake on
/// every validator; killed mid-request, it is replaced by the others' answers
/// and the caller pays exactly gas and the agreeing nodes' fees.
#[test]
fn a_byzantine_inference_node_is_outvoted_and_slashed_and_a_killed_one_is_replaced() {
    use alloy_primitives::U256;
    use alloy_sol_types::{SolCall, SolValue};
    use gradnet_inference::abi::*;
    use gradnet_inference::registry::INFERENCE_FEE;
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start_with(dir.path(), 4, &["--byzantine", "1", "--prices", "0,0,0"]);
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let cid = gradnet_types::cid::ContentId::of(&onnx).to_string();
    use common::inference::{mlp_request, node_record as node, operator};
    let key: alloy_primitives::B256 = net.keys[2].parse().unwrap();
    let sender = gradnet_ledger::genesis::address_of(&key).unwrap();
    let balance = || {
        let b = rpc(
            &net.rpc,
            "eth_getBalance",
            serde_json::json!([sender, "latest"]),
        );
        quantity(&b)
    };
    let call = |nonce: u64, mode: u8| {
        let request = mlp_request(mode, &cid);
        let raw = gradnet_client::wallet::sign(
            &gradnet_client::wallet::TxRequest {
                chain_id: 31337,
                nonce,
                to: Some(gradnet_inference::demo_contract::ADDRESS),
                gas_limit: 1_000_000,
                data: InferencePrecompile::runModelInferenceCall { request }
                    .abi_encode()
                    .into(),
                ..Default::default()
            },
            &key,
        )
        .unwrap();
        rpc(&net.rpc, "eth_sendRawTransaction", serde_json::json!([raw]))
    };
    let receipt = |hash: &serde_json::Value| {
        let mut r = serde_json::Value::Null;
        wait_until(30, "the inference transaction's receipt", || {
            r = rpc(
                &net.rpc,
                "eth_getTransactionReceipt",
                serde_json::json!([hash]),
            );
            !r.is_null()
        });
        r
    };
    let output = |r: &serde_json::Value| {
        let log = r["logs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["topics"].as_array().unwrap().is_empty())
            .unwrap_or_else(|| panic!("no result in {r}"))
            .clone();
        let data: alloy_primitives::Bytes = serde_json::from_value(log["data"].clone()).unwrap();
        ModelOutput::abi_decode(&data).unwrap()
    };
    // what an honest node's /v1/infer answers for the same row
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (s, direct) = rt.block_on(common::post(
        &format!("{}/v1/infer", net.inference[0]),
        serde_json::json!({"model": cid, "inputs": json_inputs(), "output_format": "fixed_point"}),
    ));
    assert_eq!(s, 200, "{direct}");
    let as_f64 = |v: String, d: String| {
        let d: i64 = d.parse().unwrap();
        format!("{v}e{}", -d).parse::<f64>().unwrap()
    };
    let want: Vec<f64> = direct["outputs"]["numbers"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| as_f64(n["value"].to_string(), n["decimals"].to_string()))
        .collect();
    let numbers = |o: &ModelOutput| -> Vec<f64> {
        o.numbers[0]
            .values
            .iter()
            .map(|n| as_f64(n.value.to_string(), n.decimals.to_string()))
            .collect()
    };

    let r = receipt(&call(0, 3));
    assert_eq!(r["status"], "0x1", "{r}");
    let out = output(&r);
    assert!(!out.is_simulation_result);
    assert_eq!(numbers(&out), want);
    let stake = U256::from(100u64) * U256::from(10u64).pow(U256::from(18));
    let slashed = stake - stake / U256::from(10);
    let faulty = operator(2);
    for url in &net.rpcs {
        wait_until(10, "the block on every validator", || {
            rpc(
                url,
                "eth_getTransactionReceipt",
                serde_json::json!([r["transactionHash"]]),
            )
            .is_object()
        });
        let n = node(url, faulty);
        assert_eq!((n.stake, n.faults), (slashed, 1), "{url}");
        for i in 0..2 {
            assert_eq!(node(url, operator(i)).faults, 0);
        }
    }

    // the faulty node killed just as the next QUORUM call goes out
    let before = balance();
    let h = call(1, 3);
    let killed = Command::new("pkill")
        .args(["-KILL", "-f"])
        .arg(format!("{}/inference2", net.root.display()))
        .status()
        .unwrap();
    assert!(killed.success());
    let r = receipt(&h);
    assert_eq!(r["status"], "0x1", "{r}");
    assert_eq!(numbers(&output(&r)), want);
    let gas = quantity(&r["gasUsed"]) * quantity(&r["effectiveGasPrice"]);
    let fees = before - balance() - gas;
    // the two agreeing nodes paid, once, whether the killed one was asked or not
    assert_eq!(fees, INFERENCE_FEE * U256::from(2));
    for i in 0..2 {
        assert!(node(&net.rpc, operator(i)).earnings >= INFERENCE_FEE * U256::from(2));
    }
    // uptime: the honest nodes answered every call they were asked; every
    // validator's precommits are in the certificates and the proposals add up
    let up = rpc(&net.rpc, "gradnet_uptime", serde_json::json!([1000]));
    let nodes = up["inferenceNodes"].as_array().unwrap();
    for i in 0..2 {
        let op = format!("{:#x}", operator(i));
        let n = nodes
            .iter()
            .find(|n| n["operator"].as_str().unwrap().eq_ignore_ascii_case(&op))
            .unwrap_or_else(|| panic!("{op} not in {up}"));
        assert!(n["asked"].as_u64().unwrap() >= 2, "{up}");
        assert_eq!(n["asked"], n["answered"], "{up}");
    }
    let validators = up["validators"].as_array().unwrap();
    assert_eq!(validators.len(), 4);
    assert!(
        validators.iter().all(|v| v["signed"].as_u64().unwrap() > 0),
        "{up}"
    );
    let proposed: u64 = validators
        .iter()
        .map(|v| v["proposed"].as_u64().unwrap())
        .sum();
    assert_eq!(proposed, up["blocks"].as_u64().unwrap(), "{up}");
    let bad = try_rpc(&net.rpc, "gradnet_uptime", serde_json::json!([0])).unwrap();
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    net.stop();
}

/// Receipts from an inference node's `/v1/infer` settle on chain with
/// `gradnet receipt settle` (every signature checked by the registry) and
/// `gradnet receipt prove` shows one's inclusion; a batch with a forged
/// signature is refused with the receipt it names.
#[test]
fn receipt_batches_settle_and_prove_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start_with(dir.path(), 1, &["--prices", "0,0,0"]);
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let cid = gradnet_types::cid::ContentId::of(&onnx).to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut batch = vec![];
    for i in 0..12 {
        let (s, r) = rt.block_on(common::post(
            &format!("{}/v1/infer", net.inference[0]),
            serde_json::json!({"model": cid, "inputs": {"x": [[i as f32, 0.5, -1.0, 2.0]]}}),
        ));
        assert_eq!(s, 200, "{r}");
        batch.push(r["receipt"].clone());
    }
    let file = dir.path().join("batch.json");
    std::fs::write(&file, serde_json::to_vec(&batch).unwrap()).unwrap();
    let key =
        gradnet_ledger::genesis::dev_key(gradnet_ledger::genesis::DEV_OPERATOR_BASE).to_string();
    let cli = |args: &[&str]| {
        Command::new(BIN)
            .args(["receipt"])
            .args(args)
            .args(["--rpc", &net.rpc])
            .output()
            .unwrap()
    };
    let f = file.to_str().unwrap();
    let out = cli(&[
        "settle",
        f,
        "--key",
        &key,
        "--chunk",
        "5",
        "--hub",
        &net.inference[0],
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("settled") && said.contains("stored the batch"),
        "{said}"
    );
    // the batch is in the hub under the content id the chain keeps
    let batch_cid = gradnet_types::cid::ContentId::of(&std::fs::read(&file).unwrap()).to_string();
    let got =
        reqwest::blocking::get(format!("{}/api/v0/blobs/{batch_cid}", net.inference[0])).unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(
        got.bytes().unwrap().as_ref(),
        std::fs::read(&file).unwrap().as_slice()
    );
    let out = cli(&["prove", f, "7"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            p["verified"].clone(),
            p["index"].clone(),
            p["count"].clone()
        ),
        (
            serde_json::json!(true),
            serde_json::json!(7),
            serde_json::json!(12)
        )
    );
    assert!(p["settled"]["at"].as_u64().unwrap() > 0);
    assert_eq!(p["settled"]["batch_cid"], serde_json::json!(batch_cid));
    let out = cli(&["prove", f, "12"]);
    assert!(!out.status.success());

    // one forged signature: the batch is refused and never settles
    let mut forged = batch.clone();
    let sig = forged[2]["signature"].as_str().unwrap().to_string();
    let flipped = if let Some(rest) = sig.strip_prefix('0') {
        format!("1{rest}")
    } else {
        format!("0{}", &sig[1..])
    };
    forged[2]["signature"] = serde_json::json!(flipped);
    let file2 = dir.path().join("forged.json");
    std::fs::write(&file2, serde_json::to_vec(&forged).unwrap()).unwrap();
    let f2 = file2.to_str().unwrap();
    let out = cli(&["settle", f2, "--key", &key]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("receipt 2 of batch"), "{err}");
    let out = cli(&["prove", f2, "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not settled"));
    net.stop();
}
