//! gradnet's side of `bench/zk-vs-ezkl`.
//!
//! `zk-timing write DIR`: the two benchmark models (MLP 784-32-10; CNN
//! 1x28x28 → Conv 3x3 (8) → Relu → MaxPool 2x2 → Gemm 10) as ONNX, and
//! their test inputs as JSON (`{"input_data": [[...], ...]}`).
//!
//! `zk-timing run MODEL.onnx INPUTS.json FRAC_BITS`: compile, setup, prove
//! the first input, verify (median of 50), the accuracy report over all
//! inputs, and the process's peak memory, as one JSON line.

use std::time::Instant;

use ark_std::rand::SeedableRng;
use gradnet_runtime::generated;
use gradnet_zk::keys::proving_key_to_bytes;
use gradnet_zk::{accuracy, onnx, prove, setup, verify};
use serde_json::json;

fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("write") => {
            let dir = std::path::Path::new(&args[2]);
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("mlp.onnx"), generated::mlp(784, 32, 10, 7)).unwrap();
            std::fs::write(dir.join("cnn.onnx"), generated::cnn(3)).unwrap();
            // image-like inputs in [0, 1)
            let inputs = |seed: u64| -> Vec<Vec<f32>> {
                (0..16)
                    .map(|s| {
                        generated::weights(784, seed + s, 0.5)
                            .iter()
                            .map(|v| v + 0.5)
                            .collect()
                    })
                    .collect()
            };
            for (name, seed) in [("mlp", 500), ("cnn", 900)] {
                let data = json!({"input_data": inputs(seed)});
                std::fs::write(dir.join(format!("{name}-inputs.json")), data.to_string()).unwrap();
            }
        }
        Some("run") => {
            let bytes = std::fs::read(&args[2]).unwrap();
            let data: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&args[3]).unwrap()).unwrap();
            let inputs: Vec<Vec<f32>> = serde_json::from_value(data["input_data"].clone()).unwrap();
            let frac_bits: u32 = args[4].parse().unwrap();
            let model = onnx::compile(&bytes, frac_bits).unwrap();
            let report = accuracy::report(&bytes, &model, &inputs).unwrap();
            let mut rng = ark_std::rand::rngs::StdRng::from_entropy();
            let t = Instant::now();
            let keys = setup(&model, &mut rng).unwrap();
            let setup_s = t.elapsed().as_secs_f64();
            let x = model.quantize(&inputs[0]).unwrap();
            let t = Instant::now();
            let (y, proof) = prove(&model, &keys.proving, &x).unwrap();
            let prove_s = t.elapsed().as_secs_f64();
            let mut times: Vec<f64> = (0..50)
                .map(|_| {
                    let t = Instant::now();
                    assert!(verify(&keys.verifying, &x, &y, &proof));
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!(
                "{}",
                json!({
                    "constraints": model.constraint_estimate(),
                    "setup_s": setup_s,
                    "prove_s": prove_s,
                    "verify_ms": times[times.len() / 2],
                    "peak_rss_mb": peak_rss_mb(),
                    "pk_bytes": proving_key_to_bytes(&keys.proving).len(),
                    "vk_bytes": keys.verifying.to_bytes().len(),
                    "max_abs_error": report.max_abs_error,
                    "argmax_agreement": report.argmax_agreement,
                })
            );
        }
        _ => {
            eprintln!("usage: zk-timing write DIR | zk-timing run MODEL.onnx INPUTS.json FRAC_BITS")
        }
    }
}
