//! gradnet's own JSON-RPC methods, for explorers (the web console): the
//! registry's nodes, the validators, and a block's inference sidecar, as
//! plain JSON rather than ABI-encoded views.

use alloy_primitives::Address;
use serde_json::{json, Value};

use super::eth::{block_number, opt_param, param};
use super::RpcError;
use gradnet_inference::registry::{Registry, ADDRESS as REGISTRY};
use gradnet_inference::sidecar::{self, Decision};
use gradnet_inference::tee_registry::{tee_id, TeeRegistry};
use gradnet_ledger::chain::Chain;
use gradnet_ledger::slots::ReaderSlots;

/// An internal error (-32603): the node failed, not the request.
fn storage(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(-32603, e.to_string())
}

/// Every registered inference node with its stake, earnings, slashing
/// history and enclave status.
fn inference_nodes(chain: &Chain) -> Result<Value, RpcError> {
    let state = chain.store.state()?;
    let slots = || ReaderSlots {
        state: &state,
        account: REGISTRY,
    };
    let head = chain.head();
    let mut reg = Registry(slots());
    let mut tee = TeeRegistry(slots());
    let mut out = vec![];
    for n in reg.all().map_err(storage)? {
        let faults: Vec<Value> = (0..n.faults)
            .filter_map(|i| reg.evidence(&n.operator, i).ok())
            .map(|f| json!({"requestHash": f.request_hash, "reason": f.reason}))
            .collect();
        let enclave = match tee
            .get(&tee_id(n.signing_key.as_slice()))
            .map_err(storage)?
        {
            Some(t) => json!({
                "teeId": tee_id(n.signing_key.as_slice()),
                "active": tee.is_active(&t, head.timestamp).map_err(storage)?,
                "devEnclave": t.dev,
                "pcrHash": t.pcr_hash,
                "lastHeartbeat": t.last_heartbeat,
            }),
            None => Value::Null,
        };
        out.push(json!({
            "operator": n.operator,
            "signingKey": n.signing_key,
            "endpoint": n.endpoint,
            "modes": (0..8).filter(|m| n.modes >> m & 1 == 1).collect::<Vec<u8>>(),
            "models": n.models,
            "engine": n.engine,
            "profile": n.profile,
            "stake": n.stake.to_string(),
            "unbonding": n.unbonding.to_string(),
            "earnings": n.earnings.to_string(),
            "slashed": n.slashed.to_string(),
            "active": n.active(),
            "eligibleNow": n.eligible(gradnet_types::InferenceMode::Vanilla, "", head.number + 1),
            "faults": faults,
            "lastFault": n.last_fault,
            "tee": enclave,
            // what it charges off chain (wei), paid through the escrow
            "prices": gradnet_types::payments::prices_json(
                &gradnet_inference::prices::prices(&mut slots(), &n.operator).map_err(storage)?,
            ),
        }));
    }
    Ok(json!(out))
}

fn validators(chain: &Chain) -> Value {
    json!(chain
        .store
        .genesis()
        .validators
        .iter()
        .map(|v| json!({"publicKey": v.public_key, "power": v.power, "feeRecipient": v.fee_recipient}))
        .collect::<Vec<_>>())
}

/// A block's sidecar: each inference call, the nodes asked, their signed
/// answers (outcome bytes and signatures, so a client can check them
/// itself) and what they decided (the quorum is not in the sidecar:
/// `quorum` from the caller's mode, default 1, decides).
fn block_sidecar(chain: &Chain, number: u64, quorum: usize) -> Result<Value, RpcError> {
    let Some(b) = chain.store.block(number)? else {
        return Ok(Value::Null);
    };
    let calls: Vec<Value> = b
        .sidecar
        .calls
        .iter()
        .map(|c| {
            let decided = match sidecar::decide(c, quorum) {
                Decision::Agreed { agreeing, dissenting, missed, .. } => json!({
                    "agreed": agreeing,
                    "dissenting": dissenting.iter().map(|d| d.node).collect::<Vec<Address>>(),
                    "missed": missed,
                }),
                Decision::Unserved(why) => json!({"unserved": why}),
            };
            json!({
                "requestHash": c.request_hash,
                "asked": c.asked,
                "answers": c.answers.iter().map(|a| json!({"node": a.node, "outcome": a.outcome, "signature": a.signature})).collect::<Vec<_>>(),
                "outcomes": c.outcomes.iter().map(|o| json!({
                    "kind": match o.first() { Some(0) => "result", Some(1) => "failure", Some(2) => "zk-proof", _ => "malformed" },
                    "bytes": o.len(),
                    "data": o,
                })).collect::<Vec<_>>(),
                "decision": decided,
            })
        })
        .collect();
    Ok(
        json!({"block": number, "chainId": chain.store.genesis().chain_id, "sidecarRoot": b.header.sidecar_root, "calls": calls}),
    )
}

/// Participation over the last `n` blocks: for each validator, the blocks
/// whose commit certificate carries its precommit and the blocks it
/// proposed; for each inference node, the calls it was asked and answered.
fn uptime(chain: &Chain, n: u64) -> Result<Value, RpcError> {
    use std::collections::HashMap;
    let head = chain.head().number;
    let from = head.saturating_sub(n.saturating_sub(1)).max(1);
    let (mut signed, mut proposed) = (HashMap::<Address, u64>::new(), HashMap::new());
    let mut nodes: HashMap<Address, (u64, u64)> = HashMap::new();
    for number in from..=head {
        if let Some(c) = chain.store.certificate(number)? {
            let cert = gradnet_consensus::codec::decode_certificate(&c)
                .map_err(|e| storage(format!("certificate of block {number}: {e}")))?;
            for s in cert.commit_signatures {
                *signed.entry(s.address.0).or_default() += 1;
            }
        }
        let Some(b) = chain.store.block(number)? else {
            continue;
        };
        *proposed.entry(b.header.proposer).or_default() += 1;
        for c in &b.sidecar.calls {
            for a in &c.asked {
                nodes.entry(*a).or_default().0 += 1;
            }
            for a in &c.answers {
                nodes.entry(a.node).or_default().1 += 1;
            }
        }
    }
    let genesis = chain.store.genesis();
    let set = gradnet_consensus::context::ValidatorSet::from_genesis(genesis).map_err(storage)?;
    let validators: Vec<Value> = genesis
        .validators
        .iter()
        .zip(&set.validators)
        .map(|(g, v)| {
            let address = v.address.0;
            json!({
                "publicKey": g.public_key,
                "address": address,
                "signed": signed.get(&address).copied().unwrap_or(0),
                "proposed": proposed.get(&address).copied().unwrap_or(0),
            })
        })
        .collect();
    let mut inference: Vec<Value> = nodes
        .into_iter()
        .map(|(node, (asked, answered))| json!({"operator": node, "asked": asked, "answered": answered}))
        .collect();
    inference.sort_by_key(|v| v["operator"].to_string());
    Ok(json!({
        "from": from,
        "to": head,
        "blocks": (head + 1).saturating_sub(from),
        "validators": validators,
        "inferenceNodes": inference,
    }))
}

pub(super) fn call(chain: &Chain, method: &str, p: &[Value]) -> Option<Result<Value, RpcError>> {
    Some(match method {
        "gradnet_inferenceNodes" => inference_nodes(chain),
        "gradnet_validators" => Ok(validators(chain)),
        "gradnet_uptime" => (|| {
            let n: Option<u64> = opt_param(p, 0)?;
            let n = n.unwrap_or(100);
            if n == 0 || n > 10_000 {
                return Err(RpcError::invalid_params(format!(
                    "blocks must be between 1 and 10000, not {n}"
                )));
            }
            uptime(chain, n)
        })(),
        "gradnet_sidecar" => (|| {
            // a number or tag as eth_getBlockByNumber takes it (or a plain integer)
            let n: Value = param(p, 0)?;
            let n = match &n {
                Value::String(_) => block_number(chain, Some(&n))?,
                Value::Number(n) => n.as_u64().unwrap_or(0),
                _ => return Err(RpcError::invalid_params("block number expected")),
            };
            let quorum: Option<usize> = opt_param(p, 1)?;
            block_sidecar(chain, n, quorum.unwrap_or(1))
        })(),
        _ => return None,
    })
}
