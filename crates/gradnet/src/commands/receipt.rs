//! `gradnet receipt`: receipts checked offline, and batches of them
//! committed on chain and proved.

use std::path::Path;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use gradnet_types::json::parse_inputs;
use gradnet_types::request::output_hash;
use gradnet_types::{ContentId, DType, NamedTensors, Receipt};
use serde_json::Value;

use crate::commands::chain::RpcArg;

/// Rebuilds the typed outputs of an inference response (`outputs` in either
/// encoding plus `output_types`) and hashes them as the node did.
pub(crate) fn response_output_hash(resp: &Value) -> Result<ContentId> {
    let outputs = parse_inputs(&resp["outputs"]).context("response `outputs`")?;
    let types = resp["output_types"]
        .as_object()
        .context("response has no `output_types`")?;
    let mut typed = NamedTensors::new();
    for (name, t) in outputs {
        let info = types
            .get(&name)
            .with_context(|| format!("no output_types entry for `{name}`"))?;
        let dtype: DType = serde_json::from_value(info["dtype"].clone())?;
        let tensor = t.to_tensor(&name, dtype)?;
        let shape: Vec<usize> = serde_json::from_value(info["shape"].clone())?;
        // an empty or scalar tensor's JSON form does not carry its full shape
        let tensor = if tensor.shape() == shape {
            tensor
        } else {
            gradnet_types::Tensor::new(shape, tensor.into_data())?
        };
        typed.insert(name, tensor);
    }
    Ok(output_hash(&typed))
}

/// The output hash of a chat or completion answer: its text and finish reason.
pub(crate) fn llm_answer_hash(resp: &Value) -> Result<ContentId> {
    let choice = &resp["choices"][0];
    // a tool-call answer signs the raw text it was parsed from
    let text = resp["gradnet_output"]
        .as_str()
        .or(choice["message"]["content"].as_str())
        .or(choice["text"].as_str())
        .context("answer has no choices[0].message.content or choices[0].text")?;
    let reason = choice["finish_reason"]
        .as_str()
        .context("answer has no finish_reason")?;
    Ok(gradnet_types::request::llm_output_hash(text, reason))
}

/// Verifies a receipt file or a saved inference response; returns a report.
pub(crate) fn verify_file(path: &Path, signer: Option<&str>) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value = serde_json::from_str(&text).context("not JSON")?;
    // an inference response holds `receipt`; an OpenAI-style answer,
    // `gradnet_receipt`; otherwise the file is the receipt itself
    let (receipt_json, response) = match v.get("receipt").or(v.get("gradnet_receipt")) {
        Some(r) => (r.clone(), Some(&v)),
        None => (v.clone(), None),
    };
    let receipt: Receipt = serde_json::from_value(receipt_json).context("not a gradnet receipt")?;
    match signer {
        Some(s) => receipt.verify_from(s)?,
        None => receipt.verify()?,
    }
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
    if let Some(resp) = response.filter(|r| r.get("choices").is_some()) {
        receipt.check_output(llm_answer_hash(resp)?)?;
        report.push_str("\nanswer: matches the signed output hash");
        return Ok(report);
    }
    if let Some(resp) = response {
        receipt.check_output(response_output_hash(resp)?)?;
        report.push_str("\noutputs: match the signed output hash");
        if resp
            .get("model")
            .and_then(Value::as_str)
            .is_some_and(|m| m != receipt.body.model.to_string())
        {
            bail!(
                "response names model {} but the receipt signs {}",
                resp["model"],
                receipt.body.model
            );
        }
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
