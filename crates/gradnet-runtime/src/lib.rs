//! Model execution. ONNX models run through tract: a model is parsed once per
//! content id, compiled into a plan once per set of concrete input shapes, and
//! both are cached under a memory budget. Inputs are checked against the
//! model's declared signature before anything runs; outputs come back as
//! gradnet tensors whose canonical encoding is hashed into receipts.
//!
//! Determinism: tract's kernels do not split reductions differently with the
//! thread count, so one input gives the same output bits on 1 or N threads
//! (tested); the runtime name and version are part of every receipt.

mod convert;
mod error;
pub mod samples;
mod signature;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use gradnet_types::json::JsonInputs;
use gradnet_types::{ContentId, NamedTensors, RuntimeId};
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::pb;
use tract_onnx::prelude::*;

pub use error::{Result, RuntimeError};
pub use signature::{Dim, Signature, TensorSpec};

/// The tract version pinned in the workspace `Cargo.toml`.
pub const TRACT_VERSION: &str = "0.23.9";

pub fn runtime_id() -> RuntimeId {
    RuntimeId {
        name: "tract".into(),
        version: TRACT_VERSION.into(),
    }
}

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Threads for one inference's matrix products (1 = single-threaded).
    pub threads: usize,
    /// Memory budget for parsed models and compiled plans, in bytes.
    pub cache_bytes: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            threads: 1,
            cache_bytes: 2 << 30,
        }
    }
}

/// A parsed model: its protobuf (to compile plans from) and its signature.
pub struct Model {
    pub cid: ContentId,
    pub signature: Signature,
    proto: pb::ModelProto,
    /// Size of the ONNX file: the unit of the memory estimate.
    bytes: u64,
}

type Plan = Arc<TypedRunnableModel>;

#[derive(Clone, PartialEq, Eq, Hash)]
struct PlanKey {
    cid: ContentId,
    shapes: Vec<Vec<usize>>,
}

#[derive(Clone)]
struct ByBytes;

/// Weights cost what the file weighs; a compiled plan holds them again,
/// repacked for the kernels, so it is charged twice.
impl Weighter<ContentId, Arc<Model>> for ByBytes {
    fn weight(&self, _: &ContentId, m: &Arc<Model>) -> u64 {
        m.bytes.max(1)
    }
}

impl Weighter<PlanKey, (Plan, u64)> for ByBytes {
    fn weight(&self, _: &PlanKey, p: &(Plan, u64)) -> u64 {
        (2 * p.1).max(1)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

pub struct OnnxRuntime {
    executor: Executor,
    models: Cache<ContentId, Arc<Model>, ByBytes>,
    plans: Cache<PlanKey, (Plan, u64), ByBytes>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl OnnxRuntime {
    pub fn new(config: RuntimeConfig) -> Self {
        let executor = if config.threads > 1 {
            Executor::multithread(config.threads)
        } else {
            Executor::SingleThread
        };
        // a third of the budget for parsed models, the rest for plans
        let models = Cache::with_weighter(1024, config.cache_bytes / 3, ByBytes);
        let plans =
            Cache::with_weighter(1024, config.cache_bytes - config.cache_bytes / 3, ByBytes);
        OnnxRuntime {
            executor,
            models,
            plans,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A model already parsed, if it is in the cache.
    pub fn cached(&self, cid: &ContentId) -> Option<Arc<Model>> {
        self.models.get(cid)
    }

    /// Parses an ONNX file (whose content id is `cid`) and caches it.
    pub fn load(&self, cid: ContentId, bytes: &[u8]) -> Result<Arc<Model>> {
        if let Some(m) = self.models.get(&cid) {
            return Ok(m);
        }
        let proto = tract_onnx::onnx()
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|e| {
                RuntimeError::Unloadable(format!("not a valid ONNX file: {}", error::chain(&e)))
            })?;
        let signature = Signature::from_proto(&proto)?;
        let model = Arc::new(Model {
            cid,
            signature,
            proto,
            bytes: bytes.len() as u64,
        });
        self.models.insert(cid, model.clone());
        Ok(model)
    }

    /// Runs a model on inputs already checked by [`Signature::check`].
    pub fn run(&self, model: &Model, inputs: &NamedTensors) -> Result<NamedTensors> {
        let plan = self.plan(model, inputs)?;
        let tensors = model
            .signature
            .inputs
            .iter()
            .map(|s| convert::to_tract(&inputs[&s.name]).map(TValue::from))
            .collect::<TractResult<TVec<_>>>()
            .map_err(|e| RuntimeError::BadInput(error::chain(&e)))?;
        let outputs = multithread_tract_scope(self.executor.clone(), || plan.run(tensors))
            .map_err(|e| RuntimeError::Execution(error::chain(&e)))?;
        model
            .signature
            .outputs
            .iter()
            .zip(outputs.iter())
            .map(|(spec, t)| {
                Ok((
                    spec.name.clone(),
                    convert::from_tract(t)
                        .map_err(|e| RuntimeError::Execution(error::chain(&e)))?,
                ))
            })
            .collect()
    }

    /// Checks JSON inputs against the model and runs it.
    pub fn infer(
        &self,
        model: &Model,
        inputs: &JsonInputs,
    ) -> Result<(NamedTensors, NamedTensors)> {
        let typed = model.signature.check(inputs)?;
        let out = self.run(model, &typed)?;
        Ok((typed, out))
    }

    fn plan(&self, model: &Model, inputs: &NamedTensors) -> Result<Plan> {
        let key = PlanKey {
            cid: model.cid,
            shapes: model
                .signature
                .inputs
                .iter()
                .map(|s| inputs[&s.name].shape().to_vec())
                .collect(),
        };
        if let Some((p, _)) = self.plans.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(p);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let (plan, _) = self.plans.get_or_insert_with(&key, || {
            self.compile(model, inputs).map(|p| (p, model.bytes))
        })?;
        Ok(plan)
    }

    /// Compiles for the concrete input shapes: tract optimizes best when every
    /// dimension is known.
    fn compile(&self, model: &Model, inputs: &NamedTensors) -> Result<Plan> {
        let unloadable = |e: TractError| RuntimeError::Unloadable(error::chain(&e));
        let mut m = tract_onnx::onnx()
            .model_for_proto_model(&model.proto)
            .map_err(unloadable)?;
        for (i, spec) in model.signature.inputs.iter().enumerate() {
            let t = &inputs[&spec.name];
            let dt = convert::datum_type(t.dtype());
            m.set_input_fact(i, InferenceFact::dt_shape(dt, t.shape()))
                .map_err(unloadable)?;
        }
        let started = std::time::Instant::now();
        let plan = m
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(unloadable)?;
        tracing::info!(model = %model.cid, ms = started.elapsed().as_millis() as u64, "compiled plan");
        Ok(plan)
    }

    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}
