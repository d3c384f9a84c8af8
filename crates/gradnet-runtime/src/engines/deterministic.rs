//! gradnet's deterministic ONNX engine (`gradnet-onnx`): a model is
//! prepared once when it loads (weights packed, element-wise chains fused)
//! and runs on any input shape; its outputs are the same bits on every CPU.

use gradnet_onnx::{io, Engine as Onnx, Model, Options};
use gradnet_types::NamedTensors;

use crate::error::{Result, RuntimeError};

pub(crate) struct Engine {
    onnx: Onnx,
}

impl From<gradnet_onnx::Error> for RuntimeError {
    fn from(e: gradnet_onnx::Error) -> Self {
        use gradnet_onnx::Error as E;
        match e {
            E::Parse(m) => RuntimeError::Unloadable(format!("not a valid ONNX file: {m}")),
            E::Invalid(m) => RuntimeError::Unloadable(m),
            E::Unsupported(ops) => RuntimeError::Unsupported(ops),
            E::Input(m) => RuntimeError::BadInput(m),
            E::Run(m) => RuntimeError::Execution(m),
            E::Limit(m) => RuntimeError::Budget(m),
        }
    }
}

impl Engine {
    pub(crate) fn new(threads: usize, budget: &crate::Budget) -> Self {
        Engine {
            onnx: Onnx::new(Options {
                threads,
                max_tensor_bytes: budget.memory_bytes.min(Options::default().max_tensor_bytes),
                max_run_bytes: budget.memory_bytes,
                max_run_time: Some(budget.time),
            }),
        }
    }

    /// The instruction set its kernels use on this CPU (speed only).
    pub(crate) fn isa(&self) -> &'static str {
        self.onnx.isa().name()
    }

    pub(crate) fn load(&self, bytes: &[u8]) -> Result<Model> {
        Ok(self.onnx.load(bytes)?)
    }

    pub(crate) fn run(&self, model: &Model, inputs: &NamedTensors) -> Result<NamedTensors> {
        let tensors = model
            .inputs()
            .iter()
            .map(|spec| {
                inputs
                    .get(&spec.name)
                    .map(io::from_gradnet)
                    .ok_or_else(|| RuntimeError::BadInput(format!("missing input `{}`", spec.name)))
            })
            .collect::<Result<Vec<_>>>()?;
        self.onnx
            .run(model, tensors)?
            .into_iter()
            .map(|(name, t)| Ok((name, io::to_gradnet(t)?)))
            .collect()
    }
}
