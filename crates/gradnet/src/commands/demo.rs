//! `gradnet demo`: a node on a temporary data dir, a real ONNX model and a
//! real LLM (SmolLM2) uploaded to its hub, one inference and one streamed chat
//! answer through the HTTP API, their receipts verified offline, and the
//! commands to do the same by hand.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use gradnet_client::{NodeClient as Client, Rpc, Sender};
use serde_json::{json, Value};

use crate::commands::{node, receipt};
use crate::config::NodeConfig;

const DEMO_MODEL: &str = "ppocr-mobile-v2-cls.onnx";
const DEMO_LLM: &str = "smollm2-135m-instruct-q4_1.gguf";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A model from `models/`, running `scripts/fetch-models` if it is missing.
fn find_model(name: &str) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = std::env::var_os("GRADNET_MODELS_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("models"), repo_root().join("models")])
        .collect();
    let found = || dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    if let Some(p) = found() {
        return Some(p);
    }
    for script in [
        PathBuf::from("scripts/fetch-models"),
        repo_root().join("scripts/fetch-models"),
    ] {
        if script.is_file() {
            eprintln!("fetching {name} with {} …", script.display());
            let ok = std::process::Command::new("python3")
                .arg(&script)
                .args(["--only", name])
                .status();
            if ok.is_ok_and(|s| s.success()) {
                return found();
            }
        }
    }
    None
}

/// A synthetic 48x192 text line (dark strokes on white), normalised the way
/// PaddleOCR feeds its classifier: (pixel/255 - 0.5) / 0.5.
fn text_line_image() -> Value {
    let (h, w) = (48, 192);
    let px = |y: usize, x: usize| -> f32 {
        let ink = (14..34).contains(&y)
            && (x % 16) < 9
            && (8..184).contains(&x)
            && !(y + x).is_multiple_of(7);
        let v: f32 = if ink { 20.0 } else { 245.0 };
        (v / 255.0 - 0.5) / 0.5
    };
    let channel: Vec<Vec<f32>> = (0..h).map(|y| (0..w).map(|x| px(y, x)).collect()).collect();
    json!([[channel.clone(), channel.clone(), channel]])
}

pub(crate) async fn run(args: DemoArgs) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("gradnet-demo-").tempdir()?;
    let mut cfg = NodeConfig::resolve(&Default::default())?;
    cfg.data_dir = tmp.path().join("node");
    cfg.listen = args.listen.clone();
    cfg.api.dev_mode = true;
    let (state, listener) = match node::open(&cfg).await {
        Ok(x) => x,
        Err(_) => {
            eprintln!("{} is busy; using a free port", cfg.listen);
            cfg.listen = "127.0.0.1:0".into();
            node::open(&cfg).await?
        }
    };
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let (net, rpcs, console) = start_devnet(&tmp.path().join("devnet")).await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gradnet_api::serve(listener, state, async move {
        tokio::select! { _ = stop_rx => {}, _ = node::shutdown_signal() => {} }
    }));
    println!("● node up at {base} (data dir {})", cfg.data_dir.display());

    let c = Client::new(&base);
    let (path, repo, input, input_name) = match find_model(DEMO_MODEL) {
        Some(p) => (p, "ppocr-cls", text_line_image(), "x"),
        None => {
            eprintln!("models/ is missing and could not be fetched; using a CNN generated in code instead");
            let p = tmp.path().join("sample-cnn.onnx");
            std::fs::write(&p, gradnet_runtime::generated::cnn(1))?;
            let img = gradnet_runtime::generated::weights(28 * 28, 2, 1.0);
            let rows: Vec<Vec<f32>> = img.chunks(28).map(|r| r.to_vec()).collect();
            (p, "sample-cnn", json!([[rows]]), "image")
        }
    };
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("model file name")?
        .to_string();
    let _: Value = c.post("/api/v0/models", &json!({"name": repo, "description": "PaddleOCR text direction classifier (0° / 180°)", "task": "image-classification", "license": "Apache-2.0", "tags": ["ocr", "demo"]})).await?;
    let v: Value = c
        .post(
            &format!("/api/v0/models/{repo}/versions"),
            &json!({"notes": "demo upload", "is_major": false}),
        )
        .await?;
    let version = v["versionString"].as_str().unwrap_or("1.00").to_string();
    let up = c.upload(repo, &version, &path, &file, false).await?;
    println!(
        "● uploaded {} ({} bytes) as {repo}@{version}/{file}\n  content id {}",
        path.display(),
        up["size"],
        up["cid"].as_str().unwrap_or("")
    );

    let model = format!("{repo}@{version}/{file}");
    let request = json!({"model": model, "inputs": {input_name: input}, "mode": "VANILLA"});
    let started = std::time::Instant::now();
    let resp: Value = c.post("/v1/infer", &request).await?;
    println!(
        "● inference in {:.1} ms; outputs:",
        started.elapsed().as_secs_f64() * 1e3
    );
    println!("{}", serde_json::to_string_pretty(&resp["outputs"])?);
    println!(
        "● receipt:\n{}",
        serde_json::to_string_pretty(&resp["receipt"])?
    );

    let saved = tmp.path().join("response.json");
    std::fs::write(&saved, serde_json::to_vec_pretty(&resp)?)?;
    let report = receipt::verify_file(&saved, None)?;
    println!(
        "● receipt verified offline:\n  {}",
        report.replace('\n', "\n  ")
    );

    let llm = chat_demo(&c, &tmp).await?;
    chain_demo(&rpcs).await?;
    inference_demo(&rpcs, &net.model).await?;
    paid_demo(&rpcs, &net).await?;

    let req_file = tmp.path().join("request.json");
    std::fs::write(&req_file, serde_json::to_vec(&request)?)?;
    println!("\nTry it yourself:");
    println!(
        "  open {console}/     # the web console: explorer, network, hub, playground (on-chain modes sign with the dev key {})",
        gradnet_ledger::genesis::dev_keys(1)[0]
    );
    println!("  curl -s {base}/api/v0/models");
    println!("  curl -s {base}/api/v0/signature/{model}");
    println!(
        "  curl -s -H 'content-type: application/json' --data @{} {base}/v1/infer",
        req_file.display()
    );
    println!("  gradnet --node {base} infer --model {model} --input @{} --save out.json && gradnet receipt verify out.json", input_file(&tmp, input_name, &request)?.display());
    println!(
        "  curl -sN {base}/v1/chat/completions -H 'content-type: application/json' -d '{{\"model\": \"{llm}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hi!\"}}], \"stream\": true}}'"
    );
    println!("  gradnet --node {base} chat --model {llm} --stream     # or any OpenAI client with base_url={base}/v1");
    println!("  curl -s {base}/metrics");
    println!(
        "  gradnet chain status --rpc {}     # Ethereum JSON-RPC: any wallet or web3 library",
        rpcs[0]
    );

    if args.once {
        let _ = stop_tx.send(());
    } else {
        println!("\nServing until Ctrl-C …");
    }
    server.await??;
    net.stop().await;
    Ok(())
}

const DEMO_VALIDATORS: u16 = 4;

/// A devnet of four validator processes (BFT consensus between them) with
/// one funded development account; returns it, their JSON-RPC URLs and
/// the first one's API (its web console).
async fn start_devnet(
    root: &std::path::Path,
) -> Result<(super::devnet::Network, Vec<String>, String)> {
    use gradnet_node::ports::free_ports;
    let args = super::devnet::DevnetArgs {
        validators: DEMO_VALIDATORS as usize,
        accounts: 1,
        data_dir: None,
        chain_id: 31337,
        block_time_ms: 250,
        rpc_port: free_ports(DEMO_VALIDATORS)?,
        api_port: free_ports(DEMO_VALIDATORS)?,
        p2p_port: free_ports(DEMO_VALIDATORS)?,
        inference_nodes: 3,
        inference_port: free_ports(3)?,
        byzantine: 0,
        byzantine_validator: vec![],
        links_via: None,
        inference_cpu: vec![],
        prices: vec![
            super::devnet::DEV_PRICE_PER_CALL,
            super::devnet::DEV_PRICE_PER_M_IN,
            super::devnet::DEV_PRICE_PER_M_OUT,
        ],
        withdrawal_delay: 30,
        redeem_every: 5,
    };
    let net =
        super::devnet::Network::start(&args, root, Some("warn,informalsystems_malachitebft=error"))
            .await?;
    let rpcs: Vec<String> = (0..DEMO_VALIDATORS)
        .map(|i| format!("http://127.0.0.1:{}", args.rpc_port + i))
        .collect();
    println!(
        "● devnet up: {DEMO_VALIDATORS} validator processes in BFT consensus, JSON-RPC {} … {}",
        rpcs[0],
        rpcs[rpcs.len() - 1]
    );
    let console = format!("http://127.0.0.1:{}", args.api_port);
    Ok((net, rpcs, console))
}

/// A signed transfer through one validator's JSON-RPC, until its block is
/// final; then that block as every validator has it.
async fn chain_demo(rpcs: &[String]) -> Result<()> {
    let rpc = Rpc::new(&rpcs[0])?;
    let mut sender = Sender::new(rpc.clone(), gradnet_ledger::genesis::dev_keys(1)[0]).await?;
    let to = alloy_primitives::Address::repeat_byte(0x42);
    let one_eth = alloy_primitives::U256::from(10u64).pow(alloy_primitives::U256::from(18));
    let started = std::time::Instant::now();
    let hash = sender.submit(Some(to), one_eth, vec![], 21_000).await?;
    let receipt = sender.succeeded(hash).await.context("the transfer")?;
    let number = receipt.block_number.context("the receipt names no block")?;
    let block = rpc
        .block(number)
        .await?
        .with_context(|| format!("no block {number}"))?;
    println!(
        "● chain: 1 ETH sent to {to} with an EIP-1559 transaction through JSON-RPC at {}\n  final in block {number} after {:.0} ms; state root {}",
        rpc.url(),
        started.elapsed().as_secs_f64() * 1e3,
        block.header.state_root
    );
    let mut same = 0;
    for other in rpcs {
        let other = Rpc::new(other)?;
        let b = loop {
            if let Some(b) = other.block(number).await? {
                break b;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        if b.header.hash == block.header.hash && b.header.state_root == block.header.state_root {
            same += 1;
        }
    }
    anyhow::ensure!(
        same == rpcs.len(),
        "validators disagree on the transfer's block"
    );
    println!(
        "  the same block (hash {}) on all {same} validators",
        block.header.hash
    );
    Ok(())
}

/// Paid inference off chain: the dev account deposits to inference node 0
/// in the escrow, makes three calls that its voucher pays for (each
/// receipt signs its charge), and the node's operator redeems the voucher.
async fn paid_demo(rpcs: &[String], net: &super::devnet::Network) -> Result<()> {
    use alloy_primitives::U256;
    use alloy_sol_types::SolCall;
    use gradnet_client::pay::{format_amount, Payer};
    use gradnet_types::payments::{IEscrow, ESCROW};
    let node = &net.genesis.inference_nodes[0];
    let key = gradnet_ledger::genesis::dev_keys(1)[0];
    let mut sender = Sender::new(Rpc::new(&rpcs[0])?, key).await?;
    let deposit = U256::from(10u64).pow(U256::from(15u64));
    let hash = sender
        .submit(
            Some(ESCROW),
            deposit,
            IEscrow::depositCall {
                payee: node.operator,
            }
            .abi_encode(),
            200_000,
        )
        .await?;
    sender.succeeded(hash).await.context("the deposit")?;
    let payer = std::sync::Arc::new(Payer::new(key, deposit / U256::from(10u64), 3600)?);
    let c = Client::new(&node.endpoint).with_payer(payer);
    let mut charged = U256::ZERO;
    for i in 0..3 {
        let body =
            serde_json::json!({"model": net.model, "inputs": {"x": [[i as f32, 0.5, -1.0, 2.0]]}});
        // a node answers 503 until it has read its prices from the chain
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let r: serde_json::Value = loop {
            match c.post("/v1/infer", &body).await {
                Err(gradnet_client::ClientError::Api { status: 503, .. })
                    if std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await
                }
                r => break r.context("a paid call")?,
            }
        };
        let (receipt, _) = gradnet_client::verify::verify_response(&r, None)?;
        let charge = receipt
            .body
            .charge
            .context("a paid answer's receipt names its charge")?;
        charged += charge.amount.parse::<U256>()?;
    }
    let operator = gradnet_ledger::genesis::dev_key(gradnet_ledger::genesis::DEV_OPERATOR_BASE);
    let r: serde_json::Value = Client::new(&node.endpoint)
        .with_key(operator)
        .post("/api/v0/payments/redeem", &serde_json::json!({}))
        .await
        .context("the node's redemption")?;
    let paid: U256 = r["paid"].as_str().unwrap_or("0").parse()?;
    anyhow::ensure!(
        paid == charged,
        "the escrow paid {paid} wei for {charged} wei charged"
    );
    println!(
        "● paid off chain: the dev account deposited {} ETH to inference node 0's operator {} in the escrow;\n  3 /v1/infer calls at {} answered a 402 with one voucher and were charged {} ETH (each receipt signs its charge);\n  the operator redeemed the voucher: the escrow paid it {} ETH (transaction {})",
        format_amount(deposit),
        node.operator,
        node.endpoint,
        format_amount(charged),
        format_amount(paid),
        r["transaction"].as_str().unwrap_or("-")
    );
    Ok(())
}

/// The demo contract runs the devnet's MLP in each verified mode: QUORUM
/// (three staked nodes agree), ZKML (one node proves, every validator
/// checks the proof) and TEE (a registered enclave; on the devnet a dev
/// enclave, which the result says); each block carries the signed results
/// and the receipt the output.
async fn inference_demo(rpcs: &[String], model: &str) -> Result<()> {
    for (mode, name) in [(3u8, "QUORUM"), (1, "ZKML"), (2, "TEE")] {
        run_in_mode(rpcs, model, mode, name).await?;
    }
    Ok(())
}

async fn run_in_mode(rpcs: &[String], model: &str, mode: u8, name: &str) -> Result<()> {
    use alloy_sol_types::{SolCall, SolEvent, SolValue};
    use gradnet_inference::abi::{
        InferencePrecompile::runModelInferenceCall, ModelInferenceRequest, ModelInput, ModelOutput,
        MultiDimensionalNumberTensor, Number,
    };
    use gradnet_inference::registry::IInferenceRegistry::InferenceSettled;
    let x = [(5i128, 1i128), (-1, 0), (25, 1), (3, 0)];
    let request = ModelInferenceRequest {
        mode,
        modelCID: model.into(),
        input: ModelInput {
            numbers: vec![MultiDimensionalNumberTensor {
                name: "x".into(),
                values: x
                    .iter()
                    .map(|&(v, d)| Number {
                        value: v,
                        decimals: d,
                    })
                    .collect(),
                shape: vec![1, 4],
            }],
            strings: vec![],
        },
    };
    let mut sender =
        Sender::new(Rpc::new(&rpcs[0])?, gradnet_ledger::genesis::dev_keys(1)[0]).await?;
    let started = std::time::Instant::now();
    let receipt = sender
        .send(
            gradnet_inference::demo_contract::ADDRESS,
            runModelInferenceCall { request }.abi_encode(),
            1_000_000,
        )
        .await
        .with_context(|| format!("the {name} inference transaction"))?;
    let logs = receipt.inner.inner.logs();
    let out = logs
        .iter()
        .find(|l| l.topics().is_empty())
        .context("no result logged")?;
    let out = ModelOutput::abi_decode(&out.data().data)?;
    let settled = logs
        .iter()
        .find(|l| l.topics().first() == Some(&InferenceSettled::SIGNATURE_HASH))
        .context("no settlement logged")?;
    let settled =
        InferenceSettled::decode_raw_log(settled.topics().to_vec(), &settled.data().data)?;
    let values: Vec<String> = out.numbers[0]
        .values
        .iter()
        .map(|n| {
            let (v, d) = (n.value, n.decimals);
            format!("{:.4}", v as f64 / 10f64.powi(d as i32))
        })
        .collect();
    let how = match mode {
        1 => "one node proved it (Groth16); every validator checked the proof".to_string(),
        2 => format!(
            "a registered enclave ran it{}",
            if out
                .jsons
                .iter()
                .any(|j| j.value == gradnet_inference::precompile::DEV_ENCLAVE_JSON)
            {
                " (a dev enclave: a test root attests it, and the result says so)"
            } else {
                ""
            }
        ),
        _ => format!("{} inference nodes agreed", settled.nodes.len()),
    };
    println!(
        "● on-chain inference, {name}: the demo contract {} ran {model} in block {} ({:.0} ms)\n  output {} = [{}] (is_simulation_result = {})\n  {how}; paid {} wei to {}",
        gradnet_inference::demo_contract::ADDRESS,
        receipt.block_number.unwrap_or_default(),
        started.elapsed().as_secs_f64() * 1e3,
        out.numbers[0].name,
        values.join(", "),
        out.is_simulation_result,
        settled.fee,
        settled.nodes.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

fn input_file(tmp: &tempfile::TempDir, name: &str, request: &Value) -> Result<PathBuf> {
    let p = tmp.path().join("inputs.json");
    std::fs::write(
        &p,
        serde_json::to_vec(&json!({name: request["inputs"][name]}))?,
    )?;
    Ok(p)
}

/// Uploads SmolLM2 (or, without `models/`, a tiny random model whose words
/// are noise) and streams one chat answer; returns the model's name.
async fn chat_demo(c: &Client, tmp: &tempfile::TempDir) -> Result<&'static str> {
    let (path, repo) = match find_model(DEMO_LLM) {
        Some(p) => (p, "smollm2"),
        None => {
            eprintln!("SmolLM2 is missing and could not be fetched; using a tiny random LLM instead (its words are noise)");
            let p = tmp.path().join("tiny-random.gguf");
            std::fs::write(&p, gradnet_runtime::llm::sample::tiny_llama(1))?;
            (p, "tiny-random")
        }
    };
    let _: Value = c
        .post("/api/v0/models", &json!({"name": repo, "description": "SmolLM2 135M Instruct, Q4_1", "task": "chat", "license": "Apache-2.0", "tags": ["llm", "demo"]}))
        .await?;
    let _: Value = c
        .post(
            &format!("/api/v0/models/{repo}/versions"),
            &json!({"notes": "demo upload", "is_major": false}),
        )
        .await?;
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("model file name")?
        .to_string();
    let up = c.upload(repo, "1.00", &path, &file, false).await?;
    println!("● uploaded {file} ({} bytes) as {repo}", up["size"]);
    let question = "What is the capital of France?";
    println!("● chat with {repo} (streamed): {question}\n");
    let body = json!({
        "model": repo,
        "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": question}],
        "temperature": 0, "max_tokens": 48, "stream": true,
    });
    let mut text = String::new();
    let mut last = Value::Null;
    let started = std::time::Instant::now();
    c.post_sse("/v1/chat/completions", &body, |v| {
        if let Some(p) = v["choices"][0]["delta"]["content"].as_str() {
            use std::io::Write;
            print!("{p}");
            std::io::stdout().flush()?;
            text.push_str(p);
        }
        if !v["choices"][0]["finish_reason"].is_null() {
            last = v;
        }
        anyhow::Ok(())
    })
    .await?;
    let answer = json!({
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": last["choices"][0]["finish_reason"]}],
        "gradnet_receipt": last["gradnet_receipt"],
    });
    let saved = tmp.path().join("answer.json");
    std::fs::write(&saved, serde_json::to_vec_pretty(&answer)?)?;
    let report = receipt::verify_file(&saved, None)?;
    println!(
        "\n\n● answered in {:.2} s; receipt verified offline:\n  {}",
        started.elapsed().as_secs_f64(),
        report.replace('\n', "\n  ")
    );
    Ok(repo)
}

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Address for the demo node's API.
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub listen: String,
    /// Exit after the demo instead of serving until Ctrl-C.
    #[arg(long)]
    pub once: bool,
}
