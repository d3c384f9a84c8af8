//! LLM serving: time to first token and decode tokens/s through the
//! streaming HTTP API vs the same generation in process (interleaved), and
//! aggregate throughput with 8 concurrent clients vs 1, on SmolLM2.
//! Usage: llm-serving [ROUNDS] [LLM_SLOTS] (slots default to the node's default)

use std::time::Instant;

use futures::StreamExt;
use gradnet_api::{ApiConfig, AppState};
use gradnet_hub::{Hub, HubConfig};
use gradnet_runtime::llm::SamplingParams;
use gradnet_runtime::{OnnxRunner, RuntimeConfig};
use gradnet_types::NodeKey;
use serde_json::{json, Value};

const TOKENS: usize = 64;

fn messages() -> Value {
    json!([{"role": "system", "content": "You are a helpful assistant."},
           {"role": "user", "content": "Write a long story about a dragon who learns to bake bread in a small mountain village."}])
}

/// (time to first token in s, decode tokens/s, completion tokens) of one streamed request.
async fn http_once(client: &reqwest::Client, base: &str) -> (f64, f64, usize) {
    let started = Instant::now();
    let r = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": "smollm2", "messages": messages(), "temperature": 0, "max_tokens": TOKENS,
                      "stream": true, "stream_options": {"include_usage": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let (mut first, mut n, mut buf) = (None, 0, String::new());
    while let Some(chunk) = body.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let data = event.trim().trim_start_matches("data: ");
            if data == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(data).unwrap();
            if v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
            {
                first.get_or_insert_with(|| started.elapsed().as_secs_f64());
            }
            if let Some(c) = v["usage"]["completion_tokens"].as_u64() {
                n = c as usize;
            }
        }
    }
    let total = started.elapsed().as_secs_f64();
    let ttft = first.unwrap();
    (ttft, (n - 1) as f64 / (total - ttft), n)
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|r| r.parse().unwrap())
        .unwrap_or(5);
    let slots: usize = std::env::args()
        .nth(2)
        .map(|r| r.parse().unwrap())
        .unwrap_or(ApiConfig::default().llm_slots);
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::open(dir.path(), HubConfig::default()).unwrap();
    let state = AppState::new(
        hub,
        OnnxRunner::new(RuntimeConfig::default()).unwrap(),
        NodeKey::generate(),
        ApiConfig {
            llm_slots: slots,
            dev_mode: true,
            ..ApiConfig::default()
        },
    );
    let base = gradnet_bench::serve_in_process(state.clone()).await;
    let client = reqwest::Client::new();
    let bytes = std::fs::read(gradnet_bench::models_dir().join("smollm2-135m-instruct-q4_1.gguf"))
        .expect("run scripts/fetch-models");
    client
        .post(format!("{base}/api/v0/models"))
        .json(&json!({"name": "smollm2"}))
        .send()
        .await
        .unwrap();
    client
        .post(format!("{base}/api/v0/models/smollm2/versions"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("smollm2.gguf"),
    );
    let up: Value = client
        .post(format!("{base}/api/v0/models/smollm2/versions/1.00/files"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let model = state
        .llm
        .cached(&up["cid"].as_str().unwrap().parse().unwrap())
        .unwrap();
    let tpl: Vec<gradnet_runtime::llm::ChatMessage> =
        serde_json::from_value::<Vec<Value>>(messages())
            .unwrap()
            .into_iter()
            .map(|m| gradnet_runtime::llm::ChatMessage {
                role: m["role"].as_str().unwrap().into(),
                content: m["content"].as_str().unwrap().into(),
                name: None,
                tool_calls: None,
                tool_call_id: None,
            })
            .collect();
    let ids = model
        .encode(&model.chat_prompt(&tpl, None).unwrap())
        .unwrap();
    let params = SamplingParams {
        max_tokens: TOKENS,
        temperature: 0.0,
        ..Default::default()
    };
    http_once(&client, &base).await; // warm-up
    let (mut lt, mut ld, mut ht, mut hd) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        let m = model.clone();
        let (tpl, params) = (tpl.clone(), params.clone());
        // from messages, as the API starts: hand the work to a blocking
        // thread (as the server does), render the template, tokenize, generate
        let started = Instant::now();
        let (ttft, rate) = tokio::task::spawn_blocking(move || {
            let ids = m.encode(&m.chat_prompt(&tpl, None).unwrap()).unwrap();
            let mut first = None;
            let g = m
                .generate(&ids, &params, |_| {
                    first.get_or_insert_with(|| started.elapsed().as_secs_f64());
                    true
                })
                .unwrap();
            let total = started.elapsed().as_secs_f64();
            let f = first.unwrap();
            (f, (g.completion_tokens - 1) as f64 / (total - f))
        })
        .await
        .unwrap();
        lt.push(ttft);
        ld.push(rate);
        // both sides start from an idle machine (thread pools parked)
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let (t, r, _) = http_once(&client, &base).await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        ht.push(t);
        hd.push(r);
    }
    let (lt, ld, ht, hd) = (
        gradnet_bench::median(lt),
        gradnet_bench::median(ld),
        gradnet_bench::median(ht),
        gradnet_bench::median(hd),
    );
    println!(
        "SmolLM2-135M Q4_1, {} prompt tokens, {TOKENS} generated, greedy, {rounds} rounds",
        ids.len()
    );
    println!(
        "time to first token: in-process {:.1} ms, HTTP stream {:.1} ms, ratio {:.3}x",
        lt * 1e3,
        ht * 1e3,
        ht / lt
    );
    println!("decode: in-process {ld:.1} tok/s, HTTP stream {hd:.1} tok/s, ratio {:.3}x (in-process / HTTP)", ld / hd);

    // throughput: 8 requests one after another vs 8 at once
    let started = Instant::now();
    let mut n = 0;
    for _ in 0..8 {
        n += http_once(&client, &base).await.2;
    }
    let one = n as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (c, b) = (client.clone(), base.clone());
            tokio::spawn(async move { http_once(&c, &b).await.2 })
        })
        .collect();
    let mut n = 0;
    for h in handles {
        n += h.await.unwrap();
    }
    let eight = n as f64 / started.elapsed().as_secs_f64();
    println!("throughput ({slots} LLM slots): 1 client {one:.1} tok/s, 8 concurrent clients {eight:.1} tok/s, ratio {:.2}x", eight / one);
}
