//! The Ethereum JSON-RPC API on a one-validator chain: transfers of every
//! transaction type, a contract deployed, called, its storage and logs
//! read back, and everything a client asks about blocks and fees.

use crate::common;

use alloy_primitives::{Address, Bytes, U256};
use common::*;
use gradnet_client::wallet::{sign, Fees, TxRequest};
use gradnet_ledger::genesis::address_of;
use serde_json::{json, Value};

/// Stores its calldata word in slot 0 and logs topic 0x2a on every call.
const RUNTIME: &str = "600035600055602a60006000a100";
/// Deploys RUNTIME.
const INIT: &str = "600e600c600039600e6000f3";

#[tokio::test(flavor = "multi_thread")]
async fn transfers_contracts_logs_and_queries() {
    let d = dev().await;
    let url = &d.url;
    let from = address_of(&d.keys[0]).unwrap();
    let to = Address::repeat_byte(0x42);
    assert_eq!(rpc(url, "eth_chainId", json!([])).await, json!("0x1092"));
    assert_eq!(rpc(url, "net_version", json!([])).await, json!("4242"));
    assert!(rpc(url, "web3_clientVersion", json!([]))
        .await
        .as_str()
        .unwrap()
        .starts_with("gradnet/"));

    // one transfer of each type
    let fees = [
        Fees::Legacy {
            gas_price: 2_000_000_000,
        },
        Fees::AccessList {
            gas_price: 2_000_000_000,
        },
        Fees::Dynamic {
            max_fee: 3_000_000_000,
            tip: 1_000_000_000,
        },
    ];
    let mut hashes = vec![];
    for (nonce, fees) in fees.into_iter().enumerate() {
        let raw = sign(
            &TxRequest {
                chain_id: CHAIN_ID,
                nonce: nonce as u64,
                to: Some(to),
                value: U256::from(ETH),
                gas_limit: 21_000,
                fees,
                ..Default::default()
            },
            &d.keys[0],
        )
        .unwrap();
        hashes.push(rpc(url, "eth_sendRawTransaction", json!([raw])).await);
    }
    assert_eq!(
        rpc(url, "eth_getTransactionCount", json!([from, "pending"])).await,
        json!("0x3")
    );
    let mut spent = 0u128;
    for (i, h) in hashes.iter().enumerate() {
        let r = wait_receipt(url, h.as_str().unwrap()).await;
        assert_eq!(r["status"], "0x1");
        assert_eq!(r["type"], json!(format!("0x{i}")));
        assert_eq!(r["gasUsed"], "0x5208");
        spent += hexq(&r["gasUsed"]) * hexq(&r["effectiveGasPrice"]) + ETH;
        let t = rpc(url, "eth_getTransactionByHash", json!([h])).await;
        assert_eq!(t["hash"], *h);
        assert_eq!(t["from"], json!(from));
        assert_eq!(t["blockHash"], r["blockHash"]);
    }
    assert_eq!(
        hexq(&rpc(url, "eth_getBalance", json!([to, "latest"])).await),
        3 * ETH
    );
    assert_eq!(
        hexq(&rpc(url, "eth_getBalance", json!([from, "latest"])).await),
        1000 * ETH - spent
    );
    assert_eq!(
        rpc(url, "eth_getTransactionCount", json!([from, "latest"])).await,
        json!("0x3")
    );

    // a contract: deploy, call, read storage, code and logs
    let deploy = sign(
        &TxRequest {
            chain_id: CHAIN_ID,
            nonce: 3,
            data: hex::decode(format!("{INIT}{RUNTIME}")).unwrap().into(),
            gas_limit: 200_000,
            ..Default::default()
        },
        &d.keys[0],
    )
    .unwrap();
    let h = rpc(url, "eth_sendRawTransaction", json!([deploy])).await;
    let r = wait_receipt(url, h.as_str().unwrap()).await;
    assert_eq!(r["status"], "0x1");
    let contract: Address = serde_json::from_value(r["contractAddress"].clone()).unwrap();
    assert_eq!(contract, from.create(3));
    assert_eq!(
        rpc(url, "eth_getCode", json!([contract, "latest"])).await,
        json!(format!("0x{RUNTIME}"))
    );
    let word = format!("{:064x}", 0xbeefu64);
    let call = TxRequest {
        chain_id: CHAIN_ID,
        nonce: 4,
        to: Some(contract),
        data: hex::decode(&word).unwrap().into(),
        gas_limit: 100_000,
        ..Default::default()
    };
    let est = rpc(
        url,
        "eth_estimateGas",
        json!([{"from": from, "to": contract, "data": format!("0x{word}")}]),
    )
    .await;
    assert!(hexq(&est) > 21_000 && hexq(&est) <= 100_000, "{est}");
    let h = rpc(
        url,
        "eth_sendRawTransaction",
        json!([sign(&call, &d.keys[0]).unwrap()]),
    )
    .await;
    let r = wait_receipt(url, h.as_str().unwrap()).await;
    assert_eq!(r["status"], "0x1");
    assert_eq!(r["logs"].as_array().unwrap().len(), 1, "{r}");
    let topic = format!("0x{:064x}", 0x2a);
    assert_eq!(r["logs"][0]["topics"], json!([topic]));
    assert_eq!(r["logs"][0]["address"], json!(contract));
    assert_eq!(
        rpc(url, "eth_getStorageAt", json!([contract, "0x0", "latest"])).await,
        json!(format!("0x{word}"))
    );
    let logs = rpc(
        url,
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "toBlock": "latest", "address": contract, "topics": [topic]}]),
    )
    .await;
    assert_eq!(logs.as_array().unwrap().len(), 1);
    assert_eq!(logs[0]["transactionHash"], h);
    let none = rpc(
        url,
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "address": contract, "topics": [format!("0x{:064x}", 7)]}]),
    )
    .await;
    assert_eq!(none, json!([]));

    // blocks, by number and hash, with hashes or whole transactions
    let n = r["blockNumber"].clone();
    let b = rpc(url, "eth_getBlockByNumber", json!([n, false])).await;
    assert!(b["transactions"].as_array().unwrap().contains(&h));
    let full = rpc(url, "eth_getBlockByHash", json!([b["hash"], true])).await;
    assert_eq!(full["number"], n);
    assert!(full["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["hash"] == h));
    let parent = rpc(
        url,
        "eth_getBlockByNumber",
        json!([format!("0x{:x}", hexq(&n) - 1), false]),
    )
    .await;
    assert_eq!(b["parentHash"], parent["hash"]);
    assert!(rpc(url, "eth_getBlockByNumber", json!(["0xffffff", false]))
        .await
        .is_null());

    // fees
    assert!(hexq(&rpc(url, "eth_gasPrice", json!([])).await) > 0);
    assert_eq!(
        rpc(url, "eth_maxPriorityFeePerGas", json!([])).await,
        json!("0x3b9aca00")
    );
    let fh = rpc(url, "eth_feeHistory", json!(["0x3", "latest", [50]])).await;
    assert_eq!(fh["baseFeePerGas"].as_array().unwrap().len(), 4);
    assert_eq!(fh["reward"].as_array().unwrap().len(), 3);

    // eth_call of a reverting contract call: code 3 with the data
    let revert_init = "6005600c60003960056000f360006000fd"; // runtime: REVERT(0,0)
    let raw = sign(
        &TxRequest {
            chain_id: CHAIN_ID,
            nonce: 5,
            data: hex::decode(revert_init).unwrap().into(),
            gas_limit: 100_000,
            ..Default::default()
        },
        &d.keys[0],
    )
    .unwrap();
    let h = rpc(url, "eth_sendRawTransaction", json!([raw])).await;
    let r = wait_receipt(url, h.as_str().unwrap()).await;
    let reverter = r["contractAddress"].clone();
    let e = rpc_err(url, "eth_call", json!([{"to": reverter}, "latest"])).await;
    assert_eq!(e["code"], 3);
    assert_eq!(e["message"], "execution reverted");

    // a batch
    let batch = rpc_raw(
        url,
        json!([
            {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"},
            {"jsonrpc": "2.0", "id": 2, "method": "eth_chainId", "params": []},
            {"jsonrpc": "2.0", "id": 3, "method": "nope"},
        ]),
    )
    .await;
    let batch = batch.as_array().unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[1]["result"], "0x1092");
    assert_eq!(batch[2]["error"]["code"], -32601);
    let _: Value = rpc(url, "eth_blockNumber", json!([])).await;
    let _ = Bytes::new();
}
