//! What tests of on-chain inference share: the devnet's inference node
//! operators, their registry records, and a call to the demo MLP.

use alloy_primitives::Address;
use alloy_sol_types::SolCall;
use gradnet_inference::abi::*;
use gradnet_inference::registry::IInferenceRegistry;

use super::ledger::rpc;

/// The operator account of the devnet's inference node `i`.
pub(crate) fn operator(i: usize) -> Address {
    let k = gradnet_ledger::genesis::dev_key(gradnet_ledger::genesis::DEV_OPERATOR_BASE + i as u64);
    gradnet_ledger::genesis::address_of(&k).unwrap()
}

/// A node's registry record, as the validator at `url` holds it.
pub(crate) fn node_record(url: &str, op: Address) -> IInferenceRegistry::InferenceNode {
    let data = IInferenceRegistry::getNodeCall { operator: op }.abi_encode();
    let out = rpc(
        url,
        "eth_call",
        serde_json::json!([{"to": gradnet_inference::registry::ADDRESS, "data": alloy_primitives::Bytes::from(data)}, "latest"]),
    );
    let out: alloy_primitives::Bytes = serde_json::from_value(out).unwrap();
    IInferenceRegistry::getNodeCall::abi_decode_returns(&out).unwrap()
}

/// `runModelInference` on the demo MLP's row (0.5, -1, 0.25, 3) in fixed
/// point, in `mode`.
pub(crate) fn mlp_request(mode: u8, cid: &str) -> ModelInferenceRequest {
    ModelInferenceRequest {
        mode,
        modelCID: cid.into(),
        input: ModelInput {
            numbers: vec![MultiDimensionalNumberTensor {
                name: "x".into(),
                values: [(5i128, 1i128), (-1, 0), (25, 2), (3, 0)]
                    .iter()
                    .map(|&(v, d)| Number {
                        value: v,
                        decimals: d,
                    })
                    .collect(),
                shape: vec![1, 4],
            }],
            strings: vec![],
        },
    }
}
