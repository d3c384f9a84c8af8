//! Validator processes on loopback and blocking JSON-RPC calls to them.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::BIN;

/// A free loopback port (below the ephemeral range: see `gradnet_node::ports`).
pub(crate) fn free_port() -> u16 {
    gradnet_node::ports::free_port().unwrap()
}

/// The first of `n` consecutive free loopback ports.
pub(crate) fn free_ports(n: u16) -> u16 {
    gradnet_node::ports::free_ports(n).unwrap()
}

/// Runs a client library call from a test's thread, failing it after 10 s.
pub(crate) fn client<T>(
    url: &str,
    call: impl AsyncFnOnce(gradnet_client::Rpc) -> Result<T, gradnet_client::ClientError>,
) -> Result<T, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rpc = gradnet_client::Rpc::new(url).map_err(|e| e.to_string())?;
    rt.block_on(async {
        match tokio::time::timeout(Duration::from_secs(10), call(rpc)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer from {url} within 10 s")),
        }
    })
}

/// A JSON-RPC call that must succeed, through the client library.
pub(crate) fn rpc(url: &str, method: &'static str, params: serde_json::Value) -> serde_json::Value {
    client(url, async |r| r.request(method, params).await)
        .unwrap_or_else(|e| panic!("{method} on {url}: {e}"))
}

/// The whole JSON-RPC response as the node sent it, or why there is none
/// (node down): for the tests of error responses.
pub(crate) fn try_rpc(
    url: &str,
    method: &str,
    params: serde_json::Value,
) -> Result<serde_json::Value, String> {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .post(url)
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .and_then(|r| r.json())
        .map_err(|e| e.to_string())
}

/// A JSON-RPC quantity (`0x`-prefixed hex).
pub(crate) fn quantity(v: &serde_json::Value) -> alloy_primitives::U256 {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v} is not a quantity: {e}"))
}

pub(crate) fn head(url: &str) -> u64 {
    client(url, async |r| r.block_number().await).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until `f` holds, or panics with `what` after `secs`.
pub(crate) fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out after {secs} s: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process, killed with SIGKILL when dropped (a failed assertion leaves
/// nothing running).
pub(crate) struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A new node key in `dir/node.key`; returns its public key (hex).
pub(crate) fn node_key(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new(BIN)
        .args(["keys", "new", "--out"])
        .arg(dir.join("node.key"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Where a validator listens.
#[derive(Clone, Debug)]
pub(crate) struct Ports {
    pub rpc: u16,
    pub p2p: u16,
}

impl Ports {
    pub(crate) fn free() -> Ports {
        Ports {
            rpc: free_port(),
            p2p: free_port(),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc)
    }
}

/// `gradnet node start` for a validator on `dir`, its peers given by their
/// ports; returns once it serves.
pub(crate) fn start_validator(
    dir: &Path,
    genesis: &Path,
    me: &Ports,
    peers: &[Ports],
    block_time_ms: u64,
) -> Killed {
    start_validator_env(dir, genesis, me, peers, block_time_ms, &[]).0
}

/// `start_validator` with more environment; with its inference API's URL.
pub(crate) fn start_validator_env(
    dir: &Path,
    genesis: &Path,
    me: &Ports,
    peers: &[Ports],
    block_time_ms: u64,
    env: &[(&str, &str)],
) -> (Killed, String) {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "node",
        "start",
        "--dev-mode",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(dir)
    .arg("--genesis")
    .arg(genesis)
    .args([
        "--rpc-listen",
        &format!("127.0.0.1:{}", me.rpc),
        "--p2p-listen",
        &format!("127.0.0.1:{}", me.p2p),
        "--block-time-ms",
        &block_time_ms.to_string(),
    ]);
    for p in peers {
        cmd.args([
            "--peer",
            &format!("127.0.0.1:{}", p.p2p),
            "--peer-rpc",
            &p.url(),
        ]);
    }
    cmd.env("GRADNET_LOG", "warn,informalsystems_malachitebft=error");
    cmd.envs(env.iter().copied());
    spawn_node_api(cmd)
}

/// Runs a `gradnet node start` command; returns once it serves.
pub(crate) fn spawn_node(cmd: Command) -> Killed {
    spawn_node_api(cmd).0
}

/// `spawn_node`, with the URL of the node's inference API.
pub(crate) fn spawn_node_api(mut cmd: Command) -> (Killed, String) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let rx = super::listening_url(&mut child);
    let child = Killed(child);
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("node did not start");
    (child, url)
}
