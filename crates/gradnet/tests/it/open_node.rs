//! A node strangers can reach: signed hub writes through the CLI, owners
//! that survive a restart, and abuse (half-sent headers, request floods,
//! memory bombs) that gets a clear refusal while a normal client is served.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{self, Node};

const ALICE: &str = "0xa1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const BOB: &str = "0xb0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

fn address(key: &str) -> String {
    gradnet_client::wallet::address(&key.parse().unwrap())
        .unwrap()
        .to_checksum(None)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A config file for a strict node with short deadlines and a low rate.
fn strict_config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("strict.toml");
    std::fs::write(
        &path,
        "header_timeout_secs = 2\nbody_idle_timeout_secs = 2\nrequests_per_ip = 20\nmax_connections_per_ip = 64\ninference_memory_bytes = 67108864\nquota_bytes = 100000\n",
    )
    .unwrap();
    path
}

#[test]
fn owners_publish_through_the_cli_and_keep_their_names_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let model = dir.path().join("mlp.onnx");
    std::fs::write(&model, gradnet_runtime::generated::mlp(4, 8, 3, 1)).unwrap();
    let node = Node::start_strict(&data, &[]);
    let as_ = |key: Option<&str>, args: &[&str]| {
        let mut a = vec!["model"];
        if let Some(k) = key {
            a.extend(["--key", k]);
        }
        a.extend(args);
        node.cli(&a)
    };
    // unsigned: refused, saying how to sign
    let o = as_(None, &["create", "alice-model"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("signature_required"), "{}", stderr(&o));
    let o = as_(Some(ALICE), &["create", "alice-model"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = as_(Some(ALICE), &["version", "alice-model"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = model.to_str().unwrap();
    let o = as_(Some(ALICE), &["upload", "alice-model", "1.00", m]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Bob is refused until Alice adds him
    let o = as_(
        Some(BOB),
        &["upload", "alice-model", "1.00", m, "--as", "b.onnx"],
    );
    assert!(stderr(&o).contains("forbidden"), "{}", stderr(&o));
    let o = as_(Some(ALICE), &["collaborator", "alice-model", &address(BOB)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = as_(
        Some(BOB),
        &["upload", "alice-model", "1.00", m, "--as", "b.onnx"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Alice signs in once; her session token writes for her without the key
    let o = as_(Some(ALICE), &["sign-in", "--ttl", "600"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let session: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(session["account"], address(ALICE), "{session}");
    let token = session["token"].as_str().unwrap().to_string();
    let with_session = |args: &[&str]| {
        let mut a = vec!["model", "--session", token.as_str()];
        a.extend(args);
        node.cli(&a)
    };
    let o = with_session(&["version", "alice-model", "--notes", "by session"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1.01");
    node.stop();
    // after a restart: the same owner and collaborator, still enforced
    let node = Node::start_strict(&data, &[]);
    let with_session = |args: &[&str]| {
        let mut a = vec!["model", "--session", token.as_str()];
        a.extend(args);
        node.cli(&a)
    };
    // the session too, until Alice signs it out
    let o = with_session(&["version", "alice-model"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = with_session(&["sign-out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = with_session(&["version", "alice-model"]);
    assert!(stderr(&o).contains("session_revoked"), "{}", stderr(&o));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r: Value = rt.block_on(common::get_json(&format!(
        "{}/api/v0/models/alice-model",
        node.url
    )));
    assert_eq!(r["repo"]["owner"], address(ALICE), "{r}");
    assert_eq!(r["repo"]["collaborators"], json!([address(BOB)]), "{r}");
    let o = node.cli(&[
        "model",
        "--key",
        BOB,
        "transfer",
        "alice-model",
        &address(BOB),
    ]);
    assert!(stderr(&o).contains("only the owner"), "{}", stderr(&o));
    let infer = node.cli(&[
        "infer",
        "--model",
        "alice-model@1.00/b.onnx",
        "--input",
        r#"{"x": [[1, 2, 3, 4]]}"#,
    ]);
    assert!(infer.status.success(), "{}", stderr(&infer));
}

/// Opens `n` connections from `from` that send half a request's headers.
async fn slow_clients(
    addr: std::net::SocketAddr,
    from: &str,
    n: usize,
) -> Vec<tokio::net::TcpStream> {
    let mut out = vec![];
    for _ in 0..n {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{from}:0").parse().unwrap()).unwrap();
        if let Ok(mut c) = s.connect(addr).await {
            let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await;
            out.push(c);
        }
    }
    out
}

/// How long a normal client waits for `/health`.
async fn normal_wait(url: &str) -> Duration {
    let t = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        reqwest::get(format!("{url}/health")),
    )
    .await
    .expect("a normal client was not answered in 20 s")
    .unwrap();
    assert_eq!(r.status(), 200);
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abusers_are_refused_and_a_normal_client_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = strict_config(dir.path());
    let node = Node::start_strict(
        &dir.path().join("node"),
        &["--config", cfg.to_str().unwrap()],
    );
    let addr: std::net::SocketAddr = node.url.trim_start_matches("http://").parse().unwrap();

    // 2000 connections from another address, each with half its headers
    let mut slow = slow_clients(addr, "127.0.0.2", 2000).await;
    let waited = normal_wait(&node.url).await;
    eprintln!("slow headers x2000: normal client waited {waited:?}");
    // past the per-address cap the node closes them at once; the rest are
    // cut off after the 2 s header deadline
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut open = slow.len();
    while open > 0 && Instant::now() < deadline {
        open = 0;
        for c in slow.iter_mut() {
            let mut b = [0u8; 256];
            // a read that neither ends nor answers: the node still holds it
            // (a closed one reads 0 bytes, or a 408 and then 0)
            let pending = tokio::time::timeout(Duration::from_millis(1), c.read(&mut b)).await;
            if pending.is_err() {
                open += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(open, 0, "half-sent requests still held after 20 s");
    drop(slow);

    // a flood from 127.0.0.2: 429 with Retry-After past its burst, while
    // 127.0.0.1 is served
    let client = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let mut limited = None;
    for _ in 0..200 {
        let r = client
            .get(format!("{}/health", node.url))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("200 requests at once from one address were all served");
    assert!(r.headers().get("retry-after").is_some());
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "rate_limited", "{e}");
    let waited = normal_wait(&node.url).await;
    eprintln!("request flood: normal client waited {waited:?}");

    // a memory bomb: stored, refused at run time with the budget named,
    // and the node keeps answering
    let files = dir.path().join("bomb.onnx");
    std::fs::write(
        &files,
        gradnet_runtime::generated::expand_bomb(&[200_000, 200_000]),
    )
    .unwrap();
    let c = gradnet_client::NodeClient::new(&node.url).with_key(ALICE.parse().unwrap());
    let _: Value = c
        .post("/api/v0/models", &json!({"name": "bomb"}))
        .await
        .unwrap();
    let _: Value = c
        .post("/api/v0/models/bomb/versions", &json!({}))
        .await
        .unwrap();
    c.upload("bomb", "1.00", &files, "model.onnx", true)
        .await
        .unwrap();
    let (st, e) = common::post(
        &format!("{}/v1/infer", node.url),
        json!({"model": "bomb@1.00/model.onnx", "inputs": {"x": [1.0]}}),
    )
    .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (422, Some("budget_exceeded")),
        "{e}"
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("limit"),
        "{e}"
    );
    let waited = normal_wait(&node.url).await;
    eprintln!("memory bomb: normal client waited {waited:?}");

    // a bomb in the model's constants is met when it loads: the upload says
    // this node will not run it and why; a run names the budget
    let folded = dir.path().join("folded.onnx");
    std::fs::write(
        &folded,
        gradnet_runtime::generated::folded_bomb(&[200_000, 200_000]),
    )
    .unwrap();
    let up = c
        .upload("bomb", "1.00", &folded, "folded.onnx", true)
        .await
        .unwrap();
    assert_eq!(up["runtime"]["runs_here"], false, "{up}");
    assert!(up["runtime"].to_string().contains("limit"), "{up}");
    let (st, e) = common::post(
        &format!("{}/v1/infer", node.url),
        json!({"model": "bomb@1.00/folded.onnx", "inputs": {"x": [1.0]}}),
    )
    .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (422, Some("budget_exceeded")),
        "{e}"
    );
}

/// GET `url` as JSON with its status.
async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Waits until every node in `apis` lists `name@version` with `cid`.
async fn listed_everywhere(apis: &[String], name: &str, version: &str, cid: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for api in apis {
        loop {
            let (st, files) = get(&format!(
                "{api}/api/v0/models/{name}/versions/{version}/files"
            ))
            .await;
            if st == 200 && files[0]["cid"] == cid {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{api} does not list {name}@{version}: {st} {files}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_published_on_chain_resolve_the_same_on_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let free = ["--prices", "0,0,0"];
    let net = crate::common::devnet::Devnet::start_with(&dir.path().join("net"), 4, &free);
    let (alice, bob) = (net.keys[0].clone(), net.keys[1].clone());
    let model = dir.path().join("model.onnx");
    std::fs::write(&model, gradnet_runtime::generated::mlp(4, 8, 3, 3)).unwrap();
    let cli = |node: &str, key: &str, args: &[&str]| {
        let mut a = vec!["--node", node, "model", "--key", key];
        a.extend(args);
        let out = std::process::Command::new(common::BIN)
            .args(&a)
            .env("GRADNET_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr(&out),
        )
    };
    let m = model.to_str().unwrap();
    // Alice publishes through validator 0
    let (ok, out, err) = cli(
        &net.apis[0],
        &alice,
        &["publish", "alice-model", m, "--rpc", &net.rpcs[0]],
    );
    assert!(ok, "{err}");
    let published: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(published["version"], "1.00", "{published}");
    let cid = published["files"][0]["cid"].as_str().unwrap().to_string();
    // every validator, and the inference nodes (through a validator's JSON-RPC)
    let everyone: Vec<String> = net.apis.iter().chain(&net.inference).cloned().collect();
    listed_everywhere(&everyone, "alice-model", "1.00", &cid).await;
    for api in &everyone {
        let (_, r) = get(&format!("{api}/api/v0/models/alice-model")).await;
        assert_eq!(r["repo"]["owner"], address(&alice), "{api}: {r}");
    }
    // validator 3 and an inference node run it by name (fetching the bytes
    // from a peer by id)
    for api in [&net.apis[3], &net.inference[1]] {
        let (st, r) = common::post(
            &format!("{api}/v1/infer"),
            json!({"model": "alice-model@1.00/model.onnx", "inputs": {"x": [[1, 2, 3, 4]]}}),
        )
        .await;
        assert_eq!(
            (st, r["model"].as_str()),
            (200, Some(cid.as_str())),
            "{api}: {r}"
        );
    }
    // Bob's publish is refused by the chain, so by every node
    let (ok, _, err) = cli(
        &net.apis[1],
        &bob,
        &["publish", "alice-model", m, "--rpc", &net.rpcs[1]],
    );
    assert!(!ok && err.contains("may not publish"), "{err}");
    // a local write to the chain's name is refused too
    let (st, e) = common::post(
        &format!("{}/api/v0/models/alice-model/versions", net.apis[2]),
        json!({}),
    )
    .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (409, Some("names_on_chain")),
        "{e}"
    );
    // Alice adds Bob on chain; his publish then succeeds, as 1.01
    let (ok, _, err) = cli(
        &net.apis[0],
        &alice,
        &[
            "collaborator",
            "alice-model",
            &address(&bob),
            "--rpc",
            &net.rpcs[0],
        ],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = cli(
        &net.apis[2],
        &bob,
        &[
            "publish",
            "alice-model",
            m,
            "--rpc",
            &net.rpcs[2],
            "--notes",
            "by bob",
        ],
    );
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], "1.01", "{v}");
    listed_everywhere(&everyone, "alice-model", "1.01", &cid).await;
    // (the inference nodes follow the registry's events: the collaborator too)
    for api in &everyone {
        let (_, r) = get(&format!("{api}/api/v0/models/alice-model")).await;
        assert_eq!(
            r["repo"]["collaborators"],
            json!([address(&bob)]),
            "{api}: {r}"
        );
    }
    // a version naming bytes no node holds: published (the chain cannot
    // know), then refused by every node with the reason
    let ghost = gradnet_types::ContentId::of(b"on no node").to_string();
    let mut tx = gradnet_client::Sender::new(
        gradnet_client::Rpc::new(&net.rpcs[0]).unwrap(),
        alice.parse().unwrap(),
    )
    .await
    .unwrap();
    let publish = gradnet_inference::model_registry::IModelRegistry::publishVersionCall {
        name: "alice-model".into(),
        major: false,
        notes: String::new(),
        files: vec![gradnet_inference::model_registry::ModelFile {
            name: "ghost.onnx".into(),
            cid: ghost.clone(),
            size: 10,
        }],
    };
    use alloy_sol_types::SolCall;
    tx.send(
        gradnet_inference::model_registry::ADDRESS,
        publish.abi_encode(),
        2_000_000,
    )
    .await
    .unwrap();
    listed_everywhere(&net.apis, "alice-model", "1.02", &ghost).await;
    let (st, e) = common::post(
        &format!("{}/v1/infer", net.apis[2]),
        json!({"model": "alice-model@1.02/ghost.onnx", "inputs": {"x": [[1, 2, 3, 4]]}}),
    )
    .await;
    assert_eq!(st, 404, "{e}");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&ghost) && msg.contains("hub peers"), "{msg}");
    net.stop();

    // the whole network restarted: the names, owner and collaborator come
    // back from the chain on every node, and still bind
    let net = crate::common::devnet::Devnet::start_with(&dir.path().join("net"), 4, &free);
    let everyone: Vec<String> = net.apis.iter().chain(&net.inference).cloned().collect();
    listed_everywhere(&everyone, "alice-model", "1.01", &cid).await;
    for api in &everyone {
        let (_, r) = get(&format!("{api}/api/v0/models/alice-model")).await;
        assert_eq!(r["repo"]["owner"], address(&alice), "{api}: {r}");
        assert_eq!(
            r["repo"]["collaborators"],
            json!([address(&bob)]),
            "{api}: {r}"
        );
    }
    let stranger = net.keys[2].clone();
    let (ok, _, err) = cli(
        &net.apis[3],
        &stranger,
        &["publish", "alice-model", m, "--rpc", &net.rpcs[3]],
    );
    assert!(!ok && err.contains("may not publish"), "{err}");
    net.stop();
}

/// A signed upload of `declared` bytes of which only `sent` go out before
/// the connection closes.
async fn cut_upload(
    addr: std::net::SocketAddr,
    key: &str,
    path: &str,
    declared: usize,
    sent: usize,
) {
    let file = vec![5u8; declared];
    let hash = gradnet_client::auth::body_hash(&file);
    let h = gradnet_client::auth::sign(
        &key.parse().unwrap(),
        gradnet_api::DEFAULT_CHAIN_ID,
        "POST",
        path,
        hash,
    )
    .unwrap();
    let head = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n";
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n{}: {hash}\r\n",
        head.len() + declared + 9,
        gradnet_client::auth::BODY_HASH_HEADER
    );
    for (n, v) in h.pairs() {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(req.as_bytes()).await.unwrap();
    c.write_all(head).await.unwrap();
    c.write_all(&file[..sent]).await.unwrap();
    c.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(c); // cut off mid-body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_hold_and_a_cut_upload_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = strict_config(dir.path());
    let node = Node::start_strict(
        &dir.path().join("node"),
        &["--config", cfg.to_str().unwrap()],
    );
    let addr: std::net::SocketAddr = node.url.trim_start_matches("http://").parse().unwrap();
    let c = gradnet_client::NodeClient::new(&node.url).with_key(ALICE.parse().unwrap());
    let _: Value = c
        .post("/api/v0/models", &json!({"name": "q"}))
        .await
        .unwrap();
    let _: Value = c
        .post("/api/v0/models/q/versions", &json!({}))
        .await
        .unwrap();
    let usage = || async {
        let (_, v) = get(&format!("{}/api/v0/accounts/{}", node.url, address(ALICE))).await;
        v["bytes_stored"].as_u64().unwrap()
    };
    let files = || async {
        let (_, v) = get(&format!("{}/api/v0/models/q/versions/1.00/files", node.url)).await;
        v.as_array().unwrap().len()
    };
    // an upload cut off mid-body: nothing listed, no quota used
    cut_upload(
        addr,
        ALICE,
        "/api/v0/models/q/versions/1.00/files?name=cut.bin",
        50_000,
        20_000,
    )
    .await;
    assert_eq!((files().await, usage().await), (0, 0));
    // 60 kB of a 100 kB quota, then 60 kB more: refused, naming the quota
    let f = dir.path().join("a.bin");
    std::fs::write(&f, vec![1u8; 60_000]).unwrap();
    c.upload("q", "1.00", &f, "a.bin", true).await.unwrap();
    assert_eq!(usage().await, 60_000);
    std::fs::write(&f, vec![2u8; 60_000]).unwrap();
    let e = c
        .upload("q", "1.00", &f, "b.bin", true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("quota_exceeded") && e.contains("60000 of 100000"),
        "{e}"
    );
    assert_eq!((files().await, usage().await), (1, 60_000));
    let waited = normal_wait(&node.url).await;
    eprintln!("quota refusal: normal client waited {waited:?}");
}
