//! The soak's short form (`bench/soak` runs it for an hour or more): a
//! devnet under steady mixed load — transfers, inference transactions,
//! off-chain inference on every node, LLM chat — for `GRADNET_SOAK_SECS`
//! (60 by default): no call fails, every accepted transaction lands, and
//! the processes' open files and memory stay flat from the first full
//! window to the last.

use std::time::Duration;

use gradnet_bench::soak::{children, format_window, run, Target};

use crate::common;
use common::devnet::Devnet;

#[test]
fn a_devnet_under_steady_mixed_load_stays_flat_and_loses_nothing() {
    let secs: u64 = std::env::var("GRADNET_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start_with(dir.path(), 4, &["--prices", "0,0,0"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    for n in &net.inference {
        rt.block_on(common::publish(
            n,
            "tiny",
            "tiny.gguf",
            gradnet_runtime::llm::sample::tiny_llama(3),
        ));
    }
    let onnx = gradnet_runtime::generated::mlp(4, 8, 3, 7);
    let target = Target {
        rpcs: net.rpcs.clone(),
        inference: net.inference.clone(),
        keys: net.keys.iter().map(|k| k.parse().unwrap()).collect(),
        chain_id: 31337,
        model: gradnet_types::cid::ContentId::of(&onnx).to_string(),
        llm: "tiny".into(),
    };
    let pids = children(net.pid());
    assert!(
        pids.len() >= 7,
        "4 validators and 3 inference nodes: {pids:?}"
    );
    let report = rt.block_on(run(
        &target,
        &pids,
        Duration::from_secs(secs),
        Duration::from_secs(10),
        |w| eprintln!("{}", format_window(w)),
    ));
    assert!(
        report.first_errors.is_empty(),
        "errors: {:#?}",
        report.first_errors
    );
    assert!(
        report.lost.is_empty(),
        "lost transactions: {:?}",
        report.lost
    );
    assert!(
        report.accepted > secs as usize * 3,
        "only {} transactions",
        report.accepted
    );
    let w = &report.windows;
    assert!(w.len() >= 3, "{} windows", w.len());
    for kind in ["transfer", "inference-tx", "infer", "chat"] {
        assert!(
            w.iter()
                .all(|w| w.calls.get(kind).is_some_and(|c| c.ok > 0)),
            "no {kind} in some window"
        );
    }
    // flat from the first full window (models loaded, pools warm) to the last
    let (first, last) = (&w[1], &w[w.len() - 1]);
    assert!(
        last.fds <= first.fds + 32,
        "open files grew from {} to {}",
        first.fds,
        last.fds
    );
    assert!(
        last.rss_mib <= first.rss_mib * 1.25 + 64.0,
        "memory grew from {:.0} to {:.0} MiB",
        first.rss_mib,
        last.rss_mib
    );
    net.stop();
}
