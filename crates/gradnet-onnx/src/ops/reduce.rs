//! Reductions, arg-max/min, top-k and cumulative sums. A float reduction
//! runs over the reduced elements in row-major order of the reduced axes
//! (they are moved last first), with the fixed-order sums of
//! [`crate::kernels::reduce`].

use super::shape::{axis, permute};
use super::{Build, Inputs, Op};
use crate::cx::Cx;
use crate::error::{bail, Result};
use crate::kernels::{math, multiversion, reduce};
use crate::tensor::{Data, Tensor};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    SumSquare,
    L1,
    L2,
    LogSum,
    LogSumExp,
}

struct Reduce {
    kind: Kind,
    axes: Option<Vec<i64>>,
    /// Axes come as input 1 (opset 13 for ReduceSum, 18 for the others).
    axes_input: bool,
    keepdims: bool,
    noop_empty: bool,
}

pub(crate) fn reduce(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let kind = match n.op.as_str() {
        "ReduceSum" => Kind::Sum,
        "ReduceMean" => Kind::Mean,
        "ReduceMax" => Kind::Max,
        "ReduceMin" => Kind::Min,
        "ReduceProd" => Kind::Prod,
        "ReduceSumSquare" => Kind::SumSquare,
        "ReduceL1" => Kind::L1,
        "ReduceL2" => Kind::L2,
        "ReduceLogSum" => Kind::LogSum,
        _ => Kind::LogSumExp,
    };
    let axes_input = if kind == Kind::Sum {
        b.opset >= 13
    } else {
        b.opset >= 18
    };
    Ok(Box::new(Reduce {
        kind,
        axes: if axes_input { None } else { n.ints("axes")? },
        axes_input,
        keepdims: n.int_or("keepdims", 1)? != 0,
        noop_empty: n.int_or("noop_with_empty_axes", 0)? != 0,
    }))
}

multiversion! {
    fn reduce_rows(kind: Kind, v: &[f32], row: usize) -> Vec<f32> {
        v.chunks(row.max(1))
            .map(|r| match kind {
                Kind::Sum => reduce::sum(r),
                Kind::Mean => reduce::sum(r) / row as f32,
                Kind::Max => reduce::max(r),
                Kind::Min => -reduce::max(&r.iter().map(|x| -x).collect::<Vec<_>>()),
                Kind::Prod => r.iter().fold(1.0, |a, &x| a * x),
                Kind::SumSquare => reduce::dot::<F>(r, r),
                Kind::L1 => reduce::sum(&r.iter().map(|x| x.abs()).collect::<Vec<_>>()),
                Kind::L2 => reduce::dot::<F>(r, r).sqrt(),
                Kind::LogSum => math::ln::<F>(reduce::sum(r)),
                Kind::LogSumExp => {
                    let m = reduce::max(r);
                    let e: Vec<f32> = r.iter().map(|&x| math::exp::<F>(x - m)).collect();
                    m + math::ln::<F>(reduce::sum(&e))
                }
            })
            .collect()
    }
}

impl Op for Reduce {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let r = x.rank();
        let axes = match (&self.axes, self.axes_input) {
            (Some(a), _) => Some(a.clone()),
            (None, true) => inputs.opt(1).map(|t| t.to_i64s()).transpose()?,
            (None, false) => None,
        };
        let axes: Vec<usize> = match axes {
            Some(a) if !a.is_empty() => {
                let mut v = a.iter().map(|&a| axis(a, r)).collect::<Result<Vec<_>>>()?;
                v.sort_unstable();
                v.dedup();
                v
            }
            _ if self.noop_empty => return Ok(vec![x.clone()]),
            _ => (0..r).collect(),
        };
        let keep: Vec<usize> = (0..r).filter(|a| !axes.contains(a)).collect();
        let mut perm = keep.clone();
        perm.extend(&axes);
        let row: usize = axes.iter().map(|&a| x.shape()[a]).product();
        let t = if perm.iter().enumerate().all(|(i, &p)| i == p) {
            x.clone()
        } else {
            permute(x, &perm)?
        };
        let out_shape: Vec<usize> = if self.keepdims {
            (0..r)
                .map(|a| if axes.contains(&a) { 1 } else { x.shape()[a] })
                .collect()
        } else {
            keep.iter().map(|&a| x.shape()[a]).collect()
        };
        let outer: usize = keep.iter().map(|&a| x.shape()[a]).product();
        let data = match t.data() {
            Data::F32(v) => {
                if row == 0 {
                    let fill = match self.kind {
                        Kind::Prod => 1.0,
                        Kind::Max => f32::NEG_INFINITY,
                        Kind::Min => f32::INFINITY,
                        Kind::LogSum | Kind::LogSumExp => f32::NEG_INFINITY,
                        _ => 0.0,
                    };
                    Data::F32(vec![fill; outer])
                } else {
                    Data::F32(reduce_rows(cx.isa, self.kind, v, row))
                }
            }
            Data::F64(v) => Data::F64(
                v.chunks(row.max(1))
                    .map(|r| match self.kind {
                        Kind::Sum => r.iter().sum(),
                        Kind::Mean => r.iter().sum::<f64>() / row as f64,
                        Kind::Max => r.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        Kind::Min => r.iter().copied().fold(f64::INFINITY, f64::min),
                        Kind::Prod => r.iter().product(),
                        Kind::SumSquare => r.iter().map(|x| x * x).sum(),
                        Kind::L1 => r.iter().map(|x| x.abs()).sum(),
                        Kind::L2 => r.iter().map(|x| x * x).sum::<f64>().sqrt(),
                        _ => f64::NAN,
                    })
                    .collect(),
            ),
            Data::I64(v) => Data::I64(int_reduce(self.kind, v, row)?),
            Data::I32(v) => {
                let w: Vec<i64> = v.iter().map(|&x| x as i64).collect();
                Data::I32(
                    int_reduce(self.kind, &w, row)?
                        .into_iter()
                        .map(|x| x as i32)
                        .collect(),
                )
            }
            other => bail!("{:?} on {} is not supported", self.kind, other.dtype()),
        };
        if matches!(t.data(), Data::F64(_)) && matches!(self.kind, Kind::LogSum | Kind::LogSumExp) {
            bail!("{:?} on float64 is not supported", self.kind);
        }
        Ok(vec![Tensor::new(out_shape, data)?])
    }
}

fn int_reduce(kind: Kind, v: &[i64], row: usize) -> Result<Vec<i64>> {
    v.chunks(row.max(1))
        .map(|r| match kind {
            Kind::Sum => Ok(r.iter().fold(0i64, |a, &x| a.wrapping_add(x))),
            Kind::Mean => Ok(r.iter().fold(0i64, |a, &x| a.wrapping_add(x)) / row.max(1) as i64),
            Kind::Max => Ok(r.iter().copied().max().unwrap_or(i64::MIN)),
            Kind::Min => Ok(r.iter().copied().min().unwrap_or(i64::MAX)),
            Kind::Prod => Ok(r.iter().fold(1i64, |a, &x| a.wrapping_mul(x))),
            Kind::SumSquare => Ok(r
                .iter()
                .fold(0i64, |a, &x| a.wrapping_add(x.wrapping_mul(x)))),
            Kind::L1 => Ok(r
                .iter()
                .fold(0i64, |a, &x| a.wrapping_add(x.wrapping_abs()))),
            k => Err(crate::error::Error::Run(format!(
                "{k:?} on integers is not supported"
            ))),
        })
        .collect::<Result<Vec<_>>>()
}

/// Rows of `x` along `ax` (moved last), as (outer shape, row length, data).
fn rows_along(x: &Tensor, ax: usize) -> Result<(Vec<usize>, Tensor)> {
    let r = x.rank();
    let mut perm: Vec<usize> = (0..r).filter(|&a| a != ax).collect();
    perm.push(ax);
    let t = permute(x, &perm)?;
    Ok((perm, t))
}

fn unpermute(t: Tensor, perm: &[usize]) -> Result<Tensor> {
    let mut back = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        back[p] = i;
    }
    permute(&t, &back)
}

struct Arg {
    max: bool,
    axis: i64,
    keepdims: bool,
    last: bool,
}

pub(crate) fn arg(b: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(Arg {
        max: b.node.op == "ArgMax",
        axis: b.node.int_or("axis", 0)?,
        keepdims: b.node.int_or("keepdims", 1)? != 0,
        last: b.node.int_or("select_last_index", 0)? != 0,
    }))
}

/// Index of the best element of each row (first or last among ties; a NaN
/// wins, as numpy's argmax).
fn best<T: PartialOrd + Copy>(v: &[T], row: usize, max: bool, last: bool) -> Vec<i64> {
    v.chunks(row.max(1))
        .map(|r| {
            let mut bi = 0;
            for i in 1..r.len() {
                #[allow(clippy::eq_op)]
                let nan = r[i] != r[i];
                #[allow(clippy::eq_op)]
                let best_nan = r[bi] != r[bi];
                let better = if best_nan {
                    false
                } else if nan {
                    true
                } else if max {
                    r[i] > r[bi] || (last && r[i] == r[bi])
                } else {
                    r[i] < r[bi] || (last && r[i] == r[bi])
                };
                if better {
                    bi = i;
                }
            }
            bi as i64
        })
        .collect()
}

impl Op for Arg {
    fn run(&self, _: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let ax = axis(self.axis, x.rank())?;
        let row = x.shape()[ax];
        if row == 0 {
            bail!("ArgMax/ArgMin over an empty axis");
        }
        let (_, t) = rows_along(x, ax)?;
        let idx = match t.data() {
            Data::F32(v) => best(v, row, self.max, self.last),
            Data::F64(v) => best(v, row, self.max, self.last),
            Data::I64(v) => best(v, row, self.max, self.last),
            Data::I32(v) => best(v, row, self.max, self.last),
            Data::U8(v) => best(v, row, self.max, self.last),
            Data::I8(v) => best(v, row, self.max, self.last),
            other => bail!("ArgMax on {} is not supported", other.dtype()),
        };
        let mut shape = x.shape().to_vec();
        if self.keepdims {
            shape[ax] = 1;
        } else {
            shape.remove(ax);
        }
        Ok(vec![Tensor::from_vec(shape, idx)?])
    }
}

struct TopK {
    axis: i64,
    largest: bool,
    k_attr: Option<i64>,
}

pub(crate) fn top_k(b: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(TopK {
        axis: b.node.int_or("axis", -1)?,
        largest: b.node.int_or("largest", 1)? != 0,
        k_attr: if b.opset < 10 { b.node.int("k")? } else { None },
    }))
}

impl Op for TopK {
    fn run(&self, _: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let k = match self.k_attr {
            Some(k) => k,
            None => inputs.get(1)?.to_i64s()?.first().copied().unwrap_or(0),
        };
        let ax = axis(self.axis, x.rank())?;
        let row = x.shape()[ax];
        if k < 0 || k as usize > row {
            bail!("TopK: k = {k} for an axis of length {row}");
        }
        let k = k as usize;
        let (perm, t) = rows_along(x, ax)?;
        let mut shape: Vec<usize> = t.shape().to_vec();
        *shape.last_mut().expect("rank >= 1") = k;
        // sorted by value (largest or smallest first), ties by lower index
        macro_rules! topk {
            ($v:expr, $var:ident) => {{
                let mut vals = vec![];
                let mut idx = vec![];
                for r in $v.chunks(row.max(1)) {
                    let mut order: Vec<usize> = (0..r.len()).collect();
                    order.sort_by(|&a, &b| {
                        let o = r[a].partial_cmp(&r[b]).unwrap_or(std::cmp::Ordering::Equal);
                        let o = if self.largest { o.reverse() } else { o };
                        o.then(a.cmp(&b))
                    });
                    for &i in &order[..k] {
                        vals.push(r[i]);
                        idx.push(i as i64);
                    }
                }
                (Data::$var(vals), idx)
            }};
        }
        let (vals, idx) = match t.data() {
            Data::F32(v) => topk!(v, F32),
            Data::F64(v) => topk!(v, F64),
            Data::I64(v) => topk!(v, I64),
            Data::I32(v) => topk!(v, I32),
            other => bail!("TopK on {} is not supported", other.dtype()),
        };
        let v = unpermute(Tensor::new(shape.clone(), vals)?, &perm)?;
        let i = unpermute(Tensor::from_vec(shape, idx)?, &perm)?;
        Ok(vec![v, i])
    }
}

struct CumSum {
    exclusive: bool,
    reverse: bool,
}

pub(crate) fn cum_sum(b: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(CumSum {
        exclusive: b.node.int_or("exclusive", 0)? != 0,
        reverse: b.node.int_or("reverse", 0)? != 0,
    }))
}

impl Op for CumSum {
    fn run(&self, _: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let a = inputs.get(1)?.to_i64s()?;
        let ax = axis(*a.first().unwrap_or(&0), x.rank())?;
        let row = x.shape()[ax];
        let (perm, t) = rows_along(x, ax)?;
        macro_rules! cs {
            ($v:expr, $var:ident, $zero:expr) => {{
                let mut out = $v.clone();
                for r in out.chunks_mut(row.max(1)) {
                    let n = r.len();
                    let mut acc = $zero;
                    for j in 0..n {
                        let i = if self.reverse { n - 1 - j } else { j };
                        let v = r[i];
                        if self.exclusive {
                            r[i] = acc;
                            acc = acc + v;
                        } else {
                            acc = acc + v;
                            r[i] = acc;
                        }
                    }
                }
                Data::$var(out)
            }};
        }
        let data = match t.data() {
            Data::F32(v) => cs!(v, F32, 0f32),
            Data::F64(v) => cs!(v, F64, 0f64),
            Data::I64(v) => cs!(v, I64, 0i64),
            Data::I32(v) => cs!(v, I32, 0i32),
            other => bail!("CumSum on {} is not supported", other.dtype()),
        };
        Ok(vec![unpermute(
            Tensor::new(t.shape().to_vec(), data)?,
            &perm,
        )?])
    }
}
