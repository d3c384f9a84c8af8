//! Latency of `/v1/infer` on one node: N sequential requests for the MLP
//! 4-8-3 (a different input row each, as `chain-load infer:` sends them).
//! Prints p50 / p99 as JSON.
//! Usage: infer-latency API_URL MODEL N

use std::time::Instant;

use serde_json::json;

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (url, model, n): (&str, &str, usize) = (&a[1], &a[2], a[3].parse().unwrap());
    let c = reqwest::Client::new();
    let mut lat = vec![];
    for i in 0..n + 10 {
        let row: Vec<f64> = (0..4)
            .map(|j| (((i * 7 + j * 13) % 2001) as f64 - 1000.0) / 1000.0)
            .collect();
        let t = Instant::now();
        let r = c
            .post(format!("{url}/v1/infer"))
            .json(&json!({"model": model, "inputs": {"x": [row]}}))
            .send()
            .await
            .expect("request");
        assert!(
            r.status().is_success(),
            "{}",
            r.text().await.unwrap_or_default()
        );
        r.bytes().await.unwrap();
        if i >= 10 {
            lat.push(t.elapsed().as_secs_f64());
        }
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!("{}", json!({"n": n, "p50_s": pct(0.5), "p99_s": pct(0.99)}));
}
