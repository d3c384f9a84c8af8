//! Times gradnet's runtime on one model and input for
//! `bench/runtime-vs-onnxruntime`: prints `{"median_ms": ...}` for ITERS runs
//! after a warm-up.
//! Usage: runtime-timing MODEL.onnx INPUT_NAME d0,d1,... ITERS THREADS deterministic|ONNXRUNTIME_LIB

use gradnet_runtime::{Backend, OnnxRunner, RuntimeConfig};
use gradnet_types::json::parse_inputs;
use gradnet_types::ContentId;
use serde_json::json;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (path, name, shape, iters, threads) = (
        &a[1],
        &a[2],
        &a[3],
        a[4].parse().unwrap(),
        a[5].parse().unwrap(),
    );
    let shape: Vec<usize> = shape.split(',').map(|d| d.parse().unwrap()).collect();
    let bytes = std::fs::read(path).unwrap();
    let n: usize = shape.iter().product();
    let data = if shape.len() == 4 {
        gradnet_bench::pattern_image(shape[2], shape[3])
    } else {
        gradnet_runtime::generated::weights(n, 42, 1.0)
    };
    let backend = match a[6].as_str() {
        "deterministic" => Backend::Deterministic,
        library => Backend::OnnxRuntime {
            library: library.into(),
        },
    };
    let rt = OnnxRunner::new(RuntimeConfig {
        threads,
        cache_bytes: 1 << 30,
        backend,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let model = rt.load(ContentId::of(&bytes), &bytes).unwrap();
    let inputs = model
        .signature
        .check(&parse_inputs(&json!({ name: gradnet_bench::nest(&data, &shape) })).unwrap())
        .unwrap();
    let ms = gradnet_bench::median_ms(3, iters, || {
        rt.run(&model, &inputs).unwrap();
    });
    println!("{}", json!({"median_ms": ms}));
}
