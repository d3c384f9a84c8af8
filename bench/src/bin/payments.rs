//! What payments cost, each side by side in one run:
//! 1. a paid `/v1/infer` call (a voucher sent with every call, as a client
//!    keeps sending its "up to" authorization) next to a free one on the
//!    same model (MLP 784-128-10), over loopback, interleaved in rounds;
//! 2. payment checks per second on one core: a known voucher (the usual
//!    case) and a new voucher on every call (its signature recovered);
//! 3. gas per voucher when an operator redeems 1,000 vouchers (from 1,000
//!    payers) in one transaction, on a one-validator chain in process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolCall;
use gradnet_api::payments::{ledger::Ledger, Need, Payments};
use gradnet_api::{ApiConfig, AppState};
use gradnet_client::pay::Payer;
use gradnet_client::x402;
use gradnet_hub::{Hub, HubConfig};
use gradnet_runtime::{OnnxRunner, RuntimeConfig};
use gradnet_types::payments::{Channel, IEscrow, Prices, SignedVoucher, Voucher, ESCROW};
use gradnet_types::NodeKey;
use serde_json::json;

const PRICE: u64 = 1_000_000_000_000;

fn node(hub: &Hub, paid: bool) -> AppState {
    let state = AppState::new(
        hub.clone(),
        OnnxRunner::new(RuntimeConfig::default()).unwrap(),
        NodeKey::generate(),
        ApiConfig::default(),
    );
    if paid {
        let prices = Prices {
            perCall: U256::from(PRICE),
            ..Default::default()
        };
        state.use_payments(Payments::new(
            Address::repeat_byte(0xee),
            31337,
            prices,
            Ledger::in_memory(),
            None,
        ));
    }
    state
}

fn deposit(p: &Payments, payer: Address) {
    p.know_channel(
        payer,
        &Channel {
            deposited: U256::MAX,
            redeemed: U256::ZERO,
            withdrawableAt: 0,
        },
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::open(dir.path(), HubConfig::default()).unwrap();
    let (free, paid) = (node(&hub, false), node(&hub, true));
    let payee = Address::repeat_byte(0xee);
    let key = B256::repeat_byte(0x42);
    let payer = Payer::new(key, U256::ZERO, 0).unwrap();
    deposit(paid.payments().unwrap(), payer.account());
    let header = payer
        .sign(
            31337,
            payee,
            U256::MAX,
            gradnet_client::auth::now() + 86_400,
        )
        .unwrap();
    let (free_url, paid_url) = (
        gradnet_bench::serve_in_process(free).await,
        gradnet_bench::serve_in_process(paid.clone()).await,
    );
    let client = reqwest::Client::new();
    let bytes = gradnet_runtime::generated::mlp(784, 128, 10, 7);
    let cid = hub.put_bytes(&bytes).await.unwrap().cid;
    let input = gradnet_bench::nest(&gradnet_runtime::generated::weights(784, 1, 1.0), &[1, 784]);
    let body =
        serde_json::to_vec(&json!({"model": cid.to_string(), "inputs": {"x": input}})).unwrap();
    let call = |url: String, pay: Option<String>| {
        let (client, body) = (client.clone(), body.clone());
        async move {
            let mut r = client
                .post(format!("{url}/v1/infer"))
                .header("content-type", "application/json")
                .body(body);
            if let Some(h) = pay {
                r = r.header(x402::PAYMENT_SIGNATURE, h);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
        }
    };
    for _ in 0..100 {
        call(free_url.clone(), None).await;
        call(paid_url.clone(), Some(header.clone())).await;
    }
    println!("1. /v1/infer, MLP 784-128-10, 300 calls per side per round");
    println!("round  free (us)  paid (us)  paid / free  added (us)");
    let (mut ratios, mut added) = (vec![], vec![]);
    for round in 0..5 {
        let mut t_free = vec![];
        let mut t_paid = vec![];
        for _ in 0..300 {
            let t = Instant::now();
            call(free_url.clone(), None).await;
            t_free.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            call(paid_url.clone(), Some(header.clone())).await;
            t_paid.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let (f, p) = (gradnet_bench::median(t_free), gradnet_bench::median(t_paid));
        ratios.push(p / f);
        added.push(p - f);
        println!(
            "{round:>5}  {f:>9.1}  {p:>9.1}  {:>10.3}x  {:>9.1}",
            p / f,
            p - f
        );
    }
    println!(
        "median: paid / free {:.3}x, {:.1} us added (goal <= 1.05x or <= 100 us)",
        gradnet_bench::median(ratios),
        gradnet_bench::median(added)
    );

    // 2. payment checks per second, one core
    let p = paid.payments().unwrap().clone();
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(x402::PAYMENT_SIGNATURE, header.parse().unwrap());
    let need = Need::Exact(U256::from(PRICE));
    let run = |n: usize, fresh: bool| {
        let p = p.clone();
        let mut headers = headers.clone();
        async move {
            let payers: Vec<(B256, Payer)> = (0..n)
                .map(|i| {
                    let k = B256::from(U256::from(i as u64 + 1_000));
                    (k, Payer::new(k, U256::ZERO, 0).unwrap())
                })
                .collect();
            let signed: Vec<String> = if fresh {
                payers
                    .iter()
                    .map(|(_, py)| {
                        deposit(&p, py.account());
                        py.sign(
                            31337,
                            payee,
                            U256::from(u64::MAX),
                            gradnet_client::auth::now() + 86_400,
                        )
                        .unwrap()
                    })
                    .collect()
            } else {
                vec![]
            };
            let t = Instant::now();
            for i in 0..n {
                if let Some(v) = signed.get(i) {
                    headers.insert(x402::PAYMENT_SIGNATURE, v.parse().unwrap());
                }
                let h = p.hold(&headers, "/v1/infer", need).await.unwrap();
                h.settle(U256::from(PRICE));
            }
            n as f64 / t.elapsed().as_secs_f64()
        }
    };
    let known = run(200_000, false).await;
    let fresh = run(2_000, true).await;
    println!("\n2. payment checks per second, one core: {known:.0} with a known voucher, {fresh:.0} with a new voucher each (its secp256k1 recovery)");

    // 3. gas per voucher in a batch of 1,000
    let (gas, used) = redeem_gas(1_000).await;
    println!(
        "\n3. redeeming 1000 vouchers in one transaction: {used} gas, {:.0} per voucher ({gas} of it the escrow's own charge)",
        used as f64 / 1000.0
    );
}

/// Deposits from `n` payers to one operator, then the operator redeems one
/// voucher from each in a single transaction: (the escrow's charged gas,
/// the transaction's gas used).
async fn redeem_gas(n: usize) -> (u64, u64) {
    use gradnet_ledger::genesis::{address_of, dev_keys, Genesis, GenesisValidator};
    let keys = dev_keys(n + 1);
    let operator = keys[n];
    let payee = address_of(&operator).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let seed = [0x11u8; 32];
    let g = Genesis {
        chain_id: 4242,
        timestamp: gradnet_consensus::app::now_secs(),
        gas_limit: 30_000_000,
        base_fee: 1_000_000_000,
        validators: vec![GenesisValidator {
            public_key: alloy_primitives::hex::encode(
                gradnet_consensus::context::PrivateKey::from(seed)
                    .public_key()
                    .as_bytes(),
            ),
            power: 1,
            fee_recipient: Address::repeat_byte(0xfe),
        }],
        alloc: keys
            .iter()
            .map(|k| (address_of(k).unwrap(), U256::from(10u128.pow(21))))
            .collect(),
        code: Default::default(),
        inference_nodes: vec![],
        zk_models: vec![],
        tee: None,
        escrow: None,
    };
    let chain = gradnet_ledger::chain::Chain::open(dir.path(), g, Default::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = gradnet_rpc::router(chain.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let validator = gradnet_node::consensus::Validator {
        chain: chain.clone(),
        pipe: Arc::new(gradnet_node::pipe::Dispatcher::default()),
        key: gradnet_node::consensus::KeySeed(seed),
        genesis: chain.store.genesis().clone(),
        faults: Default::default(),
        byzantine: None,
        options: gradnet_node::consensus::ConsensusOptions {
            home: dir.path().join("consensus"),
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            peers: vec![],
            block_time: Duration::from_millis(50),
            moniker: "bench".into(),
        },
    };
    let _running = validator.launch().await.unwrap();
    let rpc = gradnet_client::Rpc::new(&url).unwrap();
    // the deposits, sent at once, then awaited
    let mut hashes = vec![];
    for k in &keys[..n] {
        let mut s = gradnet_client::Sender::new(rpc.clone(), *k).await.unwrap();
        hashes.push(
            s.submit(
                Some(ESCROW),
                U256::from(10u64.pow(15)),
                IEscrow::depositCall { payee }.abi_encode(),
                100_000,
            )
            .await
            .unwrap(),
        );
    }
    for h in hashes {
        let r = rpc.wait_receipt(h, Duration::from_secs(120)).await.unwrap();
        assert!(r.inner.inner.status(), "a deposit failed");
    }
    let expiry = gradnet_client::auth::now() + 3600;
    let vouchers: Vec<SignedVoucher> = keys[..n]
        .iter()
        .map(|k| {
            let v = Voucher {
                payer: address_of(k).unwrap(),
                payee,
                cumulative: U256::from(PRICE * 10),
                expiry,
            };
            let sig = gradnet_client::wallet::sign_hash(k, &v.signing_hash(4242)).unwrap();
            SignedVoucher {
                payer: v.payer,
                cumulative: v.cumulative,
                expiry,
                amount: U256::from(PRICE * 7),
                signature: sig.as_bytes().to_vec().into(),
            }
        })
        .collect();
    let mut s = gradnet_client::Sender::new(rpc.clone(), operator)
        .await
        .unwrap();
    let r = s
        .send(
            ESCROW,
            IEscrow::redeemPackedCall {
                vouchers: gradnet_types::payments::pack(&vouchers).unwrap().into(),
            }
            .abi_encode(),
            60_000 + 24_000 * n as u64,
        )
        .await
        .unwrap();
    let escrow_gas = gradnet_inference::registry::REGISTRY_READ_GAS
        + gradnet_inference::escrow::VOUCHER_GAS * n as u64;
    (escrow_gas, r.gas_used)
}
