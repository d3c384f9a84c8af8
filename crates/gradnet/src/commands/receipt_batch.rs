//! `gradnet receipt settle|prove`: batches of off-chain receipts settled in
//! the registry at `0x…F5` (see `gradnet_inference::receipts`).

use std::path::Path;

use alloy_primitives::B256;
use alloy_sol_types::SolCall;
use anyhow::{bail, Context, Result};
use gradnet_inference::receipts::{self, CompactReceipt};
use gradnet_inference::registry::{IInferenceRegistry, ADDRESS};
use gradnet_types::cid::ContentId;
use gradnet_types::Receipt;
use serde_json::{json, Value};

use gradnet_client::{Rpc, Sender};

/// The batch, its content id, its leaves and root.
fn load(path: &Path) -> Result<(Vec<Receipt>, ContentId, Vec<B256>, B256)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let batch: Vec<Receipt> = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a JSON array of receipts", path.display()))?;
    if batch.is_empty() {
        bail!("{}: the batch is empty", path.display());
    }
    let leaves = batch
        .iter()
        .map(receipts::leaf)
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let root = receipts::root(&leaves);
    Ok((batch, ContentId::of(&bytes), leaves, root))
}

/// Puts the batch file in a node's hub; its content id.
async fn store(hub: &str, path: &Path) -> Result<String> {
    let c = gradnet_client::NodeClient::new(hub);
    const REPO: &str = "receipt-batches";
    if c.get::<Value>(&format!("/api/v0/models/{REPO}"))
        .await
        .is_err()
    {
        let _: Value = c
            .post(
                "/api/v0/models",
                &json!({"name": REPO, "description": "settled receipt batches"}),
            )
            .await?;
    }
    let v: Value = c
        .post(
            &format!("/api/v0/models/{REPO}/versions"),
            &json!({"notes": "receipt batch", "is_major": false}),
        )
        .await?;
    let version = v["versionString"].as_str().unwrap_or("1.00").to_string();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("batch.json");
    let up = c.upload(REPO, &version, path, name, true).await?;
    Ok(up["cid"].as_str().unwrap_or_default().to_string())
}

pub(crate) async fn settle(
    path: &Path,
    key: &str,
    chunk: usize,
    hub: Option<&str>,
    url: &str,
) -> Result<()> {
    let (batch, cid, _, root) = load(path)?;
    let node = &batch[0].body.node;
    if let Some(i) = batch.iter().position(|r| &r.body.node != node) {
        bail!("receipt {i} is signed by another node than receipt 0");
    }
    let key: B256 = key
        .parse()
        .context("--key is not a 32-byte hex private key")?;
    if let Some(hub) = hub {
        let stored = store(hub, path)
            .await
            .with_context(|| format!("storing the batch in {hub}"))?;
        anyhow::ensure!(
            stored == cid.to_string(),
            "the hub names the batch {stored}, not {cid}"
        );
        println!("stored the batch in {hub} as {cid}");
    }
    let mut sender = Sender::new(Rpc::new(url)?, key).await?;
    let post = IInferenceRegistry::postReceiptBatchCall {
        root,
        batchCid: cid.to_string(),
        count: batch.len() as u32,
    };
    sender.send(ADDRESS, post.abi_encode(), 1_000_000).await?;
    println!(
        "posted batch {root} ({} receipts, content id {cid})",
        batch.len()
    );
    for (i, part) in batch.chunks(chunk.max(1)).enumerate() {
        let compact = part
            .iter()
            .map(CompactReceipt::of)
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        let call = IInferenceRegistry::verifyReceiptsCall {
            root,
            chunk: alloy_rlp::encode(&compact).into(),
        };
        let gas = 200_000 + 40 * call.abi_encode().len() as u64 + 6_000 * part.len() as u64;
        sender.send(ADDRESS, call.abi_encode(), gas).await?;
        println!(
            "  receipts {}..{} checked on chain",
            i * chunk,
            i * chunk + part.len()
        );
    }
    println!("settled: every signature checked, root {root}");
    Ok(())
}

pub(crate) async fn prove(path: &Path, index: usize, url: &str) -> Result<()> {
    let (batch, cid, leaves, root) = load(path)?;
    let r = batch
        .get(index)
        .with_context(|| format!("the batch has {} receipts; no receipt {index}", batch.len()))?;
    r.verify().with_context(|| format!("receipt {index}"))?;
    let proof = receipts::proof(&leaves, index);
    anyhow::ensure!(
        receipts::verify_proof(leaves[index], index, leaves.len(), &proof, root),
        "the proof does not verify"
    );
    let data = IInferenceRegistry::receiptBatchCall { root }.abi_encode();
    let out = Rpc::new(url)?
        .call(ADDRESS, data)
        .await
        .with_context(|| format!("batch {root} is not on chain"))?;
    let b = IInferenceRegistry::receiptBatchCall::abi_decode_returns(&out)?;
    if b.settledAt == 0 {
        bail!(
            "batch {root} is posted but not settled ({} of {} receipts checked)",
            b.verified,
            b.count
        );
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "receipt": r,
            "index": index,
            "leaf": leaves[index],
            "proof": proof,
            "root": root,
            "count": leaves.len(),
            "batch_cid": cid.to_string(),
            "settled": {"operator": b.operator, "batch_cid": b.batchCid, "at": b.settledAt},
            "verified": true,
        }))?
    );
    Ok(())
}
