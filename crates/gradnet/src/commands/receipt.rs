//! `gradnet receipt`: receipts checked offline, and batches of them
//! committed on chain and proved.

use std::path::Path;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use gradnet_client::verify::{verify_response, Checked};
use serde_json::Value;

use crate::commands::chain::RpcArg;

/// Verifies a receipt file or a saved inference response; returns a report.
pub(crate) fn verify_file(path: &Path, signer: Option<&str>) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value = serde_json::from_str(&text).context("not JSON")?;
    let (receipt, checked) = verify_response(&v, signer)?;
    let mut report =
        format!(
        "signature: valid (node {})\nmodel: {}\nrequest: {}\noutput: {}\nruntime: {} {}{}\nmode: {}",
        receipt.body.node, receipt.body.model, receipt.body.request_hash, receipt.body.output_hash,
        receipt.body.runtime.name, receipt.body.runtime.version,
        match receipt.body.runtime.profile.as_str() {
            "" => String::new(),
            p if receipt.body.runtime.deterministic() => format!(" (profile {p}: any node with this profile gets the same output hash)"),
            p => format!(" (profile {p})"),
        },
        receipt.body.mode
    );
    match checked {
        Checked::Answer => report.push_str("\nanswer: matches the signed output hash"),
        Checked::Outputs => report.push_str("\noutputs: match the signed output hash"),
        Checked::Receipt => {}
    }
    Ok(report)
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
