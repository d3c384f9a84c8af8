//! `gradnet devnet` as a process: validators and inference nodes on free
//! loopback ports, its dev keys read from its output, stopped with Ctrl-C.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::ledger::free_ports;
use super::BIN;

/// The first port of each kind (the next ones count up).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DevnetPorts {
    pub validators: u16,
    pub rpc: u16,
    pub api: u16,
    pub p2p: u16,
    pub inference: u16,
}

impl DevnetPorts {
    pub(crate) fn free(validators: u16) -> Self {
        DevnetPorts {
            validators,
            rpc: free_ports(validators),
            api: free_ports(validators),
            p2p: free_ports(validators),
            inference: free_ports(3),
        }
    }
}

pub(crate) struct Devnet {
    child: Child,
    /// The first validator's inference API.
    pub api: String,
    /// Every validator's inference API.
    pub apis: Vec<String>,
    pub rpcs: Vec<String>,
    pub rpc: String,
    pub keys: Vec<String>,
    pub root: PathBuf,
    /// The inference nodes' API URLs.
    pub inference: Vec<String>,
}

impl Devnet {
    pub(crate) fn start(data_dir: &Path, validators: u16) -> Devnet {
        Self::start_with(data_dir, validators, &[])
    }

    /// With more `gradnet devnet` arguments.
    pub(crate) fn start_with(data_dir: &Path, validators: u16, more: &[&str]) -> Devnet {
        Self::start_on(data_dir, &DevnetPorts::free(validators), more)
    }

    /// On the given ports.
    pub(crate) fn start_on(data_dir: &Path, ports: &DevnetPorts, more: &[&str]) -> Devnet {
        let DevnetPorts {
            validators,
            rpc: rpc_port,
            api: api_port,
            p2p: p2p_port,
            inference: inference_port,
        } = *ports;
        let mut child = Command::new(BIN)
            .args([
                "devnet",
                "--accounts",
                "3",
                "--block-time-ms",
                "100",
                "--data-dir",
            ])
            .arg(data_dir)
            .args([
                "--rpc-port",
                &rpc_port.to_string(),
                "--api-port",
                &api_port.to_string(),
                "--p2p-port",
                &p2p_port.to_string(),
                "--validators",
                &validators.to_string(),
                "--inference-port",
                &inference_port.to_string(),
            ])
            .args(more)
            .env("GRADNET_LOG", "warn,informalsystems_malachitebft=error")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut keys = vec![];
            let mut in_keys = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("Private keys") {
                    in_keys = true;
                } else if in_keys && line.starts_with('(') {
                    keys.push(line.split_whitespace().nth(1).unwrap().to_string());
                } else if line.starts_with("devnet running") {
                    let _ = tx.send(keys.clone());
                }
            }
        });
        // nodes under CPU emulation start slowly
        let keys = rx
            .recv_timeout(Duration::from_secs(240))
            .expect("devnet did not start");
        Devnet {
            child,
            root: data_dir.to_path_buf(),
            inference: (0..3)
                .map(|i| format!("http://127.0.0.1:{}", inference_port + i))
                .collect(),
            api: format!("http://127.0.0.1:{api_port}"),
            apis: (0..validators)
                .map(|i| format!("http://127.0.0.1:{}", api_port + i))
                .collect(),
            rpcs: (0..validators)
                .map(|i| format!("http://127.0.0.1:{}", rpc_port + i))
                .collect(),
            rpc: format!("http://127.0.0.1:{rpc_port}"),
            keys,
        }
    }

    /// The `gradnet devnet` process (its validators and nodes are its children).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ctrl-C: every validator stops cleanly.
    pub(crate) fn stop(mut self) {
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "devnet exit: {status}");
    }
}

impl Drop for Devnet {
    /// After a failed assertion too: Ctrl-C first, so that the devnet stops
    /// its validators rather than leaving them running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            for _ in 0..100 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
    }
}
