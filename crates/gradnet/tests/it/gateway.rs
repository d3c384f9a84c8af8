//! The gateway on a devnet (real processes) with a byzantine inference node
//! and paid nodes: QUORUM off chain outvotes the faulty node, its certificate
//! verifies offline and a forged one does not, the gateway's report lands on
//! chain and the node is slashed on every validator (once); TEE answers name
//! the enclave; LLM chat in QUORUM, whole and streamed; routing spreads load;
//! bad requests get the node's own error; a node SIGKILLed under load loses
//! no request; a model nobody can serve is a 503 naming it.

use std::time::Duration;

use alloy_primitives::U256;
use alloy_sol_types::SolCall;
use gradnet_inference::registry::IInferenceRegistry;
use gradnet_runtime::llm::sample;
use serde_json::{json, Value};

use crate::common::devnet::Devnet;
use crate::common::inference::{node_record, operator};
use crate::common::ledger::{rpc, wait_until};
use crate::common::{self, post, publish};

const MODEL: &str = "demo-mlp/model.onnx";

fn row(last: f64) -> Value {
    json!({"x": [[0.5, -1.0, 0.25, last]]})
}

fn cli(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(common::BIN)
        .args(args)
        .env("GRADNET_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

#[test]
fn the_gateway_serves_verified_modes_off_chain_and_survives_faults() {
    let dir = tempfile::tempdir().unwrap();
    // paid nodes (the devnet's default prices): the gateways pay them
    let net = Devnet::start_with(dir.path(), 4, &["--byzantine", "1"]);
    let gw = format!("{}/gateway", net.apis[1]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let infer = |base: &str, body: Value| rt.block_on(post(&format!("{base}/v1/infer"), body));
    let faulty = operator(2);

    // QUORUM: the two honest nodes outvote the faulty one
    let (s, q) = infer(
        &gw,
        json!({"model": MODEL, "inputs": row(3.0), "mode": "QUORUM"}),
    );
    assert_eq!(s, 200, "{q}");
    let checked = gradnet_client::verify::verify_certificate(&q)
        .unwrap()
        .expect("a certificate");
    assert!(checked.answer_checked, "the outputs are the majority's");
    // the client's certificate holds the agreeing answers (the gateway
    // answers once a majority agrees); the dissent that came with or after
    // them is in the certificate the gateway reports
    assert!(checked.verdict.agreeing.len() >= 2, "{q}");
    let path = dir.path().join("quorum.json");
    std::fs::write(&path, serde_json::to_vec(&q).unwrap()).unwrap();
    let (ok, out) = cli(&["receipt", "verify", path.to_str().unwrap()]);
    assert!(
        ok && out.contains("QUORUM certificate verified: 2 of"),
        "{out}"
    );
    let mut reported = Value::Null;
    wait_until(30, "the gateway's record of the dissent", || {
        let status: Value = rt.block_on(common::get_json(&format!("{gw}/api/v0/gateway")));
        reported = status["faults"][0].clone();
        reported["report"]["transaction"].is_string()
    });
    let cert = &reported["certificate"];
    assert_eq!(cert["mode"], "QUORUM");
    assert_eq!(cert["answers"].as_array().unwrap().len(), 3, "{cert}");
    std::fs::write(&path, serde_json::to_vec(cert).unwrap()).unwrap();
    let (ok, out) = cli(&["receipt", "verify", path.to_str().unwrap()]);
    assert!(ok && out.contains("2 of 3 answers agree"), "{out}");
    assert!(
        out.contains(&format!("DISSENTS: {faulty}")),
        "the faulty node is named: {out}"
    );
    // forged: the answer changed, or a receipt's output hash changed
    let mut forged = q.clone();
    forged["outputs"]["y"][0][0] = json!(0.125);
    std::fs::write(&path, serde_json::to_vec(&forged).unwrap()).unwrap();
    let (ok, out) = cli(&["receipt", "verify", path.to_str().unwrap()]);
    assert!(!ok && out.contains("hash"), "{out}");
    let mut forged = q["certificate"].clone();
    let other = json!(gradnet_types::ContentId::of(b"forged").to_string());
    for a in forged["answers"].as_array_mut().unwrap() {
        a["receipt"]["output_hash"] = other.clone();
    }
    std::fs::write(&path, serde_json::to_vec(&forged).unwrap()).unwrap();
    let (ok, out) = cli(&["receipt", "verify", path.to_str().unwrap()]);
    assert!(!ok && out.contains("signature"), "{out}");

    // the gateway's report slashes the faulty node on every validator
    for url in &net.rpcs {
        wait_until(60, "the fault report's slashing", || {
            node_record(url, faulty).faults == 1
        });
        let n = node_record(url, faulty);
        assert_eq!(n.stake, eth(90), "10% of 100 taken on {url}");
        assert_eq!(
            node_record(url, operator(0)).faults,
            0,
            "honest nodes untouched"
        );
    }
    let data = IInferenceRegistry::faultEvidenceCall {
        operator: faulty,
        index: 0,
    }
    .abi_encode();
    let out = rpc(
        &net.rpc,
        "eth_call",
        json!([{"to": gradnet_inference::registry::ADDRESS, "data": alloy_primitives::Bytes::from(data)}, "latest"]),
    );
    let out: alloy_primitives::Bytes = serde_json::from_value(out).unwrap();
    let fault = IInferenceRegistry::faultEvidenceCall::abi_decode_returns(&out).unwrap();
    assert_eq!(fault.reason, gradnet_inference::fault_report::REASON);
    let evidence: Value = serde_json::from_slice(&fault.evidence).unwrap();
    assert_eq!(&evidence, cert, "the certificate is the evidence");
    // the same certificate again: refused
    let key: alloy_primitives::B256 = net.keys[2].parse().unwrap();
    let replay = rt.block_on(async {
        let rpc = gradnet_client::Rpc::new(&net.rpc).unwrap();
        let mut s = gradnet_client::Sender::new(rpc, key).await.unwrap();
        let call = IInferenceRegistry::reportFaultCall {
            certificate: serde_json::to_vec(cert).unwrap().into(),
        };
        s.send(
            gradnet_inference::registry::ADDRESS,
            call.abi_encode(),
            5_000_000,
        )
        .await
    });
    let e = replay.unwrap_err().to_string();
    assert!(e.contains("reported already"), "{e}");

    // TEE: an enclave's answer, its registration named
    let (s, t) = infer(
        &gw,
        json!({"model": MODEL, "inputs": row(1.0), "mode": "TEE"}),
    );
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["certificate"]["mode"], "TEE");
    assert!(t["certificate"]["enclave"].is_string(), "{t}");
    std::fs::write(&path, serde_json::to_vec(&t).unwrap()).unwrap();
    let (ok, out) = cli(&["receipt", "verify", path.to_str().unwrap()]);
    assert!(ok && out.contains("TEE certificate verified"), "{out}");

    // a gateway that charges its clients (a reseller): they pay its account
    // through the escrow, as they pay a node; it pays the nodes
    let gw_key = gradnet_ledger::genesis::dev_key(gradnet_ledger::genesis::DEV_GATEWAY_BASE);
    let gw_account = gradnet_client::wallet::address(&gw_key).unwrap();
    let mut reseller = std::process::Command::new(common::BIN)
        .args([
            "gateway",
            "--rpc",
            &net.rpcs[2],
            "--listen",
            "127.0.0.1:0",
            "--prices",
            "1000,0,0",
        ])
        .args(["--key", &gw_key.to_string(), "--data-dir"])
        .arg(dir.path().join("reseller"))
        .env("GRADNET_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = reseller.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("gradnet gateway listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let paid_gw = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the gateway serves");
    let quorum_call = json!({"model": MODEL, "inputs": row(4.0), "mode": "QUORUM"});
    let (s, e) = infer(&paid_gw, quorum_call.clone());
    assert_eq!(s, 402, "{e}");
    assert_eq!(e["payment"]["payTo"], json!(gw_account), "{e}");
    assert_eq!(e["payment"]["amount"], "3000", "three nodes' answers: {e}");
    let (ok, out) = cli(&[
        "pay",
        "deposit",
        "0.001",
        "--to",
        &gw_account.to_string(),
        "--key",
        &net.keys[0],
        "--rpc",
        &net.rpc,
    ]);
    assert!(ok, "{out}");
    let payer = gradnet_client::pay::Payer::new(
        net.keys[0].parse().unwrap(),
        U256::from(1_000_000u64),
        3600,
    )
    .unwrap();
    let (charged, body) = rt.block_on(async {
        let send = |h: Option<String>| {
            let mut r = common::http()
                .post(format!("{paid_gw}/v1/infer"))
                .json(&quorum_call);
            if let Some(h) = h {
                r = r.header(gradnet_client::x402::PAYMENT_SIGNATURE, h);
            }
            r.send()
        };
        let first = send(None).await.unwrap();
        assert_eq!(first.status(), 402);
        let required = first.headers()[gradnet_client::x402::PAYMENT_REQUIRED]
            .to_str()
            .unwrap()
            .to_string();
        let header = payer.answer(&required).unwrap();
        // the deposit is read from the chain once it is final
        let mut r = send(Some(header.clone())).await.unwrap();
        for _ in 0..100 {
            if r.status() == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            r = send(Some(header.clone())).await.unwrap();
        }
        assert_eq!(r.status(), 200);
        let charged = r.headers()["x-gradnet-charged"]
            .to_str()
            .unwrap()
            .to_string();
        (charged, r.json::<Value>().await.unwrap())
    });
    assert_eq!(charged, "3000", "QUORUM-3 at 1000 a node");
    assert!(
        body["certificate"]["answers"].as_array().unwrap().len() >= 2,
        "{body}"
    );
    let _ = reseller.kill();
    let _ = reseller.wait();

    // ZKML off chain: a node proves, the gateway checks the proof against the
    // registry's key before answering; the faulty node's output does not
    // match its proof, so it is passed over
    for i in 0..4 {
        let (s, z) = infer(
            &gw,
            json!({"model": MODEL, "inputs": row(i as f64), "mode": "ZKML"}),
        );
        assert_eq!(s, 200, "{z}");
        assert_eq!(z["certificate"]["mode"], "ZKML");
        assert_ne!(z["certificate"]["asked"][0], json!(faulty), "{z}");
        std::fs::write(&path, serde_json::to_vec(&z).unwrap()).unwrap();
        let (ok, out) = cli(&["receipt", "verify", path.to_str().unwrap()]);
        assert!(
            ok && out.contains("ZKML certificate verified")
                && out.contains("the outputs in hand are the proved ones"),
            "{out}"
        );
        // an output changed after the proof: refused offline
        let mut forged = z.clone();
        forged["outputs"]["y"][0][0] = json!(0.5);
        std::fs::write(&path, serde_json::to_vec(&forged).unwrap()).unwrap();
        let (ok, out) = cli(&["receipt", "verify", path.to_str().unwrap()]);
        assert!(!ok && out.contains("not the proved ones"), "{out}");
        let mut forged = z.clone();
        forged["certificate"]["zk"]["output"][0] = json!(7);
        std::fs::write(&path, serde_json::to_vec(&forged).unwrap()).unwrap();
        let (ok, out) = cli(&["receipt", "verify", path.to_str().unwrap()]);
        assert!(!ok && out.contains("not verified"), "{out}");
    }

    // bad requests: the node's own error, or the gateway's, named
    let (s, e) = infer(&gw, json!({"model": MODEL, "inputs": {"x": [[1, 2]]}}));
    assert_eq!(s, 400, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("shape"),
        "{e}"
    );
    let (s, e) = infer(
        &gw,
        json!({"model": MODEL, "inputs": row(1.0), "mode": "QUORUM", "quorum": 0}),
    );
    assert_eq!(s, 400, "{e}");
    let (s, e) = infer(
        &gw,
        json!({"model": "nothing-here/model.onnx", "inputs": row(1.0), "mode": "QUORUM"}),
    );
    assert_eq!(s, 404, "{e}");
    let (s, e) = infer(
        &gw,
        json!({"model": MODEL, "inputs": row(1.0), "mode": "WHATEVER"}),
    );
    assert_eq!(s, 400, "{e}");

    // an LLM in QUORUM: whole, and streamed once agreed
    for n in &net.inference {
        rt.block_on(publish(n, "tiny", "tiny.gguf", sample::tiny_llama(3)));
    }
    let chat = json!({"model": "tiny", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 12, "mode": "QUORUM"});
    let (s, c) = rt.block_on(post(&format!("{gw}/v1/chat/completions"), chat.clone()));
    assert_eq!(s, 200, "{c}");
    let checked = gradnet_client::verify::verify_certificate(&c)
        .unwrap()
        .expect("a certificate");
    assert!(
        checked.answer_checked && checked.verdict.agreeing.len() >= 2,
        "{c}"
    );
    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    let text = rt.block_on(async {
        common::http()
            .post(format!("{gw}/v1/chat/completions"))
            .json(&streamed)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(
        text.contains("gradnet_certificate") && text.trim_end().ends_with("data: [DONE]"),
        "{text}"
    );
    // an LLM in TEE: an enclave's answer, its registration named
    let mut tee = chat.clone();
    tee["mode"] = json!("TEE");
    let (s, c) = rt.block_on(post(&format!("{gw}/v1/chat/completions"), tee));
    assert_eq!(s, 200, "{c}");
    let checked = gradnet_client::verify::verify_certificate(&c)
        .unwrap()
        .expect("a certificate");
    assert!(
        checked.answer_checked && checked.certificate.enclave.is_some(),
        "{c}"
    );
    // VANILLA streams pass through as the node sends them, its receipt last
    let mut plain = chat.clone();
    plain["mode"] = json!("VANILLA");
    plain["stream"] = json!(true);
    let text = rt.block_on(async {
        common::http()
            .post(format!("{gw}/v1/chat/completions"))
            .json(&plain)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(
        text.contains("gradnet_receipt") && text.trim_end().ends_with("data: [DONE]"),
        "{text}"
    );

    // routing spreads load over the healthy nodes (a node that just sent
    // a proof that did not hold may sit out until its next probe)
    let served = || -> Vec<u64> {
        let status: Value = rt.block_on(common::get_json(&format!("{gw}/api/v0/gateway")));
        status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["health"]["served"].as_u64().unwrap())
            .collect()
    };
    let before = served();
    rt.block_on(async {
        let calls = (0..48).map(|i| {
            let gw = gw.clone();
            async move {
                post(
                    &format!("{gw}/v1/infer"),
                    json!({"model": MODEL, "inputs": row(i as f64)}),
                )
                .await
            }
        });
        for (s, v) in futures::future::join_all(calls).await {
            assert_eq!(s, 200, "{v}");
        }
    });
    let took: Vec<u64> = served().iter().zip(&before).map(|(a, b)| a - b).collect();
    assert!(
        took.iter().filter(|&&n| n >= 4).count() >= 2,
        "the load is spread: {took:?}"
    );

    // inference node 0 SIGKILLed under load: every request is answered
    let port = net.inference[0].rsplit(':').next().unwrap().to_string();
    let results = rt.block_on(async {
        let calls = (0..80).map(|i| {
            let gw = gw.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(10 * i)).await;
                post(
                    &format!("{gw}/v1/infer"),
                    json!({"model": MODEL, "inputs": row(i as f64)}),
                )
                .await
            }
        });
        let kill = async {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let ok = std::process::Command::new("pkill")
                .args(["-KILL", "-f", &format!("listen 127.0.0.1:{port}")])
                .status()
                .unwrap()
                .success();
            assert!(ok, "inference node 0 found and killed");
        };
        let (r, _) = tokio::join!(futures::future::join_all(calls), kill);
        r
    });
    for (s, v) in &results {
        assert_eq!(*s, 200, "a request lost to the killed node: {v}");
    }
    // the metrics saw it all: requests by mode, the killed node's failures, the report
    let metrics = rt.block_on(async {
        common::http()
            .get(format!("{gw}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    for want in [
        "gradnet_gateway_requests_total{mode=\"QUORUM\",route=\"/v1/infer\",status=\"200\"}",
        "gradnet_gateway_faults_total{report=\"sent\"}",
        "gradnet_gateway_node_failures_total{",
        // how many are up depends on the last probes: the killed node is down,
        // the faulty one may still sit out after its bad proof
        "gradnet_gateway_nodes_up ",
    ] {
        assert!(metrics.contains(want), "{want} in {metrics}");
    }
    // with node 0 dead and node 2 back from its cooldown, no quorum of 3 agrees
    let (s, e) = infer(
        &gw,
        json!({"model": MODEL, "inputs": row(5.0), "mode": "QUORUM"}),
    );
    assert!(s == 502 || s == 503, "{s} {e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains(MODEL)
            || e["error"]["message"].as_str().unwrap().contains("QUORUM"),
        "{e}"
    );
    net.stop();
}
