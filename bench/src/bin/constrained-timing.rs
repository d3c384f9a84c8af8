//! Constrained decoding's cost per token: the same model and prompt decoded
//! free and under a JSON Schema (`response_format: json_schema`), greedy and
//! sampled, in interleaved rounds. Prints the median time per generated
//! token of each and their ratios.
//! Usage: constrained-timing MODEL.gguf [ROUNDS] [MAX_TOKENS]

use std::sync::Arc;
use std::time::Instant;

use gradnet_runtime::llm::grammar::Grammar;
use gradnet_runtime::llm::{ChatMessage, LlmModel, SamplingParams};
use gradnet_types::ContentId;
use serde_json::json;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&a[1]).expect("model file");
    let rounds: usize = a.get(2).map_or(5, |r| r.parse().unwrap());
    let max_tokens: usize = a.get(3).map_or(64, |r| r.parse().unwrap());
    let model = LlmModel::load(ContentId::of(&bytes), &bytes).unwrap();
    let schema = json!({"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 40},
        "country": {"type": "string", "maxLength": 40},
        "population_millions": {"type": "number"},
        "landmarks": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 5},
        "capital": {"type": "boolean"},
    }, "required": ["name", "country", "population_millions", "landmarks", "capital"],
       "propertyOrdering": ["name", "country", "population_millions", "landmarks", "capital"]});
    let grammar = Arc::new(Grammar::from_schema(&schema).unwrap());
    let prompt = model
        .chat_prompt(
            &[ChatMessage {
                role: "user".into(),
                content: "Describe the city of Paris as JSON with its name, country, population in millions, landmarks and whether it is a capital.".into(),
                name: None,
                tool_calls: None,
                tool_call_id: None,
            }],
            None,
        )
        .unwrap();
    let ids = model.encode(&prompt).unwrap();
    let run = |temperature: f64, constrained: bool| {
        let p = SamplingParams {
            max_tokens,
            temperature,
            seed: 1,
            grammar: constrained.then(|| grammar.clone()),
            ..Default::default()
        };
        let started = Instant::now();
        let mut first = None;
        let g = model
            .generate(&ids, &p, |_| {
                first.get_or_insert_with(Instant::now);
                true
            })
            .unwrap();
        let first = first.unwrap_or(started);
        let per_token =
            first.elapsed().as_secs_f64() / g.completion_tokens.saturating_sub(1).max(1) as f64;
        (per_token, g.completion_tokens)
    };
    let cases = [(0.0, false), (0.0, true), (0.8, false), (0.8, true)];
    let mut times = vec![vec![]; cases.len()];
    let mut tokens = vec![0; cases.len()];
    for r in 0..=rounds {
        for (i, &(t, c)) in cases.iter().enumerate() {
            let (per, n) = run(t, c);
            if r > 0 {
                times[i].push(per);
                tokens[i] = n;
            }
        }
    }
    let m: Vec<f64> = times.into_iter().map(gradnet_bench::median).collect();
    for (i, (t, c)) in cases.iter().enumerate() {
        println!(
            "temperature {t}: {:<13} {:>7.2} ms/token ({} tokens)",
            if *c { "json_schema" } else { "unconstrained" },
            m[i] * 1e3,
            tokens[i]
        );
    }
    println!(
        "{}",
        json!({
            "greedy_ratio": m[1] / m[0],
            "sampled_ratio": m[3] / m[2],
            "rounds": rounds,
        })
    );
}
