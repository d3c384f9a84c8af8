//! Paid inference through the router in process: the 402 and its x402
//! terms, vouchers that pay for many calls, every refusal (forged, wrong
//! chain or payee, expired, stale, past the cap or the deposit, a pending
//! withdrawal), charges in headers and receipts, LLM answers capped by what
//! was authorized, and charges that survive a restart.

use alloy_primitives::{Address, B256, U256};
use axum::body::{to_bytes, Body};
use axum::http::{header, HeaderMap, Request, StatusCode};
use gradnet_client::pay::Payer;
use gradnet_client::x402;
use gradnet_types::payments::{Channel, Prices};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::payments::{ledger::Ledger, Payments};
use crate::{router, ApiConfig, AppState};

const CHAIN: u64 = 31337;
const PRICE: u64 = 1_000;
const ALICE: B256 = B256::repeat_byte(0xa1);
const MALLORY: B256 = B256::repeat_byte(0x66);

fn operator() -> Address {
    Address::repeat_byte(0xee)
}

fn prices() -> Prices {
    Prices {
        perCall: U256::from(PRICE),
        perMillionInputTokens: U256::from(1_000_000u64),
        perMillionOutputTokens: U256::from(2_000_000u64),
        models: vec![],
    }
}

struct Paid {
    state: AppState,
    dir: tempfile::TempDir,
    cid: String,
}

fn open(dir: &std::path::Path) -> AppState {
    let runtime = gradnet_runtime::RuntimeConfig {
        threads: 1,
        ..Default::default()
    };
    let config = ApiConfig {
        dev_mode: true,
        ..ApiConfig::default()
    };
    let state = AppState::open(dir, Default::default(), runtime, config).unwrap();
    let ledger = Ledger::open(&dir.join("payments.log")).unwrap();
    state.use_payments(Payments::new(operator(), CHAIN, prices(), ledger, None));
    state
}

async fn paid_node() -> Paid {
    let dir = tempfile::tempdir().unwrap();
    let state = open(dir.path());
    let cid = state
        .hub
        .put_bytes(&gradnet_runtime::generated::mlp(4, 8, 3, 7))
        .await
        .unwrap()
        .cid
        .to_string();
    Paid { state, dir, cid }
}

fn deposit(s: &AppState, payer: Address, wei: u64) {
    s.payments().unwrap().know_channel(
        payer,
        &Channel {
            deposited: U256::from(wei),
            redeemed: U256::ZERO,
            withdrawableAt: 0,
        },
    );
}

fn account(k: &B256) -> Address {
    gradnet_client::wallet::address(k).unwrap()
}

fn voucher(k: &B256, chain: u64, payee: Address, cumulative: u64, expiry: u64) -> String {
    Payer::new(*k, U256::ZERO, 0)
        .unwrap()
        .sign(chain, payee, U256::from(cumulative), expiry)
        .unwrap()
}

fn later() -> u64 {
    gradnet_client::auth::now() + 3600
}

async fn infer(s: &AppState, cid: &str, payment: Option<&str>) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::post("/v1/infer").header(header::CONTENT_TYPE, "application/json");
    if let Some(p) = payment {
        req = req.header(x402::PAYMENT_SIGNATURE, p);
    }
    let body = json!({"model": cid, "inputs": {"x": [[1.0, 2.0, 3.0, 4.0]]}});
    let r = router(s.clone())
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let (parts, body) = r.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn required(h: &HeaderMap) -> Value {
    let raw = x402::decode(h[x402::PAYMENT_REQUIRED].to_str().unwrap()).unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[tokio::test]
async fn an_unpaid_call_gets_402_with_terms_a_voucher_pays_for_many_and_then_runs_out() {
    let n = paid_node().await;
    let s = &n.state;
    let (st, h, e) = infer(s, &n.cid, None).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::PAYMENT_REQUIRED, "payment_required"),
        "{e}"
    );
    let terms = required(&h);
    let a = &terms["accepts"][0];
    assert_eq!(terms["x402Version"], 2);
    assert_eq!(a["scheme"], "upto");
    assert_eq!(a["network"], "eip155:31337");
    assert_eq!(a["amount"], PRICE.to_string());
    assert_eq!(a["payTo"], json!(operator()));
    assert_eq!(a["extra"]["escrow"], json!(gradnet_types::payments::ESCROW));
    assert_eq!(e["payment"], *a, "the body says the same");

    let alice = account(&ALICE);
    deposit(s, alice, 100 * PRICE);
    let v = voucher(&ALICE, CHAIN, operator(), 3 * PRICE, later());
    for i in 1..=3u64 {
        let (st, h, r) = infer(s, &n.cid, Some(&v)).await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(h["x-gradnet-charged"], PRICE.to_string());
        assert_eq!(h["x-gradnet-remaining"], ((3 - i) * PRICE).to_string());
        // the receipt signs the charge, and still verifies
        let receipt: gradnet_types::Receipt = serde_json::from_value(r["receipt"].clone()).unwrap();
        receipt.verify().unwrap();
        let c = receipt.body.charge.unwrap();
        assert_eq!(
            (c.amount, c.total),
            (PRICE.to_string(), (i * PRICE).to_string())
        );
        assert_eq!(c.payer, alice.to_checksum(None));
    }
    // the cap is spent: the terms ask for a voucher above what was charged
    let (st, h, e) = infer(s, &n.cid, Some(&v)).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::PAYMENT_REQUIRED, "insufficient_authorization"),
        "{e}"
    );
    assert_eq!(
        required(&h)["accepts"][0]["extra"]["minCumulative"],
        (4 * PRICE).to_string()
    );
    // a client answers the 402 and goes on
    let payer = Payer::new(ALICE, U256::from(10 * PRICE), 3600).unwrap();
    let next = payer
        .answer(h[x402::PAYMENT_REQUIRED].to_str().unwrap())
        .unwrap();
    let (st, _, r) = infer(s, &n.cid, Some(&next)).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let standing = s.payments().unwrap().standing(alice);
    assert_eq!(standing["charged"], (4 * PRICE).to_string());
    assert_eq!(standing["authorized"], (13 * PRICE).to_string());
    // a failed call is not charged
    let (st, _, _) = {
        let mut req = Request::post("/v1/infer").header(header::CONTENT_TYPE, "application/json");
        req = req.header(x402::PAYMENT_SIGNATURE, &next);
        let body = json!({"model": n.cid, "inputs": {"x": [[1.0, 2.0]]}});
        let r = router(s.clone())
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        (r.status(), (), ())
    };
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.payments().unwrap().standing(alice)["charged"],
        (4 * PRICE).to_string()
    );
    assert_eq!(s.payments().unwrap().standing(alice)["held"], "0");
}

#[tokio::test]
async fn forged_wrong_chain_wrong_payee_expired_stale_and_unbacked_vouchers_are_refused() {
    let n = paid_node().await;
    let s = &n.state;
    let alice = account(&ALICE);
    deposit(s, alice, 5 * PRICE);
    let now = gradnet_client::auth::now();
    // Mallory signs a voucher naming Alice as the payer
    let forged = {
        let v = gradnet_types::payments::Voucher {
            payer: alice,
            payee: operator(),
            cumulative: U256::from(PRICE),
            expiry: later(),
        };
        let sig = gradnet_client::wallet::sign_hash(&MALLORY, &v.signing_hash(CHAIN)).unwrap();
        x402::payment_header(CHAIN, &v, &sig.as_bytes())
    };
    let wrong_chain = {
        let v = gradnet_types::payments::Voucher {
            payer: alice,
            payee: operator(),
            cumulative: U256::from(PRICE),
            expiry: later(),
        };
        let sig = gradnet_client::wallet::sign_hash(&ALICE, &v.signing_hash(1)).unwrap();
        x402::payment_header(CHAIN, &v, &sig.as_bytes())
    };
    for (payment, want, says) in [
        (forged, "invalid_payment", "recovers to"),
        (wrong_chain, "invalid_payment", "recovers to"),
        (
            voucher(&ALICE, 1, operator(), PRICE, later()),
            "invalid_payment",
            "network",
        ),
        (
            voucher(&ALICE, CHAIN, Address::repeat_byte(1), PRICE, later()),
            "wrong_payee",
            "not this node",
        ),
        (
            voucher(&ALICE, CHAIN, operator(), PRICE, now + 30),
            "voucher_expired",
            "redeem",
        ),
        ("bm90IGpzb24=".to_string(), "invalid_payment", "x402"),
        (
            voucher(&ALICE, CHAIN, operator(), 50 * PRICE, later()),
            "",
            "",
        ),
    ] {
        let (st, _, e) = infer(s, &n.cid, Some(&payment)).await;
        if want.is_empty() {
            // backed by 5 calls' deposit, though it authorizes 50
            assert_eq!(st, StatusCode::OK, "{e}");
            continue;
        }
        assert_eq!((st, code(&e)), (StatusCode::PAYMENT_REQUIRED, want), "{e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(says),
            "{e}"
        );
    }
    let (st, _, e) = infer(
        s,
        &n.cid,
        Some(&voucher(&ALICE, CHAIN, operator(), 40 * PRICE, later())),
    )
    .await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::PAYMENT_REQUIRED, "stale_voucher"),
        "{e}"
    );
    let big = voucher(&ALICE, CHAIN, operator(), 50 * PRICE, later());
    for _ in 0..4 {
        assert_eq!(infer(s, &n.cid, Some(&big)).await.0, StatusCode::OK);
    }
    let (st, _, e) = infer(s, &n.cid, Some(&big)).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::PAYMENT_REQUIRED, "insufficient_deposit"),
        "{e}"
    );
    // a withdrawal announced: no new work on the channel
    s.payments().unwrap().know_channel(
        alice,
        &Channel {
            deposited: U256::from(100 * PRICE),
            redeemed: U256::ZERO,
            withdrawableAt: later(),
        },
    );
    let (st, _, e) = infer(s, &n.cid, Some(&big)).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::PAYMENT_REQUIRED, "withdrawal_pending"),
        "{e}"
    );
}

#[tokio::test]
async fn charges_and_vouchers_survive_a_restart() {
    let n = paid_node().await;
    let alice = account(&ALICE);
    deposit(&n.state, alice, 100 * PRICE);
    let v = voucher(&ALICE, CHAIN, operator(), 10 * PRICE, later());
    for _ in 0..3 {
        assert_eq!(infer(&n.state, &n.cid, Some(&v)).await.0, StatusCode::OK);
    }
    let Paid { state, dir, cid } = n;
    drop(state);
    let s = open(dir.path());
    deposit(&s, alice, 100 * PRICE);
    let standing = s.payments().unwrap().standing(alice);
    assert_eq!(standing["charged"], (3 * PRICE).to_string(), "{standing}");
    assert_eq!(
        standing["authorized"],
        (10 * PRICE).to_string(),
        "{standing}"
    );
    // the same voucher goes on from what was charged
    let (st, h, _) = infer(&s, &cid, Some(&v)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["x-gradnet-remaining"], (6 * PRICE).to_string());
}

async fn chat(
    s: &AppState,
    payment: &str,
    max_tokens: u64,
    stream: bool,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let body = json!({
        "model": "tiny",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    });
    let req = Request::post("/v1/chat/completions")
        .header(header::CONTENT_TYPE, "application/json")
        .header(x402::PAYMENT_SIGNATURE, payment)
        .body(Body::from(body.to_string()))
        .unwrap();
    let r = router(s.clone()).oneshot(req).await.unwrap();
    let (parts, body) = r.into_parts();
    (
        parts.status,
        parts.headers,
        to_bytes(body, 1 << 20).await.unwrap().to_vec(),
    )
}

#[tokio::test]
async fn an_llm_answer_is_charged_its_tokens_and_stops_where_the_voucher_does() {
    let n = paid_node().await;
    let s = &n.state;
    let hub = &s.hub;
    let w = gradnet_hub::Writer::Anonymous;
    hub.create_repo(
        gradnet_hub::RepoSpec {
            name: "tiny".into(),
            ..Default::default()
        },
        &w,
    )
    .unwrap();
    let v = hub
        .create_version("tiny", String::new(), false, &w)
        .unwrap();
    let blob = hub
        .put_bytes(&gradnet_runtime::llm::sample::tiny_llama(1))
        .await
        .unwrap();
    hub.add_file("tiny", &v.version, "model.gguf", blob, &w)
        .unwrap();
    let alice = account(&ALICE);
    deposit(s, alice, u64::MAX);
    // 1 wei per prompt token and 2 per generated one (prices per million)
    let rate = s.payments().unwrap().rate("x", Some("tiny")).unwrap();
    let plenty = voucher(&ALICE, CHAIN, operator(), 1_000_000, later());
    let (st, h, body) = chat(s, &plenty, 8, false).await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let r: Value = serde_json::from_slice(&body).unwrap();
    let (p, c) = (
        r["usage"]["prompt_tokens"].as_u64().unwrap(),
        r["usage"]["completion_tokens"].as_u64().unwrap(),
    );
    let cost = rate.tokens(p, c);
    assert_eq!(cost, U256::from(p + 2 * c));
    assert_eq!(h["x-gradnet-charged"], cost.to_string());
    assert_eq!(r["gradnet_charge"]["amount"], cost.to_string());
    let receipt: gradnet_types::Receipt =
        serde_json::from_value(r["gradnet_receipt"].clone()).unwrap();
    receipt.verify().unwrap();
    assert_eq!(receipt.body.charge.unwrap().amount, cost.to_string());

    // another payer's voucher pays for the prompt and 3 tokens: a streamed
    // answer stops there, says why, and is charged exactly that
    deposit(s, account(&MALLORY), u64::MAX);
    let tight = voucher(&MALLORY, CHAIN, operator(), p + 2 * 3, later());
    let (st, _, body) = chat(s, &tight, 50, true).await;
    assert_eq!(st, StatusCode::OK);
    let text = String::from_utf8_lossy(&body);
    let last: Value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v.get("gradnet_charge").is_some())
        .unwrap_or_else(|| panic!("no charge in the stream: {text}"));
    assert_eq!(last["choices"][0]["finish_reason"], "length", "{last}");
    assert_eq!(
        last["gradnet_charge"]["amount"],
        (p + 6).to_string(),
        "{last}"
    );
    assert_eq!(last["gradnet_charge"]["remaining"], "0", "{last}");
    assert!(
        last["gradnet_charge"]["stopped"]
            .as_str()
            .unwrap()
            .contains("3 generated tokens"),
        "{last}"
    );
    // nothing is left: the next call is refused before it runs
    let (st, _, _) = chat(s, &tight, 5, false).await;
    assert_eq!(st, StatusCode::PAYMENT_REQUIRED);
}

#[tokio::test]
async fn a_client_that_goes_away_mid_stream_is_charged_what_was_generated_and_its_hold_released() {
    let n = paid_node().await;
    let s = &n.state;
    let w = gradnet_hub::Writer::Anonymous;
    s.hub
        .create_repo(
            gradnet_hub::RepoSpec {
                name: "tiny".into(),
                ..Default::default()
            },
            &w,
        )
        .unwrap();
    let v = s
        .hub
        .create_version("tiny", String::new(), false, &w)
        .unwrap();
    let blob = s
        .hub
        .put_bytes(&gradnet_runtime::llm::sample::tiny_llama(1))
        .await
        .unwrap();
    s.hub
        .add_file("tiny", &v.version, "model.gguf", blob, &w)
        .unwrap();
    let alice = account(&ALICE);
    deposit(s, alice, u64::MAX);
    let pay = voucher(&ALICE, CHAIN, operator(), 10_000_000, later());
    let body = json!({
        "model": "tiny",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 200,
        "temperature": 0,
        "stream": true,
    });
    let req = Request::post("/v1/chat/completions")
        .header(header::CONTENT_TYPE, "application/json")
        .header(x402::PAYMENT_SIGNATURE, &pay)
        .body(Body::from(body.to_string()))
        .unwrap();
    let r = router(s.clone()).oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // read the first event, then go away
    let mut stream = r.into_body().into_data_stream();
    let first = futures::StreamExt::next(&mut stream)
        .await
        .unwrap()
        .unwrap();
    assert!(!first.is_empty());
    drop(stream);
    // the generator stops at its next token and charges what it generated
    let p = s.payments().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let charged = loop {
        let st = p.standing(alice);
        if st["held"] == "0" && st["charged"] != "0" {
            break st["charged"].as_str().unwrap().parse::<U256>().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no charge after the client left: {st}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    // never more than the whole answer could cost (the prompt is under 64 tokens)
    let rate = p.rate("x", Some("tiny")).unwrap();
    let full = rate.tokens(64, 200);
    assert!(
        charged <= full,
        "charged {charged}, more than a whole answer ({full})"
    );
    // and what remains is the payer's again
    assert_eq!(
        p.standing(alice)["available"]
            .as_str()
            .unwrap()
            .parse::<U256>()
            .unwrap(),
        U256::from(10_000_000u64) - charged
    );
}
