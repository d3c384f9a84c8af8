//! ONNX models: loading, and runs on the worker pool.

use std::sync::Arc;
use std::time::Instant;

use gradnet_runtime::Model;
use gradnet_types::tensor::NamedTensors;
use gradnet_types::ContentId;
use prometheus::IntGauge;
use tokio::sync::OwnedSemaphorePermit;

use super::{Admitted, Kind};
use crate::error::ApiError;
use crate::AppState;

impl AppState {
    /// The prepared model, from the cache or read (verified) from the hub.
    pub async fn onnx_model(&self, cid: ContentId) -> Result<Arc<Model>, ApiError> {
        if let Some(m) = self.runtime.cached(&cid) {
            return Ok(m);
        }
        let bytes = self.hub.read_all(&cid).await?;
        let rt = self.runtime.clone();
        Ok(tokio::task::spawn_blocking(move || rt.load(cid, &bytes)).await??)
    }
}

/// A worker held for a run: the `inflight` gauge counts it until it is
/// dropped, so that a run that fails or panics is not counted forever.
struct Worker {
    _permit: OwnedSemaphorePermit,
    inflight: IntGauge,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.inflight.dec();
    }
}

impl Admitted {
    /// Waits for a free worker (counted as `queued` meanwhile).
    async fn worker(&self) -> Result<Worker, ApiError> {
        let m = &self.state.metrics;
        m.queued.inc();
        let permit = self.state.workers.clone().acquire_owned().await;
        m.queued.dec();
        let permit = permit.map_err(|_| ApiError::internal("worker pool closed"))?;
        m.inflight.inc();
        Ok(Worker {
            _permit: permit,
            inflight: m.inflight.clone(),
        })
    }

    /// Runs `model` on checked inputs on a worker; waits for one. The
    /// worker is held by the blocking task: a caller that goes away does
    /// not free a worker that is still computing.
    pub async fn run_onnx(
        &self,
        model: Arc<Model>,
        inputs: Arc<NamedTensors>,
    ) -> Result<NamedTensors, ApiError> {
        debug_assert_eq!(self.kind, Kind::Onnx);
        let asked = Instant::now();
        let worker = self.worker().await;
        let rt = self.state.runtime.clone();
        let out = match worker {
            Ok(worker) => tokio::task::spawn_blocking(move || {
                let _worker = worker;
                rt.run(&model, &inputs)
            })
            .await
            .map_err(ApiError::from)
            .and_then(|r| r.map_err(ApiError::from)),
            Err(e) => Err(e),
        };
        self.finish_onnx(asked, out)
    }

    /// [`Admitted::run_onnx`] on this thread, which must be one that may
    /// block (the chain's JSON-RPC and PIPE run there).
    pub fn run_onnx_here(
        &self,
        model: &Model,
        inputs: &NamedTensors,
    ) -> Result<NamedTensors, ApiError> {
        debug_assert_eq!(self.kind, Kind::Onnx);
        let asked = Instant::now();
        let out = self.on_worker(|| Ok(self.state.runtime.run(model, inputs)?));
        self.finish_onnx(asked, out)
    }

    /// Runs `f` (a model's work of `kind`, e.g. a ZKML proof) on this
    /// thread, one that may block, once a worker is free; counted as a run
    /// of `kind`.
    pub fn work_here<T>(
        &self,
        kind: Kind,
        f: impl FnOnce() -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let asked = Instant::now();
        let out = self.on_worker(f);
        super::record(&self.state, kind, self.caller, asked, out.is_ok());
        out
    }

    /// `f` on this (blocking) thread while a worker is held.
    fn on_worker<T>(&self, f: impl FnOnce() -> Result<T, ApiError>) -> Result<T, ApiError> {
        let _worker = tokio::runtime::Handle::current().block_on(self.worker())?;
        f()
    }

    fn finish_onnx(
        &self,
        asked: Instant,
        out: Result<NamedTensors, ApiError>,
    ) -> Result<NamedTensors, ApiError> {
        let limit = self.state.config.max_response_bytes;
        let out = out.and_then(|o| {
            let bytes: usize = o.values().map(|t| t.byte_len()).sum();
            if bytes > limit {
                return Err(ApiError::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "budget_exceeded",
                    format!("the model's outputs are {bytes} bytes, over this node's limit of {limit} bytes per answer"),
                ));
            }
            Ok(o)
        });
        super::record(&self.state, Kind::Onnx, self.caller, asked, out.is_ok());
        if out.is_ok() {
            self.state.metrics.inferences.inc();
        }
        out
    }
}
