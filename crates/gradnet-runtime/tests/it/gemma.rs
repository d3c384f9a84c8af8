//! Gemma 3 270M (Q4_K_M from scripts/fetch-models) on gradnet's kernels:
//! its SentencePiece tokenizer, its architecture and its answers.

use gradnet_runtime::llm::{LlmModel, SamplingParams};
use gradnet_types::ContentId;

fn gemma() -> (std::path::PathBuf, LlmModel) {
    let path = gradnet_types::test_utils::models_dir().join("gemma-3-270m-q4_k_m.gguf");
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|_| panic!("{} missing: run scripts/fetch-models", path.display()));
    let m = LlmModel::load(ContentId::of(&bytes), &bytes).unwrap();
    (path, m)
}

fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        max_tokens,
        temperature: 0.0,
        ..Default::default()
    }
}

#[test]
fn gemma3_completes_text() {
    let t = std::time::Instant::now();
    let (_, m) = gemma();
    eprintln!("load {:?}", t.elapsed());
    let ids = m.encode("The capital of France is").unwrap();
    eprintln!("{ids:?}");
    let t = std::time::Instant::now();
    let g = m.generate(&ids, &greedy(24), |_| true).unwrap();
    eprintln!("{:?} {:?}", g.text, t.elapsed());
    let msgs = vec![gradnet_runtime::llm::ChatMessage { role: "user".into(), content: "What is the capital of France? Answer in one word.".into(), name: None, tool_calls: None, tool_call_id: None }];
    let p = m.chat_prompt(&msgs, None).unwrap();
    let ids = m.encode(&p).unwrap();
    eprintln!("{p:?} {ids:?}");
    let g = m.generate(&ids, &greedy(24), |_| true).unwrap();
    eprintln!("{:?} {:?}", g.text, g.finish_reason);
    for s in ["héllo wörld 2024", "  two  spaces\n\nnewlines\ttab", "日本語のテキスト", "emoji 🦀!"] {
        let ids = m.encode(s).unwrap();
        eprintln!("{s:?} {ids:?} {:?}", m.decode(&ids));
    }
}
