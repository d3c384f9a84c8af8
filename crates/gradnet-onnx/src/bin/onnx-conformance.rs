//! Runs a corpus of ONNX models on this machine and prints each model's
//! output hash (the hash receipts carry) and its largest difference from a
//! reference engine's outputs. The hashes must be the same on every CPU.
//!
//! Usage: onnx-conformance DIR [--threads N] [--only NAME] [--bench ITERS]
//! (`--bench` also prints the median time of ITERS runs after a warm-up).
//! where DIR holds NAME.onnx next to NAME.json: {"inputs": {name: T},
//! "expected": {name: T}, "rtol": r, "atol": a}, T = {"dtype", "shape",
//! "data"}.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use gradnet_onnx::{io, Data, Engine, Options, Tensor};
use serde_json::Value;

fn tensor(v: &Value) -> Result<Tensor, String> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .ok_or("tensor without shape")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize).ok_or("bad dim"))
        .collect::<Result<_, _>>()?;
    let data = v["data"].as_array().ok_or("tensor without data")?;
    let f = |x: &Value| -> f64 {
        match x {
            Value::String(s) if s == "nan" => f64::NAN,
            Value::String(s) if s == "inf" => f64::INFINITY,
            Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
            _ => x.as_f64().unwrap_or(f64::NAN),
        }
    };
    let d = match v["dtype"].as_str().ok_or("tensor without dtype")? {
        "float32" => Data::F32(data.iter().map(|x| f(x) as f32).collect()),
        "float64" => Data::F64(data.iter().map(f).collect()),
        "int64" => Data::I64(data.iter().map(|x| x.as_i64().unwrap_or(0)).collect()),
        "int32" => Data::I32(
            data.iter()
                .map(|x| x.as_i64().unwrap_or(0) as i32)
                .collect(),
        ),
        "bool" => Data::Bool(data.iter().map(|x| x.as_bool().unwrap_or(false)).collect()),
        "string" => Data::Str(
            data.iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect(),
        ),
        other => return Err(format!("dtype {other}")),
    };
    Tensor::new(shape, d).map_err(|e| e.to_string())
}

/// Largest |got - want| / (atol + rtol |want|) over the elements; <= 1 passes.
fn score(got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> Result<f64, String> {
    if got.shape() != want.shape() {
        return Err(format!(
            "shape {:?}, reference {:?}",
            got.shape(),
            want.shape()
        ));
    }
    let as_f64 = |t: &Tensor| -> Option<Vec<f64>> {
        match t.data() {
            Data::Str(_) | Data::Bool(_) => None,
            _ => t.to_f64s().ok(),
        }
    };
    match (as_f64(got), as_f64(want)) {
        (Some(g), Some(w)) => Ok(g
            .iter()
            .zip(&w)
            .map(|(a, b)| {
                if a.is_nan() && b.is_nan() || a == b {
                    0.0
                } else {
                    (a - b).abs() / (atol + rtol * b.abs())
                }
            })
            .fold(0.0, f64::max)),
        _ => Ok(if got.data() == want.data() {
            0.0
        } else {
            f64::INFINITY
        }),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: onnx-conformance DIR [--threads N] [--only NAME]");
        return ExitCode::from(2);
    };
    let opt = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let threads = opt("--threads").and_then(|t| t.parse().ok()).unwrap_or(1);
    let only = opt("--only");
    let bench: usize = opt("--bench").and_then(|t| t.parse().ok()).unwrap_or(0);
    let engine = Engine::new(Options {
        threads,
        ..Options::default()
    });
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".onnx").map(String::from))
        .filter(|n| only.is_none_or(|o| o == n))
        .collect();
    names.sort();
    let mut failed = 0;
    println!("# isa {} threads {threads}", engine.isa().name());
    for name in &names {
        let dirp = Path::new(dir);
        let spec: Value = match std::fs::read(dirp.join(format!("{name}.json"))) {
            Ok(b) => serde_json::from_slice(&b).expect("valid json"),
            Err(e) => {
                println!("{name} - error reading its json: {e}");
                failed += 1;
                continue;
            }
        };
        let bytes = std::fs::read(dirp.join(format!("{name}.onnx"))).expect("model");
        let started = Instant::now();
        let model = match engine.load(&bytes) {
            Ok(m) => m,
            Err(e) => {
                println!("{name} - LOAD {e}");
                failed += 1;
                continue;
            }
        };
        let inputs: Result<Vec<Tensor>, String> = model
            .inputs()
            .iter()
            .map(|s| tensor(&spec["inputs"][&s.name]))
            .collect();
        let inputs = match inputs {
            Ok(i) => i,
            Err(e) => {
                println!("{name} - INPUT {e}");
                failed += 1;
                continue;
            }
        };
        let bench_ms = (bench > 0).then(|| {
            let _ = engine.run(&model, inputs.clone());
            let mut t: Vec<f64> = (0..bench)
                .map(|_| {
                    let s = Instant::now();
                    let _ = engine.run(&model, inputs.clone());
                    s.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        });
        let out = match engine.run(&model, inputs) {
            Ok(o) => o,
            Err(e) => {
                println!("{name} - RUN {e}");
                failed += 1;
                continue;
            }
        };
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let (rtol, atol) = (
            spec["rtol"].as_f64().unwrap_or(1e-4),
            spec["atol"].as_f64().unwrap_or(1e-5),
        );
        let mut named = BTreeMap::new();
        let mut worst = 0f64;
        let mut problem = None;
        for (oname, t) in out {
            if let Some(want) = spec["expected"].get(&oname) {
                match tensor(want).and_then(|w| score(&t, &w, rtol, atol)) {
                    Ok(s) => worst = worst.max(s),
                    Err(e) => problem = Some(format!("output {oname}: {e}")),
                }
            }
            match io::to_gradnet(t) {
                Ok(g) => {
                    named.insert(oname, g);
                }
                Err(e) => problem = Some(e.to_string()),
            }
        }
        let hash = gradnet_types::request::output_hash(&named);
        let verdict = match &problem {
            Some(p) => format!("MISMATCH {p}"),
            None if worst > 1.0 => format!("MISMATCH score {worst:.3}"),
            None => format!("ok score {worst:.3}"),
        };
        if problem.is_some() || worst > 1.0 {
            failed += 1;
        }
        match bench_ms {
            Some(b) => println!("{name} {hash} {verdict} (median {b:.3} ms)"),
            None => println!("{name} {hash} {verdict} ({ms:.1} ms)"),
        }
    }
    println!("# {} models, {failed} failed", names.len());
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
