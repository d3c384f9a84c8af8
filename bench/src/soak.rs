//! A devnet under steady mixed load for a long time, watched: transfers,
//! inference transactions (submit → receipt), off-chain `/v1/infer` on
//! every inference node and LLM chat, at fixed rates; every window, the
//! latency percentiles and errors of each kind, and the resident memory,
//! open files and threads of every devnet process. At the end every
//! accepted transaction must have landed. `bench/soak` runs it for an hour
//! or more; the integration tests run a short one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolCall;
use gradnet_inference::abi::{
    InferencePrecompile, ModelInferenceRequest, ModelInput, MultiDimensionalNumberTensor, Number,
};
use serde_json::{json, Value};

/// What the load goes to.
#[derive(Clone, Debug)]
pub struct Target {
    /// Validators' JSON-RPC.
    pub rpcs: Vec<String>,
    /// Inference nodes' APIs.
    pub inference: Vec<String>,
    /// Funded keys: transfers from the first, inference transactions from the second.
    pub keys: Vec<B256>,
    /// The chain id.
    pub chain_id: u64,
    /// The ONNX model (content id) the inference calls use.
    pub model: String,
    /// The LLM the chat calls use (published on every inference node).
    pub llm: String,
}

/// One kind of call over one window.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Calls that succeeded.
    pub ok: usize,
    /// Calls that failed.
    pub errors: usize,
    /// Latency percentiles of the successful calls, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

/// One window of the run.
#[derive(Clone, Debug, Default)]
pub struct Window {
    /// Seconds since the start, at the window's end.
    pub at_s: f64,
    /// By kind of call.
    pub calls: BTreeMap<&'static str, Stats>,
    /// Resident memory of all watched processes, MiB.
    pub rss_mib: f64,
    /// The largest single process's, MiB.
    pub max_rss_mib: f64,
    /// Open file descriptors of all watched processes.
    pub fds: usize,
    /// Threads of all watched processes.
    pub threads: usize,
}

/// What a run ends with.
#[derive(Debug, Default)]
pub struct Report {
    /// Every window in order.
    pub windows: Vec<Window>,
    /// Transactions accepted.
    pub accepted: usize,
    /// Accepted and never found in a block.
    pub lost: Vec<String>,
    /// The first errors seen, for the log.
    pub first_errors: Vec<String>,
}

type Log = Arc<Mutex<Vec<(&'static str, Result<f64, String>)>>>;

/// The processes whose parent is `parent` (the devnet's validators and nodes).
pub fn children(parent: u32) -> Vec<u32> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // the field after the command's closing parenthesis: state, then ppid
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// (resident MiB, open files, threads) of `pid`, if it is alive.
fn usage(pid: u32) -> Option<(f64, usize, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((field("VmRSS:") / 1024.0, fds, field("Threads:") as usize))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn rpc(c: &reqwest::Client, url: &str, method: &str, params: Value) -> Result<Value, String> {
    let r: Value = c
        .post(url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    match r.get("error") {
        Some(e) => Err(format!("{method}: {e}")),
        None => Ok(r["result"].clone()),
    }
}

/// POSTs `body` to `url`; an error names the URL, status and answer.
async fn post_ok(
    c: &reqwest::Client,
    url: &str,
    body: &Value,
    timeout: Duration,
) -> Result<(), String> {
    let r = c
        .post(url)
        .json(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let s = r.status();
    let text = r.text().await.map_err(|e| e.to_string())?;
    if !s.is_success() {
        return Err(format!("{url} {s}: {text}"));
    }
    Ok(())
}

/// The demo MLP's row as the precompile takes it.
fn mlp_call(cid: &str) -> Vec<u8> {
    let n = |v: i128, d: i128| Number {
        value: v,
        decimals: d,
    };
    let request = ModelInferenceRequest {
        mode: 0,
        modelCID: cid.into(),
        input: ModelInput {
            numbers: vec![MultiDimensionalNumberTensor {
                name: "x".into(),
                values: vec![n(5, 1), n(-1, 0), n(25, 2), n(3, 0)],
                shape: vec![1, 4],
            }],
            strings: vec![],
        },
    };
    InferencePrecompile::runModelInferenceCall { request }.abi_encode()
}

/// Calls `f` every `every` until `until`, logging each outcome as `kind`.
fn every<F, Fut>(
    log: &Log,
    kind: &'static str,
    every: Duration,
    until: Instant,
    f: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let log = log.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut i = 0;
        while Instant::now() < until {
            tick.tick().await;
            let t = Instant::now();
            let r = f(i).await.map(|_| t.elapsed().as_secs_f64() * 1e3);
            log.lock().unwrap().push((kind, r));
            i += 1;
        }
    })
}

/// Signs `tx` with `key` and sends it to `url`; its hash.
async fn send_tx(
    c: &reqwest::Client,
    url: &str,
    key: &B256,
    tx: gradnet_client::wallet::TxRequest,
) -> Result<String, String> {
    let raw = gradnet_client::wallet::sign(&tx, key).map_err(|e| e.to_string())?;
    let h = rpc(c, url, "eth_sendRawTransaction", json!([raw.to_string()])).await?;
    h.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no hash: {h}"))
}

/// A transaction of the soak's: 1M gas, at `nonce`.
fn tx(
    chain_id: u64,
    nonce: u64,
    to: Address,
    value: U256,
    data: Vec<u8>,
) -> gradnet_client::wallet::TxRequest {
    gradnet_client::wallet::TxRequest {
        chain_id,
        nonce,
        to: Some(to),
        value,
        gas_limit: 1_000_000,
        data: data.into(),
        ..Default::default()
    }
}

async fn nonce_of(c: &reqwest::Client, url: &str, key: &B256) -> Result<u64, String> {
    let a = gradnet_ledger::genesis::address_of(key).map_err(|e| e.to_string())?;
    let n = rpc(
        c,
        url,
        "eth_getTransactionCount",
        json!([format!("{a:#x}"), "pending"]),
    )
    .await?;
    u64::from_str_radix(n.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16)
        .map_err(|e| e.to_string())
}

/// Runs the load on `t` for `total`, one window every `window`, watching
/// the processes `pids`; `each` sees every window as it closes.
pub async fn run(
    t: &Target,
    pids: &[u32],
    total: Duration,
    window: Duration,
    mut each: impl FnMut(&Window),
) -> Report {
    let c = reqwest::Client::new();
    let log: Log = Arc::new(Mutex::new(vec![]));
    let start = Instant::now();
    let until = start + total;
    let accepted: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(vec![]));
    let mut tasks = vec![];

    // transfers: 5 a second, to the validators in turn
    let nonce = Arc::new(std::sync::atomic::AtomicU64::new(
        nonce_of(&c, &t.rpcs[0], &t.keys[0]).await.expect("nonce"),
    ));
    {
        let (c, t, accepted, nonce) = (c.clone(), t.clone(), accepted.clone(), nonce.clone());
        tasks.push(every(
            &log,
            "transfer",
            Duration::from_millis(200),
            until,
            move |i| {
                let (c, t, accepted, nonce) =
                    (c.clone(), t.clone(), accepted.clone(), nonce.clone());
                async move {
                    let n = nonce.load(std::sync::atomic::Ordering::SeqCst);
                    let url = &t.rpcs[i as usize % t.rpcs.len()];
                    let transfer = tx(
                        t.chain_id,
                        n,
                        Address::repeat_byte(0x5a),
                        U256::from(1),
                        vec![],
                    );
                    let h = send_tx(&c, url, &t.keys[0], transfer).await?;
                    nonce.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    accepted.lock().unwrap().push(h);
                    Ok(())
                }
            },
        ));
    }
    // inference transactions: one at a time, submit → receipt
    {
        let (c, t, accepted) = (c.clone(), t.clone(), accepted.clone());
        let nonce = Arc::new(std::sync::atomic::AtomicU64::new(
            nonce_of(&c, &t.rpcs[0], &t.keys[1]).await.expect("nonce"),
        ));
        tasks.push(every(
            &log,
            "inference-tx",
            Duration::from_millis(500),
            until,
            move |_| {
                let (c, t, accepted, nonce) =
                    (c.clone(), t.clone(), accepted.clone(), nonce.clone());
                async move {
                    let n = nonce.load(std::sync::atomic::Ordering::SeqCst);
                    let to = gradnet_inference::demo_contract::ADDRESS;
                    let call = tx(t.chain_id, n, to, U256::ZERO, mlp_call(&t.model));
                    let h = send_tx(&c, &t.rpcs[1 % t.rpcs.len()], &t.keys[1], call).await?;
                    nonce.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    accepted.lock().unwrap().push(h.clone());
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        let r =
                            rpc(&c, &t.rpcs[0], "eth_getTransactionReceipt", json!([h])).await?;
                        if !r.is_null() {
                            return if r["status"] == "0x1" {
                                Ok(())
                            } else {
                                Err(format!("reverted: {r}"))
                            };
                        }
                        if Instant::now() > deadline {
                            return Err(format!("{h}: no receipt within 60 s"));
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            },
        ));
    }
    // off-chain inference: 10 a second over the inference nodes
    {
        let (c, t) = (c.clone(), t.clone());
        tasks.push(every(
            &log,
            "infer",
            Duration::from_millis(100),
            until,
            move |i| {
                let (c, t) = (c.clone(), t.clone());
                async move {
                    let url = format!("{}/v1/infer", t.inference[i as usize % t.inference.len()]);
                    let body = json!({"model": t.model, "inputs": {"x": [[0.5, -1.0, 0.25, 3.0]]}});
                    post_ok(&c, &url, &body, Duration::from_secs(30)).await
                }
            },
        ));
    }
    // LLM chat: one a second
    {
        let (c, t) = (c.clone(), t.clone());
        tasks.push(every(&log, "chat", Duration::from_secs(1), until, move |i| {
            let (c, t) = (c.clone(), t.clone());
            async move {
                let url = format!("{}/v1/chat/completions", t.inference[i as usize % t.inference.len()]);
                let body = json!({"model": t.llm, "messages": [{"role": "user", "content": format!("hello {i}")}], "max_tokens": 8});
                post_ok(&c, &url, &body, Duration::from_secs(60)).await
            }
        }));
    }

    let mut report = Report::default();
    while Instant::now() < until {
        tokio::time::sleep(window.min(until - Instant::now())).await;
        let calls = std::mem::take(&mut *log.lock().unwrap());
        let mut w = Window {
            at_s: start.elapsed().as_secs_f64(),
            ..Default::default()
        };
        let mut lat: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
        for (kind, r) in calls {
            let s = w.calls.entry(kind).or_default();
            match r {
                Ok(ms) => {
                    s.ok += 1;
                    lat.entry(kind).or_default().push(ms);
                }
                Err(e) => {
                    s.errors += 1;
                    if report.first_errors.len() < 10 {
                        report.first_errors.push(format!("{kind}: {e}"));
                    }
                }
            }
        }
        for (kind, mut v) in lat {
            v.sort_by(f64::total_cmp);
            let s = w.calls.get_mut(kind).expect("present");
            (s.p50_ms, s.p99_ms) = (percentile(&v, 0.5), percentile(&v, 0.99));
        }
        for p in pids {
            if let Some((rss, fds, threads)) = usage(*p) {
                w.rss_mib += rss;
                w.max_rss_mib = w.max_rss_mib.max(rss);
                w.fds += fds;
                w.threads += threads;
            }
        }
        each(&w);
        report.windows.push(w);
    }
    for task in tasks {
        let _ = task.await;
    }
    // every accepted transaction in a block
    let accepted = accepted.lock().unwrap().clone();
    report.accepted = accepted.len();
    let deadline = Instant::now() + Duration::from_secs(120);
    for h in accepted {
        loop {
            match rpc(&c, &t.rpcs[0], "eth_getTransactionReceipt", json!([h])).await {
                Ok(r) if !r.is_null() => break,
                _ if Instant::now() > deadline => {
                    report.lost.push(h);
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    report
}

/// One line per window: time, then each kind's ok/errors/p50/p99, memory,
/// files and threads.
pub fn format_window(w: &Window) -> String {
    let mut s = format!("{:>7.0}s", w.at_s);
    for (k, c) in &w.calls {
        s += &format!(
            "  {k} {}/{} p50 {:.1} p99 {:.1} ms",
            c.ok, c.errors, c.p50_ms, c.p99_ms
        );
    }
    s += &format!(
        "  rss {:.0} MiB (max {:.0})  fds {}  threads {}",
        w.rss_mib, w.max_rss_mib, w.fds, w.threads
    );
    s
}
