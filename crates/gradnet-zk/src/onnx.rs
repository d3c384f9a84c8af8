//! ONNX → [`QuantModel`]. The graph must be one chain of operators over a
//! single float input (batch 1; a symbolic batch is taken as 1), with every
//! other operand a constant (initializer or `Constant` node).
//!
//! Linear operators (Gemm, MatMul, Conv, Add/Sub/Mul by a constant,
//! BatchNormalization, GlobalAveragePool) become one `Linear` each, except
//! that a constant Add/Sub right after a linear map folds into its bias and
//! a Relu right after one is fused with its rescale. Shape-only operators
//! (Flatten, Reshape, Identity, Dropout) cost nothing. Each linear map's
//! bias carries an extra 2^(F-1), so that its rescale rounds to nearest
//! (half up) instead of flooring.

use std::collections::HashMap;

use gradnet_onnx::proto as pb;
use gradnet_onnx::proto::tensor_proto::DataType;
use prost::Message;

use crate::model::{Op, QuantModel};
use crate::ZkError;

/// The ONNX operators the compiler lowers.
pub const SUPPORTED: &[&str] = &[
    "Gemm",
    "MatMul",
    "Conv",
    "Add",
    "Sub",
    "Mul",
    "BatchNormalization",
    "GlobalAveragePool",
    "Relu",
    "MaxPool",
    "Flatten",
    "Reshape",
    "Identity",
    "Dropout",
    "Constant",
];

/// A constant tensor, as f64.
#[derive(Clone)]
struct Const {
    dims: Vec<usize>,
    data: Vec<f64>,
}

fn model_err(s: impl Into<String>) -> ZkError {
    ZkError::Model(s.into())
}

fn tensor(t: &pb::TensorProto) -> Result<Const, ZkError> {
    if t.data_location == 1 || !t.external_data.is_empty() {
        return Err(model_err(format!(
            "tensor {} is stored outside the model file",
            t.name
        )));
    }
    let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
    let raw = |w: usize| -> Result<Vec<&[u8]>, ZkError> {
        if !t.raw_data.len().is_multiple_of(w) {
            return Err(model_err(format!("tensor {}: raw data length", t.name)));
        }
        Ok(t.raw_data.chunks(w).collect())
    };
    let data: Vec<f64> = match DataType::try_from(t.data_type) {
        Ok(DataType::Float) if t.raw_data.is_empty() => {
            t.float_data.iter().map(|&v| v as f64).collect()
        }
        Ok(DataType::Float) => raw(4)?
            .into_iter()
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        Ok(DataType::Double) if t.raw_data.is_empty() => t.double_data.clone(),
        Ok(DataType::Double) => raw(8)?
            .into_iter()
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        Ok(DataType::Int64) if t.raw_data.is_empty() => {
            t.int64_data.iter().map(|&v| v as f64).collect()
        }
        Ok(DataType::Int64) => raw(8)?
            .into_iter()
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        _ => {
            return Err(model_err(format!(
                "tensor {}: element type {} is not supported",
                t.name, t.data_type
            )))
        }
    };
    if data.len() != dims.iter().product::<usize>() {
        return Err(model_err(format!(
            "tensor {}: {} values for shape {dims:?}",
            t.name,
            data.len()
        )));
    }
    Ok(Const { dims, data })
}

struct Attrs<'a>(&'a [pb::AttributeProto]);

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&pb::AttributeProto> {
        self.0.iter().find(|a| a.name == name)
    }
    fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }
    fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }
}

/// Builds the operator chain while tracking the activation's shape.
struct Builder {
    frac_bits: u32,
    shape: Vec<usize>,
    ops: Vec<Op>,
    /// The last op is a `Linear` whose rescaled output is the activation
    /// (no ReLU yet): a following constant Add folds into it.
    open_linear: bool,
}

impl Builder {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    fn q(&self, v: f64, extra_bits: u32) -> Result<i64, ZkError> {
        let s = (1u64 << (self.frac_bits + extra_bits)) as f64;
        let q = (v * s).round();
        if !q.is_finite() || q.abs() > (1u64 << 62) as f64 {
            return Err(model_err(format!(
                "constant {v} does not fit the fixed-point range"
            )));
        }
        Ok(q as i64)
    }

    fn linear(
        &mut self,
        rows: Vec<Vec<(u32, f64)>>,
        bias: Vec<f64>,
        shape: Vec<usize>,
    ) -> Result<(), ZkError> {
        let rows = rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|(i, w)| Ok((i, self.q(w, 0)?)))
                    .filter(|r| !matches!(r, Ok((_, 0))))
                    .collect()
            })
            .collect::<Result<_, ZkError>>()?;
        // + 2^(F-1): the circuit's floor division then rounds to nearest
        let half = 1i64 << (self.frac_bits - 1);
        let bias = bias
            .iter()
            .map(|&b| Ok(self.q(b, self.frac_bits)? + half))
            .collect::<Result<_, ZkError>>()?;
        self.ops.push(Op::Linear {
            rows,
            bias,
            relu: false,
        });
        self.shape = shape;
        self.open_linear = true;
        Ok(())
    }

    /// `y = x·scale[i] + shift[i]` elementwise (constants broadcast to x).
    fn affine(&mut self, scale: &[f64], shift: &[f64]) -> Result<(), ZkError> {
        if scale.iter().all(|&s| s == 1.0) && self.open_linear {
            // fold the shift into the bias of the linear map that made x
            let extra = self.frac_bits;
            let shift_q = shift
                .iter()
                .map(|&c| self.q(c, extra))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(Op::Linear { bias, .. }) = self.ops.last_mut() {
                for (b, c) in bias.iter_mut().zip(shift_q) {
                    *b += c;
                }
            }
            return Ok(());
        }
        let rows = scale
            .iter()
            .enumerate()
            .map(|(i, &s)| vec![(i as u32, s)])
            .collect();
        self.linear(rows, shift.to_vec(), self.shape.clone())
    }

    /// `c` broadcast (numpy rules) to the activation's shape, flat.
    fn broadcast(&self, c: &Const) -> Result<Vec<f64>, ZkError> {
        let s = &self.shape;
        if c.dims.len() > s.len()
            || c.dims
                .iter()
                .rev()
                .zip(s.iter().rev())
                .any(|(&d, &n)| d != 1 && d != n)
        {
            return Err(model_err(format!(
                "constant of shape {:?} does not broadcast to {s:?}",
                c.dims
            )));
        }
        let off = s.len() - c.dims.len();
        Ok((0..self.len())
            .map(|flat| {
                let (mut rem, mut idx, mut stride) = (flat, 0, 1);
                for k in (0..s.len()).rev() {
                    let i = rem % s[k];
                    rem /= s[k];
                    if k >= off {
                        let d = c.dims[k - off];
                        if d != 1 {
                            idx += i * stride;
                        }
                        stride *= d;
                    }
                }
                c.data[idx]
            })
            .collect())
    }

    fn matmul(&mut self, w: &Const, trans_b: bool, alpha: f64) -> Result<(), ZkError> {
        let k = *self.shape.last().unwrap_or(&0);
        if self.shape.len() != 2 || self.shape[0] != 1 || w.dims.len() != 2 {
            return Err(model_err(format!(
                "matrix product of {:?} by {:?}: only a [1, K] activation times a constant matrix is supported",
                self.shape, w.dims
            )));
        }
        let (wk, n) = if trans_b {
            (w.dims[1], w.dims[0])
        } else {
            (w.dims[0], w.dims[1])
        };
        if wk != k {
            return Err(model_err(format!(
                "matrix product of {:?} by {:?}: inner sizes differ",
                self.shape, w.dims
            )));
        }
        let rows = (0..n)
            .map(|o| {
                (0..k)
                    .map(|i| {
                        let v = if trans_b {
                            w.data[o * k + i]
                        } else {
                            w.data[i * n + o]
                        };
                        (i as u32, alpha * v)
                    })
                    .collect()
            })
            .collect();
        self.linear(rows, vec![0.0; n], vec![1, n])
    }

    fn conv(&mut self, a: &Attrs, w: &Const, b: Option<&Const>) -> Result<(), ZkError> {
        let [1, c, h, wd] = self.shape[..] else {
            return Err(model_err(format!(
                "Conv input {:?}: only [1, C, H, W] is supported",
                self.shape
            )));
        };
        let [m, wc, kh, kw] = w.dims[..] else {
            return Err(model_err(format!(
                "Conv weights {:?}: only 2-D convolutions are supported",
                w.dims
            )));
        };
        if a.int("group", 1) != 1 || wc != c {
            return Err(model_err("Conv: only group = 1 is supported"));
        }
        if a.get("auto_pad")
            .is_some_and(|p| !p.s.is_empty() && p.s != b"NOTSET")
        {
            return Err(model_err("Conv: auto_pad is not supported; give pads"));
        }
        let two = |n: &str, d: i64| a.ints(n).unwrap_or(vec![d, d]);
        let (st, dl, pads) = (
            two("strides", 1),
            two("dilations", 1),
            a.ints("pads").unwrap_or(vec![0; 4]),
        );
        let (st, dl, pads): (Vec<usize>, Vec<usize>, Vec<usize>) = (
            st.iter().map(|&v| v as usize).collect(),
            dl.iter().map(|&v| v as usize).collect(),
            pads.iter().map(|&v| v as usize).collect(),
        );
        if st.len() != 2 || dl.len() != 2 || pads.len() != 4 || st.contains(&0) {
            return Err(model_err("Conv: strides, dilations or pads malformed"));
        }
        let span = |k: usize, d: usize| (k - 1) * d + 1;
        let oh = (h + pads[0] + pads[2])
            .checked_sub(span(kh, dl[0]))
            .map(|v| v / st[0] + 1);
        let ow = (wd + pads[1] + pads[3])
            .checked_sub(span(kw, dl[1]))
            .map(|v| v / st[1] + 1);
        let (Some(oh), Some(ow)) = (oh, ow) else {
            return Err(model_err("Conv: kernel larger than the padded input"));
        };
        let mut rows = Vec::with_capacity(m * oh * ow);
        let mut bias = Vec::with_capacity(m * oh * ow);
        for mo in 0..m {
            for y in 0..oh {
                for x in 0..ow {
                    let mut row = Vec::with_capacity(c * kh * kw);
                    for ci in 0..c {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (y * st[0] + ky * dl[0]) as isize - pads[0] as isize;
                                let ix = (x * st[1] + kx * dl[1]) as isize - pads[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let i = (ci * h + iy as usize) * wd + ix as usize;
                                row.push((i as u32, w.data[((mo * c + ci) * kh + ky) * kw + kx]));
                            }
                        }
                    }
                    rows.push(row);
                    bias.push(b.map_or(0.0, |b| b.data[mo]));
                }
            }
        }
        self.linear(rows, bias, vec![1, m, oh, ow])
    }

    fn max_pool(&mut self, a: &Attrs) -> Result<(), ZkError> {
        let [1, c, h, w] = self.shape[..] else {
            return Err(model_err(format!(
                "MaxPool input {:?}: only [1, C, H, W] is supported",
                self.shape
            )));
        };
        let k = a.ints("kernel_shape").unwrap_or_default();
        let st = a.ints("strides").unwrap_or(vec![1, 1]);
        let pads = a.ints("pads").unwrap_or(vec![0; 4]);
        if k.len() != 2 || st.len() != 2 || pads.len() != 4 || a.int("ceil_mode", 0) != 0 {
            return Err(model_err(
                "MaxPool: 2-D kernel_shape, strides and pads, ceil_mode 0 supported",
            ));
        }
        if a.ints("dilations")
            .is_some_and(|d| d.iter().any(|&v| v != 1))
        {
            return Err(model_err("MaxPool: dilations are not supported"));
        }
        let u = |v: i64| v.max(0) as usize;
        let (kh, kw, sy, sx) = (u(k[0]), u(k[1]), u(st[0]).max(1), u(st[1]).max(1));
        let oh = (h + u(pads[0]) + u(pads[2])).saturating_sub(kh) / sy + 1;
        let ow = (w + u(pads[1]) + u(pads[3])).saturating_sub(kw) / sx + 1;
        let mut windows = Vec::with_capacity(c * oh * ow);
        for ci in 0..c {
            for y in 0..oh {
                for x in 0..ow {
                    let mut win = Vec::with_capacity(kh * kw);
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (y * sy + ky) as isize - pads[0] as isize;
                            let ix = (x * sx + kx) as isize - pads[1] as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                win.push(((ci * h + iy as usize) * w + ix as usize) as u32);
                            }
                        }
                    }
                    if win.is_empty() {
                        return Err(model_err("MaxPool: a window lies entirely in the padding"));
                    }
                    windows.push(win);
                }
            }
        }
        self.ops.push(Op::MaxPool { windows });
        self.shape = vec![1, c, oh, ow];
        self.open_linear = false;
        Ok(())
    }
}

/// Compiles an ONNX model with activations at 2^`frac_bits`.
pub fn compile(bytes: &[u8], frac_bits: u32) -> Result<QuantModel, ZkError> {
    if !(1..=20).contains(&frac_bits) {
        return Err(model_err(format!("frac_bits {frac_bits}: choose 1 to 20")));
    }
    let proto =
        pb::ModelProto::decode(bytes).map_err(|e| model_err(format!("not an ONNX model: {e}")))?;
    let graph = proto
        .graph
        .ok_or_else(|| model_err("the model has no graph"))?;
    let mut blocking: Vec<String> = graph
        .node
        .iter()
        .filter(|n| !SUPPORTED.contains(&n.op_type.as_str()))
        .map(|n| n.op_type.clone())
        .collect();
    blocking.sort();
    blocking.dedup();
    if !blocking.is_empty() {
        return Err(ZkError::Unsupported(blocking));
    }
    let mut consts: HashMap<String, Const> = HashMap::new();
    for t in &graph.initializer {
        consts.insert(t.name.clone(), tensor(t)?);
    }
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !consts.contains_key(&i.name))
        .collect();
    let [input] = inputs[..] else {
        return Err(model_err(format!(
            "the circuit takes one input tensor; the model has {}",
            inputs.len()
        )));
    };
    let [output] = &graph.output[..] else {
        return Err(model_err(format!(
            "the circuit gives one output tensor; the model has {}",
            graph.output.len()
        )));
    };
    let input_shape = declared_shape(input)?;
    let mut b = Builder {
        frac_bits,
        shape: input_shape.clone(),
        ops: Vec::new(),
        open_linear: false,
    };
    let mut current = input.name.clone();
    for n in &graph.node {
        let a = Attrs(&n.attribute);
        let op = n.op_type.as_str();
        if op == "Constant" {
            let t = a
                .get("value")
                .and_then(|v| v.t.as_ref())
                .ok_or_else(|| model_err("Constant without a tensor value"))?;
            consts.insert(n.output[0].clone(), tensor(t)?);
            continue;
        }
        let data = n.input.iter().position(|i| *i == current);
        let Some(data) = data else {
            return Err(model_err(format!(
                "node {} ({op}) does not read the running activation {current}: only a single chain of operators is supported",
                n.name
            )));
        };
        let constant = |k: usize| -> Result<&Const, ZkError> {
            let name = n
                .input
                .get(k)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| model_err(format!("{op}: missing input {k}")))?;
            consts
                .get(name)
                .ok_or_else(|| model_err(format!("{op}: input {name} must be a constant")))
        };
        let other = if data == 0 { 1 } else { 0 };
        match op {
            "Gemm" => {
                if data != 0 || a.int("transA", 0) != 0 {
                    return Err(model_err("Gemm: the activation must be A, untransposed"));
                }
                let alpha = a.float("alpha", 1.0) as f64;
                b.matmul(constant(1)?, a.int("transB", 0) != 0, alpha)?;
                if n.input.get(2).is_some_and(|s| !s.is_empty()) {
                    let beta = a.float("beta", 1.0) as f64;
                    let c = b.broadcast(constant(2)?)?;
                    b.affine(
                        &vec![1.0; c.len()],
                        &c.iter().map(|v| v * beta).collect::<Vec<_>>(),
                    )?;
                }
            }
            "MatMul" => {
                if data != 0 {
                    return Err(model_err("MatMul: the activation must be the left operand"));
                }
                b.matmul(constant(1)?, false, 1.0)?;
            }
            "Add" | "Sub" | "Mul" => {
                let c = b.broadcast(constant(other)?)?;
                let ones = vec![1.0; c.len()];
                match (op, data) {
                    ("Add", _) => b.affine(&ones, &c)?,
                    ("Sub", 0) => b.affine(&ones, &c.iter().map(|v| -v).collect::<Vec<_>>())?,
                    ("Sub", _) => b.affine(&vec![-1.0; c.len()], &c)?,
                    _ => b.affine(&c, &vec![0.0; c.len()])?,
                }
            }
            "Conv" => b.conv(
                &a,
                constant(1)?,
                n.input
                    .get(2)
                    .filter(|s| !s.is_empty())
                    .map(|_| constant(2))
                    .transpose()?,
            )?,
            "BatchNormalization" => {
                let [1, ch, ..] = b.shape[..] else {
                    return Err(model_err("BatchNormalization: input must be [1, C, ...]"));
                };
                let eps = a.float("epsilon", 1e-5) as f64;
                let (g, bt, mean, var) = (constant(1)?, constant(2)?, constant(3)?, constant(4)?);
                let per = b.len() / ch;
                let mut scale = Vec::with_capacity(b.len());
                let mut shift = Vec::with_capacity(b.len());
                for c in 0..ch {
                    let s = g.data[c] / (var.data[c] + eps).sqrt();
                    scale.extend(std::iter::repeat_n(s, per));
                    shift.extend(std::iter::repeat_n(bt.data[c] - mean.data[c] * s, per));
                }
                b.affine(&scale, &shift)?;
            }
            "GlobalAveragePool" => {
                let [1, ch, ..] = b.shape[..] else {
                    return Err(model_err("GlobalAveragePool: input must be [1, C, ...]"));
                };
                let per = b.len() / ch;
                let rows = (0..ch)
                    .map(|c| {
                        (0..per)
                            .map(|i| ((c * per + i) as u32, 1.0 / per as f64))
                            .collect()
                    })
                    .collect();
                let rank = b.shape.len();
                let mut shape = vec![1, ch];
                shape.resize(rank, 1);
                b.linear(rows, vec![0.0; ch], shape)?;
            }
            "Relu" => match b.ops.last_mut() {
                Some(Op::Linear { relu, .. }) if b.open_linear => {
                    *relu = true;
                    b.open_linear = false;
                }
                _ => {
                    b.ops.push(Op::Relu);
                    b.open_linear = false;
                }
            },
            "MaxPool" => b.max_pool(&a)?,
            "Flatten" => {
                let axis = a.int("axis", 1);
                let axis = if axis < 0 {
                    axis + b.shape.len() as i64
                } else {
                    axis
                } as usize;
                let lead: usize = b.shape[..axis.min(b.shape.len())].iter().product();
                b.shape = vec![lead, b.len() / lead.max(1)];
            }
            "Reshape" => {
                let target = constant(1)?;
                let mut dims: Vec<i64> = target.data.iter().map(|&v| v as i64).collect();
                for (k, d) in dims.iter_mut().enumerate() {
                    if *d == 0 {
                        *d = *b
                            .shape
                            .get(k)
                            .ok_or_else(|| model_err("Reshape: 0 beyond the input's rank"))?
                            as i64;
                    }
                }
                let known: i64 = dims.iter().filter(|&&d| d > 0).product();
                let shape: Vec<usize> = dims
                    .iter()
                    .map(|&d| {
                        if d < 0 {
                            b.len() / known.max(1) as usize
                        } else {
                            d as usize
                        }
                    })
                    .collect();
                if shape.iter().product::<usize>() != b.len() {
                    return Err(model_err(format!("Reshape of {:?} to {dims:?}", b.shape)));
                }
                b.shape = shape;
            }
            _ => {} // Identity, Dropout (inference): the activation passes through
        }
        current = n.output[0].clone();
    }
    if current != output.name {
        return Err(model_err(format!(
            "the graph's output {} is not the end of the operator chain",
            output.name
        )));
    }
    if b.ops.is_empty() {
        return Err(model_err(
            "the model computes nothing the circuit could prove",
        ));
    }
    Ok(QuantModel {
        frac_bits,
        input_shape,
        output_shape: b.shape,
        output_name: output.name.clone(),
        ops: b.ops,
    })
}

fn declared_shape(v: &pb::ValueInfoProto) -> Result<Vec<usize>, ZkError> {
    use pb::tensor_shape_proto::dimension::Value;
    let Some(pb::type_proto::Value::TensorType(t)) =
        v.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(model_err(format!("input {} is not a tensor", v.name)));
    };
    if t.elem_type != DataType::Float as i32 {
        return Err(model_err(format!("input {} must be float32", v.name)));
    }
    let dims = t.shape.as_ref().map(|s| &s.dim[..]).unwrap_or_default();
    dims.iter()
        .enumerate()
        .map(|(k, d)| match &d.value {
            Some(Value::DimValue(n)) if *n > 0 => Ok(*n as usize),
            // a symbolic leading dimension is the batch: proofs are per row
            _ if k == 0 => Ok(1),
            _ => Err(model_err(format!(
                "input {}: dimension {k} must be fixed",
                v.name
            ))),
        })
        .collect()
}
