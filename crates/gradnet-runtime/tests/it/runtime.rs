//! The runtime on generated and real models: loading, input checks,
//! engines, threads, caches and errors.

use gradnet_runtime::{generated, Backend, Dim, OnnxRunner, RuntimeConfig, RuntimeError};
use gradnet_types::json::parse_inputs;
use gradnet_types::request::output_hash;
use gradnet_types::{ContentId, TensorData};
use serde_json::json;

fn rt(threads: usize) -> OnnxRunner {
    with(Backend::Deterministic, threads)
}

fn with(backend: Backend, threads: usize) -> OnnxRunner {
    OnnxRunner::new(RuntimeConfig {
        threads,
        cache_bytes: 256 << 20,
        backend,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// The ONNX Runtime library `scripts/fetch-models` puts next to the models.
fn onnxruntime() -> Backend {
    let library =
        gradnet_types::test_utils::models_dir().join(gradnet_runtime::ONNXRUNTIME_LIBRARY_FILE);
    assert!(
        library.is_file(),
        "{} is missing: run scripts/fetch-models",
        library.display()
    );
    Backend::OnnxRuntime { library }
}

fn backends() -> [Backend; 2] {
    [Backend::Deterministic, onnxruntime()]
}

fn batch(n: usize, width: usize) -> serde_json::Value {
    let w = generated::weights(n * width, 7, 1.0);
    json!(w.chunks(width).map(|r| r.to_vec()).collect::<Vec<_>>())
}

#[test]
fn mlp_runs_and_matches_a_hand_computation() {
    for backend in backends() {
        mlp_matches_hand_computation(with(backend, 1));
    }
}

fn mlp_matches_hand_computation(r: OnnxRunner) {
    let bytes = generated::mlp(4, 8, 3, 1);
    let m = r.load(ContentId::of(&bytes), &bytes).unwrap();
    assert_eq!(
        m.signature.inputs[0].shape,
        Some(vec![Dim::Named("N".into()), Dim::Fixed(4)])
    );
    let x = [0.5f32, -1.0, 0.25, 2.0];
    let (_, out) = r
        .infer(&m, &parse_inputs(&json!({"x": [x]})).unwrap())
        .unwrap();
    // the same computation by hand
    let w1 = generated::weights(32, 1, 0.5);
    let b1 = generated::weights(8, 2, 0.1);
    let w2 = generated::weights(24, 3, (1.0f32 / 8.0).sqrt());
    let b2 = generated::weights(3, 4, 0.1);
    let h: Vec<f32> = (0..8)
        .map(|j| (b1[j] + (0..4).map(|i| x[i] * w1[j * 4 + i]).sum::<f32>()).max(0.0))
        .collect();
    let y: Vec<f32> = (0..3)
        .map(|k| b2[k] + (0..8).map(|j| h[j] * w2[k * 8 + j]).sum::<f32>())
        .collect();
    let TensorData::F32(got) = out["y"].data() else {
        panic!()
    };
    assert_eq!(out["y"].shape(), &[1, 3]);
    for (a, b) in got.iter().zip(&y) {
        assert!(
            (a - b).abs() < 1e-5,
            "{}: {got:?} vs {y:?}",
            r.runtime_id().name
        );
    }
}

#[test]
fn inputs_are_checked_before_running() {
    for backend in backends() {
        inputs_checked(with(backend, 1));
    }
}

fn inputs_checked(r: OnnxRunner) {
    let bytes = generated::two_inputs();
    let m = r.load(ContentId::of(&bytes), &bytes).unwrap();
    let run = |v: serde_json::Value| r.infer(&m, &parse_inputs(&v).unwrap()).map(|(_, o)| o);
    let ok = run(json!({"x": [[1.0, 2.0], [3.0, 4.0]], "k": [5, 6]})).unwrap();
    assert_eq!(ok["k1"].data(), &TensorData::I64(vec![6, 7]));
    assert_eq!(ok["y"].data(), &TensorData::F32(vec![2.0, 4.0, 6.0, 8.0]));
    let err = |v| match run(v) {
        Err(RuntimeError::BadInput(m)) => m,
        other => panic!("expected a bad-input error, got {:?}", other.map(|_| ())),
    };
    assert!(err(json!({"x": [[1.0, 2.0]]})).contains("missing input `k`"));
    assert!(err(json!({"x": [[1.0, 2.0]], "k": [1], "z": [1]})).contains("unknown input `z`"));
    assert!(err(json!({"x": [[1.0, 2.0, 3.0]], "k": [1]})).contains("expects 2 at axis 1"));
    assert!(err(json!({"x": [1.0, 2.0], "k": [1]})).contains("rank"));
    assert!(err(json!({"x": [[1.0, 2.0]], "k": [1.5]})).contains("cannot be represented as i64"));
    assert!(err(json!({"x": [["a", "b"]], "k": [1]})).contains("expected f32 values, got strings"));
    assert!(err(json!({"x": [[1.0, 2.0]], "k": [1, 2]})).contains("dimension `N` is"));
}

#[test]
fn corrupt_models_are_unloadable() {
    for backend in backends() {
        corrupt_unloadable(with(backend, 1));
    }
}

fn corrupt_unloadable(r: OnnxRunner) {
    let mut bytes = generated::mlp(4, 8, 3, 1);
    bytes.truncate(bytes.len() / 2);
    assert!(matches!(
        r.load(ContentId::of(&bytes), &bytes),
        Err(RuntimeError::Unloadable(_))
    ));
    let junk = b"definitely not protobuf \xff\xff\xff".to_vec();
    assert!(matches!(
        r.load(ContentId::of(&junk), &junk),
        Err(RuntimeError::Unloadable(_))
    ));
}

/// Same input → same output bits, across runs, batch layouts of the cache and
/// thread counts.
#[test]
fn outputs_are_bit_identical_across_runs_and_threads() {
    let img = generated::weights(2 * 28 * 28, 9, 1.0);
    let images = json!(img
        .chunks(28 * 28)
        .map(|c| [c.chunks(28).map(|r| r.to_vec()).collect::<Vec<_>>()])
        .collect::<Vec<_>>());
    for (bytes, name, input) in [
        (generated::mlp(64, 256, 10, 3), "x", batch(4, 64)),
        (generated::cnn(5), "image", images),
    ] {
        let cid = ContentId::of(&bytes);
        let inputs = parse_inputs(&json!({ name: input })).unwrap();
        for backend in backends() {
            let mut hashes = vec![];
            for threads in [1, 2, 4] {
                let r = with(backend.clone(), threads);
                let m = r.load(cid, &bytes).unwrap();
                for _ in 0..2 {
                    hashes.push(output_hash(&r.infer(&m, &inputs).unwrap().1));
                }
            }
            assert!(
                hashes.windows(2).all(|w| w[0] == w[1]),
                "{}: {hashes:?}",
                backend.name()
            );
        }
    }
}

#[test]
fn prepared_models_are_cached() {
    let bytes = generated::mlp(4, 8, 3, 1);
    let r = rt(1);
    for _ in 0..3 {
        let m = r.load(ContentId::of(&bytes), &bytes).unwrap();
        r.infer(&m, &parse_inputs(&json!({"x": batch(2, 4)})).unwrap())
            .unwrap();
    }
    let s = r.cache_stats();
    assert_eq!((s.hits, s.misses), (2, 1));
}

/// A row's outputs do not depend on the batch it comes in (the
/// deterministic engine computes each output whole, in one order).
#[test]
fn rows_give_the_same_bits_in_any_batch() {
    let bytes = generated::mlp(64, 256, 10, 3);
    let r = rt(2);
    let m = r.load(ContentId::of(&bytes), &bytes).unwrap();
    let rows = generated::weights(9 * 64, 21, 1.0);
    let run = |n: usize| -> Vec<u32> {
        let x = json!(rows[..n * 64]
            .chunks(64)
            .map(|c| c.to_vec())
            .collect::<Vec<_>>());
        let out = r
            .infer(&m, &parse_inputs(&json!({ "x": x })).unwrap())
            .unwrap()
            .1;
        let TensorData::F32(v) = out["y"].data() else {
            panic!()
        };
        v.iter().map(|f| f.to_bits()).collect()
    };
    let all = run(9);
    for n in [1, 2, 5, 8] {
        assert_eq!(run(n), all[..n * 10], "batch of {n}");
    }
}

/// Thread counts 1, 2 and 4, and requests running at the same time on one
/// runtime, give the same hashes.
#[test]
fn concurrent_requests_and_thread_counts_give_the_same_hashes() {
    let bytes = generated::conv_chain(4);
    let cid = ContentId::of(&bytes);
    let m0 = rt(1).load(cid, &bytes).unwrap();
    let spec = &m0.signature.inputs[0];
    let dims: Vec<usize> = spec
        .shape
        .as_ref()
        .unwrap()
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => *n as usize,
            _ => 2,
        })
        .collect();
    let n: usize = dims.iter().product();
    let data = generated::weights(n, 5, 1.0);
    let input = generated::nest(&data, &dims);
    let inputs = parse_inputs(&json!({ spec.name.clone(): input })).unwrap();
    let want = output_hash(&rt(1).infer(&m0, &inputs).unwrap().1);
    for threads in [1, 2, 4] {
        let r = std::sync::Arc::new(rt(threads));
        let m = r.load(cid, &bytes).unwrap();
        let hashes: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let (r, m, inputs) = (r.clone(), m.clone(), &inputs);
                    s.spawn(move || {
                        (0..3)
                            .map(|_| output_hash(&r.infer(&m, inputs).unwrap().1))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        assert!(
            hashes.iter().all(|h| *h == want),
            "{threads} threads: {hashes:?} vs {want}"
        );
    }
}

/// A model the engine cannot run is reported with the operators that stop
/// it; a file that is not ONNX is an error.
#[test]
fn inspection_names_the_operators_that_stop_a_model() {
    let r = rt(1);
    let bytes = generated::with_unknown_op();
    let (sig, report) = r.inspect(ContentId::of(&bytes), &bytes).unwrap();
    assert_eq!(sig.inputs[0].name, "x");
    assert!(!report.runs_here);
    assert!(report.profiles.is_empty());
    assert_eq!(
        report.engines[0].unsupported,
        vec!["com.example:FancyOp".to_string()]
    );
    let err = r.load(ContentId::of(&bytes), &bytes).err().unwrap();
    assert!(matches!(err, RuntimeError::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("com.example:FancyOp"), "{err}");
    let ok = generated::mlp(4, 8, 3, 1);
    let (_, report) = r.inspect(ContentId::of(&ok), &ok).unwrap();
    assert!(report.runs_here);
    assert_eq!(
        report.profiles,
        vec![gradnet_types::DETERMINISTIC_PROFILE.to_string()]
    );
    // an onnxruntime node reports both its engine and the deterministic profile
    let o = with(onnxruntime(), 1);
    let (_, report) = o.inspect(ContentId::of(&ok), &ok).unwrap();
    assert_eq!(report.engines.len(), 2);
    assert_eq!(
        report.profiles,
        vec![
            gradnet_types::NATIVE_PROFILE.to_string(),
            gradnet_types::DETERMINISTIC_PROFILE.to_string()
        ]
    );
    let junk = b"not onnx \xff".to_vec();
    assert!(matches!(
        r.inspect(ContentId::of(&junk), &junk),
        Err(RuntimeError::Unloadable(_))
    ));
}

/// The two engines agree to float tolerance, give the same dtypes and shapes,
/// and say who they are.
#[test]
fn engines_agree_and_name_themselves() {
    let bytes = generated::cnn(5);
    let cid = ContentId::of(&bytes);
    let img = generated::weights(3 * 28 * 28, 11, 1.0);
    let images = json!(img
        .chunks(28 * 28)
        .map(|c| [c.chunks(28).map(|r| r.to_vec()).collect::<Vec<_>>()])
        .collect::<Vec<_>>());
    let inputs = parse_inputs(&json!({ "image": images })).unwrap();
    let [a, b] = backends().map(|b| with(b, 1));
    assert_eq!(a.runtime_id().name, "gradnet-onnx");
    assert_eq!(a.runtime_id().profile, gradnet_types::DETERMINISTIC_PROFILE);
    assert_eq!(b.runtime_id().name, "onnxruntime");
    assert_eq!(b.runtime_id().version, "1.32.0");
    assert_eq!(b.runtime_id().profile, gradnet_types::NATIVE_PROFILE);
    let run = |r: &OnnxRunner| r.infer(&r.load(cid, &bytes).unwrap(), &inputs).unwrap().1;
    let (x, y) = (run(&a), run(&b));
    assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
    for (name, t) in &x {
        assert_eq!(t.shape(), y[name].shape());
        let (TensorData::F32(p), TensorData::F32(q)) = (t.data(), y[name].data()) else {
            panic!("{name}: {:?} vs {:?}", t.dtype(), y[name].dtype())
        };
        let max = p
            .iter()
            .zip(q)
            .map(|(u, v)| (u - v).abs())
            .fold(0f32, f32::max);
        assert!(max < 1e-4, "{name}: max diff {max}");
    }
}

#[test]
fn missing_onnxruntime_library_is_a_clear_error() {
    let err = OnnxRunner::new(RuntimeConfig {
        backend: Backend::OnnxRuntime {
            library: "/nonexistent/libonnxruntime.so".into(),
        },
        ..RuntimeConfig::default()
    })
    .err()
    .expect("a missing library cannot start");
    assert!(matches!(err, RuntimeError::Unavailable(_)), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/libonnxruntime.so"),
        "{err}"
    );
    assert!(err.to_string().contains("scripts/fetch-models"), "{err}");
}
