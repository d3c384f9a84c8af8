//! Indexing: gathers, scatters, `NonZero`, `OneHot`, `Trilu`. Every index
//! is checked; an out-of-range one is an error, never a wild read.

use super::shape::{axis, strides};
use super::{Build, Inputs, Op};
use crate::cx::Cx;
use crate::error::{bail, Result};
use crate::tensor::{numel, Data, Tensor};

struct F<T: Fn(&Cx, &Inputs) -> Result<Vec<Tensor>> + Send + Sync>(T);

impl<T: Fn(&Cx, &Inputs) -> Result<Vec<Tensor>> + Send + Sync> Op for F<T> {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        (self.0)(cx, &inputs)
    }
}

fn op(
    f: impl Fn(&Cx, &Inputs) -> Result<Vec<Tensor>> + Send + Sync + 'static,
) -> Result<Box<dyn Op>> {
    Ok(Box::new(F(f)))
}

/// An index in `[-len, len)` as a position.
fn index(i: i64, len: usize, what: &str) -> Result<usize> {
    let l = len as i64;
    if i < -l || i >= l {
        bail!("{what}: index {i} is out of range for a dimension of {len}");
    }
    Ok(if i < 0 { (i + l) as usize } else { i as usize })
}

pub(crate) fn gather(b: &Build) -> Result<Box<dyn Op>> {
    let a = b.node.int_or("axis", 0)?;
    op(move |cx, i| {
        let (x, idx) = (i.get(0)?, i.get(1)?);
        let ax = axis(a, x.rank())?;
        let ids = idx.to_i64s()?;
        let d = x.shape()[ax];
        let outer: usize = x.shape()[..ax].iter().product();
        let inner: usize = x.shape()[ax + 1..].iter().product();
        let mut shape = x.shape()[..ax].to_vec();
        shape.extend(idx.shape());
        shape.extend(&x.shape()[ax + 1..]);
        cx.check_size(&shape, x.dtype().size())?;
        let pos = ids
            .iter()
            .map(|&j| index(j, d, "Gather"))
            .collect::<Result<Vec<_>>>()?;
        let mut src = Vec::with_capacity(numel(&shape)?);
        for o in 0..outer {
            for &p in &pos {
                let base = (o * d + p) * inner;
                src.extend(base..base + inner);
            }
        }
        Ok(vec![Tensor::new(shape, x.data().gather(src.into_iter()))?])
    })
}

pub(crate) fn gather_elements(b: &Build) -> Result<Box<dyn Op>> {
    let a = b.node.int_or("axis", 0)?;
    op(move |_, i| {
        let (x, idx) = (i.get(0)?, i.get(1)?);
        let ax = axis(a, x.rank())?;
        if idx.rank() != x.rank() {
            bail!(
                "GatherElements: indices of rank {} for data of rank {}",
                idx.rank(),
                x.rank()
            );
        }
        let ids = idx.to_i64s()?;
        let (xs, is) = (strides(x.shape()), strides(idx.shape()));
        let mut src = Vec::with_capacity(ids.len());
        for (n, &j) in ids.iter().enumerate() {
            let mut off = 0;
            for d in 0..x.rank() {
                let p = if d == ax {
                    index(j, x.shape()[d], "GatherElements")?
                } else {
                    (n / is[d]) % idx.shape()[d]
                };
                if p >= x.shape()[d] {
                    bail!(
                        "GatherElements: indices shape {:?} exceeds data {:?}",
                        idx.shape(),
                        x.shape()
                    );
                }
                off += p * xs[d];
            }
            src.push(off);
        }
        Ok(vec![Tensor::new(
            idx.shape().to_vec(),
            x.data().gather(src.into_iter()),
        )?])
    })
}

pub(crate) fn gather_nd(b: &Build) -> Result<Box<dyn Op>> {
    let batch_dims = b.node.int_or("batch_dims", 0)?;
    if batch_dims != 0 {
        return Err(b.unsupported("batch_dims"));
    }
    op(|_, i| {
        let (x, idx) = (i.get(0)?, i.get(1)?);
        let k = *idx.shape().last().unwrap_or(&0);
        if k > x.rank() {
            bail!(
                "GatherND: index tuples of {k} for data of rank {}",
                x.rank()
            );
        }
        let ids = idx.to_i64s()?;
        let xs = strides(x.shape());
        let inner: usize = x.shape()[k..].iter().product();
        let mut src = vec![];
        for t in ids.chunks(k.max(1)) {
            let mut off = 0;
            for (d, &j) in t.iter().enumerate().take(k) {
                off += index(j, x.shape()[d], "GatherND")? * xs[d];
            }
            src.extend(off..off + inner);
        }
        let mut shape = idx.shape()[..idx.rank() - 1].to_vec();
        shape.extend(&x.shape()[k..]);
        Ok(vec![Tensor::new(shape, x.data().gather(src.into_iter()))?])
    })
}

/// Scatter: `updates[n]` goes to offset `dst[n]` of a copy of the data,
/// in order (a later update to one position wins, or reduces in order).
fn scatter(x: &Tensor, dst: &[usize], updates: &Tensor, reduction: &str) -> Result<Tensor> {
    let mut src: Vec<usize> = (0..x.len()).collect();
    if reduction == "none" {
        let n = x.len();
        for (u, &d) in dst.iter().enumerate() {
            src[d] = n + u;
        }
        let data = Data::select2(x.data(), updates.data(), &src).ok_or_else(|| {
            crate::error::Error::Run("scatter: updates differ in type from data".into())
        })?;
        return Tensor::new(x.shape().to_vec(), data);
    }
    macro_rules! red {
        ($v:expr, $u:expr, $var:ident) => {{
            let mut out = $v.clone();
            for (k, &d) in dst.iter().enumerate() {
                let u = $u[k];
                out[d] = match reduction {
                    "add" => out[d] + u,
                    "mul" => out[d] * u,
                    "max" => {
                        if u > out[d] {
                            u
                        } else {
                            out[d]
                        }
                    }
                    "min" => {
                        if u < out[d] {
                            u
                        } else {
                            out[d]
                        }
                    }
                    r => bail!("scatter reduction `{r}` is not supported"),
                };
            }
            Data::$var(out)
        }};
    }
    let data = match (x.data(), updates.data()) {
        (Data::F32(v), Data::F32(u)) => red!(v, u, F32),
        (Data::F64(v), Data::F64(u)) => red!(v, u, F64),
        (Data::I64(v), Data::I64(u)) => red!(v, u, I64),
        (Data::I32(v), Data::I32(u)) => red!(v, u, I32),
        _ => bail!("scatter with reduction needs numeric data and updates of one type"),
    };
    Tensor::new(x.shape().to_vec(), data)
}

pub(crate) fn scatter_elements(b: &Build) -> Result<Box<dyn Op>> {
    let a = b.node.int_or("axis", 0)?;
    let reduction = b.node.string_or("reduction", "none")?;
    op(move |_, i| {
        let (x, idx, upd) = (i.get(0)?, i.get(1)?, i.get(2)?);
        let ax = axis(a, x.rank())?;
        if idx.shape() != upd.shape() || idx.rank() != x.rank() {
            bail!(
                "ScatterElements: indices {:?}, updates {:?}, data {:?}",
                idx.shape(),
                upd.shape(),
                x.shape()
            );
        }
        let ids = idx.to_i64s()?;
        let (xs, is) = (strides(x.shape()), strides(idx.shape()));
        let mut dst = Vec::with_capacity(ids.len());
        for (n, &j) in ids.iter().enumerate() {
            let mut off = 0;
            for d in 0..x.rank() {
                let p = if d == ax {
                    index(j, x.shape()[d], "ScatterElements")?
                } else {
                    (n / is[d]) % idx.shape()[d]
                };
                if p >= x.shape()[d] {
                    bail!(
                        "ScatterElements: indices shape {:?} exceeds data {:?}",
                        idx.shape(),
                        x.shape()
                    );
                }
                off += p * xs[d];
            }
            dst.push(off);
        }
        Ok(vec![scatter(x, &dst, upd, &reduction)?])
    })
}

pub(crate) fn scatter_nd(b: &Build) -> Result<Box<dyn Op>> {
    let reduction = b.node.string_or("reduction", "none")?;
    op(move |_, i| {
        let (x, idx, upd) = (i.get(0)?, i.get(1)?, i.get(2)?);
        let k = *idx.shape().last().unwrap_or(&0);
        if k > x.rank() {
            bail!(
                "ScatterND: index tuples of {k} for data of rank {}",
                x.rank()
            );
        }
        let ids = idx.to_i64s()?;
        let xs = strides(x.shape());
        let inner: usize = x.shape()[k..].iter().product();
        let mut dst = vec![];
        for t in ids.chunks(k.max(1)) {
            let mut off = 0;
            for (d, &j) in t.iter().enumerate().take(k) {
                off += index(j, x.shape()[d], "ScatterND")? * xs[d];
            }
            dst.extend(off..off + inner);
        }
        if dst.len() != upd.len() {
            bail!(
                "ScatterND: {} updates for {} positions",
                upd.len(),
                dst.len()
            );
        }
        Ok(vec![scatter(x, &dst, upd, &reduction)?])
    })
}

pub(crate) fn non_zero(_: &Build) -> Result<Box<dyn Op>> {
    op(|_, i| {
        let x = i.get(0)?;
        let nz: Vec<bool> = match x.data() {
            Data::F32(v) => v.iter().map(|&e| e != 0.0).collect(),
            Data::F64(v) => v.iter().map(|&e| e != 0.0).collect(),
            Data::Bool(v) => v.clone(),
            Data::Str(_) => bail!("NonZero on strings"),
            _ => x.to_i64s()?.iter().map(|&e| e != 0).collect(),
        };
        let r = x.rank();
        let st = strides(x.shape());
        let pos: Vec<usize> = nz
            .iter()
            .enumerate()
            .filter(|(_, &b)| b)
            .map(|(i, _)| i)
            .collect();
        let mut out = vec![0i64; r * pos.len()];
        for (j, &p) in pos.iter().enumerate() {
            for d in 0..r {
                out[d * pos.len() + j] = ((p / st[d]) % x.shape()[d]) as i64;
            }
        }
        Ok(vec![Tensor::from_vec(vec![r, pos.len()], out)?])
    })
}

pub(crate) fn one_hot(b: &Build) -> Result<Box<dyn Op>> {
    let a = b.node.int_or("axis", -1)?;
    op(move |cx, i| {
        let (idx, depth, values) = (i.get(0)?, i.get(1)?, i.get(2)?);
        let depth = depth.to_f64s()?.first().copied().unwrap_or(0.0) as i64;
        if depth <= 0 || values.len() != 2 {
            bail!("OneHot: depth {depth} and {} values", values.len());
        }
        let d = depth as usize;
        let r = idx.rank() + 1;
        let ax = axis(a, r)?;
        let mut shape = idx.shape().to_vec();
        shape.insert(ax, d);
        cx.check_size(&shape, values.dtype().size())?;
        let ids = idx.to_i64s()?;
        let outer: usize = idx.shape()[..ax].iter().product();
        let inner: usize = idx.shape()[ax..].iter().product();
        let mut sel = vec![0usize; numel(&shape)?];
        for o in 0..outer {
            for j in 0..inner {
                let v = ids[o * inner + j];
                let v = if v < 0 { v + depth } else { v };
                if (0..depth).contains(&v) {
                    sel[(o * d + v as usize) * inner + j] = 1;
                }
            }
        }
        Ok(vec![Tensor::new(
            shape,
            values.data().gather(sel.into_iter()),
        )?])
    })
}

pub(crate) fn trilu(b: &Build) -> Result<Box<dyn Op>> {
    let upper = b.node.int_or("upper", 1)? != 0;
    op(move |_, i| {
        let x = i.get(0)?;
        let k = i
            .opt(1)
            .map(|t| t.to_i64s())
            .transpose()?
            .and_then(|v| v.first().copied())
            .unwrap_or(0);
        if x.rank() < 2 {
            bail!("Trilu needs rank >= 2");
        }
        let (rows, cols) = (x.shape()[x.rank() - 2], x.shape()[x.rank() - 1]);
        let n = x.len();
        let zero = Data::zeros(x.dtype(), 1);
        let sel: Vec<usize> = (0..n)
            .map(|p| {
                let (r, c) = (((p / cols) % rows) as i64, (p % cols) as i64);
                let keep = if upper { c - r >= k } else { c - r <= k };
                if keep {
                    p
                } else {
                    n
                }
            })
            .collect();
        let data = Data::select2(x.data(), &zero, &sel).expect("one dtype");
        Ok(vec![Tensor::new(x.shape().to_vec(), data)?])
    })
}
