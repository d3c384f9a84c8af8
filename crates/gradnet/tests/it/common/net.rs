//! A network of validator processes on loopback (no inference nodes),
//! started, killed (SIGKILL) and restarted one by one, and compared block
//! by block.

use std::path::PathBuf;

use alloy_primitives::{Address, U256};
use gradnet_ledger::genesis::{Genesis, GenesisValidator};
use serde_json::json;

use super::ledger::*;

pub(crate) const CHAIN_ID: u64 = 4747;
pub(crate) const BLOCK_MS: u64 = 200;

pub(crate) struct Net {
    pub dirs: Vec<PathBuf>,
    pub ports: Vec<Ports>,
    genesis: PathBuf,
    nodes: Vec<Option<Killed>>,
    _root: tempfile::TempDir,
}

impl Net {
    pub(crate) fn new(n: usize, funded: &Address) -> Net {
        let root = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = (0..n).map(|i| root.path().join(format!("v{i}"))).collect();
        let validators = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| GenesisValidator {
                public_key: node_key(d),
                power: 1,
                fee_recipient: Address::repeat_byte(0x10 + i as u8),
            })
            .collect();
        let genesis = Genesis {
            chain_id: CHAIN_ID,
            timestamp: 1_700_000_000,
            gas_limit: 30_000_000,
            base_fee: 1_000_000_000,
            validators,
            alloc: [(*funded, U256::from(10u128.pow(24)))].into(),
            code: Default::default(),
            inference_nodes: vec![],
            zk_models: vec![],
            tee: None,
            escrow: None,
        };
        let gpath = root.path().join("genesis.json");
        std::fs::write(&gpath, serde_json::to_vec_pretty(&genesis).unwrap()).unwrap();
        Net {
            ports: (0..n).map(|_| Ports::free()).collect(),
            nodes: (0..n).map(|_| None).collect(),
            dirs,
            genesis: gpath,
            _root: root,
        }
    }

    pub(crate) fn start(&mut self, i: usize) {
        self.start_env(i, &[]);
    }

    /// Starts validator `i` with more environment (a crash point); returns
    /// its inference API's URL.
    pub(crate) fn start_env(&mut self, i: usize, env: &[(&str, &str)]) -> String {
        let peers: Vec<Ports> = (0..self.ports.len())
            .filter(|&j| j != i)
            .map(|j| self.ports[j].clone())
            .collect();
        let (node, api) = start_validator_env(
            &self.dirs[i],
            &self.genesis,
            &self.ports[i],
            &peers,
            BLOCK_MS,
            env,
        );
        self.nodes[i] = Some(node);
        api
    }

    /// Whether validator `i`'s process is still running.
    pub(crate) fn nodes_alive(&mut self, i: usize) -> bool {
        match self.nodes[i].as_mut() {
            Some(n) => n.0.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Waits for validator `i` to end by itself (a crash point), within
    /// `secs`; returns how it ended.
    pub(crate) fn wait_exit(&mut self, i: usize, secs: u64) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            let node = self.nodes[i].as_mut().expect("running");
            if let Some(status) = node.0.try_wait().unwrap() {
                self.nodes[i] = None;
                return status;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(secs),
                "validator {i} still running after {secs} s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown of any kind.
    pub(crate) fn kill(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    pub(crate) fn url(&self, i: usize) -> String {
        self.ports[i].url()
    }

    pub(crate) fn block_hash(&self, i: usize, n: u64) -> serde_json::Value {
        let b = rpc(
            &self.url(i),
            "eth_getBlockByNumber",
            json!([format!("{n:#x}"), false]),
        );
        json!([b["hash"], b["stateRoot"]])
    }

    /// Every listed node has the same blocks (hash and state commitment) up
    /// to the lowest head among them.
    pub(crate) fn assert_agree(&self, nodes: &[usize]) -> u64 {
        let low = nodes.iter().map(|&i| head(&self.url(i))).min().unwrap();
        for n in 1..=low {
            let first = self.block_hash(nodes[0], n);
            for &i in &nodes[1..] {
                assert_eq!(
                    self.block_hash(i, n),
                    first,
                    "validators {} and {i} differ at block {n}",
                    nodes[0]
                );
            }
        }
        low
    }
}
