//! Bad input at the JSON-RPC door: each gets the error text Ethereum
//! clients know, and the node keeps serving.

use crate::common;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, Signature, TxKind, U256};
use common::*;
use gradnet_client::wallet::{sign, TxRequest};
use gradnet_ledger::genesis::dev_keys;
use serde_json::json;

async fn send_err(url: &str, raw: &Bytes) -> String {
    let e = rpc_err(url, "eth_sendRawTransaction", json!([raw])).await;
    assert_eq!(e["code"], -32000, "{e}");
    e["message"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_transactions_and_requests_get_clear_errors() {
    let d = dev().await;
    let url = &d.url;
    let to = Address::repeat_byte(7);

    // garbage
    let m = send_err(url, &Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef])).await;
    assert!(m.starts_with("transaction could not be decoded"), "{m}");
    let mut trailing = transfer(&d.keys[0], 0, to, 1).to_vec();
    trailing.push(0);
    let m = send_err(url, &trailing.into()).await;
    assert!(m.contains("trailing bytes"), "{m}");

    // a signature that recovers no key
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1,
        to: TxKind::Call(to),
        value: U256::from(1),
        ..Default::default()
    };
    let bad_sig: TxEnvelope = tx
        .into_signed(Signature::new(U256::ZERO, U256::from(1), false))
        .into();
    assert_eq!(
        send_err(url, &bad_sig.encoded_2718().into()).await,
        "invalid sender"
    );

    // another chain's transaction
    let other = sign(
        &TxRequest {
            chain_id: 1,
            to: Some(to),
            gas_limit: 21_000,
            ..Default::default()
        },
        &d.keys[0],
    )
    .unwrap();
    assert_eq!(send_err(url, &other).await, "invalid chain id for signer");

    // replay: the same transaction again, then another with a used nonce
    let first = transfer(&d.keys[0], 0, to, 1);
    let h = rpc(url, "eth_sendRawTransaction", json!([first])).await;
    assert_eq!(send_err(url, &first).await, "already known");
    wait_receipt(url, h.as_str().unwrap()).await;
    assert_eq!(send_err(url, &first).await, "already known");
    assert_eq!(
        send_err(url, &transfer(&d.keys[0], 0, to, 2)).await,
        "nonce too low"
    );

    // a nonce far beyond the account's
    assert_eq!(
        send_err(url, &transfer(&d.keys[0], 500, to, 1)).await,
        "nonce too high"
    );

    // an account with nothing
    let broke = dev_keys(10)[9];
    assert_eq!(
        send_err(url, &transfer(&broke, 0, to, 1)).await,
        "insufficient funds for gas * price + value"
    );
    assert_eq!(
        send_err(url, &transfer(&d.keys[1], 0, to, 2000 * ETH)).await,
        "insufficient funds for gas * price + value"
    );

    // too big, too much gas, too little gas
    let big = sign(
        &TxRequest {
            chain_id: CHAIN_ID,
            to: Some(to),
            data: vec![1u8; 130 * 1024].into(),
            gas_limit: 29_000_000,
            ..Default::default()
        },
        &d.keys[1],
    )
    .unwrap();
    assert_eq!(send_err(url, &big).await, "oversized data");
    let greedy = sign(
        &TxRequest {
            chain_id: CHAIN_ID,
            to: Some(to),
            gas_limit: 40_000_000,
            ..Default::default()
        },
        &d.keys[1],
    )
    .unwrap();
    assert_eq!(send_err(url, &greedy).await, "exceeds block gas limit");
    let stingy = sign(
        &TxRequest {
            chain_id: CHAIN_ID,
            to: Some(to),
            gas_limit: 20_000,
            ..Default::default()
        },
        &d.keys[1],
    )
    .unwrap();
    assert_eq!(send_err(url, &stingy).await, "intrinsic gas too low");

    // replacement needs 10% more
    let low = sign(
        &TxRequest {
            chain_id: CHAIN_ID,
            nonce: 0,
            to: Some(to),
            gas_limit: 21_000,
            fees: gradnet_client::wallet::Fees::Dynamic {
                max_fee: 500_000_000_000,
                tip: 1_000_000_000,
            },
            ..Default::default()
        },
        &d.keys[2],
    )
    .unwrap();
    let _ = rpc(url, "eth_sendRawTransaction", json!([low])).await;
    let same_fee = sign(
        &TxRequest {
            chain_id: CHAIN_ID,
            nonce: 0,
            to: Some(to),
            value: U256::from(5),
            gas_limit: 21_000,
            fees: gradnet_client::wallet::Fees::Dynamic {
                max_fee: 500_000_000_000,
                tip: 1_000_000_000,
            },
            ..Default::default()
        },
        &d.keys[2],
    )
    .unwrap();
    let m = send_err(url, &same_fee).await;
    assert!(
        m == "replacement transaction underpriced" || m == "nonce too low",
        "{m}"
    );

    // malformed JSON-RPC
    let client = reqwest::Client::new();
    let r: serde_json::Value = client
        .post(url)
        .body("{not json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["error"]["code"], -32700);
    let r = rpc_raw(url, json!([])).await;
    assert_eq!(r["error"]["code"], -32600);
    let r = rpc_raw(url, json!({"jsonrpc": "2.0", "id": 1})).await;
    assert_eq!(r["error"]["code"], -32600);
    let r = rpc_raw(
        url,
        json!({"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"}),
    )
    .await;
    assert_eq!(r["error"]["code"], -32600);
    let e = rpc_err(url, "eth_frobnicate", json!([])).await;
    assert_eq!(e["code"], -32601);
    assert_eq!(
        e["message"],
        "the method eth_frobnicate does not exist/is not available"
    );
    let e = rpc_err(url, "eth_getBalance", json!(["0x1234", "latest"])).await;
    assert_eq!(e["code"], -32602);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid argument 0"),
        "{e}"
    );
    // a block that does not exist yet
    let e = rpc_err(url, "eth_getBalance", json!([to, "0xffffff"])).await;
    assert_eq!(e["code"], -32000);
    assert!(e["message"].as_str().unwrap().contains("not found"), "{e}");
    let e = rpc_err(url, "eth_getBlockByNumber", json!(["soon", false])).await;
    assert_eq!(e["code"], -32602);
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .body(vec![b' '; 6 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // and it still serves
    assert_eq!(rpc(url, "eth_chainId", json!([])).await, json!("0x1092"));
}
