//! Load on an Ethereum JSON-RPC endpoint: signed transfers submitted at a
//! fixed rate by concurrent clients (`eth_sendRawTransaction`, one request
//! per transaction), blocks watched for their inclusion. Prints sustained
//! throughput and submit-to-inclusion latency percentiles as JSON.
//! Usage: chain-load RPC_URL[,RPC_URL...] KEY[,KEY...] RATE_PER_S SECONDS [infer:MODEL_CID:MODE]
//! With `infer:…`, each transaction calls the devnet's demo contract, which
//! runs the model through the inference precompile (a different input row
//! per transaction), and the receipts are checked for success afterwards.
//! Each sender's transactions go to one endpoint (senders spread over them
//! round-robin, as a network's clients spread over its nodes); blocks are
//! watched on the first. On gradnet inclusion is final (BFT finality).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use gradnet_client::wallet::{sign, Fees, TxRequest};
use gradnet_client::{ClientError, Rpc};
use serde_json::json;
use tokio::sync::Mutex;

/// Submits one transaction; a full pool or a sender too far ahead is
/// backpressure: wait and retry, as a wallet would.
async fn send(rpc: &Rpc, raw: &[u8]) {
    for _ in 0..2000 {
        match rpc.send_raw(raw).await {
            Ok(_) => return,
            Err(ClientError::Rpc { message, .. })
                if message == "nonce too high" || message == "txpool is full" =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("transaction refused for 100 s");
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    let urls: Vec<String> = a[1].split(',').map(str::to_string).collect();
    let keys: Vec<B256> = a[2].split(',').map(|k| k.parse().unwrap()).collect();
    let rate: f64 = a[3].parse().unwrap();
    let secs: f64 = a[4].parse().unwrap();
    let total = (rate * secs) as usize;
    // one client (and connection pool) per endpoint, shared by its senders
    let endpoints: Vec<Rpc> = urls
        .iter()
        .map(|u| Rpc::new(u).expect("JSON-RPC URL"))
        .collect();
    let rpc = endpoints[0].clone();
    let chain_id = rpc.chain_id().await.expect("eth_chainId");
    let price = rpc.gas_price().await.expect("eth_gasPrice");
    // presign: senders round-robin, each with its own nonce sequence
    let mut nonces = vec![];
    for k in &keys {
        let addr = gradnet_ledger::genesis::address_of(k).unwrap();
        nonces.push(
            rpc.pending_nonce(addr)
                .await
                .expect("eth_getTransactionCount"),
        );
    }
    let infer: Option<(String, u8)> = a.get(5).map(|spec| {
        let mut p = spec.split(':');
        assert_eq!(
            p.next(),
            Some("infer"),
            "5th argument: infer:MODEL_CID:MODE"
        );
        (
            p.next().unwrap().to_string(),
            p.next().unwrap().parse().unwrap(),
        )
    });
    let to = match infer {
        Some(_) => gradnet_inference::demo_contract::ADDRESS,
        None => Address::repeat_byte(0x77),
    };
    let txs: Vec<(alloy_primitives::Bytes, B256, Rpc)> = (0..total)
        .map(|i| {
            let s = i % keys.len();
            let (data, gas_limit) = match &infer {
                Some((cid, mode)) => (inference_call(cid, *mode, i), 1_000_000),
                None => (Default::default(), 21_000),
            };
            let raw = sign(
                &TxRequest {
                    chain_id,
                    nonce: nonces[s] + (i / keys.len()) as u64,
                    to: Some(to),
                    value: U256::from(infer.is_none() as u8),
                    gas_limit,
                    data,
                    fees: Fees::Dynamic {
                        max_fee: price * 4,
                        tip: price / 2,
                    },
                },
                &keys[s],
            )
            .unwrap();
            let hash = alloy_primitives::keccak256(&raw);
            (raw, hash, endpoints[s % endpoints.len()].clone())
        })
        .collect();
    let submitted: Arc<Mutex<HashMap<B256, Instant>>> = Arc::default();
    let start_block = rpc.block_number().await.expect("eth_blockNumber");
    // watcher: inclusion times by polling new blocks
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (rpc, done) = (rpc.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen: HashMap<B256, Instant> = HashMap::new();
            let mut next = start_block + 1;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || seen.len() < total {
                let head = rpc.block_number().await.expect("eth_blockNumber");
                while next <= head {
                    let b = rpc
                        .block(next)
                        .await
                        .expect("eth_getBlockByNumber")
                        .expect("a block up to the head");
                    let now = Instant::now();
                    for h in b.transactions.hashes() {
                        seen.insert(h, now);
                    }
                    next += 1;
                }
                if seen.len() >= total {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        })
    };
    // open-loop submission at `rate`, 64 requests in flight at most
    let began = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let mut handles = vec![];
    for (i, (raw, hash, to)) in txs.into_iter().enumerate() {
        let due = began + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let permit = gate.clone().acquire_owned().await.unwrap();
        let submitted = submitted.clone();
        handles.push(tokio::spawn(async move {
            let t = Instant::now();
            send(&to, &raw).await;
            submitted.lock().await.insert(hash, t);
            drop(permit);
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = tokio::time::timeout(Duration::from_secs(120), watcher)
        .await
        .expect("transactions not included within 120 s")
        .unwrap();
    let submitted = submitted.lock().await;
    let mut lat: Vec<f64> = submitted
        .iter()
        .filter_map(|(h, t)| seen.get(h).map(|s| s.duration_since(*t).as_secs_f64()))
        .collect();
    lat.sort_by(f64::total_cmp);
    let last = seen.values().max().unwrap();
    let tps = lat.len() as f64 / last.duration_since(began).as_secs_f64();
    // inference transactions: how many got their result (status 1)
    let mut ok = lat.len();
    if infer.is_some() {
        ok = 0;
        for h in submitted.keys() {
            let r = rpc.receipt(*h).await.expect("eth_getTransactionReceipt");
            ok += r.is_some_and(|r| r.inner.inner.status()) as usize;
        }
    }
    println!(
        "{}",
        json!({"submitted": total, "included": lat.len(), "succeeded": ok, "tps": tps,
               "p50_s": pct(&lat, 0.5), "p99_s": pct(&lat, 0.99), "target_rate": rate})
    );
}

/// `runModelInference` on an MLP 4-8-3 with row `i` as its input.
fn inference_call(cid: &str, mode: u8, i: usize) -> alloy_primitives::Bytes {
    use alloy_sol_types::SolCall;
    use gradnet_inference::abi::*;
    let values = (0..4)
        .map(|j| Number {
            value: ((i * 7 + j * 13) % 2001) as i128 - 1000,
            decimals: 3,
        })
        .collect();
    InferencePrecompile::runModelInferenceCall {
        request: ModelInferenceRequest {
            mode,
            modelCID: cid.into(),
            input: ModelInput {
                numbers: vec![MultiDimensionalNumberTensor {
                    name: "x".into(),
                    values,
                    shape: vec![1, 4],
                }],
                strings: vec![],
            },
        },
    }
    .abi_encode()
    .into()
}
