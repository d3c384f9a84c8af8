//! The soak's long form (`bench/soak` starts the devnet): mixed load for
//! MINUTES on a running devnet, a line per window, then the run as CSV and
//! an SVG plot (memory, open files, latency percentiles over time) in
//! bench/out/, and a verdict: first full window against the last.
//!
//! Usage: soak MINUTES DEVNET_PID RPC_PORT INFERENCE_PORT KEY0 KEY1

use std::fmt::Write as _;
use std::time::Duration;

use gradnet_bench::soak::{children, format_window, run, Target, Window};

const KINDS: [&str; 4] = ["transfer", "inference-tx", "infer", "chat"];

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, minutes, pid, rpc_port, inference_port, k0, k1] = &args[..] else {
        eprintln!("usage: soak MINUTES DEVNET_PID RPC_PORT INFERENCE_PORT KEY0 KEY1");
        std::process::exit(2);
    };
    let minutes: f64 = minutes.parse().expect("minutes");
    let (rpc, inf): (u16, u16) = (rpc_port.parse().unwrap(), inference_port.parse().unwrap());
    let inference: Vec<String> = (0..3)
        .map(|i| format!("http://127.0.0.1:{}", inf + i))
        .collect();
    let client = gradnet_client::NodeClient::new(&inference[0]);
    let llm = gradnet_runtime::llm::sample::tiny_llama(3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    std::fs::write(&path, llm).unwrap();
    for n in &inference {
        let c = gradnet_client::NodeClient::new(n);
        let _: serde_json::Value = c
            .post(
                "/api/v0/models",
                &serde_json::json!({"name": "tiny", "task": "chat"}),
            )
            .await
            .expect("repository");
        let v: serde_json::Value = c
            .post(
                "/api/v0/models/tiny/versions",
                &serde_json::json!({"notes": "", "is_major": false}),
            )
            .await
            .expect("version");
        c.upload(
            "tiny",
            v["versionString"].as_str().unwrap(),
            &path,
            "tiny.gguf",
            true,
        )
        .await
        .expect("upload");
    }
    drop(client);
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let target = Target {
        rpcs: (0..4)
            .map(|i| format!("http://127.0.0.1:{}", rpc + i))
            .collect(),
        inference,
        keys: vec![k0.parse().unwrap(), k1.parse().unwrap()],
        chain_id: 31337,
        model: gradnet_types::cid::ContentId::of(&onnx).to_string(),
        llm: "tiny".into(),
    };
    let pids = children(pid.parse().unwrap());
    println!(
        "soak: {minutes} min on a devnet of {} processes; a line a minute",
        pids.len()
    );
    let report = run(
        &target,
        &pids,
        Duration::from_secs_f64(minutes * 60.0),
        Duration::from_secs(60),
        |w| println!("{}", format_window(w)),
    )
    .await;
    let w = &report.windows;
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("soak.csv"), csv(w)).unwrap();
    std::fs::write(out.join("soak.svg"), svg(w)).unwrap();
    let errors: usize = w
        .iter()
        .flat_map(|w| w.calls.values())
        .map(|c| c.errors)
        .sum();
    let calls: usize = w.iter().flat_map(|w| w.calls.values()).map(|c| c.ok).sum();
    println!(
        "\n{calls} calls, {errors} errors; {} transactions accepted, {} lost",
        report.accepted,
        report.lost.len()
    );
    for e in &report.first_errors {
        println!("  error: {e}");
    }
    if w.len() >= 3 {
        let (a, b) = (&w[1], &w[w.len() - 1]);
        println!(
            "first full window → last: memory {:.0} → {:.0} MiB ({:+.1}%), open files {} → {}, threads {} → {}",
            a.rss_mib,
            b.rss_mib,
            (b.rss_mib / a.rss_mib - 1.0) * 100.0,
            a.fds,
            b.fds,
            a.threads,
            b.threads
        );
        for k in KINDS {
            let (Some(x), Some(y)) = (a.calls.get(k), b.calls.get(k)) else {
                continue;
            };
            println!(
                "  {k:>12}: p50 {:.1} → {:.1} ms ({:.2}x), p99 {:.1} → {:.1} ms ({:.2}x)",
                x.p50_ms,
                y.p50_ms,
                y.p50_ms / x.p50_ms,
                x.p99_ms,
                y.p99_ms,
                y.p99_ms / x.p99_ms
            );
        }
    }
    println!("wrote bench/out/soak.csv and bench/out/soak.svg");
}

fn csv(w: &[Window]) -> String {
    let mut s = "seconds,rss_mib,max_rss_mib,fds,threads".to_string();
    for k in KINDS {
        write!(s, ",{k}_ok,{k}_errors,{k}_p50_ms,{k}_p99_ms").unwrap();
    }
    s.push('\n');
    for x in w {
        write!(
            s,
            "{:.0},{:.1},{:.1},{},{}",
            x.at_s, x.rss_mib, x.max_rss_mib, x.fds, x.threads
        )
        .unwrap();
        for k in KINDS {
            let c = x.calls.get(k).cloned().unwrap_or_default();
            write!(s, ",{},{},{:.2},{:.2}", c.ok, c.errors, c.p50_ms, c.p99_ms).unwrap();
        }
        s.push('\n');
    }
    s
}

/// A panel: its title and its named lines.
type Panel<'a> = (&'a str, Vec<(&'a str, Vec<f64>)>);

/// Three panels over time: memory (MiB), open files, p99 latency per kind (ms).
fn svg(w: &[Window]) -> String {
    let (width, panel, pad) = (900.0, 200.0, 50.0);
    let end = w.last().map_or(1.0, |x| x.at_s).max(1.0);
    let x = |t: f64| pad + (width - 2.0 * pad) * t / end;
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{}' font-family='sans-serif' font-size='12'>\n",
        3.0 * (panel + pad) + pad
    );
    let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    let series: Vec<Panel> = vec![
        (
            "resident memory, all processes (MiB)",
            vec![("rss", w.iter().map(|x| x.rss_mib).collect())],
        ),
        (
            "open files, all processes",
            vec![("fds", w.iter().map(|x| x.fds as f64).collect())],
        ),
        (
            "p99 latency (ms)",
            KINDS
                .iter()
                .map(|k| {
                    (
                        *k,
                        w.iter()
                            .map(|x| x.calls.get(k).map_or(0.0, |c| c.p99_ms))
                            .collect(),
                    )
                })
                .collect(),
        ),
    ];
    for (i, (title, lines)) in series.iter().enumerate() {
        let top = pad + i as f64 * (panel + pad);
        let max = lines
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(1.0, f64::max)
            * 1.1;
        let y = |v: f64| top + panel - panel * v / max;
        writeln!(
            s,
            "<text x='{pad}' y='{}'>{title} — max {:.0}</text>",
            top - 8.0,
            max / 1.1
        )
        .unwrap();
        writeln!(
            s,
            "<rect x='{pad}' y='{top}' width='{}' height='{panel}' fill='none' stroke='#999'/>",
            width - 2.0 * pad
        )
        .unwrap();
        for (j, (name, v)) in lines.iter().enumerate() {
            let pts: Vec<String> = v
                .iter()
                .zip(w)
                .map(|(v, x0)| format!("{:.1},{:.1}", x(x0.at_s), y(*v)))
                .collect();
            writeln!(
                s,
                "<polyline fill='none' stroke='{}' stroke-width='1.5' points='{}'/>",
                colors[j % 4],
                pts.join(" ")
            )
            .unwrap();
            if lines.len() > 1 {
                writeln!(
                    s,
                    "<text x='{}' y='{}' fill='{}'>{name}</text>",
                    width - pad - 90.0,
                    top + 14.0 * (j as f64 + 1.0),
                    colors[j % 4]
                )
                .unwrap();
            }
        }
    }
    writeln!(
        s,
        "<text x='{pad}' y='{}'>minutes 0 – {:.0}</text>",
        3.0 * (panel + pad) + pad - 10.0,
        end / 60.0
    )
    .unwrap();
    s.push_str("</svg>\n");
    s
}
