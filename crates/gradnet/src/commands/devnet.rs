//! `gradnet devnet`: a local network on loopback. It writes a genesis with
//! funded development accounts (printed with their keys, as anvil does),
//! starts each validator as its own `gradnet node start` process, and stops
//! them all on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use alloy_primitives::U256;
use anyhow::{bail, Context, Result};
use clap::Args;
use gradnet_ledger::genesis::{
    address_of, dev_key, dev_keys, Genesis, GenesisDeposit, GenesisEscrow, GenesisInferenceNode,
    GenesisPrices, GenesisValidator, GenesisZkModel, DEV_GATEWAY_BASE, DEV_OPERATOR_BASE,
};
use gradnet_types::NodeKey;

/// Each development account starts with 10,000 ETH.
const DEV_BALANCE_ETH: u64 = 10_000;
/// Each inference node's stake at genesis, in ETH.
const NODE_STAKE_ETH: u64 = 100;
/// What each validator's gateway holds in escrow for each inference node.
const GATEWAY_DEPOSIT_ETH: u64 = 10;
/// The model every devnet node holds: an MLP 4-8-3 generated in code.
pub(crate) const DEMO_MODEL_REPO: &str = "demo-mlp";

pub(crate) fn demo_model() -> Vec<u8> {
    gradnet_runtime::generated::mlp(4, 8, 3, 7)
}

/// A development genesis: `accounts` funded dev accounts, each validator
/// (by ed25519 public key) with power 1 and its own fee recipient, each
/// inference node (key, endpoint) registered with a stake, and the demo
/// contract.
pub(crate) fn dev_genesis(
    chain_id: u64,
    accounts: usize,
    validators: &[String],
    inference: &[(String, String)],
    zk_models: Vec<GenesisZkModel>,
    prices: Option<GenesisPrices>,
    withdrawal_delay: u64,
) -> Result<Genesis> {
    let eth = U256::from(10u64).pow(U256::from(18));
    let det = gradnet_runtime::deterministic_id();
    let engine = format!("{}/{}", det.name, det.version);
    let mut alloc = std::collections::BTreeMap::new();
    for k in dev_keys(accounts) {
        alloc.insert(address_of(&k)?, U256::from(DEV_BALANCE_ETH) * eth);
    }
    // inference node operators: their own funded accounts
    let operators = (0..inference.len() as u64)
        .map(|j| address_of(&dev_key(DEV_OPERATOR_BASE + j)))
        .collect::<Result<Vec<_>, _>>()?;
    for a in &operators {
        alloc.insert(*a, U256::from(DEV_BALANCE_ETH) * eth);
    }
    // each validator's gateway: a funded account with a channel to every
    // inference node, so it pays them and reports faults from the start
    let mut deposits = vec![];
    for v in 0..validators.len() as u64 {
        let gw = address_of(&dev_key(DEV_GATEWAY_BASE + v))?;
        alloc.insert(gw, U256::from(DEV_BALANCE_ETH) * eth);
        for op in &operators {
            deposits.push(GenesisDeposit {
                payer: gw,
                payee: *op,
                amount: U256::from(GATEWAY_DEPOSIT_ETH) * eth,
            });
        }
    }
    let held: U256 = deposits.iter().map(|d| d.amount).sum();
    if !held.is_zero() {
        alloc.insert(gradnet_types::payments::ESCROW, held);
    }
    Ok(Genesis {
        chain_id,
        timestamp: gradnet_consensus::app::now_secs(),
        gas_limit: 30_000_000,
        base_fee: 1_000_000_000,
        validators: validators
            .iter()
            .map(|pk| {
                Ok(GenesisValidator {
                    public_key: pk.clone(),
                    power: 1,
                    fee_recipient: gradnet_node::ledger::validator_address(pk)?,
                })
            })
            .collect::<Result<_>>()?,
        alloc,
        code: [
            (
                gradnet_inference::demo_contract::ADDRESS,
                gradnet_inference::demo_contract::runtime_code(),
            ),
            // where OpenGradient's SDK looks for its inference hub
            (
                gradnet_inference::og_hub::ADDRESS,
                gradnet_inference::og_hub::runtime_code(),
            ),
        ]
        .into(),
        inference_nodes: inference
            .iter()
            .zip(operators)
            .map(|((key, endpoint), operator)| {
                Ok(GenesisInferenceNode {
                    operator,
                    signing_key: key.clone(),
                    endpoint: endpoint.clone(),
                    modes: vec![0, 1, 2, 3],
                    models: vec![],
                    stake: U256::from(NODE_STAKE_ETH) * eth,
                    // the devnet's nodes run the default, deterministic engine
                    engine: engine.clone(),
                    profile: det.profile.clone(),
                    prices: prices.clone(),
                })
            })
            .collect::<Result<_>>()?,
        zk_models,
        // inference nodes stand in for enclaves with a dev root pinned here
        tee: Some(gradnet_node::dev_enclave::dev_genesis_tee(
            gradnet_node::dev_enclave::DEVNET_SEED,
            address_of(&dev_key(0))?,
            60,
        )?),
        escrow: Some(GenesisEscrow {
            withdrawal_delay,
            deposits,
        }),
    })
}

/// ZKML for the demo model: its circuit's keys (a fresh setup) in every
/// inference node's `zk/` directory, where nodes find proving keys, and
/// its verifying key for the genesis registry.
fn demo_zk_keys(inference_dirs: &[PathBuf]) -> Result<Vec<GenesisZkModel>> {
    let onnx = demo_model();
    let model = gradnet_zk::onnx::compile(&onnx, super::zk::DEFAULT_FRAC_BITS)?;
    let keys = gradnet_zk::setup(&model, &mut rand::rngs::OsRng)?;
    let vk = keys.verifying.to_bytes();
    let meta = super::zk::meta(&onnx, &model, &keys);
    for d in inference_dirs {
        super::zk::write_keys(&d.join("zk").join(DEMO_MODEL_REPO), &keys, &meta)?;
    }
    Ok(vec![GenesisZkModel {
        model: gradnet_types::ContentId::of(&onnx).to_string(),
        verifying_key: vk.into(),
        owner: address_of(&dev_key(0))?,
    }])
}

fn print_accounts(g: &Genesis, n: usize) -> Result<()> {
    println!(
        "\nAvailable accounts ({} ETH each)\n==================",
        DEV_BALANCE_ETH
    );
    for (i, k) in dev_keys(n).iter().enumerate() {
        println!("({i}) {}", address_of(k)?);
    }
    println!(
        "\nPrivate keys (development only: never use them on a real network)\n=================="
    );
    for (i, k) in dev_keys(n).iter().enumerate() {
        println!("({i}) {k}");
    }
    println!("\nChain id: {}", g.chain_id);
    Ok(())
}

/// Validator and inference node processes of a local network.
pub(crate) struct Network {
    pub genesis: Genesis,
    /// The validators.
    pub children: Vec<tokio::process::Child>,
    /// The inference nodes: the chain goes on if one exits.
    pub inference: Vec<tokio::process::Child>,
    /// The content id of the model every node holds.
    pub model: String,
}

impl Network {
    /// Writes (or reuses) the genesis in `root` and starts each validator
    /// (with `log` as its log filter, if given).
    pub(crate) async fn start(
        args: &DevnetArgs,
        root: &Path,
        log: Option<&str>,
    ) -> Result<Network> {
        if args.validators == 0 {
            bail!("--validators must be at least 1");
        }
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let node_dirs: Vec<PathBuf> = (0..args.validators)
            .map(|i| root.join(format!("node{i}")))
            .collect();
        let mut keys = vec![];
        for d in &node_dirs {
            std::fs::create_dir_all(d)?;
            keys.push(NodeKey::load_or_create(&d.join("node.key"))?.public_hex());
        }
        let inference_dirs: Vec<PathBuf> = (0..args.inference_nodes)
            .map(|i| root.join(format!("inference{i}")))
            .collect();
        let mut inference = vec![];
        for (i, d) in inference_dirs.iter().enumerate() {
            std::fs::create_dir_all(d)?;
            inference.push((
                NodeKey::load_or_create(&d.join("node.key"))?.public_hex(),
                format!("http://127.0.0.1:{}", args.inference_port + i as u16),
            ));
        }
        let genesis_path = root.join("genesis.json");
        let genesis = if genesis_path.exists() {
            Genesis::from_json(&std::fs::read(&genesis_path)?)
                .with_context(|| format!("reading {}", genesis_path.display()))?
        } else {
            let zk = demo_zk_keys(&inference_dirs)?;
            let prices = match args.prices[..] {
                [0, 0, 0] => None,
                [call, m_in, m_out] => Some(GenesisPrices {
                    per_call: U256::from(call),
                    per_million_input_tokens: U256::from(m_in),
                    per_million_output_tokens: U256::from(m_out),
                }),
                _ => anyhow::bail!(
                    "--prices takes three amounts: per call, per million input and output tokens"
                ),
            };
            let g = dev_genesis(
                args.chain_id,
                args.accounts,
                &keys,
                &inference,
                zk,
                prices,
                args.withdrawal_delay,
            )?;
            std::fs::write(&genesis_path, serde_json::to_vec_pretty(&g)?)?;
            g
        };
        let mut children = vec![];
        let mut inference_children = vec![];
        let mut apis = vec![];
        for (i, dir) in inference_dirs.iter().enumerate() {
            let faulty = i + args.byzantine >= args.inference_nodes;
            inference_children.push(spawn_inference_node(args, i, dir, faulty, log).await?);
            apis.push(inference[i].1.clone());
        }
        for (i, dir) in node_dirs.iter().enumerate() {
            children.push(spawn_validator(args, i, dir, &genesis_path, log).await?);
            apis.push(format!("http://127.0.0.1:{}", args.api_port + i as u16));
        }
        let model = publish_demo_model(root, &apis).await?;
        if args.inference_nodes > 0 {
            gradnet_node::dev_enclave::wait_active(
                &format!("http://127.0.0.1:{}", args.rpc_port),
                args.inference_nodes,
                std::time::Duration::from_secs(60),
            )
            .await?;
        }
        // the inference nodes serve once they know their prices (until then
        // their paid routes answer 503)
        for (_, endpoint) in &inference {
            wait_priced(endpoint, std::time::Duration::from_secs(60)).await?;
        }
        Ok(Network {
            genesis,
            children,
            inference: inference_children,
            model,
        })
    }

    /// SIGTERM to each process (each shuts down cleanly), then waits.
    pub(crate) async fn stop(mut self) {
        for c in self.children.iter_mut().chain(self.inference.iter_mut()) {
            if let Some(pid) = c.id() {
                unsafe_kill(pid);
            }
        }
        let all = self.children.iter_mut().chain(self.inference.iter_mut());
        for c in all {
            let _ = c.wait().await;
        }
    }
}

pub(crate) async fn run(args: DevnetArgs) -> Result<()> {
    if args.validators == 0 {
        bail!("--validators must be at least 1");
    }
    let temp;
    let root: PathBuf = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let mut net = Network::start(&args, &root, None).await?;
    print_accounts(&net.genesis, args.accounts)?;
    for i in 0..args.validators {
        println!(
            "validator {i}: JSON-RPC http://127.0.0.1:{}  inference API http://127.0.0.1:{}",
            args.rpc_port + i as u16,
            args.api_port + i as u16
        );
    }
    println!(
        "web console: http://127.0.0.1:{}/ (on any validator's API port)",
        args.api_port
    );
    println!(
        "gateway: http://127.0.0.1:{}/gateway (on every validator: /v1/infer, /v1/chat/completions, /v1/completions in VANILLA, QUORUM and TEE, routed to the inference nodes; its account pays them from the escrow)",
        args.api_port
    );
    for i in 0..args.inference_nodes {
        let faulty = if i + args.byzantine >= args.inference_nodes {
            " (faulty: alters its results)"
        } else {
            ""
        };
        println!(
            "inference node {i}: http://127.0.0.1:{}  staked {NODE_STAKE_ETH} ETH{faulty}\n  operator {} key {}",
            args.inference_port + i as u16,
            address_of(&dev_key(DEV_OPERATOR_BASE + i as u64))?,
            dev_key(DEV_OPERATOR_BASE + i as u64)
        );
    }
    println!(
        "\nmodel {DEMO_MODEL_REPO} (in every node's hub): {}\ndemo contract (forwards a call to the inference precompile 0x…F4, logs the result): {}\nOpenGradient inference hub (run / runLLMChat / runLLMCompletion, for OpenGradient's SDK): {}",
        net.model,
        gradnet_inference::demo_contract::ADDRESS,
        gradnet_inference::og_hub::ADDRESS
    );
    if args.inference_nodes > 0 {
        println!(
            "TEE: the inference nodes are dev enclaves (attested by a test root this genesis pins; not real enclaves)"
        );
    }
    println!("\ndevnet running in {}; Ctrl-C stops it", root.display());
    let shutdown = super::node::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            (i, status) = wait_any(&mut net.children) => {
                net.stop().await;
                bail!("validator {i} exited ({status})");
            }
            (i, status) = wait_any(&mut net.inference), if !net.inference.is_empty() => {
                eprintln!("an inference node exited ({status}); the chain samples the others");
                net.inference.remove(i);
            }
        }
    }
    net.stop().await;
    println!("devnet stopped");
    Ok(())
}

async fn wait_any(children: &mut [tokio::process::Child]) -> (usize, String) {
    let waits = children.iter_mut().enumerate().map(|(i, c)| {
        Box::pin(async move {
            let s = c.wait().await;
            (
                i,
                s.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
            )
        })
    });
    futures::future::select_all(waits).await.0
}

fn unsafe_kill(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

/// Puts the demo model in every node's hub (unless there already); its
/// content id.
async fn publish_demo_model(root: &Path, apis: &[String]) -> Result<String> {
    let path = root.join("demo-mlp.onnx");
    let bytes = demo_model();
    std::fs::write(&path, &bytes)?;
    let cid = gradnet_types::cid::ContentId::of(&bytes).to_string();
    for api in apis {
        let c = gradnet_client::NodeClient::new(api);
        if c.get::<serde_json::Value>(&format!("/api/v0/models/{DEMO_MODEL_REPO}"))
            .await
            .is_ok()
        {
            continue;
        }
        let _: serde_json::Value = c
            .post(
                "/api/v0/models",
                &serde_json::json!({"name": DEMO_MODEL_REPO, "description": "MLP 4-8-3 (devnet demo)", "task": "tabular-classification"}),
            )
            .await?;
        let v: serde_json::Value = c
            .post(
                &format!("/api/v0/models/{DEMO_MODEL_REPO}/versions"),
                &serde_json::json!({"notes": "devnet", "is_major": false}),
            )
            .await?;
        let version = v["versionString"].as_str().unwrap_or("1.00").to_string();
        c.upload(DEMO_MODEL_REPO, &version, &path, "model.onnx", true)
            .await?;
    }
    Ok(cid)
}

/// Waits for a started node's "listening" line; then drains its output.
/// Waits until the node at `endpoint` has read its prices from the chain.
async fn wait_priced(endpoint: &str, within: std::time::Duration) -> Result<()> {
    let c = gradnet_client::NodeClient::new(endpoint);
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Ok(t) = c.get::<serde_json::Value>("/api/v0/payments").await {
            if t["ready"] == true {
                return Ok(());
            }
        }
        if std::time::Instant::now() > deadline {
            bail!("the inference node at {endpoint} did not read its prices from the chain within {within:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn wait_listening(child: &mut tokio::process::Child, what: &str) -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    let out = child.stdout.take().expect("piped");
    let mut lines = tokio::io::BufReader::new(out).lines();
    loop {
        match lines.next_line().await? {
            Some(l) if l.starts_with("gradnet node listening") => break,
            Some(_) => {}
            None => bail!("{what} exited while starting (see its log above)"),
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(())
}

async fn spawn_inference_node(
    args: &DevnetArgs,
    i: usize,
    dir: &Path,
    faulty: bool,
    log: Option<&str>,
) -> Result<tokio::process::Child> {
    let exe = std::env::current_exe()?;
    // emulated on another CPU generation, where asked
    let mut cmd = match args.inference_cpu.get(i).map(|c| c.as_str()) {
        None | Some("native") => tokio::process::Command::new(&exe),
        Some(cpu) => {
            let mut c = tokio::process::Command::new("qemu-x86_64");
            c.args(["-cpu", cpu]).arg(&exe);
            c
        }
    };
    if let Some(l) = log {
        cmd.env("GRADNET_LOG", l);
    }
    // a development network: unsigned hub writes are accepted
    cmd.args(["node", "start", "--dev-mode", "--data-dir"])
        .arg(dir);
    if faulty {
        cmd.arg("--byzantine");
    }
    // the network's model names, read from a validator
    cmd.arg("--names-rpc")
        .arg(format!("http://127.0.0.1:{}", args.rpc_port));
    // models uploaded to any validator's or other node's hub run here too
    for j in 0..args.validators {
        cmd.arg("--hub-peer")
            .arg(format!("http://127.0.0.1:{}", args.api_port + j as u16));
    }
    for j in (0..args.inference_nodes).filter(|&j| j != i) {
        cmd.arg("--hub-peer").arg(format!(
            "http://127.0.0.1:{}",
            args.inference_port + j as u16
        ));
    }
    // TLS too, with the certificate the dev enclave attests and registers
    cmd.arg("--tls");
    cmd.args([
        "--tee-dev-enclave",
        gradnet_node::dev_enclave::DEVNET_SEED,
        "--tee-operator-key",
        &dev_key(DEV_OPERATOR_BASE + i as u64).to_string(),
        "--tee-rpc",
        &format!("http://127.0.0.1:{}", args.rpc_port),
        // paid by the escrow: its operator redeems what it charged
        "--operator-key",
        &dev_key(DEV_OPERATOR_BASE + i as u64).to_string(),
        "--chain-rpc",
        &format!("http://127.0.0.1:{}", args.rpc_port),
        "--redeem-every",
        &args.redeem_every.to_string(),
    ]);
    let mut child = cmd
        .args([
            "--listen",
            &format!("127.0.0.1:{}", args.inference_port + i as u16),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| match args.inference_cpu.get(i) {
            Some(cpu) if cpu != "native" => format!("starting inference node {i} under qemu-x86_64 -cpu {cpu} (is qemu-user installed?)"),
            _ => "starting an inference node".into(),
        })?;
    wait_listening(&mut child, &format!("inference node {i}")).await?;
    Ok(child)
}

async fn spawn_validator(
    args: &DevnetArgs,
    i: usize,
    dir: &Path,
    genesis: &Path,
    log: Option<&str>,
) -> Result<tokio::process::Child> {
    let exe = std::env::current_exe()?;
    let mut cmd = tokio::process::Command::new(exe);
    if let Some(l) = log {
        cmd.env("GRADNET_LOG", l);
    }
    let mut child = cmd
        .args(["node", "start", "--dev-mode", "--data-dir"])
        .arg(dir)
        .arg("--genesis")
        .arg(genesis)
        .args([
            "--listen",
            &format!("127.0.0.1:{}", args.api_port + i as u16),
            "--rpc-listen",
            &format!("127.0.0.1:{}", args.rpc_port + i as u16),
            "--block-time-ms",
            &args.block_time_ms.to_string(),
            "--p2p-listen",
            &format!("127.0.0.1:{}", args.p2p_port + i as u16),
            // its gateway's account (pays nodes, reports faults)
            "--gateway-key",
            &dev_key(DEV_GATEWAY_BASE + i as u64).to_string(),
        ])
        .args(
            (i + 1 == args.validators && !args.byzantine_validator.is_empty()).then(|| {
                format!(
                    "--byzantine-validator={}",
                    args.byzantine_validator.join(",")
                )
            }),
        )
        .args((0..args.validators).filter(|&j| j != i).flat_map(|j| {
            let (p2p, rpc) = match args.links_via {
                // through the test's proxy for the link i → j
                Some(base) => {
                    let link = base + 2 * (i * args.validators + j) as u16;
                    (link, link + 1)
                }
                None => (args.p2p_port + j as u16, args.rpc_port + j as u16),
            };
            [
                "--peer".to_string(),
                format!("127.0.0.1:{p2p}"),
                "--peer-rpc".to_string(),
                format!("http://127.0.0.1:{rpc}"),
                "--hub-peer".to_string(),
                format!("http://127.0.0.1:{}", args.api_port + j as u16),
            ]
        }))
        // models published on an inference node run in eth_call here too
        .args((0..args.inference_nodes).flat_map(|j| {
            [
                "--hub-peer".to_string(),
                format!("http://127.0.0.1:{}", args.inference_port + j as u16),
            ]
        }))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting a validator")?;
    wait_listening(&mut child, &format!("validator {i}")).await?;
    Ok(child)
}

#[derive(Args, Clone)]
pub(crate) struct DevnetArgs {
    /// Validators (one process each).
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Funded development accounts.
    #[arg(long, default_value_t = 10)]
    pub accounts: usize,
    /// Keep the network's state here (reused on the next run); default: a
    /// temporary directory removed at exit.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Chain id.
    #[arg(long, default_value_t = 31337)]
    pub chain_id: u64,
    /// Milliseconds between block proposals (an empty block when nothing is pending).
    #[arg(long, default_value_t = 1000)]
    pub block_time_ms: u64,
    /// JSON-RPC port of the first validator (the next ones count up).
    #[arg(long, default_value_t = 8545)]
    pub rpc_port: u16,
    /// Inference API port of the first validator (the next ones count up).
    #[arg(long, default_value_t = 7700)]
    pub api_port: u16,
    /// Consensus p2p port of the first validator (the next ones count up).
    #[arg(long, default_value_t = 26656)]
    pub p2p_port: u16,
    /// Inference nodes (one process each), registered and staked at genesis.
    #[arg(long, default_value_t = 3)]
    pub inference_nodes: usize,
    /// API port of the first inference node (the next ones count up).
    #[arg(long, default_value_t = 7800)]
    pub inference_port: u16,
    /// Test only: this many of the inference nodes (the last ones) alter
    /// their results.
    #[arg(long, default_value_t = 0, hide = true)]
    pub byzantine: usize,
    /// Test only: the last validator attacks the network when it proposes,
    /// by these strategies in turn (`all`, or names; see `gradnet node
    /// --byzantine-validator`).
    #[arg(long, value_delimiter = ',', hide = true)]
    pub byzantine_validator: Vec<String>,
    /// Test only: validator i reaches validator j's consensus p2p and
    /// JSON-RPC at ports BASE + 2 (i·validators + j) and the one after (a
    /// proxy a network-fault test runs on each link).
    #[arg(long, hide = true)]
    pub links_via: Option<u16>,
    /// Test only: the CPU model each inference node runs on, in order
    /// (`native`, or a model of `qemu-x86_64 -cpu`, e.g. `Haswell`,
    /// `Nehalem`): nodes on different CPU generations on one machine.
    #[arg(long, value_delimiter = ',', hide = true)]
    pub inference_cpu: Vec<String>,
    /// What the inference nodes charge off chain, in wei: per ONNX call,
    /// per million prompt tokens, per million generated tokens (`0,0,0`:
    /// free). Paid with vouchers on the escrow (`gradnet pay`).
    #[arg(long, value_delimiter = ',', default_values_t = [DEV_PRICE_PER_CALL, DEV_PRICE_PER_M_IN, DEV_PRICE_PER_M_OUT])]
    pub prices: Vec<u128>,
    /// Seconds a payer waits between announcing a withdrawal from the
    /// escrow and making it (the nodes redeem meanwhile).
    #[arg(long, default_value_t = 30)]
    pub withdrawal_delay: u64,
    /// Seconds between an inference node's scheduled redemptions.
    #[arg(long, default_value_t = 10)]
    pub redeem_every: u64,
}

/// The devnet's default prices, in wei: a microtoken per ONNX call, a
/// millitoken per million prompt tokens, two per million generated ones.
pub(crate) const DEV_PRICE_PER_CALL: u128 = 1_000_000_000_000;
pub(crate) const DEV_PRICE_PER_M_IN: u128 = 1_000_000_000_000_000;
pub(crate) const DEV_PRICE_PER_M_OUT: u128 = 2_000_000_000_000_000;
