//! The quantized model a circuit proves: a chain of operations over one
//! flat activation vector (row-major, batch 1), in fixed point.
//!
//! Scales (documented for users in the README): every activation, input and
//! output is an integer at 2^F (`frac_bits`); a `Linear` weight is at 2^F,
//! so the accumulator is at 2^2F and a bias is given at 2^2F; the layer's
//! result is floor(acc / 2^F), back at 2^F. Floats are quantized by
//! round-half-away-from-zero.

use crate::ZkError;

/// Bits of an activation's signed range: every value the circuit carries
/// lies in [-2^(B-1), 2^(B-1)).
pub const ACT_BITS: u32 = 32;

/// One step of a compiled model, on integers at 2^F.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `y[o] = floor((Σ w·x[i] + bias[o]) / 2^F)`, then ReLU when `relu`.
    /// Rows are sparse (`(input index, weight)`), so a convolution is a
    /// linear map like any other.
    Linear {
        /// Per output, its (input index, weight) terms.
        rows: Vec<Vec<(u32, i64)>>,
        /// Per output, at 2^(2F).
        bias: Vec<i64>,
        /// A ReLU follows.
        relu: bool,
    },
    /// `max(x, 0)` on its own (a ReLU not directly after a linear map).
    Relu,
    /// `y[o] = max(x[i] for i in windows[o])`.
    MaxPool {
        /// Per output, the input indices it takes the maximum of.
        windows: Vec<Vec<u32>>,
    },
}

/// An ONNX model compiled to fixed point: a chain of [`Op`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantModel {
    /// F: values are integers at 2^F.
    pub frac_bits: u32,
    /// The input tensor's shape.
    pub input_shape: Vec<usize>,
    /// The output tensor's shape.
    pub output_shape: Vec<usize>,
    /// The ONNX graph's output name (the tensor's name in results).
    pub output_name: String,
    /// The steps, in order.
    pub ops: Vec<Op>,
}

pub(crate) fn in_range(v: i128) -> Result<i128, ZkError> {
    let half = 1i128 << (ACT_BITS - 1);
    if (-half..half).contains(&v) {
        Ok(v)
    } else {
        Err(ZkError::Range(v))
    }
}

impl QuantModel {
    /// Input values it takes.
    pub fn inputs(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// Output values it gives.
    pub fn outputs(&self) -> usize {
        self.output_shape.iter().product()
    }

    /// `x` at 2^F, rounded half away from zero.
    pub fn quantize(&self, x: &[f32]) -> Result<Vec<i64>, ZkError> {
        let s = (1u64 << self.frac_bits) as f64;
        x.iter()
            .map(|&v| {
                let q = (v as f64 * s).round();
                if !q.is_finite() {
                    return Err(ZkError::Input(format!("{v} is not a finite number")));
                }
                in_range(q as i128).map(|q| q as i64)
            })
            .collect()
    }

    /// Outputs back to floats.
    pub fn dequantize(&self, y: &[i64]) -> Vec<f32> {
        let s = (1u64 << self.frac_bits) as f64;
        y.iter().map(|&v| (v as f64 / s) as f32).collect()
    }

    /// The circuit's arithmetic, run plainly: the output a proof attests.
    pub fn forward(&self, x: &[i64]) -> Result<Vec<i64>, ZkError> {
        if x.len() != self.inputs() {
            return Err(ZkError::InputLen {
                got: x.len(),
                want: self.inputs(),
            });
        }
        let mut a: Vec<i128> = x
            .iter()
            .map(|&v| in_range(v as i128))
            .collect::<Result<_, _>>()?;
        for op in &self.ops {
            a = match op {
                Op::Linear { rows, bias, relu } => rows
                    .iter()
                    .zip(bias)
                    .map(|(row, b)| {
                        let acc = row
                            .iter()
                            .map(|&(i, w)| w as i128 * a[i as usize])
                            .sum::<i128>()
                            + *b as i128;
                        let q = in_range(acc.div_euclid(1 << self.frac_bits))?;
                        Ok(if *relu { q.max(0) } else { q })
                    })
                    .collect::<Result<_, ZkError>>()?,
                Op::Relu => a.iter().map(|v| (*v).max(0)).collect(),
                Op::MaxPool { windows } => windows
                    .iter()
                    .map(|w| w.iter().map(|&i| a[i as usize]).max().unwrap_or(0))
                    .collect(),
            };
        }
        Ok(a.into_iter().map(|v| v as i64).collect())
    }

    /// Canonical bytes of the quantized model: what its hash commits to.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = b"gradnet-zk-model-v1".to_vec();
        let u = |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&v.to_le_bytes());
        u(&mut out, self.frac_bits as u64);
        for shape in [&self.input_shape, &self.output_shape] {
            u(&mut out, shape.len() as u64);
            for &d in shape {
                u(&mut out, d as u64);
            }
        }
        u(&mut out, self.output_name.len() as u64);
        out.extend_from_slice(self.output_name.as_bytes());
        for op in &self.ops {
            match op {
                Op::Linear { rows, bias, relu } => {
                    u(&mut out, 1);
                    u(&mut out, *relu as u64);
                    u(&mut out, rows.len() as u64);
                    for (row, b) in rows.iter().zip(bias) {
                        u(&mut out, *b as u64);
                        u(&mut out, row.len() as u64);
                        for &(i, w) in row {
                            u(&mut out, i as u64);
                            u(&mut out, w as u64);
                        }
                    }
                }
                Op::Relu => u(&mut out, 2),
                Op::MaxPool { windows } => {
                    u(&mut out, 3);
                    u(&mut out, windows.len() as u64);
                    for w in windows {
                        u(&mut out, w.len() as u64);
                        for &i in w {
                            u(&mut out, i as u64);
                        }
                    }
                }
            }
        }
        out
    }

    /// BLAKE3 of [`encode`](Self::encode): the model's identity in proofs.
    pub fn hash(&self) -> [u8; 32] {
        *blake3::hash(&self.encode()).as_bytes()
    }

    /// Constraints the circuit will have (for sizing keys before a setup).
    pub fn constraint_estimate(&self) -> usize {
        let f = self.frac_bits as usize;
        let b = ACT_BITS as usize;
        let (mut n, mut len) = (1 + self.outputs(), self.inputs());
        for op in &self.ops {
            n += match op {
                Op::Linear { rows, relu, .. } => rows.len() * (f + b + 2 + *relu as usize),
                Op::Relu => len * (b + 1),
                Op::MaxPool { windows } => windows.iter().map(|w| w.len() * (b + 3)).sum(),
            };
            len = match op {
                Op::Linear { rows, .. } => rows.len(),
                Op::Relu => len,
                Op::MaxPool { windows } => windows.len(),
            };
        }
        n
    }
}
