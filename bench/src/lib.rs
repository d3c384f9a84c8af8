//! Shared pieces of the benchmarks: timing, inputs, an in-process node.

use std::time::Instant;

use serde_json::{json, Value};

/// Median of `iters` timed runs of `f`, in milliseconds, after `warmup` runs.
pub fn median_ms(warmup: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let mut t: Vec<f64> = (0..iters)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The same text-like image the integration tests and scripts/make-fixtures use.
pub fn pattern_image(h: usize, w: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(3 * h * w);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let ink = (14..34).contains(&(y % 48)) && x % 16 < 9 && (x * 3 + y * 5) % 11 != 0;
                let p = if ink {
                    20 + (x * y + c * 7) % 40
                } else {
                    235 + (x + y + c) % 20
                };
                v.push((p as f32 / 255.0 - 0.5) / 0.5);
            }
        }
    }
    v
}

pub fn nest(data: &[f32], shape: &[usize]) -> Value {
    if shape.is_empty() {
        return json!(data[0]);
    }
    let stride: usize = shape[1..].iter().product();
    Value::Array(
        (0..shape[0])
            .map(|i| nest(&data[i * stride..(i + 1) * stride], &shape[1..]))
            .collect(),
    )
}

pub fn models_dir() -> std::path::PathBuf {
    std::env::var_os("GRADNET_MODELS_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"))
}

/// Peak resident memory of this process so far (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// Resets the peak-RSS counter (writes 5 to /proc/self/clear_refs).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
