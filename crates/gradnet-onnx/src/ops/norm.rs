//! Normalizations. Batch normalization is `fma(x, a, b)` per channel with
//! `a = scale / sqrt(var + eps)` and `b = fma(-mean, a, bias)` computed when
//! the model loads (the same step a fused convolution applies); the others
//! compute a mean and variance per row with the fixed-order sums of
//! [`crate::kernels::reduce`].

use super::{apply_planes, Build, Inputs, Op};
use crate::cx::{Cx, SharedMut};
use crate::error::{bail, Result};
use crate::kernels::epilogue::{Operand, Step};
use crate::kernels::{multiversion, reduce};
use crate::tensor::Tensor;

/// Batch normalization's per-channel coefficients: `y = fma(x, a, b)`.
pub(crate) fn bn_coeffs(
    scale: &[f32],
    bias: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let c = scale.len();
    if bias.len() != c || mean.len() != c || var.len() != c {
        bail!("BatchNormalization: parameters of different lengths");
    }
    let a: Vec<f32> = scale
        .iter()
        .zip(var)
        .map(|(&s, &v)| s / (v + eps).sqrt())
        .collect();
    let b = (0..c).map(|i| (-mean[i]).mul_add(a[i], bias[i])).collect();
    Ok((a, b))
}

/// The fused step for a batch normalization whose parameters are constant.
pub(crate) fn bn_step(b: &Build) -> Result<Option<Step>> {
    let eps = b.node.float_or("epsilon", 1e-5)?;
    if b.node.int_or("training_mode", 0)? != 0
        || b.node.outputs.iter().skip(1).any(|o| !o.is_empty())
    {
        return Ok(None);
    }
    let p: Vec<&Tensor> = match (1..5).map(|i| b.constant(i)).collect::<Option<Vec<_>>>() {
        Some(p) => p,
        None => return Ok(None),
    };
    let (a, c) = bn_coeffs(p[0].f32s()?, p[1].f32s()?, p[2].f32s()?, p[3].f32s()?, eps)?;
    Ok(Some(Step::Fma(Operand::Row(a), Operand::Row(c))))
}

struct BatchNorm {
    eps: f32,
    step: Option<Step>,
}

pub(crate) fn batch_norm(b: &Build) -> Result<Box<dyn Op>> {
    if b.node.int_or("training_mode", 0)? != 0 {
        return Err(b.unsupported("training mode"));
    }
    Ok(Box::new(BatchNorm {
        eps: b.node.float_or("epsilon", 1e-5)?,
        step: bn_step(b)?,
    }))
}

impl Op for BatchNorm {
    fn run(&self, cx: &Cx, mut inputs: Inputs) -> Result<Vec<Tensor>> {
        let step = match &self.step {
            Some(s) => s.clone(),
            None => {
                let p: Vec<&[f32]> = (1..5)
                    .map(|i| inputs.get(i)?.f32s())
                    .collect::<Result<_>>()?;
                let (a, c) = bn_coeffs(p[0], p[1], p[2], p[3], self.eps)?;
                Step::Fma(Operand::Row(a), Operand::Row(c))
            }
        };
        let Step::Fma(Operand::Row(a), _) = &step else {
            unreachable!()
        };
        let x = inputs.take(0)?;
        if x.rank() < 2 || x.shape()[1] != a.len() {
            bail!(
                "BatchNormalization: input {:?} does not have {} channels",
                x.shape(),
                a.len()
            );
        }
        let plane: usize = x.shape()[2..].iter().product();
        let (shape, data) = x.into_parts();
        let Ok(mut v) = crate::tensor::Elem::into_vec(data) else {
            bail!("BatchNormalization needs float32 input")
        };
        apply_planes(cx.isa, std::slice::from_ref(&step), &mut v, plane, a.len());
        Ok(vec![Tensor::from_vec(shape, v)?])
    }
}

multiversion! {
    /// Normalizes one row: `(x - mean) * inv`, then `fma(that, scale, bias)`
    /// per element (scale and bias indexed by position in the row).
    fn normalize_row(x: &mut [f32], eps: f32, scale: Option<&[f32]>, bias: Option<&[f32]>) {
        let n = x.len() as f32;
        let mean = reduce::sum(x) / n;
        let var = reduce::sum_sq_dev::<F>(x, mean) / n;
        let inv = 1.0 / (var + eps).sqrt();
        for (i, v) in x.iter_mut().enumerate() {
            let y = (*v - mean) * inv;
            *v = match (scale, bias) {
                (Some(s), Some(b)) => F::fma(y, s[i], b[i]),
                (Some(s), None) => y * s[i],
                (None, Some(b)) => y + b[i],
                (None, None) => y,
            };
        }
    }
}

struct LayerNorm {
    axis: i64,
    eps: f32,
}

pub(crate) fn layer_norm(b: &Build) -> Result<Box<dyn Op>> {
    if b.node.outputs.iter().skip(1).any(|o| !o.is_empty()) {
        return Err(b.unsupported("mean and inverse-deviation outputs"));
    }
    Ok(Box::new(LayerNorm {
        axis: b.node.int_or("axis", -1)?,
        eps: b.node.float_or("epsilon", 1e-5)?,
    }))
}

/// Broadcasts a per-row parameter to the normalized shape.
fn row_param(cx: &Cx, t: Option<&Tensor>, dims: &[usize]) -> Result<Option<Vec<f32>>> {
    let Some(t) = t else { return Ok(None) };
    if t.shape() == dims {
        return Ok(Some(t.f32s()?.to_vec()));
    }
    Ok(Some(super::shape::expand_to(cx, t, dims)?.into_vec()?))
}

impl Op for LayerNorm {
    fn run(&self, cx: &Cx, mut inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let ax = super::shape::axis(self.axis, x.rank())?;
        let dims = x.shape()[ax..].to_vec();
        let scale = row_param(cx, inputs.opt(1), &dims)?;
        let bias = row_param(cx, inputs.opt(2), &dims)?;
        let row: usize = dims.iter().product();
        let x = inputs.take(0)?;
        let (shape, data) = x.into_parts();
        let Ok(mut v) = crate::tensor::Elem::into_vec(data) else {
            bail!("LayerNormalization needs float32 input")
        };
        rows_par(cx, &mut v, row, |r| {
            normalize_row(cx.isa, r, self.eps, scale.as_deref(), bias.as_deref())
        });
        Ok(vec![Tensor::from_vec(shape, v)?])
    }
}

/// Runs `f` on each row of `v`, rows split over the threads.
pub(crate) fn rows_par(cx: &Cx, v: &mut [f32], row: usize, f: impl Fn(&mut [f32]) + Sync + Send) {
    if row == 0 {
        return;
    }
    let n = v.len() / row;
    let chunk = n.div_ceil(cx.threads() * 4).max(1);
    let p = SharedMut(v.as_mut_ptr());
    cx.par_for(n.div_ceil(chunk), |t| {
        for r in t * chunk..((t + 1) * chunk).min(n) {
            // SAFETY: rows are disjoint.
            let s = unsafe { std::slice::from_raw_parts_mut(p.get().add(r * row), row) };
            f(s);
        }
    });
}

struct InstanceNorm {
    eps: f32,
}

pub(crate) fn instance_norm(b: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(InstanceNorm {
        eps: b.node.float_or("epsilon", 1e-5)?,
    }))
}

impl Op for InstanceNorm {
    fn run(&self, cx: &Cx, mut inputs: Inputs) -> Result<Vec<Tensor>> {
        let scale = inputs.get(1)?.f32s()?.to_vec();
        let bias = inputs.get(2)?.f32s()?.to_vec();
        let x = inputs.take(0)?;
        if x.rank() < 3 || x.shape()[1] != scale.len() || bias.len() != scale.len() {
            bail!(
                "InstanceNormalization: input {:?} does not fit {} channels",
                x.shape(),
                scale.len()
            );
        }
        let c = scale.len();
        let plane: usize = x.shape()[2..].iter().product();
        let (shape, data) = x.into_parts();
        let Ok(mut v) = crate::tensor::Elem::into_vec(data) else {
            bail!("InstanceNormalization needs float32 input")
        };
        for (p, r) in v.chunks_mut(plane.max(1)).enumerate() {
            let ch = p % c;
            let (s, b) = (vec![scale[ch]; r.len()], vec![bias[ch]; r.len()]);
            normalize_row(cx.isa, r, self.eps, Some(&s), Some(&b));
        }
        Ok(vec![Tensor::from_vec(shape, v)?])
    }
}

struct LpNorm {
    axis: i64,
    p: i64,
}

pub(crate) fn lp_norm(b: &Build) -> Result<Box<dyn Op>> {
    let p = b.node.int_or("p", 2)?;
    if p != 1 && p != 2 {
        return Err(b.unsupported(&format!("p = {p}")));
    }
    Ok(Box::new(LpNorm {
        axis: b.node.int_or("axis", -1)?,
        p,
    }))
}

impl Op for LpNorm {
    fn run(&self, _: &Cx, mut inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.take(0)?;
        let ax = super::shape::axis(self.axis, x.rank())?;
        let (d, inner) = (x.shape()[ax], x.shape()[ax + 1..].iter().product::<usize>());
        let (shape, data) = x.into_parts();
        let Ok(mut v) = crate::tensor::Elem::into_vec(data) else {
            bail!("LpNormalization needs float32 input")
        };
        let v_: &mut Vec<f32> = &mut v;
        for o in 0..v_.len() / (d * inner).max(1) {
            for i in 0..inner {
                let mut s = 0f32;
                for j in 0..d {
                    let x: f32 = v_[(o * d + j) * inner + i];
                    s = if self.p == 1 {
                        s + x.abs()
                    } else {
                        x.mul_add(x, s)
                    };
                }
                let norm = if self.p == 1 { s } else { s.sqrt() };
                for j in 0..d {
                    let e = &mut v_[(o * d + j) * inner + i];
                    *e = if norm == 0.0 { 0.0 } else { *e / norm };
                }
            }
        }
        Ok(vec![Tensor::from_vec(shape, v)?])
    }
}
