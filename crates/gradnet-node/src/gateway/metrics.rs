//! The gateway's Prometheus metrics (`GET /metrics` on a standalone
//! gateway, `/gateway/metrics` on a validator).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// What the gateway counts.
pub struct GatewayMetrics {
    registry: Registry,
    /// Requests by route, mode and status.
    pub requests: IntCounterVec,
    /// Time to answer, by mode.
    pub latency: HistogramVec,
    /// Node requests that failed, by operator and why.
    pub node_failures: IntCounterVec,
    /// Dissents seen and their reports, by outcome (sent, failed, unsent).
    pub faults: IntCounterVec,
    /// Nodes taken to be up.
    pub nodes_up: IntGauge,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        let registry =
            Registry::new_custom(Some("gradnet_gateway".into()), None).expect("registry");
        let requests = IntCounterVec::new(
            Opts::new("requests_total", "Requests by route, mode and status"),
            &["route", "mode", "status"],
        )
        .unwrap();
        let latency = HistogramVec::new(
            HistogramOpts::new("request_duration_seconds", "Time to answer, by mode").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0,
                ],
            ),
            &["mode"],
        )
        .unwrap();
        let node_failures = IntCounterVec::new(
            Opts::new(
                "node_failures_total",
                "Node requests that failed, by operator and kind",
            ),
            &["operator", "kind"],
        )
        .unwrap();
        let faults = IntCounterVec::new(
            Opts::new(
                "faults_total",
                "QUORUM dissents seen, by what became of the report",
            ),
            &["report"],
        )
        .unwrap();
        let nodes_up = IntGauge::new("nodes_up", "Registered nodes taken to be up").unwrap();
        for c in [&requests, &node_failures, &faults] {
            registry.register(Box::new(c.clone())).unwrap();
        }
        registry.register(Box::new(latency.clone())).unwrap();
        registry.register(Box::new(nodes_up.clone())).unwrap();
        GatewayMetrics {
            registry,
            requests,
            latency,
            node_failures,
            faults,
            nodes_up,
        }
    }
}

impl GatewayMetrics {
    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = vec![];
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("metrics encode");
        String::from_utf8(out).unwrap_or_default()
    }
}
