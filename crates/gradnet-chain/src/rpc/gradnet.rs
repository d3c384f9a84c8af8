//! gradnet's own JSON-RPC methods, for explorers (the web console): the
//! registry's nodes, the validators, and a block's inference sidecar, as
//! plain JSON rather than ABI-encoded views.

use alloy_primitives::Address;
use serde_json::{json, Value};

use super::eth::{opt_param, param};
use super::RpcError;
use crate::chain::Chain;
use crate::inference::registry::{Registry, ADDRESS as REGISTRY};
use crate::inference::sidecar::{self, Decision};
use crate::inference::slots::ReaderSlots;
use crate::inference::tee_registry::{tee_id, TeeRegistry};

fn storage(e: String) -> RpcError {
    RpcError::new(-32603, e)
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
            "stake": n.stake.to_string(),
            "unbonding": n.unbonding.to_string(),
            "earnings": n.earnings.to_string(),
            "slashed": n.slashed.to_string(),
            "active": n.active(),
            "eligibleNow": n.eligible(0, "", head.number + 1),
            "faults": faults,
            "lastFault": n.last_fault,
            "tee": enclave,
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

pub(super) fn call(chain: &Chain, method: &str, p: &[Value]) -> Option<Result<Value, RpcError>> {
    Some(match method {
        "gradnet_inferenceNodes" => inference_nodes(chain),
        "gradnet_validators" => Ok(validators(chain)),
        "gradnet_sidecar" => (|| {
            let n: Value = param(p, 0)?;
            let n = match &n {
                Value::String(s) => u64::from_str_radix(s.trim_start_matches("0x"), 16)
                    .map_err(|_| RpcError::new(-32602, format!("block number {s} is not hex")))?,
                Value::Number(n) => n.as_u64().unwrap_or(0),
                _ => return Err(RpcError::new(-32602, "block number expected")),
            };
            let quorum: Option<usize> = opt_param(p, 1)?;
            block_sidecar(chain, n, quorum.unwrap_or(1))
        })(),
        _ => return None,
    })
}
