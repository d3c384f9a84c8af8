//! gradnet's deterministic ONNX engine: for a given model and input, the
//! same output bits on every x86-64 CPU generation (SSE2 to AVX-512) and on
//! aarch64, at any thread count and batch size. See
//! [`kernels`] for the arithmetic rules that make it so.
//!
//! ```no_run
//! let engine = gradnet_onnx::Engine::new(gradnet_onnx::Options::default());
//! let model = engine.load(&std::fs::read("model.onnx").unwrap()).unwrap();
//! ```

// The workspace lint `missing_docs` is off here until this crate's public
// items are documented (255 were not when the lint came in).
#![allow(missing_docs)]
// Numeric code: polynomial coefficients are written as their exact decimal
// expansions, comparisons are chosen for their NaN behaviour and generic
// accumulations spell out their order; clippy's rewrites would hide that.
#![allow(
    clippy::excessive_precision,
    clippy::approx_constant,
    clippy::manual_clamp,
    clippy::neg_cmp_op_on_partial_ord,
    clippy::assign_op_pattern
)]

pub mod cx;
pub mod error;
pub mod generated;
mod graph;
pub mod io;
pub mod kernels;
mod ops;
pub mod proto;
pub mod tensor;

use std::sync::Arc;

pub use error::{Error, Result};
pub use graph::ValueSpec;
pub use kernels::Isa;
pub use tensor::{DType, Data, Tensor};

use cx::Cx;
use graph::Graph;

/// The name receipts carry for this engine.
pub const ENGINE: &str = "gradnet-onnx";
/// This engine's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The bit-compatibility contract: two engines that declare the same
/// profile give the same output bits for the same model and input. It
/// changes whenever any result could change.
pub const PROFILE: &str = gradnet_types::DETERMINISTIC_PROFILE;

#[derive(Debug, Clone)]
pub struct Options {
    /// Threads one inference may use.
    pub threads: usize,
    /// Largest tensor a model may create, in bytes.
    pub max_tensor_bytes: u64,
    /// Bytes of values one run may hold at once (inputs and intermediate
    /// results; the model's weights are not counted), checked before each
    /// tensor is allocated.
    pub max_run_bytes: u64,
    /// Time one run may take, checked between operators.
    pub max_run_time: Option<std::time::Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: 1,
            max_tensor_bytes: 2 << 30,
            max_run_bytes: 4 << 30,
            max_run_time: None,
        }
    }
}

/// Runs models on a thread pool of its own.
pub struct Engine {
    pool: Option<rayon::ThreadPool>,
    isa: Isa,
    opts: Options,
}

/// A loaded model, ready to run on any engine of this build.
pub struct Model {
    graph: Graph,
    isa: Isa,
}

impl Engine {
    pub fn new(opts: Options) -> Engine {
        let pool = (opts.threads > 1).then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(opts.threads)
                .thread_name(|i| format!("onnx-{i}"))
                .build()
                .expect("thread pool")
        });
        Engine {
            pool,
            isa: Isa::current(),
            opts,
        }
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Parses, checks and prepares a model; an error lists every operator
    /// this engine cannot run.
    pub fn load(&self, bytes: &[u8]) -> Result<Model> {
        let proto = proto::decode_model(bytes).map_err(|e| Error::Parse(e.to_string()))?;
        self.load_proto(&proto)
    }

    pub fn load_proto(&self, proto: &proto::ModelProto) -> Result<Model> {
        Ok(Model {
            graph: Graph::load(proto, self.isa, self.opts.max_tensor_bytes)?,
            isa: self.isa,
        })
    }

    /// Runs `model` on `inputs`, given in the order of [`Model::inputs`].
    /// NaN outputs are canonical (one bit pattern), so results compare by
    /// their bytes.
    pub fn run(&self, model: &Model, inputs: Vec<Tensor>) -> Result<Vec<(String, Tensor)>> {
        if model.isa != self.isa {
            return Err(Error::Run(
                "the model was prepared for another instruction set".into(),
            ));
        }
        let want = model.graph.inputs.len();
        if inputs.len() != want {
            return Err(Error::Input(format!(
                "the model takes {want} inputs, got {}",
                inputs.len()
            )));
        }
        for ((spec, _), t) in model.graph.inputs.iter().zip(&inputs) {
            if let Some(d) = spec.dtype {
                if d != t.dtype() {
                    return Err(Error::Input(format!(
                        "input `{}` must be {d}, got {}",
                        spec.name,
                        t.dtype()
                    )));
                }
            }
        }
        let recycle = cx::Recycle::default();
        let cx = Cx::new(self.isa, self.pool.as_ref(), self.opts.max_tensor_bytes)
            .with_budget(self.opts.max_run_bytes, self.opts.max_run_time)
            .with_recycle(&recycle);
        let mut out = model
            .graph
            .run(&cx, inputs.into_iter().map(Arc::new).collect())?;
        for (_, t) in out.iter_mut() {
            canonical_nan(t);
        }
        Ok(out)
    }
}

impl Model {
    /// The inputs a caller provides, in order.
    pub fn inputs(&self) -> Vec<ValueSpec> {
        self.graph.inputs.iter().map(|(s, _)| s.clone()).collect()
    }

    pub fn outputs(&self) -> Vec<String> {
        self.graph.outputs.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// Every NaN as the one quiet NaN with sign and payload zero: NaN payloads
/// differ between CPUs (x86 makes them negative, Arm positive).
fn canonical_nan(t: &mut Tensor) {
    match t.data_mut() {
        Data::F32(v) => v
            .iter_mut()
            .filter(|x| x.is_nan())
            .for_each(|x| *x = f32::from_bits(0x7fc0_0000)),
        Data::F64(v) => v
            .iter_mut()
            .filter(|x| x.is_nan())
            .for_each(|x| *x = f64::from_bits(0x7ff8_0000_0000_0000)),
        _ => {}
    }
}

/// Shared so several models can sit behind one engine.
pub type SharedModel = Arc<Model>;
