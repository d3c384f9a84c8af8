//! The tract engine: a model's protobuf is compiled into a plan once per set
//! of concrete input shapes (tract optimizes best when every dimension is
//! known), and plans are cached under a memory budget.
//!
//! tract's kernels do not split reductions differently with the thread
//! count, so one input gives the same output bits on 1 or N threads (tested).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use gradnet_types::{ContentId, NamedTensors};
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::pb;
use tract_onnx::prelude::*;

use super::tract_convert as convert;
use crate::error::{chain, Result, RuntimeError};
use crate::signature::Signature;
use crate::CacheStats;

type Plan = Arc<TypedRunnableModel>;

#[derive(Clone, PartialEq, Eq, Hash)]
struct PlanKey {
    cid: ContentId,
    shapes: Vec<Vec<usize>>,
}

/// A compiled plan holds the weights again, repacked for the kernels, so it
/// is charged twice the file's size.
#[derive(Clone)]
struct PlanWeight;

impl Weighter<PlanKey, (Plan, u64)> for PlanWeight {
    fn weight(&self, _: &PlanKey, p: &(Plan, u64)) -> u64 {
        (2 * p.1).max(1)
    }
}

pub(crate) struct Engine {
    executor: Executor,
    plans: Cache<PlanKey, (Plan, u64), PlanWeight>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What the tract engine keeps of a model: its protobuf, to compile from.
pub(crate) struct Parsed {
    pub(crate) proto: pb::ModelProto,
}

pub(crate) fn parse(bytes: &[u8]) -> Result<pb::ModelProto> {
    tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| RuntimeError::Unloadable(format!("not a valid ONNX file: {}", chain(&e))))
}

pub(crate) struct ModelRef<'a> {
    pub cid: ContentId,
    pub bytes: u64,
    pub signature: &'a Signature,
    pub parsed: &'a Parsed,
}

impl Engine {
    pub(crate) fn new(threads: usize, cache_bytes: u64) -> Self {
        let executor = if threads > 1 {
            Executor::multithread(threads)
        } else {
            Executor::SingleThread
        };
        Engine {
            executor,
            plans: Cache::with_weighter(1024, cache_bytes, PlanWeight),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn run(&self, model: ModelRef<'_>, inputs: &NamedTensors) -> Result<NamedTensors> {
        let plan = self.plan(&model, inputs)?;
        let tensors = model
            .signature
            .inputs
            .iter()
            .map(|s| convert::to_tract(&inputs[&s.name]).map(TValue::from))
            .collect::<TractResult<TVec<_>>>()
            .map_err(|e| RuntimeError::BadInput(chain(&e)))?;
        let outputs = multithread_tract_scope(self.executor.clone(), || plan.run(tensors))
            .map_err(|e| RuntimeError::Execution(chain(&e)))?;
        model
            .signature
            .outputs
            .iter()
            .zip(outputs.iter())
            .map(|(spec, t)| {
                Ok((
                    spec.name.clone(),
                    convert::from_tract(t).map_err(|e| RuntimeError::Execution(chain(&e)))?,
                ))
            })
            .collect()
    }

    fn plan(&self, model: &ModelRef<'_>, inputs: &NamedTensors) -> Result<Plan> {
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
        let (plan, _) = self
            .plans
            .get_or_insert_with(&key, || compile(model, inputs).map(|p| (p, model.bytes)))?;
        Ok(plan)
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

fn compile(model: &ModelRef<'_>, inputs: &NamedTensors) -> Result<Plan> {
    let unloadable = |e: TractError| RuntimeError::Unloadable(chain(&e));
    let mut m = tract_onnx::onnx()
        .model_for_proto_model(&model.parsed.proto)
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
