//! Metric history for charts over longer windows than a page's lifetime:
//! the request, error, latency and token totals sampled every 5 s (the last
//! hour) and every minute (the last day), served as per-interval rates and
//! latency percentiles at `GET /api/v0/metrics/history?window=…`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::AppState;

/// How often the sampler reads the totals.
pub const STEP: Duration = Duration::from_secs(5);
const FINE: usize = 720; // 1 h of 5 s samples
const COARSE_STEP_MS: u64 = 60_000;
const COARSE: usize = 1_440; // 24 h of 1 min samples
/// Routes that are the charts' own polling, left out of the totals.
pub const UNCOUNTED: [&str; 3] = ["/metrics", "/health", "/api/v0/metrics/history"];

/// Cumulative totals at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// When they were read (Unix milliseconds).
    pub t_ms: u64,
    /// Requests counted so far.
    pub requests: u64,
    /// Error answers so far.
    pub errors: u64,
    /// Latency histogram: (upper bound in seconds, cumulative count), ascending, +Inf last.
    pub buckets: Vec<(f64, u64)>,
    /// LLM completion tokens so far.
    pub tokens: u64,
}

/// One interval between two samples.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Point {
    /// End of the interval (Unix milliseconds).
    pub t_ms: u64,
    /// Requests per second over the interval.
    pub requests_per_sec: f64,
    /// Errors per request in the interval (none without requests).
    pub error_rate: Option<f64>,
    /// Latency percentiles in seconds (none without requests).
    pub p50: Option<f64>,
    /// The 90th percentile.
    pub p90: Option<f64>,
    /// The 99th percentile.
    pub p99: Option<f64>,
    /// LLM completion tokens per second over the interval.
    pub tokens_per_sec: f64,
}

/// Samples of the node's totals: fine-grained for the last hour, coarser
/// for the day, read back as rates per interval.
#[derive(Default)]
pub struct History {
    fine: Mutex<VecDeque<Totals>>,
    coarse: Mutex<VecDeque<Totals>>,
}

impl History {
    /// Keeps a sample of the totals.
    pub fn record(&self, t: Totals) {
        let mut coarse = self.coarse.lock().unwrap();
        if coarse
            .back()
            .is_none_or(|c| t.t_ms >= c.t_ms + COARSE_STEP_MS)
        {
            coarse.push_back(t.clone());
            if coarse.len() > COARSE {
                coarse.pop_front();
            }
        }
        let mut fine = self.fine.lock().unwrap();
        fine.push_back(t);
        if fine.len() > FINE {
            fine.pop_front();
        }
    }

    /// The intervals of the last `window_ms`, ending with the one up to `now`.
    pub fn points(&self, window_ms: u64, now: Totals) -> Vec<Point> {
        let samples = if fine(window_ms) {
            self.fine.lock().unwrap()
        } else {
            self.coarse.lock().unwrap()
        };
        let from = now.t_ms.saturating_sub(window_ms);
        let mut kept: Vec<&Totals> = samples.iter().filter(|s| s.t_ms >= from).collect();
        kept.push(&now);
        kept.windows(2)
            .filter(|w| w[1].t_ms > w[0].t_ms)
            .map(|w| interval(w[0], w[1]))
            .collect()
    }
}

/// Whether a window is served from the 5 s samples (else the minute ones).
fn fine(window_ms: u64) -> bool {
    window_ms <= FINE as u64 * STEP.as_millis() as u64
}

/// The sampling step of the points a window is served with.
pub fn step_secs(window_ms: u64) -> u64 {
    if fine(window_ms) {
        STEP.as_secs()
    } else {
        COARSE_STEP_MS / 1000
    }
}

fn interval(a: &Totals, b: &Totals) -> Point {
    let secs = (b.t_ms - a.t_ms) as f64 / 1000.0;
    let n = b.requests.saturating_sub(a.requests);
    let per_sec = |x: u64, y: u64| y.saturating_sub(x) as f64 / secs;
    let q = |q: f64| quantile(&a.buckets, &b.buckets, q);
    Point {
        t_ms: b.t_ms,
        requests_per_sec: per_sec(a.requests, b.requests),
        error_rate: (n > 0).then(|| b.errors.saturating_sub(a.errors) as f64 / n as f64),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        tokens_per_sec: per_sec(a.tokens, b.tokens),
    }
}

/// The q-quantile of the observations between two cumulative histograms,
/// interpolated linearly inside its bucket (as Prometheus'
/// `histogram_quantile`); the largest finite bound if it falls in +Inf.
pub fn quantile(a: &[(f64, u64)], b: &[(f64, u64)], q: f64) -> Option<f64> {
    let delta: Vec<(f64, u64)> = b
        .iter()
        .map(|&(le, n)| {
            let before = a.iter().find(|x| x.0 == le).map_or(0, |x| x.1);
            (le, n.saturating_sub(before))
        })
        .collect();
    let total = delta.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let (mut lower, mut below) = (0.0, 0u64);
    for &(le, n) in &delta {
        if n as f64 >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let inside = (n - below) as f64;
            return Some(lower + (le - lower) * (rank - below as f64) / inside.max(1.0));
        }
        (lower, below) = (le, n);
    }
    Some(lower)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The totals now, for the history.
pub fn totals(state: &AppState) -> Totals {
    let mut t = state.metrics.totals(&UNCOUNTED);
    t.t_ms = now_ms();
    t
}

/// Samples the totals every [`STEP`] for as long as the node runs.
pub fn spawn_sampler(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(STEP);
        loop {
            tick.tick().await;
            state.history.record(totals(&state));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_ms: u64, requests: u64, errors: u64, buckets: &[(f64, u64)], tokens: u64) -> Totals {
        Totals {
            t_ms,
            requests,
            errors,
            buckets: buckets.to_vec(),
            tokens,
        }
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket_of_the_interval() {
        let a = [(0.1, 10), (1.0, 10), (f64::INFINITY, 10)];
        // 10 new observations: 4 under 0.1 s, 6 in (0.1, 1]
        let b = [(0.1, 14), (1.0, 20), (f64::INFINITY, 20)];
        assert_eq!(quantile(&a, &b, 0.2), Some(0.05));
        let p90 = quantile(&a, &b, 0.9).unwrap();
        assert!((p90 - (0.1 + 0.9 * 5.0 / 6.0)).abs() < 1e-12, "{p90}");
        assert_eq!(quantile(&a, &a, 0.5), None);
        // everything in +Inf: the largest finite bound
        let c = [(0.1, 10), (1.0, 10), (f64::INFINITY, 15)];
        assert_eq!(quantile(&a, &c, 0.5), Some(1.0));
    }

    #[test]
    fn points_are_rates_over_each_interval_within_the_window() {
        let h = History::default();
        let b0 = [(0.1, 0), (f64::INFINITY, 0)];
        h.record(at(0, 0, 0, &b0, 0));
        h.record(at(5_000, 50, 5, &[(0.1, 50), (f64::INFINITY, 50)], 100));
        h.record(at(10_000, 50, 5, &[(0.1, 50), (f64::INFINITY, 50)], 100));
        let now = at(12_000, 60, 5, &[(0.1, 55), (f64::INFINITY, 60)], 100);
        let p = h.points(60_000, now.clone());
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].requests_per_sec, 10.0);
        assert_eq!(p[0].error_rate, Some(0.1));
        assert_eq!(p[0].tokens_per_sec, 20.0);
        // an idle interval: no rate of errors, no latency
        assert_eq!(p[1].requests_per_sec, 0.0);
        assert_eq!((p[1].error_rate, p[1].p50), (None, None));
        assert_eq!(p[2].requests_per_sec, 5.0);
        assert_eq!(p[2].p99, Some(0.1));
        // a shorter window keeps only the samples inside it
        assert_eq!(h.points(3_000, now).len(), 1);
    }

    #[test]
    fn the_day_window_reads_minute_samples() {
        let h = History::default();
        for i in 0..30u64 {
            h.record(at(i * 20_000, i, 0, &[(f64::INFINITY, i)], 0));
        }
        // 30 samples 20 s apart: every third one is a minute sample
        let now = at(600_000, 30, 0, &[(f64::INFINITY, 30)], 0);
        assert_eq!(h.points(24 * 3_600_000, now.clone()).len(), 10);
        assert_eq!(h.points(3_600_000, now).len(), 30);
    }
}
