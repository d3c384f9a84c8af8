//! The OpenAI-compatible API on a real node: SmolLM2 from scripts/fetch-models
//! and the tiny random GGUF built in code.

use crate::common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use gradnet_runtime::llm::sample;
use serde_json::{json, Value};

async fn chat(base: &str, body: Value) -> (u16, Value) {
    post(&format!("{base}/v1/chat/completions"), body).await
}

/// The data lines of a streamed answer, up to and including `[DONE]`.
async fn stream(base: &str, path: &str, body: Value) -> Vec<String> {
    let r = http()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_string))
        .collect()
}

fn user(text: &str) -> Value {
    json!([{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": text}])
}

#[tokio::test]
async fn smollm2_answers_through_the_api_whole_and_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let base = node.url.clone();
    let bytes = std::fs::read(real_model("smollm2-135m-instruct-q4_1.gguf")).unwrap();
    let (_, cid) = publish(&base, "smollm2", "smollm2-135m-instruct-q4_1.gguf", bytes).await;
    let models: Value = get_json(&format!("{base}/v1/models")).await;
    assert_eq!(models["data"][0]["id"], "smollm2");
    assert_eq!(models["object"], "list");

    let ask = json!({"model": "smollm2", "messages": user("What is the capital of France?"), "temperature": 0, "max_tokens": 30});
    let (s, a) = chat(&base, ask.clone()).await;
    assert_eq!(s, 200, "{a}");
    let text = a["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("Paris"), "{text}");
    assert_eq!(a["choices"][0]["finish_reason"], "stop");
    assert_eq!(a["object"], "chat.completion");
    let u = &a["usage"];
    assert_eq!(
        u["total_tokens"],
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(a["gradnet_receipt"]["model"], cid.as_str());
    assert_eq!(a["gradnet_receipt"]["kind"], "llm");
    // the same model by content id and by repo@version
    for name in [cid.as_str(), "smollm2@1.00"] {
        let mut b = ask.clone();
        b["model"] = json!(name);
        let (s, again) = chat(&base, b).await;
        assert_eq!(s, 200);
        assert_eq!(again["choices"][0]["message"]["content"], text);
        assert_eq!(
            again["gradnet_receipt"]["output_hash"],
            a["gradnet_receipt"]["output_hash"]
        );
    }

    // streamed: the deltas add up to the same text; the last chunk signs it
    let mut b = ask.clone();
    b["stream"] = json!(true);
    b["stream_options"] = json!({"include_usage": true});
    let events = stream(&base, "/v1/chat/completions", b).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, text);
    let fin = chunks
        .iter()
        .find(|c| !c["choices"][0]["finish_reason"].is_null())
        .unwrap();
    assert_eq!(fin["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        fin["gradnet_receipt"]["output_hash"],
        a["gradnet_receipt"]["output_hash"]
    );
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], a["usage"]);

    // the saved answer verifies offline; a changed answer does not
    let f = dir.path().join("answer.json");
    std::fs::write(&f, serde_json::to_vec(&a).unwrap()).unwrap();
    let out = node.cli(&["receipt", "verify", f.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut forged = a.clone();
    forged["choices"][0]["message"]["content"] = json!("The capital of France is Lyon.");
    std::fs::write(&f, serde_json::to_vec(&forged).unwrap()).unwrap();
    let out = node.cli(&["receipt", "verify", f.to_str().unwrap()]);
    assert!(!out.status.success());

    // JSON mode: the answer parses
    let (s, j) = chat(
        &base,
        json!({"model": "smollm2", "temperature": 0, "max_tokens": 60, "response_format": {"type": "json_object"},
               "messages": user("What is the capital of France? Answer with a JSON object of the form {\"capital\": \"<city>\"}.")}),
    )
    .await;
    assert_eq!(s, 200, "{j}");
    let content = j["choices"][0]["message"]["content"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(content).unwrap_or_else(|e| panic!("{e}: {content}"));
    assert!(parsed.is_object(), "{content}");
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    eprintln!("JSON mode answer: {content}");

    // completions: the same text for the same rendered prompt
    let (s, c) = post(
        &format!("{base}/v1/completions"),
        json!({"model": "smollm2", "prompt": "The capital of France is", "temperature": 0, "max_tokens": 5}),
    )
    .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["object"], "text_completion");
    assert_eq!(c["choices"][0]["finish_reason"], "length");
    assert_eq!(c["usage"]["completion_tokens"], 5);
}

#[tokio::test]
async fn sampling_rules_and_determinism_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--llm-slots", "2"]);
    let base = node.url.clone();
    publish(&base, "tiny", "tiny.gguf", sample::tiny_llama(3)).await;
    let req = |extra: Value| {
        let mut b = json!({"model": "tiny", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 24});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let (s, greedy) = chat(&base, req(json!({"temperature": 0}))).await;
    assert_eq!(s, 200, "{greedy}");
    let text = greedy["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    // eight at once: every greedy answer is the same as alone; seeds repeat
    let mut handles = vec![];
    for i in 0..8 {
        let base = base.clone();
        let body = if i % 2 == 0 {
            req(json!({"temperature": 0}))
        } else {
            req(json!({"temperature": 0.8, "seed": 42}))
        };
        handles.push(tokio::spawn(async move { chat(&base, body).await }));
    }
    let mut seeded = vec![];
    for (i, h) in handles.into_iter().enumerate() {
        let (s, v) = h.await.unwrap();
        assert_eq!(s, 200, "{v}");
        let t = v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string();
        if i % 2 == 0 {
            assert_eq!(t, text, "greedy answers do not depend on concurrency");
        } else {
            seeded.push(t);
        }
    }
    assert!(seeded.windows(2).all(|w| w[0] == w[1]), "{seeded:?}");
    // max_tokens → length, with usage to match
    let (_, v) = chat(&base, req(json!({"temperature": 0, "max_tokens": 3}))).await;
    if v["choices"][0]["finish_reason"] == "length" {
        assert_eq!(v["usage"]["completion_tokens"], 3);
    }
    // a stop sequence cuts the text before it; `stop` may be a list
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > 8 {
        let stop: String = chars[4..6].iter().collect();
        for s in [json!(stop), json!([stop, "never-there"])] {
            let (_, v) = chat(&base, req(json!({"temperature": 0, "stop": s}))).await;
            assert_eq!(v["choices"][0]["finish_reason"], "stop");
            assert_eq!(
                v["choices"][0]["message"]["content"],
                text[..text.find(&stop).unwrap()]
            );
        }
    }
}

#[tokio::test]
async fn bad_requests_get_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let base = node.url.clone();
    publish(&base, "tiny", "tiny.gguf", sample::tiny_llama(3)).await;
    let expect = |body: Value, status: u16, code: &'static str, needle: &'static str| {
        let base = base.clone();
        async move {
            let (s, v) = chat(&base, body.clone()).await;
            assert_eq!(
                (s, v["error"]["code"].as_str().unwrap_or("")),
                (status, code),
                "{body} → {v}"
            );
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.contains(needle), "`{msg}` should mention `{needle}`");
            assert!(v["error"]["type"].is_string());
        }
    };
    let hi = json!([{"role": "user", "content": "hi"}]);
    expect(
        json!({"model": "nope", "messages": hi}),
        404,
        "not_found",
        "`nope` does not exist",
    )
    .await;
    expect(
        json!({"model": "tiny", "messages": []}),
        400,
        "invalid_request",
        "at least one message",
    )
    .await;
    expect(
        json!({"model": "tiny", "messages": [{"role": "wizard", "content": "hi"}]}),
        400,
        "invalid_request",
        "role `wizard`",
    )
    .await;
    expect(
        json!({"model": "tiny", "messages": hi, "max_tokens": -5}),
        400,
        "invalid_request",
        "at least 1",
    )
    .await;
    expect(
        json!({"model": "tiny", "messages": hi, "n": 9}),
        400,
        "invalid_request",
        "n must be between 1 and 8",
    )
    .await;
    for (extra, needle) in [
        (json!({"logprobs": "yes"}), "logprobs must be a boolean"),
        (
            json!({"logprobs": true, "top_logprobs": 30}),
            "top_logprobs must be between 0 and 20",
        ),
        (json!({"top_logprobs": 2}), "needs logprobs: true"),
        (json!({"logit_bias": {"abc": 1}}), "token ids, got `abc`"),
        (
            json!({"logit_bias": {"5": 300}}),
            "logit_bias[5] must be a number in [-100, 100]",
        ),
        (
            json!({"logit_bias": {"99999": 1}}),
            "the vocabulary has 261 tokens",
        ),
        (
            json!({"audio": {"voice": "alloy"}}),
            "`audio`: audio output is not served",
        ),
        (json!({"modalities": ["text", "audio"]}), "only [\"text\"]"),
        (json!({"functions": []}), "send `tools`"),
        (
            json!({"response_format": {"type": "json_schema"}}),
            "json_schema.schema",
        ),
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x",
                "schema": {"type": "object", "properties": {"a": {"type": "string", "pattern": "^a"}}}}}}),
            "`pattern` is not supported",
        ),
    ] {
        let mut body = json!({"model": "tiny", "messages": hi});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        expect(body, 400, "invalid_request", needle).await;
    }
    // documented fields that change nothing are accepted
    let (s, v) = chat(
        &base,
        json!({"model": "tiny", "messages": hi, "max_tokens": 2, "store": false,
            "metadata": {"k": "v"}, "service_tier": "auto", "user": "u1", "parallel_tool_calls": true,
            "modalities": ["text"], "prompt_cache_key": "p", "safety_identifier": "s"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    expect(
        json!({"model": "tiny", "messages": hi, "temperature": 7}),
        400,
        "invalid_request",
        "temperature",
    )
    .await;
    expect(
        json!({"model": "tiny", "messages": hi, "frobnicate": true}),
        400,
        "invalid_request",
        "Unrecognized request argument supplied: frobnicate",
    )
    .await;
    expect(
        json!({"model": "tiny", "messages": "hi"}),
        400,
        "invalid_json",
        "messages",
    )
    .await;
    let tools = json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]);
    expect(
        json!({"model": "tiny", "messages": hi, "tools": tools,
            "tool_choice": {"type": "function", "function": {"name": "time"}}}),
        400,
        "invalid_request",
        "tool_choice names `time`, which is not among the tools",
    )
    .await;
    expect(
        json!({"model": "tiny", "messages": hi, "tool_choice": "required"}),
        400,
        "invalid_request",
        "`tools` is empty",
    )
    .await;
    expect(
        json!({"model": "tiny", "messages": hi, "tools": tools, "tool_choice": "sometimes"}),
        400,
        "invalid_request",
        "tool_choice must be",
    )
    .await;
    expect(
        json!({"model": "tiny", "messages": hi, "tools": tools, "response_format": {"type": "json_object"}}),
        400,
        "invalid_request",
        "cannot be combined with tools",
    )
    .await;
    expect(
        json!({"model": "tiny", "messages": hi, "response_format": {"type": "xml"}}),
        400,
        "invalid_request",
        "response_format type `xml`",
    )
    .await;
    let long = "hello ".repeat(200);
    expect(
        json!({"model": "tiny", "messages": [{"role": "user", "content": long}], "max_tokens": 10}),
        400,
        "context_length_exceeded",
        "maximum context length is 256 tokens",
    )
    .await;
    // a corrupt GGUF is refused at upload and not listed
    let mut broken = sample::tiny_llama(3);
    broken.truncate(broken.len() / 2);
    let (s, v) = upload(&base, "tiny", "1.00", "broken.gguf", broken).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("model_unloadable")),
        "{v}"
    );
    let r = http()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body("{\"model\": \"tiny\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // unknown URLs and methods answer with a JSON body that names them
    for (method, path, status, needle) in [
        (
            "POST",
            "/v1/nowhere",
            404,
            "Unknown request URL: POST /v1/nowhere",
        ),
        ("GET", "/v1/models/nope", 404, "`nope` does not exist"),
        (
            "DELETE",
            "/v1/chat/completions",
            405,
            "does not take DELETE",
        ),
    ] {
        let r = http()
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        let v: Value = r.json().await.unwrap();
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{method} {path}: {v}");
    }
    let v: Value = http()
        .get(format!("{base}/v1/models/tiny"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["id"].as_str(), v["object"].as_str()),
        (Some("tiny"), Some("model")),
        "{v}"
    );
    // still serving
    let (s, _) = chat(
        &base,
        json!({"model": "tiny", "messages": hi, "max_tokens": 2}),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_client_that_leaves_frees_its_slot_and_overload_gets_429() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--llm-slots", "1", "--llm-queue-depth", "0"]);
    let base = node.url.clone();
    publish(&base, "tiny", "tiny.gguf", sample::tiny_llama(3)).await;
    let long = json!({"model": "tiny", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 200, "temperature": 1, "stream": true});
    // a stream holds the only slot: a second request is refused at once
    let r = http()
        .post(format!("{base}/v1/chat/completions"))
        .json(&long)
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    body.next().await.unwrap().unwrap();
    let busy = http()
        .post(format!("{base}/v1/chat/completions"))
        .json(&long)
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 429);
    assert_eq!(busy.headers()["retry-after"], "1");
    // the client goes away mid-stream: its slot comes back promptly
    drop(body);
    let mut ok = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = http()
            .post(format!("{base}/v1/chat/completions"))
            .json(&json!({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            ok = true;
            break;
        }
        assert_eq!(r.status(), 429);
    }
    assert!(ok, "the slot of a client that left was not freed");
    let metrics = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("gradnet_llm_running 0"), "{metrics}");
    assert!(metrics.contains("gradnet_llm_tokens_total{kind=\"completion\"}"));
}

/// `/v1/responses`: text in (a string, or messages of text parts, with
/// instructions) and out, JSON Schema formats, the same answer and
/// receipt as the chat completion it describes; what it does not serve is
/// refused by name.
#[tokio::test]
async fn responses_api_serves_text_in_and_out() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let base = node.url.clone();
    let bytes = std::fs::read(real_model("smollm2-135m-instruct-q4_1.gguf")).unwrap();
    publish(&base, "smollm2", "smollm2.gguf", bytes).await;
    let url = format!("{base}/v1/responses");

    let (s, r) = post(
        &url,
        json!({"model": "smollm2", "instructions": "You are a helpful assistant.",
               "input": "What is the capital of France?", "temperature": 0, "max_output_tokens": 30}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["object"], "response");
    assert_eq!(r["status"], "completed");
    assert!(r["id"].as_str().unwrap().starts_with("resp_"));
    let out = &r["output"][0];
    assert_eq!(
        (&out["type"], &out["role"]),
        (&json!("message"), &json!("assistant"))
    );
    let text = out["content"][0]["text"].as_str().unwrap();
    assert_eq!(out["content"][0]["type"], "output_text");
    assert!(text.contains("Paris"), "{text}");
    let u = &r["usage"];
    assert_eq!(
        u["total_tokens"],
        u["input_tokens"].as_u64().unwrap() + u["output_tokens"].as_u64().unwrap()
    );
    // the same request as a chat completion: the same text, the same receipt
    let (_, c) = chat(
        &base,
        json!({"model": "smollm2", "messages": user("What is the capital of France?"),
               "temperature": 0, "max_completion_tokens": 30}),
    )
    .await;
    assert_eq!(c["choices"][0]["message"]["content"], text);
    assert_eq!(
        c["gradnet_receipt"]["request_hash"],
        r["gradnet_receipt"]["request_hash"]
    );
    // messages with text parts; a cut answer is incomplete
    let (s, r) = post(
        &url,
        json!({"model": "smollm2", "max_output_tokens": 3, "temperature": 0, "store": false,
               "input": [{"role": "user", "content": [{"type": "input_text", "text": "Count to ten."}]},
                         {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "1, 2"}]},
                         {"role": "user", "content": "Go on."}]}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "incomplete");
    assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(r["usage"]["output_tokens"], 3);
    // a JSON Schema format: the answer validates
    let schema = json!({"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}}, "required": ["city"], "additionalProperties": false});
    let (s, r) = post(
        &url,
        json!({"model": "smollm2", "input": "Name the capital of France as JSON.", "temperature": 0, "max_output_tokens": 40,
               "text": {"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": true}}}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let answer: Value =
        serde_json::from_str(r["output"][0]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert!(answer["city"].is_string(), "{answer}");
    assert_eq!(r["text"]["format"]["type"], "json_schema");

    for (body, param, says) in [
        (
            json!({"model": "smollm2", "input": "hi", "stream": true}),
            "stream",
            "/v1/chat/completions",
        ),
        (
            json!({"model": "smollm2", "input": "hi", "previous_response_id": "resp_1"}),
            "previous_response_id",
            "not stored",
        ),
        (
            json!({"model": "smollm2", "input": "hi", "tools": [{"type": "function", "name": "f"}]}),
            "tools",
            "tools",
        ),
        (
            json!({"model": "smollm2", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}),
            "input",
            "input_image",
        ),
        (
            json!({"model": "smollm2", "input": [{"type": "function_call_output", "output": "1"}]}),
            "input",
            "function_call_output",
        ),
        (
            json!({"model": "smollm2", "input": 7}),
            "input",
            "string or a non-empty list",
        ),
        (
            json!({"model": "smollm2", "input": "hi", "text": {"format": {"type": "yaml"}}}),
            "text",
            "json_schema",
        ),
        (
            json!({"model": "smollm2", "input": "hi", "max_output_tokens": 100000}),
            "input",
            "maximum context length",
        ),
        (
            json!({"model": "smollm2", "input": "hi", "max_output_tokens": 0}),
            "max_output_tokens",
            "at least 1",
        ),
    ] {
        let (s, e) = post(&url, body.clone()).await;
        assert_eq!(s, 400, "{body}: {e}");
        assert_eq!(e["error"]["param"], param, "{body}: {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(says),
            "{body}: {e}"
        );
    }
    let (s, e) = post(
        &url,
        json!({"model": "smollm2", "input": "hi", "frobnicate": 1}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("frobnicate"),
        "{e}"
    );
    node.stop();
}

/// The second model family through the API: Gemma 3 (its own template, a
/// SentencePiece vocabulary) calls an offered tool, reads the tool's answer
/// and goes on; greedy answers repeat with the same receipt.
#[tokio::test]
async fn gemma3_calls_a_tool_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let base = node.url.clone();
    let bytes = std::fs::read(real_model("gemma-3-270m-q4_k_m.gguf")).unwrap();
    publish(&base, "gemma3", "gemma3.gguf", bytes).await;
    let models: Value = get_json(&format!("{base}/v1/models/gemma3")).await;
    assert_eq!(models["id"], "gemma3");

    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}}, "required": ["city"]}}}]);
    let ask = json!({"model": "gemma3", "temperature": 0, "max_tokens": 60, "tools": tools,
        "tool_choice": "required", "parallel_tool_calls": false,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}]});
    let (s, a) = chat(&base, ask.clone()).await;
    assert_eq!(s, 200, "{a}");
    let choice = &a["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{a}");
    assert_eq!(
        choice["message"]["tool_calls"].as_array().unwrap().len(),
        1,
        "{a}"
    );
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather", "{a}");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{args}");
    let (_, again) = chat(&base, ask).await;
    assert_eq!(
        again["gradnet_receipt"]["output_hash"],
        a["gradnet_receipt"]["output_hash"]
    );

    // the tool's answer goes back; the model answers in text
    let (s, b) = chat(
        &base,
        json!({"model": "gemma3", "temperature": 0, "max_tokens": 30, "tools": tools,
            "messages": [{"role": "user", "content": "What is the weather in Paris?"},
                         choice["message"].clone(),
                         {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 24 degrees."}]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        ["stop", "length", "tool_calls"]
            .contains(&b["choices"][0]["finish_reason"].as_str().unwrap()),
        "{b}"
    );
    node.stop();
}
