//! Command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gradnet",
    version,
    about = "gradnet: verifiable AI inference — model hub, inference node and CLI"
)]
pub(crate) struct Cli {
    /// Node API to talk to (client commands).
    #[arg(
        long,
        global = true,
        env = "GRADNET_NODE",
        default_value = "http://127.0.0.1:7700"
    )]
    pub node: String,
    /// Log filter, e.g. `info` or `gradnet_api=debug`.
    #[arg(
        long,
        global = true,
        env = "GRADNET_LOG",
        default_value = "info,informalsystems_malachitebft=error,libp2p=warn,ractor=warn"
    )]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub(crate) enum Command {
    /// Run a node.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Model hub: repositories, versions, files.
    #[command(subcommand)]
    Model(ModelCmd),
    /// Run a model on a node and print the outputs and the signed receipt.
    Infer(InferArgs),
    /// Chat with an LLM on a node (interactive without --message).
    Chat(ChatArgs),
    /// Complete a prompt with an LLM on a node.
    Completion(CompletionArgs),
    /// Receipts.
    #[command(subcommand)]
    Receipt(ReceiptCmd),
    /// Node keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Zero-knowledge proofs of ONNX inference (Groth16 over BN254).
    #[command(subcommand)]
    Zk(ZkCmd),
    /// Start a node on a temporary data dir, upload a real model, run it, verify the receipt.
    Demo(DemoArgs),
    /// Make a node home for a network of several machines: a node key and
    /// a config.toml to edit; then `gradnet node start --home DIR`.
    Init(InitArgs),
    /// Start a local network: validators with a generated genesis and
    /// funded development accounts, each with JSON-RPC and the inference API.
    Devnet(DevnetArgs),
    /// The ledger, through a node's Ethereum JSON-RPC.
    #[command(subcommand)]
    Chain(ChainCmd),
}

#[derive(Args, Clone)]
pub(crate) struct InitArgs {
    /// The node's home directory (created).
    #[arg(long)]
    pub home: PathBuf,
    /// The network's genesis file, copied into the home (it can be added
    /// later as <home>/genesis.json).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// Consensus p2p address.
    #[arg(long, default_value = "0.0.0.0:26656")]
    pub p2p_listen: String,
    /// Ethereum JSON-RPC address.
    #[arg(long, default_value = "127.0.0.1:8545")]
    pub rpc_listen: String,
    /// Inference API address.
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub listen: String,
    /// Another validator's consensus p2p address (repeat for each).
    #[arg(long = "peer", value_name = "ADDR")]
    pub peer: Vec<String>,
    /// Another validator's JSON-RPC URL, to relay client transactions to.
    #[arg(long = "peer-rpc", value_name = "URL")]
    pub peer_rpc: Vec<String>,
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
    /// Test only: the CPU model each inference node runs on, in order
    /// (`native`, or a model of `qemu-x86_64 -cpu`, e.g. `Haswell`,
    /// `Nehalem`): nodes on different CPU generations on one machine.
    #[arg(long, value_delimiter = ',', hide = true)]
    pub inference_cpu: Vec<String>,
}

#[derive(Subcommand)]
pub(crate) enum ChainCmd {
    /// Chain id, head block and pending transactions.
    Status(RpcArg),
    /// A block by number (or `latest`), with its transactions.
    Block {
        number: String,
        #[command(flatten)]
        rpc: RpcArg,
    },
    /// A transaction and its receipt.
    Tx {
        hash: String,
        #[command(flatten)]
        rpc: RpcArg,
    },
}

#[derive(Args, Clone)]
pub(crate) struct RpcArg {
    /// Ethereum JSON-RPC endpoint of a node.
    #[arg(long, env = "GRADNET_RPC", default_value = "http://127.0.0.1:8545")]
    pub rpc: String,
}

/// Sampling settings shared by `chat` and `completion`.
#[derive(Args, Clone, Debug)]
pub(crate) struct GenArgs {
    /// Model: hub repository (`smollm2`), `repo@version`, or content id.
    #[arg(long, short)]
    pub model: String,
    /// Print tokens as they are generated.
    #[arg(long)]
    pub stream: bool,
    /// Tokens to generate at most.
    #[arg(long)]
    pub max_tokens: Option<u64>,
    /// 0 is greedy and reproducible.
    #[arg(long)]
    pub temperature: Option<f64>,
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Seed for sampling; the same seed gives the same text.
    #[arg(long)]
    pub seed: Option<i64>,
    /// Stop sequence (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Save the last full answer (with its receipt) for `gradnet receipt verify`.
    #[arg(long)]
    pub save: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    pub gen: GenArgs,
    /// One message to send; without it, chat line by line from stdin.
    #[arg(long)]
    pub message: Option<String>,
    /// System prompt.
    #[arg(long)]
    pub system: Option<String>,
}

#[derive(Args)]
pub(crate) struct CompletionArgs {
    #[command(flatten)]
    pub gen: GenArgs,
    #[arg(long, short)]
    pub prompt: String,
}

#[derive(Subcommand)]
pub(crate) enum NodeCmd {
    /// Start a node: hub, inference and HTTP API.
    Start(NodeArgs),
}

/// Node settings; each flag overrides `GRADNET_*` from the environment, which
/// overrides the config file, which overrides the defaults.
#[derive(Args, Clone, Default)]
pub(crate) struct NodeArgs {
    /// A node home made by `gradnet init`: the data dir, with its
    /// config.toml as the config file.
    #[arg(long, env = "GRADNET_HOME")]
    pub home: Option<PathBuf>,
    /// TOML config file.
    #[arg(long, env = "GRADNET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the hub and the node key live [default: ~/.gradnet].
    #[arg(long, env = "GRADNET_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address for the HTTP API [default: 127.0.0.1:7700].
    #[arg(long, env = "GRADNET_LISTEN")]
    pub listen: Option<String>,
    /// Threads per inference [default: 1].
    #[arg(long, env = "GRADNET_THREADS")]
    pub threads: Option<usize>,
    /// Inferences running at once [default: 2].
    #[arg(long, env = "GRADNET_WORKERS")]
    pub workers: Option<usize>,
    /// Inferences waiting for a worker before new ones get 429 [default: 64].
    #[arg(long, env = "GRADNET_QUEUE_DEPTH")]
    pub queue_depth: Option<usize>,
    /// Largest file the hub accepts, in bytes [default: 4 GiB].
    #[arg(long, env = "GRADNET_MAX_BLOB_SIZE")]
    pub max_blob_size: Option<u64>,
    /// Largest inference request body, in bytes [default: 32 MiB].
    #[arg(long, env = "GRADNET_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Memory budget for parsed models and compiled plans, in bytes [default: 2 GiB].
    #[arg(long, env = "GRADNET_CACHE_BYTES")]
    pub cache_bytes: Option<u64>,
    /// Threads per LLM generation [default: the machine's cores]. candle's
    /// workers spin while they wait, so on a busy machine fewer threads (and
    /// more --llm-slots) hold up better.
    #[arg(long, env = "GRADNET_LLM_THREADS")]
    pub llm_threads: Option<usize>,
    /// LLM generations that run at once [default: 4]; those of one llama-
    /// family model decode together in shared passes.
    #[arg(long, env = "GRADNET_LLM_SLOTS")]
    pub llm_slots: Option<usize>,
    /// LLM requests waiting for a slot before new ones get 429 [default: 16].
    #[arg(long, env = "GRADNET_LLM_QUEUE_DEPTH")]
    pub llm_queue_depth: Option<usize>,
    /// Memory budget for loaded LLMs, in bytes [default: 4 GiB].
    #[arg(long, env = "GRADNET_LLM_CACHE_BYTES")]
    pub llm_cache_bytes: Option<u64>,
    /// Engine for ONNX models; receipts name it and its profile [default:
    /// deterministic].
    #[arg(long, env = "GRADNET_BACKEND", value_enum)]
    pub backend: Option<BackendName>,
    /// Genesis file of the chain this node keeps (JSON); without it the node
    /// serves inference and the hub only.
    #[arg(long, env = "GRADNET_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// Address for Ethereum JSON-RPC [default: 127.0.0.1:8545].
    #[arg(long, env = "GRADNET_RPC_LISTEN")]
    pub rpc_listen: Option<String>,
    /// Milliseconds between block proposals [default: 1000].
    #[arg(long, env = "GRADNET_BLOCK_TIME_MS")]
    pub block_time_ms: Option<u64>,
    /// Consensus p2p address, a multiaddr or ip:port [default: 0.0.0.0:26656].
    #[arg(long, env = "GRADNET_P2P_LISTEN")]
    pub p2p_listen: Option<String>,
    /// Another validator's consensus p2p address (repeat for each).
    #[arg(long = "peer", value_name = "ADDR")]
    pub peer: Vec<String>,
    /// Another validator's JSON-RPC URL, to relay client transactions to
    /// (repeat for each).
    #[arg(long = "peer-rpc", value_name = "URL")]
    pub peer_rpc: Vec<String>,
    /// Another node's API URL to fetch models from when a call names a
    /// content id this hub lacks (checked against the id; repeat for each).
    #[arg(long = "hub-peer", value_name = "URL")]
    pub hub_peer: Vec<String>,
    /// ONNX Runtime shared library for `--backend onnxruntime`
    /// [default: $ORT_DYLIB_PATH, else models/libonnxruntime.so.1.32.0 from scripts/fetch-models].
    #[arg(long, env = "GRADNET_ONNXRUNTIME_LIB")]
    pub onnxruntime_lib: Option<PathBuf>,
    /// Test only: answer the chain's inference calls with altered outputs
    /// (a faulty node, to be outvoted and slashed).
    #[arg(long, hide = true)]
    pub byzantine: bool,
    /// Development only: stand in for an enclave, attesting with the
    /// dev-enclave root of this seed (accepted only by a genesis that pins
    /// it), registering in the TEE registry and sending heartbeats.
    #[arg(long, hide = true, requires_all = ["tee_operator_key", "tee_rpc"])]
    pub tee_dev_enclave: Option<String>,
    /// The account that registers the dev enclave and pays its heartbeats.
    #[arg(long, hide = true)]
    pub tee_operator_key: Option<String>,
    /// JSON-RPC of the chain the dev enclave registers on.
    #[arg(long, hide = true)]
    pub tee_rpc: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BackendName {
    /// gradnet's engine: the same output bits on every CPU (profile det-1),
    /// so QUORUM can compare this node's answers with any other's.
    Deterministic,
    /// ONNX Runtime: faster on convolutional models, exact to its CPU only
    /// (profile native: not sampled for QUORUM); needs its shared library.
    Onnxruntime,
}

#[derive(Subcommand)]
pub(crate) enum ModelCmd {
    /// Create a model repository.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, default_value = "")]
        task: String,
        #[arg(long, default_value = "")]
        license: String,
        /// Repeat for several tags.
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long, default_value = "")]
        owner: String,
    },
    /// Create a new version (1.00, then 1.01 … or 2.00 with --major).
    Version {
        name: String,
        #[arg(long, default_value = "")]
        notes: String,
        #[arg(long)]
        major: bool,
    },
    /// Upload a file into a version, with a progress bar.
    Upload {
        name: String,
        version: String,
        file: PathBuf,
        /// Store under this file name instead of the local one.
        #[arg(long = "as")]
        store_as: Option<String>,
    },
    /// List repositories.
    Ls,
    /// List the files of a version.
    Files { name: String, version: String },
    /// Download a file by content id or `repo@version/file`, checking its hash.
    Download {
        model: String,
        /// Output path [default: the file name or the content id].
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
}

#[derive(Args)]
pub(crate) struct InferArgs {
    /// Content id or `repo@version/file`.
    #[arg(long)]
    pub model: String,
    /// Inputs as JSON, or `@file` to read them from a file.
    #[arg(long)]
    pub input: String,
    /// VANILLA, QUORUM, ZKML or TEE.
    #[arg(long, default_value = "VANILLA")]
    pub mode: String,
    /// Output encoding: plain, fixed_point or base64.
    #[arg(long, default_value = "plain")]
    pub format: String,
    /// Also write the whole response (outputs + receipt) here, for `receipt verify`.
    #[arg(long)]
    pub save: Option<PathBuf>,
}

#[derive(Subcommand)]
pub(crate) enum ReceiptCmd {
    /// Check a receipt offline: signature, and the output hash when the file is
    /// a whole inference response.
    Verify {
        file: PathBuf,
        /// Require this signer (hex public key).
        #[arg(long)]
        signer: Option<String>,
    },
    /// Settle a batch of this node's receipts on chain: post its Merkle root
    /// and send every receipt (in chunks) for the registry to check.
    Settle {
        /// The batch: a JSON array of receipts, all signed by one node.
        batch: PathBuf,
        /// The registered operator's secp256k1 private key (hex).
        #[arg(long, env = "GRADNET_OPERATOR_KEY")]
        key: String,
        /// Receipts per transaction.
        #[arg(long, default_value_t = 250)]
        chunk: usize,
        /// Also store the batch file in this node's hub (repository
        /// `receipt-batches`), where its content id finds it.
        #[arg(long)]
        hub: Option<String>,
        #[command(flatten)]
        rpc: RpcArg,
    },
    /// Prove that one receipt is in a batch settled on chain: its Merkle
    /// path to the batch's root, checked against the registry.
    Prove {
        /// The batch file (a JSON array of receipts).
        batch: PathBuf,
        /// The receipt's position in the batch (from 0).
        index: usize,
        #[command(flatten)]
        rpc: RpcArg,
    },
}

#[derive(Subcommand)]
pub(crate) enum ZkCmd {
    /// Compile an ONNX model to a circuit, generate its keys once, and
    /// report its accuracy against float inference.
    Setup(ZkSetupArgs),
    /// Run the circuit on an input and prove its output.
    Prove {
        /// The ONNX model the keys were made for.
        model: PathBuf,
        /// The directory `zk setup` wrote.
        #[arg(long)]
        keys: PathBuf,
        /// Input as JSON (numbers in nested arrays, or `{"name": [...]}`), or `@file`.
        #[arg(long)]
        input: String,
        /// Write the proof here instead of stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Check a proof file against a verifying key.
    Verify {
        /// A proof file from `zk prove`.
        proof: PathBuf,
        /// The verifying key: a file, or its content id in the node's hub.
        #[arg(long)]
        vk: String,
    },
}

#[derive(Args)]
pub(crate) struct ZkSetupArgs {
    /// The ONNX model.
    pub model: PathBuf,
    /// Fraction bits of the fixed-point scale: values are integers at 2^F.
    #[arg(long, default_value_t = crate::commands::zk::DEFAULT_FRAC_BITS)]
    pub frac_bits: u32,
    /// Where to write the keys [default: MODEL with extension .zk].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Random inputs in [-1, 1) for the accuracy report.
    #[arg(long, default_value_t = 256)]
    pub samples: usize,
    /// A JSON array of inputs for the accuracy report instead.
    #[arg(long)]
    pub test_set: Option<PathBuf>,
    /// Also upload both keys into this hub version (REPO@VERSION).
    #[arg(long)]
    pub upload: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum KeysCmd {
    /// Generate an ed25519 node key.
    New {
        /// Write the secret seed here (never overwritten); without it only the public key is printed.
        #[arg(long)]
        out: Option<PathBuf>,
    },
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
