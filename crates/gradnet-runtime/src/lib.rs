//! Model execution. An ONNX model is prepared once per content id and
//! cached under a memory budget; inputs are checked against its declared
//! signature before anything runs; outputs come back as gradnet tensors
//! whose canonical encoding is hashed into receipts. The engine that runs it
//! (gradnet's deterministic engine by default, onnxruntime optionally) is
//! named in every receipt with its profile.

pub mod embed;
mod engines;
mod error;
pub mod generated;
pub mod llm;
mod signature;

use std::sync::Arc;

use gradnet_types::json::JsonInputs;
use gradnet_types::{ContentId, NamedTensors, RuntimeId, DETERMINISTIC_PROFILE, NATIVE_PROFILE};
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use serde::Serialize;

pub use engines::onnxruntime::LIBRARY_FILE as ONNXRUNTIME_LIBRARY_FILE;
pub use engines::Backend;
pub use error::{Result, RuntimeError};
pub use signature::{Dim, Signature, TensorSpec};

/// How ONNX models run on this node.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Threads for one inference (1 = single-threaded).
    pub threads: usize,
    /// Memory budget for prepared models and sessions, in bytes.
    pub cache_bytes: u64,
    /// The engine.
    pub backend: Backend,
    /// What one inference may use.
    pub budget: Budget,
}

/// What one inference may use; a model past it is refused with
/// [`RuntimeError::Budget`], and the node keeps serving.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Bytes of tensors a run may hold at once (checked before allocating).
    pub memory_bytes: u64,
    /// Time a run may take (checked between operators).
    pub time: std::time::Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            memory_bytes: 4 << 30,
            time: std::time::Duration::from_secs(60),
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            threads: 1,
            cache_bytes: 2 << 30,
            backend: Backend::Deterministic,
            budget: Budget::default(),
        }
    }
}

/// A loaded model: its signature and what its engine needs to run it.
pub struct Model {
    /// The ONNX file's content id.
    pub cid: ContentId,
    /// Its declared inputs and outputs.
    pub signature: Signature,
    /// Size of the ONNX file: the unit of the memory estimate.
    bytes: u64,
    body: Body,
}

enum Body {
    Deterministic(Box<gradnet_onnx::Model>),
    OnnxRuntime(engines::onnxruntime::Sessions),
}

#[derive(Clone)]
struct ModelWeight;

/// A prepared model holds its weights again, repacked for the kernels; an
/// onnxruntime model keeps the file and a session holding the weights. Both
/// count twice the file.
impl Weighter<ContentId, Arc<Model>> for ModelWeight {
    fn weight(&self, _: &ContentId, m: &Arc<Model>) -> u64 {
        (2 * m.bytes).max(1)
    }
}

/// The prepared-model cache's counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct CacheStats {
    /// Requests that found their model prepared.
    pub hits: u64,
    /// Models prepared (loaded, checked, weights packed).
    pub misses: u64,
}

/// Whether one engine runs a model, and what stops it if not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Support {
    /// The engine (name, version, profile).
    #[serde(flatten)]
    pub runtime: RuntimeId,
    /// It runs the model.
    pub runs: bool,
    /// Operators the engine lacks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unsupported: Vec<String>,
    /// Any other reason it cannot run the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a node can do with an ONNX model: runs it here or not, under which
/// profiles, and per engine what stops it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelReport {
    /// This node's engine can run it.
    pub runs_here: bool,
    /// Profiles it runs under: `det-1` means every deterministic node gives
    /// the same bits (QUORUM can compare them).
    pub profiles: Vec<String>,
    /// Per engine gradnet has, whether it runs the model.
    pub engines: Vec<Support>,
}

enum Engine {
    Deterministic(engines::deterministic::Engine),
    OnnxRuntime(engines::onnxruntime::Engine),
}

/// Runs ONNX models on the configured engine (the deterministic one, or
/// onnxruntime), with prepared models cached by content id.
pub struct OnnxRunner {
    engine: Engine,
    /// Checks models for the deterministic profile when the node runs
    /// another engine (single-threaded, nothing cached).
    probe: engines::deterministic::Engine,
    models: Cache<ContentId, Arc<Model>, ModelWeight>,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

/// The deterministic engine's id: what a node running it declares.
pub fn deterministic_id() -> RuntimeId {
    RuntimeId {
        name: gradnet_onnx::ENGINE.into(),
        version: gradnet_onnx::VERSION.into(),
        profile: DETERMINISTIC_PROFILE.into(),
    }
}

impl OnnxRunner {
    /// Starts the configured engine; fails if it cannot (e.g. the
    /// onnxruntime library is missing).
    pub fn new(config: RuntimeConfig) -> Result<Self> {
        let engine = match &config.backend {
            Backend::Deterministic => Engine::Deterministic(engines::deterministic::Engine::new(
                config.threads,
                &config.budget,
            )),
            Backend::OnnxRuntime { library } => {
                Engine::OnnxRuntime(engines::onnxruntime::Engine::new(library, config.threads)?)
            }
        };
        Ok(OnnxRunner {
            engine,
            probe: engines::deterministic::Engine::new(1, &config.budget),
            models: Cache::with_weighter(1024, config.cache_bytes, ModelWeight),
            hits: Default::default(),
            misses: Default::default(),
        })
    }

    /// The engine's name, version and profile, as receipts carry them.
    pub fn runtime_id(&self) -> RuntimeId {
        match &self.engine {
            Engine::Deterministic(_) => deterministic_id(),
            Engine::OnnxRuntime(e) => RuntimeId {
                name: "onnxruntime".into(),
                version: e.version().into(),
                profile: NATIVE_PROFILE.into(),
            },
        }
    }

    /// The instruction set the deterministic kernels use here (it changes
    /// speed, never results).
    pub fn isa(&self) -> Option<&'static str> {
        match &self.engine {
            Engine::Deterministic(e) => Some(e.isa()),
            Engine::OnnxRuntime(_) => None,
        }
    }

    /// A model already loaded, if it is in the cache (a hit if so).
    pub fn cached(&self, cid: &ContentId) -> Option<Arc<Model>> {
        let m = self.models.get(cid);
        if m.is_some() {
            self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        m
    }

    /// Loads an ONNX file (whose content id is `cid`) and caches it.
    pub fn load(&self, cid: ContentId, bytes: &[u8]) -> Result<Arc<Model>> {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(m) = self.models.get(&cid) {
            self.hits.fetch_add(1, Relaxed);
            return Ok(m);
        }
        self.misses.fetch_add(1, Relaxed);
        let proto = gradnet_onnx::proto::decode_model(bytes)
            .map_err(|e| RuntimeError::Unloadable(format!("not a valid ONNX file: {e}")))?;
        let signature = Signature::from_proto(&proto)?;
        let body = match &self.engine {
            Engine::Deterministic(e) => {
                let started = std::time::Instant::now();
                let m = e.load(bytes)?;
                tracing::info!(model = %cid, ms = started.elapsed().as_millis() as u64, "prepared model");
                Body::Deterministic(Box::new(m))
            }
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

    /// What this node can do with a model: an error only if the file is not
    /// a valid ONNX model; otherwise a report per engine (a model this
    /// node's engine runs is loaded and cached on the way).
    pub fn inspect(&self, cid: ContentId, bytes: &[u8]) -> Result<(Signature, ModelReport)> {
        let proto = gradnet_onnx::proto::decode_model(bytes)
            .map_err(|e| RuntimeError::Unloadable(format!("not a valid ONNX file: {e}")))?;
        let signature = Signature::from_proto(&proto)?;
        let here = self.runtime_id();
        let support = |runtime: RuntimeId, r: Result<()>| match r {
            Ok(()) => Support {
                runtime,
                runs: true,
                unsupported: vec![],
                error: None,
            },
            Err(RuntimeError::Unsupported(ops)) => Support {
                runtime,
                runs: false,
                unsupported: ops,
                error: None,
            },
            Err(e) => Support {
                runtime,
                runs: false,
                unsupported: vec![],
                error: Some(e.to_string()),
            },
        };
        let mut engines = vec![support(here.clone(), self.load(cid, bytes).map(|_| ()))];
        if !here.deterministic() {
            engines.push(support(
                deterministic_id(),
                self.probe.load(bytes).map(|_| ()),
            ));
        }
        let mut profiles: Vec<String> = engines
            .iter()
            .filter(|s| s.runs)
            .map(|s| s.runtime.profile.clone())
            .collect();
        profiles.dedup();
        Ok((
            signature,
            ModelReport {
                runs_here: engines[0].runs,
                profiles,
                engines,
            },
        ))
    }

    /// Runs a model on inputs already checked by [`Signature::check`].
    pub fn run(&self, model: &Model, inputs: &NamedTensors) -> Result<NamedTensors> {
        match (&self.engine, &model.body) {
            (Engine::Deterministic(e), Body::Deterministic(m)) => e.run(m, inputs),
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

    /// Prepared models reused (hits) and prepared anew (misses); for
    /// onnxruntime, session reuse.
    pub fn cache_stats(&self) -> CacheStats {
        use std::sync::atomic::Ordering::Relaxed;
        match &self.engine {
            Engine::Deterministic(_) => CacheStats {
                hits: self.hits.load(Relaxed),
                misses: self.misses.load(Relaxed),
            },
            Engine::OnnxRuntime(e) => e.stats(),
        }
    }
}
