//! Node configuration: defaults, then a TOML file, then `GRADNET_*`
//! environment variables and flags (clap reads both into `NodeArgs`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use gradnet_api::ApiConfig;
use gradnet_hub::HubConfig;
use gradnet_runtime::{Backend, RuntimeConfig};
use serde::Deserialize;

use crate::commands::node::{BackendName, NodeArgs};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub threads: Option<usize>,
    pub workers: Option<usize>,
    pub queue_depth: Option<usize>,
    pub max_blob_size: Option<u64>,
    pub max_request_bytes: Option<usize>,
    pub cache_bytes: Option<u64>,
    pub backend: Option<BackendName>,
    pub onnxruntime_lib: Option<PathBuf>,
    pub llm_slots: Option<usize>,
    pub llm_queue_depth: Option<usize>,
    pub llm_cache_bytes: Option<u64>,
    pub genesis: Option<PathBuf>,
    pub rpc_listen: Option<String>,
    pub block_time_ms: Option<u64>,
    pub p2p_listen: Option<String>,
    #[serde(default)]
    pub peers: Vec<String>,
    #[serde(default)]
    pub peer_rpc: Vec<String>,
    #[serde(default)]
    pub hub_peers: Vec<String>,
    pub dev_mode: Option<bool>,
    pub quota_bytes: Option<u64>,
    pub max_versions: Option<usize>,
    pub max_files: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub requests_per_ip: Option<u32>,
    pub requests_per_account: Option<u32>,
    pub header_timeout_secs: Option<u64>,
    pub body_idle_timeout_secs: Option<u64>,
    pub trusted_ips: Option<Vec<std::net::IpAddr>>,
    pub inference_memory_bytes: Option<u64>,
    pub names_rpc: Option<String>,
    pub inference_time_secs: Option<f64>,
    pub max_response_bytes: Option<usize>,
    pub chain_rpc: Option<String>,
    pub redeem_every_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct NodeConfig {
    pub data_dir: PathBuf,
    pub listen: String,
    pub hub: HubConfig,
    pub runtime: RuntimeConfig,
    pub api: ApiConfig,
    pub limits: gradnet_api::ServerLimits,
    /// A validator's JSON-RPC to read model names from (no ledger here).
    pub names_rpc: Option<String>,
    pub chain: Option<gradnet_node::ledger::LedgerConfig>,
    /// Test only: alter every PIPE result (a faulty inference node).
    pub byzantine: bool,
    /// Development only: act as a dev enclave.
    pub dev_enclave: Option<gradnet_node::dev_enclave::DevEnclaveConfig>,
    /// Paid inference: the operator's key and the chain's JSON-RPC.
    pub payments: Option<PaymentsConfig>,
    /// A validator's gateway account: pays nodes, reports faults.
    pub gateway_key: Option<alloy_primitives::B256>,
    /// TLS on the API port.
    pub tls: Option<TlsConfig>,
}

/// TLS on the API port: the operator's certificate and key (PEM), or a
/// self-signed pair in the data dir.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsConfig {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// How a node is paid.
#[derive(Debug, Clone)]
pub(crate) struct PaymentsConfig {
    /// The operator account's key: payments go to its address, and it signs
    /// the redemptions.
    pub operator_key: alloy_primitives::B256,
    /// The chain's JSON-RPC (prices, deposits, redemption).
    pub rpc: String,
    /// Seconds between scheduled redemptions.
    pub redeem_every: u64,
}

/// A repeatable flag's values, or the config file's list when none is given.
fn list(flags: &[String], file: &[String]) -> Vec<String> {
    if flags.is_empty() { file } else { flags }.to_vec()
}

pub(crate) fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".gradnet")
}

/// `ORT_DYLIB_PATH` (the variable `ort` users know), else the library that
/// `scripts/fetch-models` puts next to the models.
pub(crate) fn default_onnxruntime_lib() -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    std::env::var_os("GRADNET_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models"))
        .join(gradnet_runtime::ONNXRUNTIME_LIBRARY_FILE)
}

/// The config file `gradnet init` writes in a node's home.
pub(crate) const HOME_CONFIG: &str = "config.toml";

pub(crate) fn load_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
}

impl NodeConfig {
    pub(crate) fn resolve(args: &NodeArgs) -> Result<NodeConfig> {
        // --home DIR: the data dir, with DIR/config.toml as the config file
        let home_config = args.home.as_ref().map(|h| h.join(HOME_CONFIG));
        let config_path = args.config.clone().or(home_config.filter(|p| p.exists()));
        let mut file = match &config_path {
            Some(p) => load_file(p)?,
            None => FileConfig::default(),
        };
        // paths in a config file are relative to its directory
        if let (Some(g), Some(dir)) = (&file.genesis, config_path.as_ref().and_then(|p| p.parent()))
        {
            if g.is_relative() {
                file.genesis = Some(dir.join(g));
            }
        }
        if file.data_dir.is_none() {
            file.data_dir = args.home.clone();
        }
        let hub = HubConfig::default();
        let rt = RuntimeConfig::default();
        let api = ApiConfig::default();
        let lim = gradnet_api::ServerLimits::default();
        let chain = args.genesis.clone().or(file.genesis).map(|genesis| {
            gradnet_node::ledger::LedgerConfig {
                genesis,
                rpc_listen: args
                    .rpc_listen
                    .clone()
                    .or(file.rpc_listen.clone())
                    .unwrap_or_else(|| "127.0.0.1:8545".into()),
                block_time: std::time::Duration::from_millis(
                    args.block_time_ms
                        .or(file.block_time_ms)
                        .unwrap_or(1000)
                        .max(1),
                ),
                p2p_listen: args
                    .p2p_listen
                    .clone()
                    .or(file.p2p_listen.clone())
                    .unwrap_or_else(|| "0.0.0.0:26656".into()),
                peers: list(&args.peer, &file.peers),
                peer_rpc: list(&args.peer_rpc, &file.peer_rpc),
                byzantine: args.byzantine_validator.clone(),
            }
        });
        let chain_id = match &chain {
            Some(c) => genesis_chain_id(&c.genesis)?,
            None => api.chain_id,
        };
        let chain_rpc = args.chain_rpc.clone().or(file.chain_rpc.clone());
        let payments = match (&args.operator_key, chain_rpc) {
            (Some(key), Some(rpc)) => Some(PaymentsConfig {
                operator_key: key
                    .trim()
                    .parse()
                    .context("--operator-key / GRADNET_OPERATOR_KEY is not a 32-byte hex key")?,
                rpc,
                redeem_every: args
                    .redeem_every
                    .or(file.redeem_every_secs)
                    .unwrap_or(300)
                    .max(1),
            }),
            (Some(_), None) => anyhow::bail!(
                "--operator-key needs --chain-rpc: the chain whose escrow pays this node"
            ),
            _ => None,
        };
        Ok(NodeConfig {
            payments,
            tls: (args.tls || args.tls_cert.is_some()).then(|| TlsConfig {
                cert: args.tls_cert.clone(),
                key: args.tls_key.clone(),
            }),
            gateway_key: args
                .gateway_key
                .as_deref()
                .map(|k| k.trim().parse())
                .transpose()
                .context("--gateway-key / GRADNET_GATEWAY_KEY is not a 32-byte hex key")?,
            names_rpc: args.names_rpc.clone().or(file.names_rpc.clone()),
            chain,
            byzantine: args.byzantine,
            dev_enclave: match (&args.tee_dev_enclave, &args.tee_operator_key, &args.tee_rpc) {
                (Some(seed), Some(key), Some(rpc)) => {
                    Some(gradnet_node::dev_enclave::DevEnclaveConfig {
                        seed: seed.clone(),
                        operator_key: key
                            .parse()
                            .context("--tee-operator-key is not a 32-byte hex key")?,
                        rpc: rpc.clone(),
                        endpoint: String::new(),
                        tls_certificate: vec![],
                    })
                }
                _ => None,
            },
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(default_data_dir),
            listen: args
                .listen
                .clone()
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:7700".into()),
            hub: HubConfig {
                max_blob_size: args
                    .max_blob_size
                    .or(file.max_blob_size)
                    .unwrap_or(hub.max_blob_size),
                peers: list(&args.hub_peer, &file.hub_peers),
                quota_bytes: args
                    .quota_bytes
                    .or(file.quota_bytes)
                    .unwrap_or(hub.quota_bytes),
                max_versions: file.max_versions.unwrap_or(hub.max_versions),
                max_files: file.max_files.unwrap_or(hub.max_files),
            },
            limits: gradnet_api::ServerLimits {
                max_connections: args
                    .max_connections
                    .or(file.max_connections)
                    .unwrap_or(lim.max_connections)
                    .max(1),
                max_connections_per_ip: args
                    .max_connections_per_ip
                    .or(file.max_connections_per_ip)
                    .unwrap_or(lim.max_connections_per_ip)
                    .max(1),
                requests_per_ip: args
                    .requests_per_ip
                    .or(file.requests_per_ip)
                    .unwrap_or(lim.requests_per_ip),
                burst_per_ip: 2 * args
                    .requests_per_ip
                    .or(file.requests_per_ip)
                    .unwrap_or(lim.requests_per_ip),
                header_timeout: file
                    .header_timeout_secs
                    .map_or(lim.header_timeout, std::time::Duration::from_secs),
                body_idle_timeout: file
                    .body_idle_timeout_secs
                    .map_or(lim.body_idle_timeout, std::time::Duration::from_secs),
                trusted: file.trusted_ips.clone().unwrap_or(lim.trusted),
                // set at start, once the certificate is loaded
                tls: None,
            },
            runtime: RuntimeConfig {
                budget: gradnet_runtime::Budget {
                    memory_bytes: args
                        .inference_memory_bytes
                        .or(file.inference_memory_bytes)
                        .unwrap_or(rt.budget.memory_bytes),
                    time: file
                        .inference_time_secs
                        .filter(|t| t.is_finite() && *t > 0.0)
                        .map_or(rt.budget.time, std::time::Duration::from_secs_f64),
                },
                threads: args.threads.or(file.threads).unwrap_or(rt.threads).max(1),
                cache_bytes: args
                    .cache_bytes
                    .or(file.cache_bytes)
                    .unwrap_or(rt.cache_bytes),
                backend: match args.backend.or(file.backend) {
                    None | Some(BackendName::Deterministic) => Backend::Deterministic,
                    Some(BackendName::Onnxruntime) => Backend::OnnxRuntime {
                        library: args
                            .onnxruntime_lib
                            .clone()
                            .or(file.onnxruntime_lib)
                            .unwrap_or_else(default_onnxruntime_lib),
                    },
                },
            },
            api: ApiConfig {
                max_request_bytes: args
                    .max_request_bytes
                    .or(file.max_request_bytes)
                    .unwrap_or(api.max_request_bytes),
                workers: args.workers.or(file.workers).unwrap_or(api.workers).max(1),
                queue_depth: args
                    .queue_depth
                    .or(file.queue_depth)
                    .unwrap_or(api.queue_depth),
                llm_slots: args
                    .llm_slots
                    .or(file.llm_slots)
                    .unwrap_or(api.llm_slots)
                    .max(1),
                llm_queue_depth: args
                    .llm_queue_depth
                    .or(file.llm_queue_depth)
                    .unwrap_or(api.llm_queue_depth),
                llm_cache_bytes: args
                    .llm_cache_bytes
                    .or(file.llm_cache_bytes)
                    .unwrap_or(api.llm_cache_bytes),
                chain_id,
                max_response_bytes: file.max_response_bytes.unwrap_or(api.max_response_bytes),
                dev_mode: args.dev_mode || file.dev_mode.unwrap_or(false),
                requests_per_account: file
                    .requests_per_account
                    .unwrap_or(api.requests_per_account),
                burst_per_account: 3 * file
                    .requests_per_account
                    .unwrap_or(api.requests_per_account),
                byzantine: args.byzantine,
            },
        })
    }
}

/// The chain id a genesis file names (signed writes name it too).
fn genesis_chain_id(path: &Path) -> Result<u64> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading genesis {}", path.display()))?;
    let g = gradnet_ledger::genesis::Genesis::from_json(&bytes)
        .with_context(|| format!("parsing genesis {}", path.display()))?;
    Ok(g.chain_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gradnet.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nthreads = 2\nworkers = 3\n",
        )
        .unwrap();
        let args = NodeArgs {
            config: Some(path.clone()),
            workers: Some(5),
            ..Default::default()
        };
        let c = NodeConfig::resolve(&args).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000");
        assert_eq!(c.runtime.threads, 2);
        assert_eq!(c.api.workers, 5);
        assert_eq!(c.api.queue_depth, ApiConfig::default().queue_depth);
        std::fs::write(&path, "listn = 1").unwrap();
        let e = NodeConfig::resolve(&args).unwrap_err();
        assert!(format!("{e:#}").contains("listn"), "{e:#}");
    }
}
