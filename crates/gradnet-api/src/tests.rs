//! The API's router in process: requests through `tower`'s `oneshot`, no
//! sockets, against a real hub in a temporary directory and the
//! deterministic engine running generated models.

use axum::body::{to_bytes, Body};
use axum::http::{header, HeaderMap, Request, StatusCode};
use gradnet_runtime::RuntimeConfig;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{router, ApiConfig, AppState};

struct Node {
    state: AppState,
    _dir: tempfile::TempDir,
}

/// A node in development mode (unsigned hub writes accepted).
fn node(config: ApiConfig) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let runtime = RuntimeConfig {
        threads: 1,
        ..RuntimeConfig::default()
    };
    let config = ApiConfig {
        dev_mode: true,
        ..config
    };
    let state = AppState::open(dir.path(), Default::default(), runtime, config).unwrap();
    Node { state, _dir: dir }
}

async fn send(s: &AppState, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let r = router(s.clone()).oneshot(req).await.unwrap();
    let (parts, body) = r.into_parts();
    let body = to_bytes(body, 64 << 20).await.unwrap().to_vec();
    (parts.status, parts.headers, body)
}

async fn call(s: &AppState, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder().method(method).uri(uri);
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&b).unwrap())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let (status, _, body) = send(s, req).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Creates `repo` with one version holding `bytes` as `model.onnx`, through
/// the hub's routes (a multipart upload); returns the model reference and
/// its content id.
async fn publish(s: &AppState, repo: &str, bytes: &[u8]) -> (String, String) {
    let (st, up, model) = try_publish(s, repo, bytes).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    (model, up["cid"].as_str().unwrap().to_string())
}

/// [`publish`] up to the upload's answer.
async fn try_publish(s: &AppState, repo: &str, bytes: &[u8]) -> (StatusCode, Value, String) {
    let (st, r) = call(
        s,
        "POST",
        "/api/v0/models",
        Some(json!({"name": repo, "task": "test"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let versions = format!("/api/v0/models/{repo}/versions");
    let (st, v) = call(
        s,
        "POST",
        &versions,
        Some(json!({"notes": "", "is_major": false})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let ver = v["versionString"].as_str().unwrap().to_string();
    let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"model.onnx\"\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    body.extend_from_slice(bytes);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let req = Request::post(format!("{versions}/{ver}/files"))
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XyZ")
        .body(Body::from(body))
        .unwrap();
    let (st, _, up) = send(s, req).await;
    (
        st,
        serde_json::from_slice(&up).unwrap(),
        format!("{repo}@{ver}/model.onnx"),
    )
}

fn mlp() -> Vec<u8> {
    gradnet_runtime::generated::mlp(4, 8, 3, 7)
}

#[tokio::test]
async fn health_names_the_node_and_its_deterministic_runtime() {
    let n = node(ApiConfig::default());
    let (st, h) = call(&n.state, "GET", "/health", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["node"], n.state.key.public_hex());
    assert_eq!(h["runtime"]["profile"], "det-1", "{h}");
}

#[tokio::test]
async fn a_published_model_answers_with_a_receipt_that_verifies() {
    let n = node(ApiConfig::default());
    let (model, cid) = publish(&n.state, "mlp", &mlp()).await;
    let body = json!({"model": model, "inputs": {"x": [[0.5, -1.0, 0.25, 3.0]]}});
    let (st, r) = call(&n.state, "POST", "/v1/infer", Some(body.clone())).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["model"], cid);
    assert_eq!(r["output_types"]["y"]["shape"], json!([1, 3]), "{r}");
    let receipt: gradnet_types::Receipt = serde_json::from_value(r["receipt"].clone()).unwrap();
    receipt.verify_from(&n.state.key.public_hex()).unwrap();
    assert_eq!(receipt.body.model.to_string(), cid);
    // by content id, the same output bytes
    let by_cid = json!({"model": cid, "inputs": body["inputs"]});
    let (_, again) = call(&n.state, "POST", "/v1/infer", Some(by_cid)).await;
    assert_eq!(again["outputs"], r["outputs"]);
    assert_eq!(again["receipt"]["output_hash"], r["receipt"]["output_hash"]);
    let text = n.state.metrics.render(&n.state);
    assert!(
        text.contains("gradnet_model_runs_total{caller=\"infer\",kind=\"onnx\",outcome=\"ok\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("gradnet_http_requests_total{route=\"/v1/infer\",status=\"200\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn bad_requests_get_precise_errors_and_the_node_keeps_serving() {
    let n = node(ApiConfig {
        max_request_bytes: 4096,
        ..ApiConfig::default()
    });
    let (model, _) = publish(&n.state, "mlp", &mlp()).await;
    let s = &n.state;
    let cases = [
        (
            json!({"model": model, "inputs": {"x": [[1.0, 2.0]]}}),
            400,
            "invalid_tensor",
        ),
        (
            json!({"model": model, "inputs": {"nope": [[1.0, 2.0, 3.0, 4.0]]}}),
            400,
            "invalid_tensor",
        ),
        (
            json!({"model": "mlp@9.99/model.onnx", "inputs": {"x": [[1, 2, 3, 4]]}}),
            404,
            "not_found",
        ),
        (json!({"model": "", "inputs": {}}), 400, "invalid_model"),
        (
            json!({"model": model, "inputs": {"x": [[1, 2, 3, 4]]}, "mode": "QUORUM"}),
            400,
            "unsupported_mode",
        ),
    ];
    for (body, status, code) in cases {
        let (st, r) = call(s, "POST", "/v1/infer", Some(body.clone())).await;
        assert_eq!(
            (st.as_u16(), r["error"]["code"].as_str()),
            (status, Some(code)),
            "{body} → {r}"
        );
        assert!(!r["error"]["message"].as_str().unwrap().is_empty());
    }
    let malformed = Request::post("/v1/infer")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"model\": "))
        .unwrap();
    let (st, _, r) = send(s, malformed).await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&r)
    );
    let big = json!({"model": model, "inputs": {"x": [vec![1.0; 2000]]}});
    let (st, r) = call(s, "POST", "/v1/infer", Some(big)).await;
    assert_eq!(
        (st, r["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large")),
        "{r}"
    );
    let (st, r) = call(
        s,
        "POST",
        "/api/v0/models",
        Some(json!({"name": "../etc", "task": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{r}");
    // a corrupt model is refused at upload with its reason, and not stored
    let (st, r, broken) = try_publish(s, "broken", b"not an onnx model").await;
    assert_eq!(
        (st, r["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("model_unloadable")),
        "{r}"
    );
    let (st, r) = call(
        s,
        "POST",
        "/v1/infer",
        Some(json!({"model": broken, "inputs": {"x": [[1, 2, 3, 4]]}})),
    )
    .await;
    assert_eq!(
        (st, r["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{r}"
    );
    // and the node still serves
    let (st, r) = call(
        s,
        "POST",
        "/v1/infer",
        Some(json!({"model": model, "inputs": {"x": [[1, 2, 3, 4]]}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
}

/// `workers: 1, queue_depth: 0`: while a long run holds the only place, a
/// second request is refused at once (429, Retry-After), counted as
/// refused, and served once the place is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once_and_frees_its_place() {
    let n = node(ApiConfig {
        workers: 1,
        queue_depth: 0,
        ..ApiConfig::default()
    });
    let s = n.state.clone();
    let (busy, _) = publish(&s, "busy", &gradnet_runtime::generated::busy(8192, 48, 1)).await;
    let (model, _) = publish(&s, "mlp", &mlp()).await;
    let x = json!({"x": [[0.5, -1.0, 0.25, 3.0]]});
    let long = tokio::spawn({
        let (s, x) = (s.clone(), x.clone());
        async move {
            call(
                &s,
                "POST",
                "/v1/infer",
                Some(json!({"model": busy, "inputs": x})),
            )
            .await
        }
    });
    let started = std::time::Instant::now();
    while s.metrics.inflight.get() == 0 {
        assert!(
            started.elapsed().as_secs() < 60,
            "the long run did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let req = Request::post("/v1/infer")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            serde_json::to_vec(&json!({"model": model, "inputs": x})).unwrap(),
        ))
        .unwrap();
    let (st, headers, r) = send(&s, req).await;
    assert_eq!(
        s.metrics.inflight.get(),
        1,
        "the long run ended too soon to test the bound"
    );
    assert_eq!(
        st,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        String::from_utf8_lossy(&r)
    );
    assert_eq!(headers[header::RETRY_AFTER], "1");
    let (st, r) = long.await.unwrap();
    assert_eq!(st, StatusCode::OK, "{r}");
    let (st, r) = call(
        &s,
        "POST",
        "/v1/infer",
        Some(json!({"model": model, "inputs": x})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let text = s.metrics.render(&s);
    for line in [
        "gradnet_model_runs_total{caller=\"infer\",kind=\"onnx\",outcome=\"refused\"} 1",
        "gradnet_model_runs_total{caller=\"infer\",kind=\"onnx\",outcome=\"ok\"} 2",
        "gradnet_model_run_duration_seconds_count{caller=\"infer\",kind=\"onnx\"} 2",
        "gradnet_http_errors_total{code=\"overloaded\"} 1",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}

#[tokio::test]
async fn openai_routes_refuse_unknown_models_in_openai_shape() {
    let n = node(ApiConfig::default());
    let body = json!({"model": "nobody", "messages": [{"role": "user", "content": "hi"}]});
    let (st, r) = call(&n.state, "POST", "/v1/chat/completions", Some(body)).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{r}");
    assert_eq!(r["error"]["type"], "invalid_request_error", "{r}");
    let (st, r) = call(&n.state, "GET", "/v1/models", None).await;
    assert_eq!(
        (st, r["object"].as_str()),
        (StatusCode::OK, Some("list")),
        "{r}"
    );
    let bad = json!({"model": "nobody", "messages": [], "temperature": 7});
    let (st, r) = call(&n.state, "POST", "/v1/chat/completions", Some(bad)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{r}");
    assert!(r["error"]["param"].is_string(), "{r}");
}
