//! `gradnet receipt`: receipts checked offline, and batches of them
//! committed on chain and proved.

use std::path::Path;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use gradnet_client::verify::{verify_certificate, verify_response, Checked, CheckedCertificate};
use serde_json::Value;

use crate::commands::chain::RpcArg;

/// Checks a ZKML certificate's proof with the key it carries: the receipt
/// signs this proof and output, the proof verifies, and a response's
/// outputs are the circuit's. Returns what the key is.
pub(crate) fn check_zk(c: &CheckedCertificate, response: Option<&Value>) -> Result<String> {
    use gradnet_inference::zk;
    let z = c
        .certificate
        .zk
        .as_ref()
        .context("a ZKML certificate without its proof")?;
    let key =
        hex::decode(&z.verifying_key).context("the certificate's verifying key is not hex")?;
    let vk = zk::key(&key).map_err(anyhow::Error::msg)?;
    let proof = hex::decode(&z.proof).context("the certificate's proof is not hex")?;
    let signed = gradnet_types::ContentId::of(&zk::outcome(&proof, &z.output));
    let receipt = &c.certificate.answers[0].receipt;
    anyhow::ensure!(
        signed == receipt.body.output_hash,
        "not verified: the receipt signs output {}, the certificate's proof and output hash to {signed}",
        receipt.body.output_hash
    );
    zk::check(&vk, &z.input, &z.output, &proof)
        .map_err(|e| anyhow::anyhow!("not verified: {e}"))?;
    if let Some(r) = response {
        let scale = (1u64 << vk.frac_bits) as f64;
        let want: Vec<f64> = z.output.iter().map(|&v| v as f64 / scale).collect();
        let mut got = vec![];
        crate::commands::receipt::flatten(&r["outputs"][&vk.output_name], &mut got);
        anyhow::ensure!(
            got == want,
            "not verified: the response's outputs are not the proved ones ({got:?} vs {want:?})"
        );
    }
    Ok(format!(
        "verifying key {} (the registry's key for model {}: `zkModel`)",
        gradnet_types::ContentId::of(&key),
        receipt.body.model
    ))
}

fn flatten(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        Value::Number(n) => out.push(n.as_f64().unwrap_or(f64::NAN)),
        _ => {}
    }
}

/// What a checked certificate shows, for people.
pub(crate) fn certificate_report(c: &CheckedCertificate) -> String {
    let cert = &c.certificate;
    let v = &c.verdict;
    let mut out = match cert.mode {
        gradnet_types::InferenceMode::Zkml => format!(
            "ZKML certificate verified: node {} proved the answer (Groth16 over BN254), the proof checked here",
            cert.answers[0].operator
        ),
        gradnet_types::InferenceMode::Tee => format!(
            "TEE certificate verified: enclave registration {} (TEE registry 0x…F8), node {}",
            cert.enclave.unwrap_or_default(),
            cert.answers[0].operator
        ),
        _ => format!(
            "QUORUM certificate verified: {} of {} answers agree on output {} (quorum {}, {} nodes asked, sampled at block {} {})",
            v.agreeing.len(),
            cert.answers.len(),
            v.output_hash,
            cert.quorum,
            cert.asked.len(),
            cert.seed.block,
            cert.seed.hash
        ),
    };
    for &i in &v.agreeing {
        out.push_str(&format!(
            "\n  agrees:   {} (key {}…)",
            cert.answers[i].operator,
            &cert.answers[i].receipt.body.node[..16]
        ));
    }
    for &i in &v.dissenting {
        out.push_str(&format!(
            "\n  DISSENTS: {} (output {}): its signed receipt is fault evidence (reportFault)",
            cert.answers[i].operator, cert.answers[i].receipt.body.output_hash
        ));
    }
    if c.answer_checked {
        out.push_str("\n  the answer in hand is the certified one");
    }
    out
}

/// Verifies a receipt file, a saved inference response or a certificate;
/// returns a report.
pub(crate) fn verify_file(path: &Path, signer: Option<&str>) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value = serde_json::from_str(&text).context("not JSON")?;
    if v.get("answers").is_some() && v.get("seed").is_some() {
        let c = verify_certificate(&v)?.expect("a certificate");
        let mut report = certificate_report(&c);
        if c.certificate.mode == gradnet_types::InferenceMode::Zkml {
            report.push_str(&format!("\n  {}", check_zk(&c, None)?));
        }
        return Ok(report);
    }
    // a ZKML answer through a gateway: its receipt signs the proof, not the outputs
    if let Some(c) =
        verify_certificate(&v)?.filter(|c| c.certificate.mode == gradnet_types::InferenceMode::Zkml)
    {
        let key = check_zk(&c, Some(&v))?;
        return Ok(format!(
            "{}\n  {key}\n  the outputs in hand are the proved ones",
            certificate_report(&c)
        ));
    }
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
    if let Some(c) = verify_certificate(&v)? {
        report.push('\n');
        report.push_str(&certificate_report(&c));
    }
    Ok(report)
}

#[derive(Subcommand)]
pub(crate) enum ReceiptCmd {
    /// Check a receipt offline: signature, and the output hash when the file is
    /// a whole inference response; a gateway's certificate (QUORUM, TEE): every
    /// signature, one request, the majority, and the answer it came with.
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
