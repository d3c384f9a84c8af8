//! Operators: how each ONNX node is built from its attributes and constant
//! inputs (weights are packed once, here) and how it runs.

mod binary;
mod broadcast;
mod cast;
mod control;
mod conv;
mod index;
mod matmul;
pub(crate) mod ml;
pub(crate) mod norm;
mod pool;
mod reduce;
mod resize;
mod rnn;
mod shape;
mod softmax;
pub(crate) mod unary;

use std::collections::HashMap;
use std::sync::Arc;

use crate::cx::{Cx, Recycle};
use crate::error::{Error, Result};
use crate::graph::node::{Node, ONNX, ONNX_ML};
use crate::kernels::Isa;
use crate::tensor::Tensor;

pub(crate) trait Op: Send + Sync {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>>;
}

/// A node's input values; absent optional inputs are `None`.
pub(crate) struct Inputs<'a> {
    pub vals: Vec<Option<Arc<Tensor>>>,
    /// For messages.
    pub label: Arc<str>,
    /// Where inputs the operator leaves behind go when it finishes.
    pub recycle: Option<&'a Recycle>,
}

impl Drop for Inputs<'_> {
    fn drop(&mut self) {
        let Some(r) = self.recycle else { return };
        for v in self.vals.drain(..).flatten() {
            if let Ok(t) = Arc::try_unwrap(v) {
                r.put(t);
            }
        }
    }
}

impl Inputs<'_> {
    pub(crate) fn len(&self) -> usize {
        self.vals.len()
    }

    pub(crate) fn get(&self, i: usize) -> Result<&Tensor> {
        self.opt(i)
            .ok_or_else(|| Error::Run(format!("{}: input {i} is missing", self.label)))
    }

    pub(crate) fn opt(&self, i: usize) -> Option<&Tensor> {
        self.vals.get(i).and_then(|v| v.as_deref())
    }

    /// The input by value: moved out when this node holds the only
    /// reference (its last use), copied otherwise.
    pub(crate) fn take(&mut self, i: usize) -> Result<Tensor> {
        let label = self.label.clone();
        let v = self
            .vals
            .get_mut(i)
            .and_then(|v| v.take())
            .ok_or_else(|| Error::Run(format!("{label}: input {i} is missing")))?;
        Ok(Arc::try_unwrap(v).unwrap_or_else(|shared| (*shared).clone()))
    }
}

/// What an operator's constructor sees.
pub(crate) struct Build<'a> {
    pub node: &'a Node,
    /// The opset version of the node's domain.
    pub opset: i64,
    pub consts: &'a HashMap<String, Arc<Tensor>>,
    pub isa: Isa,
    /// For loading control-flow bodies.
    pub load: &'a crate::graph::LoadCx,
}

impl Build<'_> {
    /// Input `i` when it is a constant (an initializer or a folded value).
    pub(crate) fn constant(&self, i: usize) -> Option<&Tensor> {
        self.node
            .input(i)
            .and_then(|n| self.consts.get(n))
            .map(|t| &**t)
    }

    pub(crate) fn unsupported(&self, what: &str) -> Error {
        Error::Unsupported(vec![format!("{} ({what})", self.node.kind())])
    }
}

type Ctor = fn(&Build) -> Result<Box<dyn Op>>;

fn ctor(domain: &str, op: &str) -> Option<Ctor> {
    Some(match domain {
        ONNX => match op {
            "Conv" => conv::conv,
            "ConvTranspose" => conv::conv_transpose,
            "MatMul" => matmul::matmul,
            "Gemm" => matmul::gemm,
            "BatchNormalization" => norm::batch_norm,
            "LayerNormalization" => norm::layer_norm,
            "InstanceNormalization" => norm::instance_norm,
            "LpNormalization" => norm::lp_norm,
            "MaxPool" => pool::max_pool,
            "AveragePool" => pool::average_pool,
            "GlobalAveragePool" => pool::global_average_pool,
            "GlobalMaxPool" => pool::global_max_pool,
            "Softmax" => softmax::softmax,
            "LogSoftmax" => softmax::log_softmax,
            "Resize" | "Upsample" => resize::resize,
            "LSTM" => rnn::lstm,
            "GRU" => rnn::gru,
            "Cast" => cast::cast,
            "CastLike" => cast::cast_like,
            "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Mod" | "Max" | "Min" | "Sum" | "Mean"
            | "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or"
            | "Xor" | "Where" | "PRelu" | "BitShift" => binary::binary,
            "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd"
            | "ReduceSumSquare" | "ReduceL1" | "ReduceL2" | "ReduceLogSum" | "ReduceLogSumExp" => {
                reduce::reduce
            }
            "ArgMax" | "ArgMin" => reduce::arg,
            "TopK" => reduce::top_k,
            "CumSum" => reduce::cum_sum,
            "Reshape" => shape::reshape,
            "Flatten" => shape::flatten,
            "Squeeze" => shape::squeeze,
            "Unsqueeze" => shape::unsqueeze,
            "Transpose" => shape::transpose,
            "Concat" => shape::concat,
            "Split" => shape::split,
            "Slice" => shape::slice,
            "Shape" => shape::shape,
            "Size" => shape::size,
            "Expand" => shape::expand,
            "Tile" => shape::tile,
            "Pad" => shape::pad,
            "ConstantOfShape" => shape::constant_of_shape,
            "Range" => shape::range,
            "Identity" | "Dropout" => shape::identity,
            "DepthToSpace" => shape::depth_to_space,
            "SpaceToDepth" => shape::space_to_depth,
            "Gather" => index::gather,
            "GatherElements" => index::gather_elements,
            "GatherND" => index::gather_nd,
            "ScatterElements" | "Scatter" => index::scatter_elements,
            "ScatterND" => index::scatter_nd,
            "NonZero" => index::non_zero,
            "OneHot" => index::one_hot,
            "Trilu" => index::trilu,
            "If" => control::if_,
            "Loop" => control::loop_,
            "Scan" => control::scan,
            _ => unary::ctor(op)?,
        },
        ONNX_ML => ml::ctor(op)?,
        _ => return None,
    })
}

/// Builds a node's operator, or says why it cannot be run.
pub(crate) fn build(b: &Build) -> Result<Box<dyn Op>> {
    match ctor(&b.node.domain, &b.node.op) {
        Some(f) => f(b),
        None => Err(Error::Unsupported(vec![b.node.kind()])),
    }
}

use crate::kernels::epilogue::{self, Step};
use crate::kernels::multiversion;

multiversion! {
    /// Applies fused steps to `data` seen as planes of `plane` elements,
    /// plane `p` being row `p % rows` of the steps' operands (a channel).
    pub(crate) fn apply_planes(steps: &[Step], data: &mut [f32], plane: usize, rows: usize) {
        if plane == 0 {
            return;
        }
        for (p, v) in data.chunks_mut(plane).enumerate() {
            epilogue::apply::<F>(steps, p % rows.max(1), 0, v);
        }
    }
}

/// Fused steps over a row-major matrix with `cols` columns.
pub(crate) fn conv_steps(cx: &Cx, steps: &[Step], data: &mut [f32], cols: usize) {
    apply_planes(cx.isa, steps, data, cols, usize::MAX);
}
