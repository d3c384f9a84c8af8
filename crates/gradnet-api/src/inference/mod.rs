//! The inference service. Every model run of a node goes through here,
//! whoever asks: `/v1/infer`, the OpenAI routes, PIPE answers and the
//! precompile in `eth_call` / `eth_estimateGas`. The path is always
//! resolve → load (cache, or the hub verified) → admission (a bounded
//! queue; full means refused at once) → a worker or an LLM slot → run,
//! counted in the same metrics and bounded by the same `--workers`,
//! `--queue-depth`, `--llm-slots` and `--llm-queue-depth`. Callers parse
//! their requests and encode the answers; nothing else runs a model.

mod llm;
mod onnx;

use std::time::Instant;

use gradnet_types::{ContentId, ModelRef};
use tokio::sync::OwnedSemaphorePermit;

use crate::error::ApiError;
use crate::AppState;

pub use llm::{finish_reason, LlmSlot};

/// Who asked for a model run: the label its metrics carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// `POST /v1/infer`.
    Infer,
    /// The OpenAI routes (`/v1/chat/completions`, `/v1/completions`).
    OpenAi,
    /// A PIPE answer to a validator (a real result, signed).
    Pipe,
    /// The precompile in `eth_call` / `eth_estimateGas` (a simulation).
    EthCall,
}

impl Caller {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Caller::Infer => "infer",
            Caller::OpenAi => "openai",
            Caller::Pipe => "pipe",
            Caller::EthCall => "eth_call",
        }
    }
}

/// The kind of model a run is for (the other metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An ONNX model on a worker.
    Onnx,
    /// An LLM generation in a slot.
    Llm,
    /// A ZKML proof of an ONNX model's run.
    Zkml,
}

impl Kind {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Onnx => "onnx",
            Kind::Llm => "llm",
            Kind::Zkml => "zkml",
        }
    }
}

/// A place in a queue of the node: while it is held, its holder may run
/// models (waiting for a worker or slot); dropping it frees the place.
/// One place may cover several runs (a PIPE request with many calls).
pub struct Admitted {
    state: AppState,
    caller: Caller,
    kind: Kind,
    _place: OwnedSemaphorePermit,
}

impl Admitted {
    /// Who was admitted.
    pub fn caller(&self) -> Caller {
        self.caller
    }
}

/// Counts a finished run and its time since it asked for a worker or slot
/// (the wait included: what the caller waited for).
fn record(s: &AppState, kind: Kind, caller: Caller, asked: Instant, ok: bool) {
    let (kind, caller) = (kind.label(), caller.label());
    let outcome = if ok { "ok" } else { "error" };
    s.metrics
        .model_runs
        .with_label_values(&[kind, caller, outcome])
        .inc();
    s.metrics
        .model_run_seconds
        .with_label_values(&[kind, caller])
        .observe(asked.elapsed().as_secs_f64());
}

impl AppState {
    /// Admits `caller` to the ONNX queue (running + waiting is bounded by
    /// `workers + queue_depth`); a full queue refuses at once with 429.
    pub fn admit(&self, caller: Caller) -> Result<Admitted, ApiError> {
        self.admit_to(caller, Kind::Onnx)
    }

    /// Admits `caller` to the LLM queue (`llm_slots + llm_queue_depth`).
    pub fn admit_llm(&self, caller: Caller) -> Result<Admitted, ApiError> {
        self.admit_to(caller, Kind::Llm)
    }

    fn admit_to(&self, caller: Caller, kind: Kind) -> Result<Admitted, ApiError> {
        let queue = match kind {
            Kind::Onnx | Kind::Zkml => &self.admission,
            Kind::Llm => &self.llm_admission,
        };
        match queue.clone().try_acquire_owned() {
            Ok(place) => Ok(Admitted {
                state: self.clone(),
                caller,
                kind,
                _place: place,
            }),
            Err(_) => {
                self.metrics
                    .model_runs
                    .with_label_values(&[kind.label(), caller.label(), "refused"])
                    .inc();
                Err(ApiError::overloaded())
            }
        }
    }

    /// The content id a model reference names: a content id, `repo`,
    /// `repo@version` or `repo@version/file`.
    pub async fn resolve(&self, model: &str) -> Result<ContentId, ApiError> {
        let r: ModelRef = model
            .parse()
            .map_err(|e: gradnet_types::request::ModelRefError| {
                ApiError::bad_request("invalid_model", format!("model `{model}`: {e}"))
            })?;
        Ok(self.hub.resolve_model(&r).await?)
    }
}
