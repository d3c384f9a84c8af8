//! `Softmax` and `LogSoftmax`: per row, `m = max`, `s = Σ exp(x - m)` (the
//! fixed-order sum), then `exp(x - m) / s` or `(x - m) - ln s`.

use super::norm::rows_par;
use super::shape::{axis, permute};
use super::{Build, Inputs, Op};
use crate::cx::Cx;
use crate::error::{bail, Result};
use crate::kernels::{math, multiversion, reduce};
use crate::tensor::Tensor;

struct Softmax {
    axis: i64,
    log: bool,
    /// Before opset 13 the input is seen as 2-D, split at the axis.
    coerce: bool,
}

fn build(b: &Build, log: bool) -> Result<Box<dyn Op>> {
    let coerce = b.opset < 13;
    Ok(Box::new(Softmax {
        axis: b.node.int_or("axis", if coerce { 1 } else { -1 })?,
        log,
        coerce,
    }))
}

pub(crate) fn softmax(b: &Build) -> Result<Box<dyn Op>> {
    build(b, false)
}

pub(crate) fn log_softmax(b: &Build) -> Result<Box<dyn Op>> {
    build(b, true)
}

multiversion! {
    pub(crate) fn softmax_row(x: &mut [f32], log: bool) {
        let m = reduce::max(x);
        if log {
            let mut e: Vec<f32> = x.iter().map(|&v| math::exp::<F>(v - m)).collect();
            let s = reduce::sum(&e);
            let ls = math::ln::<F>(s);
            e.clear();
            for v in x.iter_mut() {
                *v = (*v - m) - ls;
            }
        } else {
            for v in x.iter_mut() {
                *v = math::exp::<F>(*v - m);
            }
            let s = reduce::sum(x);
            for v in x.iter_mut() {
                *v /= s;
            }
        }
    }
}

impl Op for Softmax {
    fn run(&self, cx: &Cx, mut inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.take(0)?;
        let r = x.rank();
        if r == 0 {
            bail!("Softmax of a scalar");
        }
        let ax = axis(self.axis, r)?;
        let log = self.log;
        if self.coerce || ax == r - 1 {
            let row: usize = x.shape()[ax..].iter().product();
            let (shape, data) = x.into_parts();
            let Ok(mut v) = crate::tensor::Elem::into_vec(data) else {
                bail!("Softmax needs float32 input")
            };
            rows_par(cx, &mut v, row, |row| softmax_row(cx.isa, row, log));
            return Ok(vec![Tensor::from_vec(shape, v)?]);
        }
        // move the axis last, compute, move it back
        let mut perm: Vec<usize> = (0..r).filter(|&a| a != ax).collect();
        perm.push(ax);
        let t = permute(&x, &perm)?;
        let row = x.shape()[ax];
        let (shape, data) = t.into_parts();
        let Ok(mut v) = crate::tensor::Elem::into_vec(data) else {
            bail!("Softmax needs float32 input")
        };
        rows_par(cx, &mut v, row, |row| softmax_row(cx.isa, row, log));
        let mut back = vec![0; r];
        for (i, &p) in perm.iter().enumerate() {
            back[p] = i;
        }
        Ok(vec![permute(&Tensor::from_vec(shape, v)?, &back)?])
    }
}
