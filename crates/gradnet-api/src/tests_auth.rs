//! Signed hub writes against a node that is not in development mode:
//! ownership, collaborators, forged / replayed / stale / wrong-chain
//! signatures, body hashes, quotas and per-account rates.

use alloy_primitives::B256;
use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use gradnet_client::auth;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{router, ApiConfig, AppState};

const ALICE: B256 = B256::repeat_byte(0xa1);
const BOB: B256 = B256::repeat_byte(0xb0);

fn strict_node(config: ApiConfig, hub: gradnet_hub::HubConfig) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = gradnet_runtime::RuntimeConfig {
        threads: 1,
        ..Default::default()
    };
    let state = AppState::open(dir.path(), hub, runtime, config).unwrap();
    (state, dir)
}

fn account(key: &B256) -> String {
    gradnet_client::wallet::address(key)
        .unwrap()
        .to_checksum(None)
}

/// A request signed by `key` (on `chain`), its body hashed as the node will.
fn signed(key: &B256, chain: u64, method: &str, uri: &str, body: &[u8]) -> Request<Body> {
    let h = auth::sign(key, chain, method, uri, auth::body_hash(body)).unwrap();
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    for (n, v) in h.pairs() {
        req = req.header(n, v);
    }
    req.body(Body::from(body.to_vec())).unwrap()
}

async fn send(s: &AppState, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    let r = router(s.clone()).oneshot(req).await.unwrap();
    let (parts, body) = r.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap();
    (
        parts.status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        parts.headers,
    )
}

async fn post(s: &AppState, key: &B256, uri: &str, body: Value) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(&body).unwrap();
    let (st, v, _) = send(s, signed(key, s.config.chain_id, "POST", uri, &bytes)).await;
    (st, v)
}

/// A signed multipart upload of `bytes`; `signed_bytes` is what the
/// signature's file hash covers.
fn upload(key: &B256, chain: u64, uri: &str, bytes: &[u8], signed_bytes: &[u8]) -> Request<Body> {
    let hash = auth::body_hash(signed_bytes);
    let h = auth::sign(key, chain, "POST", uri, hash).unwrap();
    let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    body.extend_from_slice(bytes);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let mut req = Request::post(uri)
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XyZ")
        .header(auth::BODY_HASH_HEADER, hash.to_string());
    for (n, v) in h.pairs() {
        req = req.header(n, v);
    }
    req.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn owners_and_collaborators_publish_and_strangers_are_refused() {
    let (s, _d) = strict_node(ApiConfig::default(), Default::default());
    // unsigned writes are refused; reads are public
    let req = Request::post("/api/v0/models")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"name":"alice-model"}"#))
        .unwrap();
    let (st, e, _) = send(&s, req).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{e}");
    assert_eq!(e["error"]["code"], "signature_required");
    let (st, r) = post(&s, &ALICE, "/api/v0/models", json!({"name": "alice-model"})).await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    assert_eq!(r["owner"], account(&ALICE));
    // first registrant owns the name
    let (st, e) = post(&s, &BOB, "/api/v0/models", json!({"name": "alice-model"})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    // claiming someone else as owner
    let (st, e) = post(
        &s,
        &BOB,
        "/api/v0/models",
        json!({"name": "bobs", "owner": account(&ALICE)}),
    )
    .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{e}"
    );
    let versions = "/api/v0/models/alice-model/versions";
    let (st, e) = post(&s, &BOB, versions, json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("owned by"),
        "{e}"
    );
    let (st, _) = post(&s, &ALICE, versions, json!({})).await;
    assert_eq!(st, StatusCode::CREATED);
    // Bob cannot upload into Alice's version, nor add himself
    let files = "/api/v0/models/alice-model/versions/1.00/files?name=w.bin";
    let (st, e, _) = send(&s, upload(&BOB, s.config.chain_id, files, b"bob", b"bob")).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
    let collab = "/api/v0/models/alice-model/collaborators";
    let (st, _) = post(&s, &BOB, collab, json!({"account": account(&BOB)})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Alice adds Bob: now he publishes
    let (st, r) = post(&s, &ALICE, collab, json!({"account": account(&BOB)})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["collaborators"], json!([account(&BOB)]));
    let (st, v) = post(&s, &BOB, versions, json!({"notes": "by bob"})).await;
    assert_eq!(
        (st, v["versionString"].as_str()),
        (StatusCode::CREATED, Some("1.01")),
        "{v}"
    );
    let (st, f, _) = send(&s, upload(&BOB, s.config.chain_id, files, b"bob", b"bob")).await;
    assert_eq!(st, StatusCode::CREATED, "{f}");
    // a collaborator cannot transfer; the owner can
    let owner = "/api/v0/models/alice-model/owner";
    let (st, _) = post(&s, &BOB, owner, json!({"account": account(&BOB)})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, r) = post(&s, &ALICE, owner, json!({"account": account(&BOB)})).await;
    assert_eq!(
        (st, r["owner"].as_str()),
        (StatusCode::OK, Some(account(&BOB).as_str())),
        "{r}"
    );
    let (st, _) = post(&s, &ALICE, versions, json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "Alice gave it away");
    // reads need no signature
    let (st, r, _) = send(
        &s,
        Request::get("/api/v0/models/alice-model")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (st, r["repo"]["owner"].as_str()),
        (StatusCode::OK, Some(account(&BOB).as_str()))
    );
}

#[tokio::test]
async fn forged_replayed_stale_and_wrong_chain_signatures_are_refused() {
    let (s, _d) = strict_node(ApiConfig::default(), Default::default());
    let chain = s.config.chain_id;
    let body = br#"{"name":"m"}"#;
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or("").to_string();
    // wrong chain
    let (st, e, _) = send(
        &s,
        signed(&ALICE, chain + 1, "POST", "/api/v0/models", body),
    )
    .await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::UNAUTHORIZED, "bad_signature".into()),
        "{e}"
    );
    // signed for another path
    let mut req = signed(&ALICE, chain, "POST", "/api/v0/models/x/versions", body);
    *req.uri_mut() = "/api/v0/models".parse().unwrap();
    let (st, e, _) = send(&s, req).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::UNAUTHORIZED, "bad_signature".into()),
        "{e}"
    );
    // Bob's signature claiming to be Alice
    let mut req = signed(&BOB, chain, "POST", "/api/v0/models", body);
    req.headers_mut()
        .insert(auth::ACCOUNT_HEADER, account(&ALICE).parse().unwrap());
    let (st, e, _) = send(&s, req).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::UNAUTHORIZED, "bad_signature".into()),
        "{e}"
    );
    // a tampered body
    let mut req = signed(&ALICE, chain, "POST", "/api/v0/models", body);
    *req.body_mut() = Body::from(r#"{"name":"n"}"#);
    let (st, e, _) = send(&s, req).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{e}");
    // a malformed header names itself
    let mut req = signed(&ALICE, chain, "POST", "/api/v0/models", body);
    req.headers_mut()
        .insert(auth::NONCE_HEADER, "0x12".parse().unwrap());
    let (st, e, _) = send(&s, req).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::UNAUTHORIZED, "bad_signature_header".into())
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains(auth::NONCE_HEADER),
        "{e}"
    );
    // stale: signed ten minutes ago
    let old = auth::now() - 600;
    let nonce = B256::repeat_byte(3);
    let hash = auth::signing_hash(
        chain,
        "POST",
        "/api/v0/models",
        auth::body_hash(body),
        old,
        nonce,
    );
    let h = auth::SignedHeaders {
        account: gradnet_client::wallet::address(&ALICE).unwrap(),
        signature: gradnet_client::wallet::sign_hash(&ALICE, &hash).unwrap(),
        timestamp: old,
        nonce,
    };
    let mut req = Request::post("/api/v0/models").header(header::CONTENT_TYPE, "application/json");
    for (n, v) in h.pairs() {
        req = req.header(n, v);
    }
    let (st, e, _) = send(&s, req.body(Body::from(body.to_vec())).unwrap()).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::UNAUTHORIZED, "stale_signature".into()),
        "{e}"
    );
    // the same signed request twice: the second is a replay
    let req = signed(&ALICE, chain, "POST", "/api/v0/models", body);
    let (parts, b) = req.into_parts();
    let again = Request::from_parts(parts.clone(), Body::empty());
    let (st, e, _) = send(&s, Request::from_parts(parts, b)).await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    let mut again = again;
    *again.body_mut() = Body::from(body.to_vec());
    let (st, e, _) = send(&s, again).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::UNAUTHORIZED, "replayed".into()),
        "{e}"
    );
    // and the node keeps serving
    let (st, _) = post(&s, &ALICE, "/api/v0/models", json!({"name": "m2"})).await;
    assert_eq!(st, StatusCode::CREATED);
}

#[tokio::test]
async fn uploads_check_the_signed_hash_and_the_quota_and_lose_nothing() {
    let hub = gradnet_hub::HubConfig {
        quota_bytes: 1000,
        ..Default::default()
    };
    let (s, _d) = strict_node(ApiConfig::default(), hub);
    let chain = s.config.chain_id;
    post(&s, &ALICE, "/api/v0/models", json!({"name": "q"})).await;
    post(&s, &ALICE, "/api/v0/models/q/versions", json!({})).await;
    let files = |n: &str| format!("/api/v0/models/q/versions/1.00/files?name={n}");
    let list = || async {
        let (_, v, _) = send(
            &s,
            Request::get("/api/v0/models/q/versions/1.00/files")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        v.as_array().unwrap().len()
    };
    // bytes that are not the signed ones
    let (st, e, _) = send(&s, upload(&ALICE, chain, &files("a.bin"), b"evil", b"good")).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("body_hash_mismatch")),
        "{e}"
    );
    assert_eq!(list().await, 0);
    // without ?name= the file name would not be signed
    let (st, _, _) = send(
        &s,
        upload(
            &ALICE,
            chain,
            "/api/v0/models/q/versions/1.00/files",
            b"x",
            b"x",
        ),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let usage = || async {
        let uri = format!("/api/v0/accounts/{}", account(&ALICE));
        let (_, v, _) = send(&s, Request::get(uri).body(Body::empty()).unwrap()).await;
        v["bytes_stored"].as_u64().unwrap()
    };
    assert_eq!(usage().await, 0, "refused uploads use no quota");
    let big = vec![7u8; 800];
    let (st, e, _) = send(&s, upload(&ALICE, chain, &files("a.bin"), &big, &big)).await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    assert_eq!(usage().await, 800);
    let more = vec![8u8; 300];
    let (st, e, _) = send(&s, upload(&ALICE, chain, &files("b.bin"), &more, &more)).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("quota_exceeded")),
        "{e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("800 of 1000"),
        "{e}"
    );
    assert_eq!((list().await, usage().await), (1, 800));
    // another account has its own quota
    let (st, _) = post(
        &s,
        &ALICE,
        "/api/v0/models/q/collaborators",
        json!({"account": account(&BOB)}),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, e, _) = send(&s, upload(&BOB, chain, &files("b.bin"), &more, &more)).await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
}

#[tokio::test]
async fn an_account_over_its_rate_gets_429_with_retry_after() {
    let config = ApiConfig {
        requests_per_account: 1,
        burst_per_account: 3,
        ..ApiConfig::default()
    };
    let (s, _d) = strict_node(config, Default::default());
    // forgeries claiming Alice's address do not spend her rate
    for _ in 0..10 {
        let mut req = signed(&BOB, s.config.chain_id, "POST", "/api/v0/models", b"{}");
        req.headers_mut()
            .insert(auth::ACCOUNT_HEADER, account(&ALICE).parse().unwrap());
        let (st, e, _) = send(&s, req).await;
        assert_eq!(e["error"]["code"], "bad_signature", "{st} {e}");
    }
    let mut refused = None;
    for i in 0..6 {
        let body = serde_json::to_vec(&json!({"name": format!("r{i}")})).unwrap();
        let (st, e, h) = send(
            &s,
            signed(&ALICE, s.config.chain_id, "POST", "/api/v0/models", &body),
        )
        .await;
        if st == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((e, h));
            break;
        }
        assert_eq!(st, StatusCode::CREATED, "{e}");
    }
    let (e, h) = refused.expect("a burst of 3 at 1/s cannot take 6 requests");
    assert_eq!(e["error"]["code"], "rate_limited");
    assert!(h.get(header::RETRY_AFTER).is_some());
    // Bob is not limited by Alice's rate
    let (st, _) = post(&s, &BOB, "/api/v0/models", json!({"name": "bob"})).await;
    assert_eq!(st, StatusCode::CREATED);
}

/// A request carrying `token` as its bearer session.
fn with_token(method: &str, uri: &str, token: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_session_token_stands_for_a_signature_until_it_expires_or_signs_out() {
    let (s, dir) = strict_node(ApiConfig::default(), Default::default());
    // signing in takes a signature
    let unsigned = Request::post("/api/v0/sessions")
        .body(Body::empty())
        .unwrap();
    let (st, e, _) = send(&s, unsigned).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::UNAUTHORIZED, "signature_required")
    );
    for ttl in [0, 86_401] {
        let (st, e) = post(&s, &ALICE, "/api/v0/sessions", json!({ "ttl_secs": ttl })).await;
        assert_eq!(
            (st, code(&e)),
            (StatusCode::BAD_REQUEST, "invalid_ttl"),
            "{e}"
        );
    }
    let (st, r) = post(&s, &ALICE, "/api/v0/sessions", json!({ "ttl_secs": 600 })).await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    assert_eq!(r["account"], account(&ALICE));
    assert_eq!(r["expires_in"], 600);
    let alice = r["token"].as_str().unwrap().to_string();
    let (_, r) = post(&s, &BOB, "/api/v0/sessions", json!({})).await;
    let bob = r["token"].as_str().unwrap().to_string();

    // the token writes as Alice, uploads included; Bob's token is Bob
    let (st, r, _) = send(
        &s,
        with_token("POST", "/api/v0/models", &alice, r#"{"name":"tok"}"#),
    )
    .await;
    assert_eq!(
        (st, r["owner"].as_str()),
        (StatusCode::CREATED, Some(account(&ALICE).as_str())),
        "{r}"
    );
    let versions = "/api/v0/models/tok/versions";
    let (st, e, _) = send(&s, with_token("POST", versions, &bob, "{}")).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
    let (st, _, _) = send(&s, with_token("POST", versions, &alice, "{}")).await;
    assert_eq!(st, StatusCode::CREATED);
    let mut up = upload(
        &ALICE,
        s.config.chain_id,
        "/api/v0/models/tok/versions/1.00/files?name=w.bin",
        b"w",
        b"w",
    );
    for h in [
        auth::ACCOUNT_HEADER,
        auth::SIGNATURE_HEADER,
        auth::TIMESTAMP_HEADER,
        auth::NONCE_HEADER,
    ] {
        up.headers_mut().remove(h);
    }
    up.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {alice}").parse().unwrap(),
    );
    let (st, f, _) = send(&s, up).await;
    assert_eq!(st, StatusCode::CREATED, "{f}");

    // a token cannot open another session; an altered one is refused
    let (st, e, _) = send(&s, with_token("POST", "/api/v0/sessions", &alice, "{}")).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::UNAUTHORIZED, "signature_required"),
        "{e}"
    );
    let forged = alice.replace(
        &alloy_primitives::hex::encode(gradnet_client::wallet::address(&ALICE).unwrap()),
        &alloy_primitives::hex::encode(gradnet_client::wallet::address(&BOB).unwrap()),
    );
    let (st, e, _) = send(&s, with_token("POST", versions, &forged, "{}")).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::UNAUTHORIZED, "bad_session_token"),
        "{e}"
    );
    // an expired one
    let (old, _) = s.sessions.issue(
        gradnet_client::wallet::address(&ALICE).unwrap(),
        auth::now() - 1,
    );
    let (st, e, _) = send(&s, with_token("POST", versions, &old, "{}")).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::UNAUTHORIZED, "session_expired"),
        "{e}"
    );

    // whose it is; signing out ends it (and only it)
    let (st, r, _) = send(&s, with_token("GET", "/api/v0/sessions", &alice, "")).await;
    assert_eq!(
        (st, r["account"].as_str()),
        (StatusCode::OK, Some(account(&ALICE).as_str())),
        "{r}"
    );
    let (st, r, _) = send(&s, with_token("DELETE", "/api/v0/sessions", &alice, "")).await;
    assert_eq!(
        (st, r["signed_out"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{r}"
    );
    for req in [
        with_token("POST", versions, &alice, "{}"),
        with_token("GET", "/api/v0/sessions", &alice, ""),
    ] {
        let (st, e, _) = send(&s, req).await;
        assert_eq!(
            (st, code(&e)),
            (StatusCode::UNAUTHORIZED, "session_revoked"),
            "{e}"
        );
    }
    let (_, r) = post(&s, &ALICE, "/api/v0/sessions", json!({})).await;
    let alice2 = r["token"].as_str().unwrap().to_string();

    // a restart keeps both: the new session holds, the ended one stays ended
    drop(s);
    let s = AppState::open(
        dir.path(),
        Default::default(),
        Default::default(),
        ApiConfig::default(),
    )
    .unwrap();
    let (st, _, _) = send(&s, with_token("POST", versions, &alice2, "{}")).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, e, _) = send(&s, with_token("POST", versions, &alice, "{}")).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::UNAUTHORIZED, "session_revoked"),
        "{e}"
    );
    // a node of another chain does not take it
    drop(s);
    let other = ApiConfig {
        chain_id: 7,
        ..ApiConfig::default()
    };
    let s = AppState::open(dir.path(), Default::default(), Default::default(), other).unwrap();
    let (st, e, _) = send(&s, with_token("POST", versions, &alice2, "{}")).await;
    assert_eq!(
        (st, code(&e)),
        (StatusCode::UNAUTHORIZED, "bad_session_token"),
        "{e}"
    );
}
