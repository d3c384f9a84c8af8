//! `gradnet infer`: one model run on a node, its outputs and signed receipt.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use gradnet_client::NodeClient as Client;
use serde_json::{json, Value};

/// Reads `--input`: inline JSON or `@path`.
pub(crate) fn read_input(s: &str) -> Result<Value> {
    let text = match s.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => s.to_string(),
    };
    serde_json::from_str(&text).context("--input is not valid JSON")
}

pub(crate) async fn run(c: &Client, a: InferArgs) -> Result<()> {
    let inputs = read_input(&a.input)?;
    let mut body =
        json!({"model": a.model, "inputs": inputs, "mode": a.mode, "output_format": a.format});
    if let Some(k) = a.quorum {
        body["quorum"] = json!(k);
    }
    let r: Value = c.post("/v1/infer", &body).await?;
    let cert = gradnet_client::verify::verify_certificate(&r)?;
    match &cert {
        // ZKML through a gateway: the proof, checked here with its key
        Some(c) if c.certificate.mode == gradnet_types::InferenceMode::Zkml => {
            let key = crate::commands::receipt::check_zk(c, Some(&r))?;
            eprintln!(
                "{}\n  {key}",
                crate::commands::receipt::certificate_report(c)
            );
        }
        _ => {
            // the node's signature and the outputs it signs, checked on arrival
            let (receipt, _) = gradnet_client::verify::verify_response(&r, None)?;
            eprintln!(
                "receipt verified: the outputs are the ones node {}… signed",
                &receipt.body.node[..12]
            );
            // a gateway's verified modes: the certificate, checked offline
            if let Some(c) = &cert {
                eprintln!("{}", crate::commands::receipt::certificate_report(c));
            }
        }
    }
    if let Some(path) = &a.save {
        std::fs::write(path, serde_json::to_vec_pretty(&r)?)?;
        eprintln!("response saved to {}", path.display());
    }
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}

#[derive(Args)]
pub(crate) struct InferArgs {
    #[command(flatten)]
    pub pay: crate::commands::pay::PayArgs,
    /// Content id or `repo@version/file`.
    #[arg(long)]
    pub model: String,
    /// Inputs as JSON, or `@file` to read them from a file.
    #[arg(long)]
    pub input: String,
    /// VANILLA, QUORUM, ZKML or TEE (QUORUM and TEE off chain through a
    /// gateway: `--node http://VALIDATOR/gateway`, answered with a certificate).
    #[arg(long, default_value = "VANILLA")]
    pub mode: String,
    /// Nodes that must agree in QUORUM mode (through a gateway) [default: 3].
    #[arg(long)]
    pub quorum: Option<u32>,
    /// Output encoding: plain, fixed_point or base64.
    #[arg(long, default_value = "plain")]
    pub format: String,
    /// Also write the whole response (outputs + receipt) here, for `receipt verify`.
    #[arg(long)]
    pub save: Option<PathBuf>,
}
