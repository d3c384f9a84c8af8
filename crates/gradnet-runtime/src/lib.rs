//! Model execution. An ONNX model is parsed once per content id and cached
//! under a memory budget; inputs are checked against its declared signature
//! before anything runs; outputs come back as gradnet tensors whose canonical
//! encoding is hashed into receipts. The engine that runs it (tract by
//! default, onnxruntime optionally) is named in every receipt.

mod engines;
mod error;
pub mod llm;
pub mod samples;
mod signature;

use std::sync::Arc;

use gradnet_types::json::JsonInputs;
use gradnet_types::{ContentId, NamedTensors, RuntimeId};
use quick_cache::sync::Cache;
use quick_cache::Weighter;

pub use engines::onnxruntime::LIBRARY_FILE as ONNXRUNTIME_LIBRARY_FILE;
pub use engines::Backend;
pub use error::{Result, RuntimeError};
pub use signature::{Dim, Signature, TensorSpec};

/// The tract version pinned in the workspace `Cargo.toml`.
pub const TRACT_VERSION: &str = "0.23.9";

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Threads for one inference (1 = single-threaded).
    pub threads: usize,
    /// Memory budget for parsed models, compiled plans and sessions, in bytes.
    pub cache_bytes: u64,
    pub backend: Backend,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            threads: 1,
            cache_bytes: 2 << 30,
            backend: Backend::Tract,
        }
    }
}

/// A loaded model: its signature and what its engine needs to run it.
pub struct Model {
    pub cid: ContentId,
    pub signature: Signature,
    /// Size of the ONNX file: the unit of the memory estimate.
    bytes: u64,
    body: Body,
}

enum Body {
    Tract(Box<engines::tract::Parsed>),
    OnnxRuntime(engines::onnxruntime::Sessions),
}

#[derive(Clone)]
struct ModelWeight;

/// A parsed protobuf costs what the file weighs; an onnxruntime model keeps
/// the file and a session holding the weights again, so it counts twice.
impl Weighter<ContentId, Arc<Model>> for ModelWeight {
    fn weight(&self, _: &ContentId, m: &Arc<Model>) -> u64 {
        match m.body {
            Body::Tract(_) => m.bytes.max(1),
            Body::OnnxRuntime(_) => (2 * m.bytes).max(1),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

enum Engine {
    Tract(engines::tract::Engine),
    OnnxRuntime(engines::onnxruntime::Engine),
}

pub struct OnnxRuntime {
    engine: Engine,
    models: Cache<ContentId, Arc<Model>, ModelWeight>,
}

impl OnnxRuntime {
    /// Starts the configured engine; fails if it cannot (e.g. the
    /// onnxruntime library is missing).
    pub fn new(config: RuntimeConfig) -> Result<Self> {
        let budget = config.cache_bytes;
        let (engine, model_budget) = match &config.backend {
            // a third of the budget for parsed models, the rest for plans
            Backend::Tract => (
                Engine::Tract(engines::tract::Engine::new(
                    config.threads,
                    budget - budget / 3,
                )),
                budget / 3,
            ),
            Backend::OnnxRuntime { library } => (
                Engine::OnnxRuntime(engines::onnxruntime::Engine::new(library, config.threads)?),
                budget,
            ),
        };
        Ok(OnnxRuntime {
            engine,
            models: Cache::with_weighter(1024, model_budget, ModelWeight),
        })
    }

    /// The engine's name and version, as receipts carry it.
    pub fn runtime_id(&self) -> RuntimeId {
        match &self.engine {
            Engine::Tract(_) => RuntimeId {
                name: "tract".into(),
                version: TRACT_VERSION.into(),
            },
            Engine::OnnxRuntime(e) => RuntimeId {
                name: "onnxruntime".into(),
                version: e.version().into(),
            },
        }
    }

    /// A model already loaded, if it is in the cache.
    pub fn cached(&self, cid: &ContentId) -> Option<Arc<Model>> {
        self.models.get(cid)
    }

    /// Loads an ONNX file (whose content id is `cid`) and caches it.
    pub fn load(&self, cid: ContentId, bytes: &[u8]) -> Result<Arc<Model>> {
        if let Some(m) = self.models.get(&cid) {
            return Ok(m);
        }
        let proto = engines::tract::parse(bytes)?;
        let signature = Signature::from_proto(&proto)?;
        let body = match &self.engine {
            Engine::Tract(_) => Body::Tract(Box::new(engines::tract::Parsed { proto })),
            Engine::OnnxRuntime(e) => Body::OnnxRuntime(e.load(bytes)?),
        };
        let model = Arc::new(Model {
            cid,
            signature,
            bytes: bytes.len() as u64,
            body,
        });
        self.models.insert(cid, model.clone());
        Ok(model)
    }

    /// Runs a model on inputs already checked by [`Signature::check`].
    pub fn run(&self, model: &Model, inputs: &NamedTensors) -> Result<NamedTensors> {
        match (&self.engine, &model.body) {
            (Engine::Tract(e), Body::Tract(parsed)) => e.run(
                engines::tract::ModelRef {
                    cid: model.cid,
                    bytes: model.bytes,
                    signature: &model.signature,
                    parsed,
                },
                inputs,
            ),
            (Engine::OnnxRuntime(e), Body::OnnxRuntime(sessions)) => {
                e.run(sessions, &model.signature, inputs)
            }
            _ => Err(RuntimeError::Execution(
                "model was loaded by another runtime".into(),
            )),
        }
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

    /// Plan-cache hits and misses (tract), or session reuse (onnxruntime).
    pub fn cache_stats(&self) -> CacheStats {
        match &self.engine {
            Engine::Tract(e) => e.stats(),
            Engine::OnnxRuntime(e) => e.stats(),
        }
    }
}
