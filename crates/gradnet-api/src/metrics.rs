//! Prometheus metrics: requests and latency by route, errors by code, the
//! inference queue, model cache and hub size.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::error::ErrorCode;
use crate::AppState;

/// The node's Prometheus registry and the metrics handlers update.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    errors: IntCounterVec,
    /// ONNX inferences completed.
    pub inferences: IntCounter,
    /// ONNX runs on a worker now.
    pub inflight: IntGauge,
    /// Runs admitted and waiting for a worker.
    pub queued: IntGauge,
    cache_hits: IntGauge,
    cache_misses: IntGauge,
    bytes_stored: IntGauge,
    /// LLM generations running now.
    pub llm_running: IntGauge,
    /// LLM tokens by kind (prompt, completion).
    pub llm_tokens: IntCounterVec,
    /// Time to the first streamed token.
    pub llm_ttft: Histogram,
    /// Model runs by kind (onnx, llm), caller (infer, openai, pipe,
    /// eth_call) and outcome (ok, error, refused).
    pub model_runs: IntCounterVec,
    /// Time from asking for a worker or slot to the end of the run.
    pub model_run_seconds: HistogramVec,
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("gradnet".into()), None).expect("registry");
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["route", "status"],
        )
        .unwrap();
        let buckets = vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0,
        ];
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(buckets.clone()),
            &["route"],
        )
        .unwrap();
        let errors = IntCounterVec::new(
            Opts::new("http_errors_total", "Error responses by error code"),
            &["code"],
        )
        .unwrap();
        let inferences = IntCounter::new("inferences_total", "Inferences completed").unwrap();
        let inflight = IntGauge::new("inference_running", "Inferences running now").unwrap();
        let queued = IntGauge::new(
            "inference_queued",
            "Inferences admitted and waiting for a worker",
        )
        .unwrap();
        let cache_hits = IntGauge::new(
            "model_cache_hits_total",
            "Requests that found their model prepared",
        )
        .unwrap();
        let cache_misses = IntGauge::new(
            "model_cache_misses_total",
            "Models prepared (loaded, checked, weights packed)",
        )
        .unwrap();
        let bytes_stored =
            IntGauge::new("hub_bytes_stored", "Bytes of distinct blobs in the hub").unwrap();
        let llm_running = IntGauge::new("llm_running", "LLM generations running now").unwrap();
        let llm_tokens = IntCounterVec::new(
            Opts::new(
                "llm_tokens_total",
                "LLM tokens by kind (prompt, completion)",
            ),
            &["kind"],
        )
        .unwrap();
        let llm_ttft = Histogram::with_opts(
            HistogramOpts::new(
                "llm_time_to_first_token_seconds",
                "Time from an admitted streamed request to its first token",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .unwrap();
        let model_runs = IntCounterVec::new(
            Opts::new(
                "model_runs_total",
                "Model runs by kind, caller (infer, openai, pipe, eth_call) and outcome (ok, error, refused)",
            ),
            &["kind", "caller", "outcome"],
        )
        .unwrap();
        let model_run_seconds = HistogramVec::new(
            HistogramOpts::new(
                "model_run_duration_seconds",
                "Model runs: time from asking for a worker or slot to the end, by kind and caller",
            )
            .buckets(buckets.clone()),
            &["kind", "caller"],
        )
        .unwrap();
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(errors.clone()),
            Box::new(inferences.clone()),
            Box::new(inflight.clone()),
            Box::new(queued.clone()),
            Box::new(cache_hits.clone()),
            Box::new(cache_misses.clone()),
            Box::new(bytes_stored.clone()),
            Box::new(llm_running.clone()),
            Box::new(llm_tokens.clone()),
            Box::new(llm_ttft.clone()),
            Box::new(model_runs.clone()),
            Box::new(model_run_seconds.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            latency,
            errors,
            inferences,
            inflight,
            queued,
            cache_hits,
            cache_misses,
            bytes_stored,
            llm_running,
            llm_tokens,
            llm_ttft,
            model_runs,
            model_run_seconds,
        }
    }

    /// The registry, for a node's other parts (consensus) to add theirs to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format, with the gauges read from `state` now.
    pub fn render(&self, state: &AppState) -> String {
        let s = state.runtime.cache_stats();
        self.cache_hits.set(s.hits as i64);
        self.cache_misses.set(s.misses as i64);
        self.bytes_stored
            .set(state.hub.bytes_stored().unwrap_or(0) as i64);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding");
        if let Some(p) = state.payments() {
            out.extend(p.metrics().into_bytes());
        }
        String::from_utf8(out).expect("utf-8")
    }
}

impl Metrics {
    /// Requests, errors, the latency histogram (summed over routes) and
    /// completion tokens so far, leaving out the routes in `skip`.
    pub fn totals(&self, skip: &[&str]) -> crate::history::Totals {
        use prometheus::core::Collector;
        use prometheus::proto::Metric;
        let counted = |m: &Metric| {
            !m.get_label()
                .iter()
                .any(|l| l.name() == "route" && skip.contains(&l.value()))
        };
        let mut t = crate::history::Totals::default();
        for m in self.requests.collect().iter().flat_map(|f| f.get_metric()) {
            if counted(m) {
                t.requests += m.get_counter().get_value() as u64;
            }
        }
        for m in self.errors.collect().iter().flat_map(|f| f.get_metric()) {
            t.errors += m.get_counter().get_value() as u64;
        }
        for m in self.latency.collect().iter().flat_map(|f| f.get_metric()) {
            if !counted(m) {
                continue;
            }
            let h = m.get_histogram();
            let bounds = h
                .get_bucket()
                .iter()
                .map(|b| (b.upper_bound(), b.cumulative_count()))
                .chain([(f64::INFINITY, h.get_sample_count())]);
            for (i, (le, n)) in bounds.enumerate() {
                match t.buckets.get_mut(i) {
                    Some(b) => b.1 += n,
                    None => t.buckets.push((le, n)),
                }
            }
        }
        t.tokens = self.llm_tokens.with_label_values(&["completion"]).get();
        t
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: counts and times every request under its route template.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    let m = &state.metrics;
    m.latency
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    m.requests
        .with_label_values(&[&route, resp.status().as_str()])
        .inc();
    if let Some(ErrorCode(code)) = resp.extensions().get::<ErrorCode>() {
        m.errors.with_label_values(&[code]).inc();
    }
    resp
}
