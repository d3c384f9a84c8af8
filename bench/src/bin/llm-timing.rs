//! Times gradnet's LLM runtime in process for `bench/llm-vs-llamacpp`:
//! prefill and decode rates for one prompt, greedy.
//! Usage: llm-timing MODEL.gguf PROMPT MAX_TOKENS ROUNDS
//! Prints `{"prompt_tokens", "prefill_tok_s", "decode_tok_s", "completion_tokens", "text"}` (medians).

use std::time::Instant;

use gradnet_runtime::llm::{LlmModel, SamplingParams};
use gradnet_types::ContentId;
use serde_json::json;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&a[1]).expect("model file");
    let model = LlmModel::load(ContentId::of(&bytes), &bytes).unwrap();
    let ids = model.encode(&a[2]).unwrap();
    let max_tokens: usize = a[3].parse().unwrap();
    let rounds: usize = a[4].parse().unwrap();
    let params = SamplingParams {
        max_tokens,
        temperature: 0.0,
        ..Default::default()
    };
    let (mut prefill, mut decode, mut n, mut text) = (vec![], vec![], 0, String::new());
    for r in 0..rounds + 1 {
        // a cold prompt each round: no prefix-cache hit
        model.forget_prefixes();
        let started = Instant::now();
        let mut first = None;
        let g = model
            .generate(&ids, &params, |_| {
                first.get_or_insert_with(|| started.elapsed().as_secs_f64());
                true
            })
            .unwrap();
        let total = started.elapsed().as_secs_f64();
        let ttft = first.unwrap_or(total);
        if r == 0 {
            continue; // warm-up
        }
        n = g.completion_tokens;
        text = g.text;
        prefill.push(ids.len() as f64 / ttft);
        decode.push((g.completion_tokens.saturating_sub(1)) as f64 / (total - ttft));
    }
    println!(
        "{}",
        json!({
            "prompt_tokens": ids.len(),
            "completion_tokens": n,
            "prefill_tok_s": gradnet_bench::median(prefill),
            "decode_tok_s": gradnet_bench::median(decode),
            "text": text,
        })
    );
}
