//! Times gradnet's embedding runtime in process for
//! `bench/embeddings-vs-sentence-transformers`: texts in batches, rounds.
//! Usage: embed-timing MODEL.safetensors TEXTS.json BATCH THREADS ROUNDS OUT.json
//! Writes the vectors to OUT.json; prints `{"seconds": [...], "tokens"}`.

use std::time::Instant;

use gradnet_runtime::embed::Embedder;
use gradnet_types::ContentId;
use serde_json::json;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&a[1]).expect("model file");
    let model = Embedder::load(ContentId::of(&bytes), &bytes).unwrap();
    let texts: Vec<String> =
        serde_json::from_slice(&std::fs::read(&a[2]).expect("texts")).expect("a JSON list");
    let batch: usize = a[3].parse().unwrap();
    let threads: usize = a[4].parse().unwrap();
    let rounds: usize = a[5].parse().unwrap();
    let mut seconds = vec![];
    let mut vectors = vec![];
    let mut tokens = 0;
    for r in 0..=rounds {
        let started = Instant::now();
        let mut out = vec![];
        tokens = 0;
        // tokenizing is part of the work, as in sentence-transformers' encode
        for chunk in texts.chunks(batch) {
            let ids: Vec<Vec<u32>> = chunk.iter().map(|t| model.encode(t).unwrap()).collect();
            tokens += ids.iter().map(Vec::len).sum::<usize>();
            out.extend(model.embed(&ids, threads).unwrap());
        }
        if r > 0 {
            seconds.push(started.elapsed().as_secs_f64());
        }
        vectors = out;
    }
    std::fs::write(&a[6], serde_json::to_vec(&vectors).unwrap()).unwrap();
    println!("{}", json!({"seconds": seconds, "tokens": tokens}));
}
