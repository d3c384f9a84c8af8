//! LLM runtime: the tiny random GGUF built in code for the loading path and
//! the decoding rules; the real SmolLM2 for answers.

use gradnet_runtime::llm::{sample, ChatMessage, FinishReason, LlmModel, SamplingParams};
use gradnet_runtime::RuntimeError;
use gradnet_types::ContentId;

fn tiny() -> LlmModel {
    let bytes = sample::tiny_llama(7);
    LlmModel::load(ContentId::of(&bytes), &bytes).unwrap()
}

fn user(text: &str) -> Vec<ChatMessage> {
    vec![ChatMessage {
        role: "user".into(),
        content: text.into(),
        name: None,
        tool_calls: None,
        tool_call_id: None,
    }]
}

fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        max_tokens,
        temperature: 0.0,
        ..Default::default()
    }
}

#[test]
fn tiny_gguf_loads_with_its_tokenizer_and_template() {
    let m = tiny();
    assert_eq!(m.info.architecture, "llama");
    assert_eq!(m.info.context_length, sample::TINY_CONTEXT as usize);
    let prompt = m.chat_prompt(&user("hello"), None).unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
    );
    let ids = m.encode(&prompt).unwrap();
    // special tokens are single ids; the merges apply ("he", "ll")
    assert_eq!(ids[0], 257);
    assert!(ids.contains(&258));
    assert!(ids.contains(&259) && ids.contains(&260), "{ids:?}");
    assert_eq!(
        m.decode(&m.encode("héllo wörld 2024").unwrap()),
        "héllo wörld 2024"
    );
}

#[test]
fn greedy_and_seeded_sampling_are_reproducible() {
    let m = tiny();
    let ids = m
        .encode(&m.chat_prompt(&user("hello"), None).unwrap())
        .unwrap();
    let run = |p: &SamplingParams| m.generate(&ids, p, |_| true).unwrap();
    let a = run(&greedy(40));
    assert_eq!(a, run(&greedy(40)));
    let sampled = |seed| SamplingParams {
        max_tokens: 40,
        temperature: 0.9,
        top_p: Some(0.95),
        seed,
        stop: vec![],
        ..Default::default()
    };
    assert_eq!(run(&sampled(5)), run(&sampled(5)));
    assert!(
        (0..4).any(|s| run(&sampled(s)).text != run(&sampled(5)).text),
        "different seeds sample differently"
    );
    // the same bits whatever the thread count
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        assert_eq!(pool.install(|| run(&greedy(40))), a, "{threads} threads");
    }
}

#[test]
fn streamed_pieces_add_up_and_limits_hold() {
    let m = tiny();
    let ids = m.encode("hello").unwrap();
    let mut pieces = String::new();
    let g = m
        .generate(&ids, &greedy(30), |p| {
            pieces.push_str(p);
            true
        })
        .unwrap();
    assert_eq!(pieces, g.text);
    if g.finish_reason == FinishReason::Length {
        assert_eq!(g.completion_tokens, 30);
    }
    assert_eq!(g.prompt_tokens, ids.len());
    // a stop string taken from the greedy text cuts it there
    let full = m.generate(&ids, &greedy(60), |_| true).unwrap();
    let chars: Vec<char> = full.text.chars().collect();
    if chars.len() > 6 {
        let stop: String = chars[3..5].iter().collect();
        let mut streamed = String::new();
        let cut = m
            .generate(
                &ids,
                &SamplingParams {
                    stop: vec![stop.clone()],
                    ..greedy(60)
                },
                |p| {
                    streamed.push_str(p);
                    true
                },
            )
            .unwrap();
        assert_eq!(cut.finish_reason, FinishReason::Stop);
        assert_eq!(cut.text, full.text[..full.text.find(&stop).unwrap()]);
        assert_eq!(streamed, cut.text);
    }
    // a listener that goes away stops the generation
    let mut n = 0;
    let g = m
        .generate(&ids, &greedy(60), |_| {
            n += 1;
            n < 3
        })
        .unwrap();
    assert_eq!(g.finish_reason, FinishReason::Cancelled);
    assert!(g.completion_tokens < 60);
    // too long for the context window: refused, not truncated
    let long = vec![65u32; 250];
    match m.generate(&long, &greedy(10), |_| true) {
        Err(RuntimeError::ContextLength(msg)) => {
            assert!(
                msg.contains("maximum context length is 256 tokens"),
                "{msg}"
            )
        }
        other => panic!("expected a context error, got {other:?}"),
    }
}

#[test]
fn corrupt_gguf_is_unloadable() {
    let mut bytes = sample::tiny_llama(1);
    bytes.truncate(bytes.len() / 2);
    assert!(matches!(
        LlmModel::load(ContentId::of(&bytes), &bytes),
        Err(RuntimeError::Unloadable(_))
    ));
    let junk = b"GGUF but not really".to_vec();
    assert!(matches!(
        LlmModel::load(ContentId::of(&junk), &junk),
        Err(RuntimeError::Unloadable(_))
    ));
}

#[test]
fn gguf_headers_that_promise_more_than_the_file_or_the_budget_are_refused_before_reading() {
    let bytes = sample::tiny_llama(1);
    // a tensor info: name length (u64), name, dims count (u32), dims (u64 each)
    let name = b"token_embd.weight";
    let mut key = (name.len() as u64).to_le_bytes().to_vec();
    key.extend_from_slice(name);
    let at = bytes
        .windows(key.len())
        .position(|w| w == key.as_slice())
        .expect("the tiny model has token embeddings");
    let first_dim = at + key.len() + 4;
    let mut huge = bytes.clone();
    huge[first_dim..first_dim + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    match LlmModel::load(ContentId::of(&huge), &huge) {
        Err(RuntimeError::Unloadable(m)) => assert!(m.contains("claims bytes"), "{m}"),
        Err(e) => panic!("expected an unloadable file, got {e}"),
        Ok(_) => panic!("a header past the file's end loaded"),
    }
    // within the file, but over the node's budget
    match LlmModel::load_within(ContentId::of(&bytes), &bytes, 1000) {
        Err(RuntimeError::Budget(m)) => assert!(m.contains("budget of 1000 bytes"), "{m}"),
        Err(e) => panic!("expected a budget refusal, got {e}"),
        Ok(_) => panic!("loaded past its budget"),
    }
}

/// The real SmolLM2-135M-Instruct from scripts/fetch-models.
#[test]
fn smollm2_knows_the_capital_of_france() {
    let path = gradnet_types::test_utils::models_dir().join("smollm2-135m-instruct-q4_1.gguf");
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|_| panic!("{} missing: run scripts/fetch-models", path.display()));
    let m = LlmModel::load(ContentId::of(&bytes), &bytes).unwrap();
    assert_eq!(m.info.context_length, 8192);
    // the template's default system prompt comes first
    let prompt = m.chat_prompt(&user("hi"), None).unwrap();
    assert!(
        prompt.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"),
        "{prompt}"
    );
    // the same ids as llama.cpp gives for this prompt
    let ids = m
        .encode(
            &m.chat_prompt(&user("What is the capital of France?"), None)
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        ids,
        [
            1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411,
            407, 19712, 8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1,
            520, 9531, 198
        ]
    );
    let mut messages = user("What is the capital of France?");
    messages.insert(
        0,
        ChatMessage {
            role: "system".into(),
            content: "You are a helpful assistant.".into(),
            name: None,
            tool_calls: None,
            tool_call_id: None,
        },
    );
    let ids = m.encode(&m.chat_prompt(&messages, None).unwrap()).unwrap();
    let g = m.generate(&ids, &greedy(24), |_| true).unwrap();
    assert!(g.text.contains("Paris"), "{:?}", g.text);
    // Q4_1 weights are multiplied as they are (not widened), and the answer
    // has the same bits whatever the thread count: the kernel's pool is
    // sized once per process, so each count runs in a child process
    assert!(m.info.widened.is_empty(), "{:?}", m.info.widened);
    for threads in ["1", "2"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                // the test's path in this binary (module `llm`)
                "llm::paris_answer_in_a_child",
                "--nocapture",
                "--include-ignored",
            ])
            .env("CANDLE_NUM_THREADS", threads)
            .env("GRADNET_PARIS_CHILD", &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("ANSWER {:?}", g.text)),
            "{threads} threads: {stdout}"
        );
    }
    // digits split one by one, as the model's own tokenizer does
    assert_eq!(m.encode("2024").unwrap(), [34, 32, 34, 36]);
}

/// Run by `smollm2_knows_the_capital_of_france` in a child process with a
/// given thread count; prints the greedy answer.
#[test]
#[ignore = "run as a child process"]
fn paris_answer_in_a_child() {
    let Some(path) = std::env::var_os("GRADNET_PARIS_CHILD") else {
        return;
    };
    let bytes = std::fs::read(path).unwrap();
    let m = LlmModel::load(ContentId::of(&bytes), &bytes).unwrap();
    let mut messages = user("What is the capital of France?");
    messages.insert(
        0,
        ChatMessage {
            role: "system".into(),
            content: "You are a helpful assistant.".into(),
            name: None,
            tool_calls: None,
            tool_call_id: None,
        },
    );
    let ids = m.encode(&m.chat_prompt(&messages, None).unwrap()).unwrap();
    let g = m.generate(&ids, &greedy(24), |_| true).unwrap();
    println!("ANSWER {:?}", g.text);
}

/// JSON mode: the answer is always a prefix of one JSON object, and a
/// finished answer parses.
#[test]
fn json_mode_keeps_answers_parseable() {
    let m = tiny();
    let ids = m.encode("hello").unwrap();
    for seed in 0..3 {
        let p = SamplingParams {
            max_tokens: 60,
            temperature: 0.8,
            seed,
            json: true,
            ..Default::default()
        };
        let g = m.generate(&ids, &p, |_| true).unwrap();
        assert!(g.text.trim_start().starts_with('{'), "{:?}", g.text);
        if g.finish_reason == FinishReason::Stop {
            serde_json::from_str::<serde_json::Value>(&g.text)
                .unwrap_or_else(|e| panic!("{e}: {:?}", g.text));
        }
    }
}

/// qwen2 (biases; requests take turns on one instance) and phi3 (fused
/// matrices): each request gives the answer it gives alone.
#[test]
fn qwen2_and_phi3_load_and_requests_do_not_share_state() {
    for (arch, bytes) in [
        ("qwen2", sample::tiny_qwen2(4)),
        ("phi3", sample::tiny_phi3(4)),
    ] {
        other_architecture(arch, bytes);
    }
}

fn other_architecture(arch: &str, bytes: Vec<u8>) {
    let m = LlmModel::load(ContentId::of(&bytes), &bytes).unwrap();
    assert_eq!(m.info.architecture, arch);
    let ids = m
        .encode(&m.chat_prompt(&user("hello"), None).unwrap())
        .unwrap();
    let alone = m.generate(&ids, &greedy(20), |_| true).unwrap();
    assert_eq!(alone, m.generate(&ids, &greedy(20), |_| true).unwrap());
    let other = m.encode("hi there").unwrap();
    std::thread::scope(|s| {
        let a = s.spawn(|| m.generate(&ids, &greedy(20), |_| true).unwrap());
        let b = s.spawn(|| m.generate(&other, &greedy(20), |_| true).unwrap());
        assert_eq!(a.join().unwrap(), alone);
        b.join().unwrap();
    });
}

/// A prompt that shares a long prefix with an earlier one starts from the
/// cached session, and answers exactly as a fresh model does.
#[test]
fn shared_prompt_prefixes_are_reused_without_changing_answers() {
    let bytes = sample::tiny_llama(9);
    let warm = LlmModel::load(ContentId::of(&bytes), &bytes).unwrap();
    let system = "You are a careful assistant. ".repeat(6);
    let ask = |m: &LlmModel, q: &str| {
        let mut msgs = user(q);
        msgs.insert(
            0,
            ChatMessage {
                role: "system".into(),
                content: system.clone(),
                name: None,
                tool_calls: None,
                tool_call_id: None,
            },
        );
        let ids = m.encode(&m.chat_prompt(&msgs, None).unwrap()).unwrap();
        assert!(ids.len() > 2 * gradnet_runtime::llm::PREFILL_CHUNK);
        m.generate(&ids, &greedy(16), |_| true).unwrap()
    };
    ask(&warm, "first question");
    assert_eq!(warm.prefix_hits(), 0);
    let hit = ask(&warm, "second question");
    assert!(
        warm.prefix_hits() >= 1,
        "the shared system prompt was reused"
    );
    let cold = LlmModel::load(ContentId::of(&bytes), &bytes).unwrap();
    assert_eq!(
        hit,
        ask(&cold, "second question"),
        "a cache hit changes nothing"
    );
    assert_eq!(hit, ask(&warm, "second question"));
}

/// Generations running at the same time share decode passes, and each gets
/// exactly the answer it gets alone (greedy and seeded).
#[test]
fn concurrent_generations_are_batched_without_changing_answers() {
    let m = tiny();
    batched_answers_equal_lone_ones(
        &m,
        &["hello", "the quick brown fox", "a", "seeded sampling"],
        40,
    );
}

/// Greedy and sampled generations run at the same time decode in shared
/// passes, and each answer is the one it gets alone, bit for bit.
pub(crate) fn batched_answers_equal_lone_ones(m: &LlmModel, prompts: &[&str], max_tokens: usize) {
    let params = |i: usize| SamplingParams {
        max_tokens,
        temperature: if i.is_multiple_of(2) { 0.0 } else { 0.8 },
        seed: i as u64,
        ..Default::default()
    };
    let ids: Vec<Vec<u32>> = prompts.iter().map(|p| m.encode(p).unwrap()).collect();
    let alone: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, p)| m.generate(p, &params(i), |_| true).unwrap())
        .collect();
    // every answer has text, so each stream below reaches its first piece
    assert!(
        alone
            .iter()
            .all(|g| !g.text.is_empty() && g.completion_tokens > max_tokens / 5),
        "{alone:?}"
    );
    let (passes, rows) = m.batch_stats();
    // the streams meet at their first piece, so that they decode together
    let met = std::sync::Barrier::new(prompts.len());
    let together: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (met, params) = (&met, params(i));
                s.spawn(move || {
                    let mut first = true;
                    m.generate(p, &params, |_| {
                        if std::mem::take(&mut first) {
                            met.wait();
                        }
                        true
                    })
                    .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(alone, together);
    let (passes2, rows2) = m.batch_stats();
    assert!(
        rows2 - rows > passes2 - passes,
        "no pass carried two streams ({} rows in {} passes)",
        rows2 - rows,
        passes2 - passes
    );
}

#[test]
fn schema_constrained_answers_validate() {
    use gradnet_runtime::llm::grammar::Grammar;
    let m = tiny();
    let ids = m.encode("hello").unwrap();
    let schema = serde_json::json!({"type": "object", "properties": {
        "ok": {"type": "boolean"},
        "n": {"type": "integer"},
        "tag": {"enum": ["he", "ll"]},
    }, "required": ["ok", "n", "tag"], "propertyOrdering": ["tag", "ok", "n"]});
    let g = std::sync::Arc::new(Grammar::from_schema(&schema).unwrap());
    for (seed, temperature) in [(0, 0.0), (1, 0.9), (2, 0.9)] {
        let p = SamplingParams {
            max_tokens: 80,
            temperature,
            seed,
            grammar: Some(g.clone()),
            ..Default::default()
        };
        let out = m.generate(&ids, &p, |_| true).unwrap();
        if out.finish_reason == FinishReason::Length {
            // a random model may still be inside a number: still a prefix
            assert!(out.text.starts_with("{\"tag\":"), "{:?}", out.text);
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&out.text).expect(&out.text);
        assert!(v["ok"].is_boolean() && v["n"].is_i64(), "{v}");
        assert!(v["tag"] == "he" || v["tag"] == "ll", "{v}");
        assert!(
            out.text.starts_with("{\"tag\":"),
            "in the order given: {}",
            out.text
        );
        // the same request, the same bits
        assert_eq!(out, m.generate(&ids, &p, |_| true).unwrap());
    }
}

#[test]
fn logprobs_are_reported_and_reproducible() {
    let m = tiny();
    let ids = m.encode("hello").unwrap();
    let p = SamplingParams {
        max_tokens: 12,
        temperature: 0.0,
        logprobs: Some(3),
        ..Default::default()
    };
    let mut streamed = vec![];
    let g = m
        .generate(&ids, &p, |piece| {
            streamed.extend_from_slice(piece.logprobs);
            true
        })
        .unwrap();
    assert_eq!(g.logprobs.len(), g.completion_tokens);
    assert_eq!(streamed, g.logprobs[..streamed.len()]);
    for t in &g.logprobs {
        assert_eq!(t.top.len(), 3);
        // greedy: the chosen token is the likeliest
        assert_eq!(t.top[0].0, t.token);
        assert_eq!(t.top[0].2, t.logprob);
        assert!(t.top.windows(2).all(|w| w[0].2 >= w[1].2));
        let mass: f32 = t.top.iter().map(|x| x.2.exp()).sum();
        assert!(t.logprob <= 0.0 && mass <= 1.0 + 1e-5, "{t:?}");
    }
    assert_eq!(g, m.generate(&ids, &p, |_| true).unwrap());
    // a bias of +100 on one token makes it the answer, and its reported
    // log-probability stays the model's own
    let forced = SamplingParams {
        logit_bias: vec![(b'x' as u32, 100.0)],
        ..p.clone()
    };
    let g2 = m.generate(&ids, &forced, |_| true).unwrap();
    assert!(
        g2.logprobs.iter().all(|t| t.token == b'x' as u32),
        "{:?}",
        g2.text
    );
    assert!(g2.logprobs[0].logprob <= g2.logprobs[0].top[0].2);
}
