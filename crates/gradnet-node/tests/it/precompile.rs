//! The inference precompile at 0x…F4 through Ethereum JSON-RPC: `eth_call`
//! runs a real ONNX model (generated in code, on gradnet's runtime) and
//! returns OpenGradient's `ModelOutput` marked as a simulation, equal to
//! running the model directly; malformed calls and unknown models revert
//! with a reason; inside a block, a call without a served result reverts.

use crate::common;

use std::sync::Arc;

use alloy_primitives::{Bytes, U256};
use alloy_sol_types::{SolCall, SolValue};
use common::*;
use gradnet_inference::abi::{
    InferencePrecompile::runModelInferenceCall, ModelInferenceRequest, ModelInput, ModelOutput,
    MultiDimensionalNumberTensor, Number,
};
use gradnet_inference::precompile::ADDRESS;
use gradnet_runtime::{OnnxRunner, RuntimeConfig};
use gradnet_types::cid::ContentId;
use serde_json::json;

fn number(v: i128, d: i128) -> Number {
    Number {
        value: v,
        decimals: d,
    }
}

#[tokio::test]
async fn eth_call_runs_a_model_through_the_precompile() {
    let dev = dev().await;
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let cid = ContentId::of(&onnx).to_string();
    let runtime = OnnxRunner::new(RuntimeConfig::default()).unwrap();
    dev.chain.set_inferencer(Arc::new(Local {
        runtime,
        models: [(cid.clone(), onnx.clone())].into(),
    }));

    let request = ModelInferenceRequest {
        mode: 3,
        modelCID: cid.clone(),
        input: ModelInput {
            numbers: vec![MultiDimensionalNumberTensor {
                name: "x".into(),
                values: vec![number(5, 1), number(-1, 0), number(25, 2), number(3, 0)],
                shape: vec![1, 4],
            }],
            strings: vec![],
        },
    };
    let data = Bytes::from(
        runModelInferenceCall {
            request: request.clone(),
        }
        .abi_encode(),
    );
    let out = rpc(
        &dev.url,
        "eth_call",
        json!([{"to": ADDRESS, "data": data}, "latest"]),
    )
    .await;
    let out: Bytes = serde_json::from_value(out).unwrap();
    let got = ModelOutput::abi_decode(&out).unwrap();
    assert!(got.is_simulation_result);
    assert_eq!(got.numbers.len(), 1);
    assert_eq!(got.numbers[0].shape, vec![1, 3]);

    // the same as running the model directly, number for number
    let runtime = OnnxRunner::new(RuntimeConfig::default()).unwrap();
    let m = runtime.load(cid.parse().unwrap(), &onnx).unwrap();
    let inputs =
        gradnet_types::json::parse_inputs(&json!({"x": [[0.5, -1.0, 0.25, 3.0]]})).unwrap();
    let (_, direct) = runtime.infer(&m, &inputs).unwrap();
    let want = gradnet_inference::abi::model_output(&direct, true).unwrap();
    assert_eq!(got, want);

    // gas is charged by the documented formula
    let gas = rpc(
        &dev.url,
        "eth_estimateGas",
        json!([{"to": ADDRESS, "data": data}]),
    )
    .await;
    let gas = hexq(&gas) as u64;
    let min = 21_000 + gradnet_inference::precompile::inference_gas(3, data.len(), 0);
    assert!(gas > min, "{gas}");

    // bad input: a readable revert, and the node keeps serving
    let e = rpc_err(
        &dev.url,
        "eth_call",
        json!([{"to": ADDRESS, "data": "0x12345678"}, "latest"]),
    )
    .await;
    assert_eq!(e["code"], 3);
    assert!(
        e["message"].as_str().unwrap().contains("malformed call"),
        "{e}"
    );
    let mut unknown = request.clone();
    unknown.modelCID = ContentId::of(b"no such model").to_string();
    let data_unknown = Bytes::from(runModelInferenceCall { request: unknown }.abi_encode());
    let e = rpc_err(
        &dev.url,
        "eth_call",
        json!([{"to": ADDRESS, "data": data_unknown}, "latest"]),
    )
    .await;
    assert!(
        e["message"].as_str().unwrap().contains("unknown model"),
        "{e}"
    );
    let mut wrong_shape = request.clone();
    wrong_shape.input.numbers[0].shape = vec![2, 2];
    let data_shape = Bytes::from(
        runModelInferenceCall {
            request: wrong_shape,
        }
        .abi_encode(),
    );
    let e = rpc_err(
        &dev.url,
        "eth_call",
        json!([{"to": ADDRESS, "data": data_shape}, "latest"]),
    )
    .await;
    assert_eq!(e["code"], 3, "{e}");

    // in a block the result must come from inference nodes: without one
    // the transaction reverts (and is still included and paid for)
    let raw = gradnet_client::wallet::sign(
        &gradnet_client::wallet::TxRequest {
            chain_id: CHAIN_ID,
            nonce: 0,
            to: Some(ADDRESS),
            value: U256::ZERO,
            gas_limit: 500_000,
            data,
            ..Default::default()
        },
        &dev.keys[0],
    )
    .unwrap();
    let h = rpc(&dev.url, "eth_sendRawTransaction", json!([raw])).await;
    let r = wait_receipt(&dev.url, h.as_str().unwrap()).await;
    assert_eq!(r["status"], "0x0");
    assert_eq!(
        rpc(&dev.url, "eth_chainId", json!([])).await,
        json!(format!("{CHAIN_ID:#x}"))
    );
}
