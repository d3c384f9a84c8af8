//! Operators that move elements without computing new ones: reshapes,
//! transposes, slices, concatenation, padding, tiling, and the small shape
//! computations models do at run time.

use super::broadcast;
use super::{Build, Inputs, Op};
use crate::cx::Cx;
use crate::error::{bail, invalid, Error, Result};
use crate::tensor::{numel, DType, Data, Tensor};

/// An axis in `[-rank, rank)` as an index.
pub(crate) fn axis(a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if a < -r || a >= r {
        bail!("axis {a} is out of range for rank {rank}");
    }
    Ok(if a < 0 { (a + r) as usize } else { a as usize })
}

/// Row-major strides of a shape.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Source indexes of a strided view (`dims` walked row-major with `st`
/// from `base`).
pub(crate) fn view_indexes(dims: &[usize], st: &[usize], base: usize) -> Vec<usize> {
    let n: usize = dims.iter().product();
    let mut idx = Vec::with_capacity(n);
    broadcast::runs(dims, [st], |_, [o], [d], len| {
        for i in 0..len {
            idx.push(base.wrapping_add(o).wrapping_add(i.wrapping_mul(d)));
        }
    });
    idx
}

/// A closure-backed operator for the simple cases.
struct Fn1<F: Fn(&Cx, &mut Inputs) -> Result<Vec<Tensor>> + Send + Sync>(F);

impl<F: Fn(&Cx, &mut Inputs) -> Result<Vec<Tensor>> + Send + Sync> Op for Fn1<F> {
    fn run(&self, cx: &Cx, mut inputs: Inputs) -> Result<Vec<Tensor>> {
        (self.0)(cx, &mut inputs)
    }
}

fn op(
    f: impl Fn(&Cx, &mut Inputs) -> Result<Vec<Tensor>> + Send + Sync + 'static,
) -> Result<Box<dyn Op>> {
    Ok(Box::new(Fn1(f)))
}

pub(crate) fn identity(_: &Build) -> Result<Box<dyn Op>> {
    op(|_, i| Ok(vec![i.take(0)?]))
}

pub(crate) fn reshape(b: &Build) -> Result<Box<dyn Op>> {
    let allowzero = b.node.int_or("allowzero", 0)? != 0;
    let attr_shape = if b.opset < 5 {
        b.node.ints("shape")?
    } else {
        None
    };
    op(move |_, i| {
        let want = match &attr_shape {
            Some(s) => s.clone(),
            None => i.get(1)?.to_i64s()?,
        };
        let x = i.take(0)?;
        let shape = reshape_dims(x.shape(), &want, allowzero)?;
        Ok(vec![x.reshaped(shape)?])
    })
}

fn reshape_dims(input: &[usize], want: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    let total = numel(input)?;
    let mut out = Vec::with_capacity(want.len());
    let mut infer = None;
    for (i, &d) in want.iter().enumerate() {
        out.push(match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            0 if !allowzero => *input.get(i).ok_or_else(|| {
                Error::Run(format!(
                    "Reshape: 0 at axis {i} copies a dimension the input ({input:?}) lacks"
                ))
            })?,
            d if d >= 0 => d as usize,
            _ => bail!("Reshape: invalid target shape {want:?}"),
        });
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            bail!("Reshape: cannot reshape {input:?} ({total} elements) to {want:?}");
        }
        out[i] = total / known;
    }
    if numel(&out)? != total {
        bail!("Reshape: cannot reshape {input:?} ({total} elements) to {want:?}");
    }
    Ok(out)
}

pub(crate) fn flatten(b: &Build) -> Result<Box<dyn Op>> {
    let a = b.node.int_or("axis", 1)?;
    op(move |_, i| {
        let x = i.take(0)?;
        let r = x.rank();
        let ax = if a == r as i64 { r } else { axis(a, r.max(1))? };
        let outer: usize = x.shape()[..ax].iter().product();
        let inner: usize = x.shape()[ax..].iter().product();
        Ok(vec![x.reshaped(vec![outer, inner])?])
    })
}

fn axes_of(b: &Build, from_input: i64) -> Result<Option<Vec<i64>>> {
    if b.opset >= from_input {
        Ok(None)
    } else {
        b.node.ints("axes")
    }
}

pub(crate) fn squeeze(b: &Build) -> Result<Box<dyn Op>> {
    let attr = axes_of(b, 13)?;
    op(move |_, i| {
        let axes = match &attr {
            Some(a) => Some(a.clone()),
            None => i.opt(1).map(|t| t.to_i64s()).transpose()?,
        };
        let x = i.take(0)?;
        let r = x.rank();
        let shape: Vec<usize> = match axes {
            Some(axes) => {
                let ax = axes
                    .iter()
                    .map(|&a| axis(a, r))
                    .collect::<Result<Vec<_>>>()?;
                for &a in &ax {
                    if x.shape()[a] != 1 {
                        bail!("Squeeze: axis {a} of shape {:?} is not 1", x.shape());
                    }
                }
                x.shape()
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| !ax.contains(j))
                    .map(|(_, &d)| d)
                    .collect()
            }
            None => x.shape().iter().copied().filter(|&d| d != 1).collect(),
        };
        Ok(vec![x.reshaped(shape)?])
    })
}

pub(crate) fn unsqueeze(b: &Build) -> Result<Box<dyn Op>> {
    let attr = axes_of(b, 13)?;
    op(move |_, i| {
        let axes = match &attr {
            Some(a) => a.clone(),
            None => i.get(1)?.to_i64s()?,
        };
        let x = i.take(0)?;
        let r = x.rank() + axes.len();
        let mut ax = axes
            .iter()
            .map(|&a| axis(a, r))
            .collect::<Result<Vec<_>>>()?;
        ax.sort_unstable();
        if ax.windows(2).any(|w| w[0] == w[1]) {
            bail!("Unsqueeze: axes {axes:?} repeat an axis");
        }
        let mut shape = x.shape().to_vec();
        for a in ax {
            shape.insert(a, 1);
        }
        Ok(vec![x.reshaped(shape)?])
    })
}

/// Transposes `x` by `perm`.
pub(crate) fn permute(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    let r = x.rank();
    if perm.len() != r {
        bail!("Transpose: perm {perm:?} does not fit rank {r}");
    }
    let st = strides(x.shape());
    let dims: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    let pst: Vec<usize> = perm.iter().map(|&p| st[p]).collect();
    if let Data::F32(v) = x.data() {
        let mut out = Vec::with_capacity(v.len());
        broadcast::runs(&dims, [&pst], |_, [o], [d], len| {
            if d == 1 {
                out.extend_from_slice(&v[o..o + len]);
            } else {
                out.extend((0..len).map(|i| v[o + i * d]));
            }
        });
        return Tensor::from_vec(dims, out);
    }
    let idx = view_indexes(&dims, &pst, 0);
    Tensor::new(dims, x.data().gather(idx.into_iter()))
}

pub(crate) fn transpose(b: &Build) -> Result<Box<dyn Op>> {
    let perm = b.node.ints("perm")?;
    op(move |_, i| {
        let x = i.get(0)?;
        let p: Vec<usize> = match &perm {
            Some(p) => p
                .iter()
                .map(|&a| axis(a, x.rank()))
                .collect::<Result<_>>()?,
            None => (0..x.rank()).rev().collect(),
        };
        let mut sorted = p.clone();
        sorted.sort_unstable();
        if sorted != (0..x.rank()).collect::<Vec<_>>() {
            bail!("Transpose: perm {p:?} is not a permutation");
        }
        Ok(vec![permute(x, &p)?])
    })
}

pub(crate) fn concat_tensors(ts: &[&Tensor], a: i64) -> Result<Tensor> {
    let first = ts
        .first()
        .ok_or_else(|| Error::Run("Concat of nothing".into()))?;
    let r = first.rank();
    if r == 0 {
        bail!("Concat of scalars");
    }
    let ax = axis(a, r)?;
    let dtype = first.dtype();
    let mut shape = first.shape().to_vec();
    shape[ax] = 0;
    for t in ts {
        if t.dtype() != dtype || t.rank() != r {
            bail!(
                "Concat: inputs differ in type or rank ({} {:?} vs {dtype} {:?})",
                t.dtype(),
                t.shape(),
                first.shape()
            );
        }
        for d in 0..r {
            if d != ax && t.shape()[d] != first.shape()[d] {
                bail!(
                    "Concat: shapes {:?} and {:?} differ off axis {ax}",
                    first.shape(),
                    t.shape()
                );
            }
        }
        shape[ax] += t.shape()[ax];
    }
    let outer: usize = shape[..ax].iter().product();
    let inner_of = |t: &Tensor| t.shape()[ax..].iter().product::<usize>();
    macro_rules! cat {
        ($var:ident) => {{
            let mut out = Vec::with_capacity(numel(&shape)?);
            for o in 0..outer {
                for t in ts {
                    let Data::$var(v) = t.data() else {
                        unreachable!()
                    };
                    let n = inner_of(t);
                    out.extend_from_slice(&v[o * n..(o + 1) * n]);
                }
            }
            Data::$var(out)
        }};
    }
    let data = match dtype {
        DType::F32 => cat!(F32),
        DType::F64 => cat!(F64),
        DType::I8 => cat!(I8),
        DType::U8 => cat!(U8),
        DType::I16 => cat!(I16),
        DType::U16 => cat!(U16),
        DType::I32 => cat!(I32),
        DType::U32 => cat!(U32),
        DType::I64 => cat!(I64),
        DType::U64 => cat!(U64),
        DType::Bool => cat!(Bool),
        DType::Str => cat!(Str),
    };
    Tensor::new(shape, data)
}

pub(crate) fn concat(b: &Build) -> Result<Box<dyn Op>> {
    let a = b.node.need("axis", b.node.int("axis"))?;
    op(move |_, i| {
        let ts: Vec<&Tensor> = (0..i.len()).filter_map(|j| i.opt(j)).collect();
        Ok(vec![concat_tensors(&ts, a)?])
    })
}

/// Elements `[start, start + len)` along `ax`.
pub(crate) fn narrow(x: &Tensor, ax: usize, start: usize, len: usize) -> Result<Tensor> {
    let mut dims = x.shape().to_vec();
    dims[ax] = len;
    let st = strides(x.shape());
    let idx = view_indexes(&dims, &st, start * st[ax]);
    Tensor::new(dims, x.data().gather(idx.into_iter()))
}

pub(crate) fn split(b: &Build) -> Result<Box<dyn Op>> {
    let a = b.node.int_or("axis", 0)?;
    let attr = if b.opset < 13 {
        b.node.ints("split")?
    } else {
        None
    };
    let outputs = b.node.outputs.len();
    let num_outputs = b.node.int("num_outputs")?;
    op(move |_, i| {
        let x = i.get(0)?;
        let ax = axis(a, x.rank())?;
        let dim = x.shape()[ax];
        let sizes: Vec<usize> = match (&attr, i.opt(1)) {
            (Some(s), _) => s.iter().map(|&v| v.max(0) as usize).collect(),
            (None, Some(t)) => t.to_i64s()?.iter().map(|&v| v.max(0) as usize).collect(),
            (None, None) => {
                let n = num_outputs.map_or(outputs, |n| n as usize).max(1);
                let each = dim.div_ceil(n);
                (0..n)
                    .map(|j| each.min(dim.saturating_sub(j * each)))
                    .collect()
            }
        };
        if sizes.iter().sum::<usize>() != dim {
            bail!("Split: sizes {sizes:?} do not add up to {dim}");
        }
        let mut start = 0;
        let mut out = vec![];
        for s in sizes {
            out.push(narrow(x, ax, start, s)?);
            start += s;
        }
        Ok(out)
    })
}

pub(crate) fn slice(b: &Build) -> Result<Box<dyn Op>> {
    let attrs = if b.opset < 10 {
        Some((
            b.node.need("starts", b.node.ints("starts"))?,
            b.node.need("ends", b.node.ints("ends"))?,
            b.node.ints("axes")?,
        ))
    } else {
        None
    };
    op(move |_, i| {
        let (starts, ends, axes, steps) = match &attrs {
            Some((s, e, a)) => (s.clone(), e.clone(), a.clone(), None),
            None => (
                i.get(1)?.to_i64s()?,
                i.get(2)?.to_i64s()?,
                i.opt(3).map(|t| t.to_i64s()).transpose()?,
                i.opt(4).map(|t| t.to_i64s()).transpose()?,
            ),
        };
        let x = i.get(0)?;
        let r = x.rank();
        let axes: Vec<usize> = match axes {
            Some(a) => a.iter().map(|&v| axis(v, r)).collect::<Result<_>>()?,
            None => (0..starts.len()).collect(),
        };
        if starts.len() != axes.len() || ends.len() != axes.len() {
            bail!("Slice: starts, ends and axes differ in length");
        }
        let mut dims = x.shape().to_vec();
        let st = strides(x.shape());
        let mut vst = st.clone();
        let mut base = 0isize;
        for (j, &ax) in axes.iter().enumerate() {
            let d = x.shape()[ax] as i64;
            let step = steps.as_ref().map_or(1, |s| s[j]);
            if step == 0 {
                bail!("Slice: step 0");
            }
            let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
            let norm = |v: i64| if v < 0 { v + d } else { v };
            let (s, e) = if step > 0 {
                (clamp(norm(starts[j]), 0, d), clamp(norm(ends[j]), 0, d))
            } else {
                (
                    clamp(norm(starts[j]), -1, d - 1),
                    clamp(norm(ends[j]), -1, d - 1),
                )
            };
            let n = if step > 0 {
                ((e - s).max(0) + step - 1) / step
            } else {
                ((s - e).max(0) + (-step) - 1) / (-step)
            };
            dims[ax] = n as usize;
            base += s as isize * st[ax] as isize;
            vst[ax] = (st[ax] as isize * step as isize) as usize;
        }
        // negative strides wrap as usize; view_indexes adds them modulo 2^64
        let n = numel(&dims)?;
        let mut idx = Vec::with_capacity(n);
        broadcast::runs(&dims, [&vst], |_, [o], [d], len| {
            for k in 0..len {
                idx.push(
                    (base as usize)
                        .wrapping_add(o)
                        .wrapping_add(k.wrapping_mul(d)),
                );
            }
        });
        Ok(vec![Tensor::new(dims, x.data().gather(idx.into_iter()))?])
    })
}

pub(crate) fn shape(b: &Build) -> Result<Box<dyn Op>> {
    let start = b.node.int_or("start", 0)?;
    let end = b.node.int("end")?;
    op(move |_, i| {
        let s = i.get(0)?.shape();
        let r = s.len() as i64;
        let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let (a, e) = (clamp(start), clamp(end.unwrap_or(r)));
        let v: Vec<i64> = s[a..e.max(a)].iter().map(|&d| d as i64).collect();
        Ok(vec![Tensor::from_vec(vec![v.len()], v)?])
    })
}

pub(crate) fn size(_: &Build) -> Result<Box<dyn Op>> {
    op(|_, i| Ok(vec![Tensor::scalar(i.get(0)?.len() as i64)]))
}

/// `x` broadcast to `shape` (numpy rules, either may be larger).
pub(crate) fn expand_to(cx: &Cx, x: &Tensor, want: &[usize]) -> Result<Tensor> {
    let out = broadcast::shape(&[x.shape(), want])?;
    cx.check_size(&out, x.dtype().size())?;
    let st = broadcast::strides(x.shape(), &out);
    let idx = view_indexes(&out, &st, 0);
    Tensor::new(out, x.data().gather(idx.into_iter()))
}

pub(crate) fn expand(_: &Build) -> Result<Box<dyn Op>> {
    op(|cx, i| {
        let want: Vec<usize> = i
            .get(1)?
            .to_i64s()?
            .iter()
            .map(|&d| d.max(0) as usize)
            .collect();
        Ok(vec![expand_to(cx, i.get(0)?, &want)?])
    })
}

pub(crate) fn tile(_: &Build) -> Result<Box<dyn Op>> {
    op(|cx, i| {
        let x = i.get(0)?;
        let reps = i.get(1)?.to_i64s()?;
        if reps.len() != x.rank() || reps.iter().any(|&r| r < 0) {
            bail!("Tile: repeats {reps:?} do not fit rank {}", x.rank());
        }
        let out: Vec<usize> = x
            .shape()
            .iter()
            .zip(&reps)
            .map(|(&d, &r)| d * r as usize)
            .collect();
        cx.check_size(&out, x.dtype().size())?;
        let st = strides(x.shape());
        let mut idx = Vec::with_capacity(numel(&out)?);
        let mut pos = vec![0usize; out.len()];
        let n = numel(&out)?;
        for _ in 0..n {
            idx.push(
                pos.iter()
                    .enumerate()
                    .map(|(d, &p)| (p % x.shape()[d]) * st[d])
                    .sum(),
            );
            for d in (0..out.len()).rev() {
                pos[d] += 1;
                if pos[d] < out[d] {
                    break;
                }
                pos[d] = 0;
            }
        }
        Ok(vec![Tensor::new(out, x.data().gather(idx.into_iter()))?])
    })
}

pub(crate) fn pad(b: &Build) -> Result<Box<dyn Op>> {
    let mode = b.node.string_or("mode", "constant")?;
    if !["constant", "reflect", "edge", "wrap"].contains(&mode.as_str()) {
        return Err(invalid!("Pad: unknown mode `{mode}`"));
    }
    let attrs = if b.opset < 11 {
        Some((
            b.node.need("pads", b.node.ints("pads"))?,
            b.node.float_or("value", 0.0)?,
        ))
    } else {
        None
    };
    op(move |cx, i| {
        let x = i.get(0)?;
        let r = x.rank();
        let (pads, value) = match &attrs {
            Some((p, v)) => (p.clone(), Some(Tensor::scalar(*v))),
            None => (i.get(1)?.to_i64s()?, i.opt(2).cloned()),
        };
        let axes: Vec<usize> = match i.opt(3) {
            Some(a) => a
                .to_i64s()?
                .iter()
                .map(|&v| axis(v, r))
                .collect::<Result<_>>()?,
            None => (0..r).collect(),
        };
        if pads.len() != 2 * axes.len() {
            bail!("Pad: {} pads for {} axes", pads.len(), axes.len());
        }
        let mut before = vec![0i64; r];
        let mut after = vec![0i64; r];
        for (j, &a) in axes.iter().enumerate() {
            before[a] = pads[j];
            after[a] = pads[j + axes.len()];
        }
        let out: Vec<usize> = (0..r)
            .map(|d| {
                let n = x.shape()[d] as i64 + before[d] + after[d];
                usize::try_from(n)
                    .map_err(|_| Error::Run(format!("Pad: negative size on axis {d}")))
            })
            .collect::<Result<_>>()?;
        cx.check_size(&out, x.dtype().size())?;
        let st = strides(x.shape());
        let n = numel(&out)?;
        // source index per output element, or usize::MAX for the fill value
        let mut idx = Vec::with_capacity(n);
        let mut pos = vec![0usize; r];
        for _ in 0..n {
            let mut src = 0usize;
            let mut fill = false;
            for d in 0..r {
                let len = x.shape()[d] as i64;
                let mut p = pos[d] as i64 - before[d];
                if p < 0 || p >= len {
                    if len == 0 {
                        fill = true;
                        break;
                    }
                    match mode.as_str() {
                        "constant" => {
                            fill = true;
                            break;
                        }
                        "edge" => p = p.clamp(0, len - 1),
                        "wrap" => p = p.rem_euclid(len),
                        _ => {
                            if len == 1 {
                                p = 0;
                            } else {
                                let period = 2 * (len - 1);
                                p = p.rem_euclid(period);
                                if p >= len {
                                    p = period - p;
                                }
                            }
                        }
                    }
                }
                src += p as usize * st[d];
            }
            idx.push(if fill { usize::MAX } else { src });
            for d in (0..r).rev() {
                pos[d] += 1;
                if pos[d] < out[d] {
                    break;
                }
                pos[d] = 0;
            }
        }
        let fill = match &value {
            Some(v) if !v.is_empty() => crate::ops::cast::convert(v.data(), x.dtype())?,
            _ => Data::zeros(x.dtype(), 1),
        };
        let len = x.len();
        let data = Data::select2(
            x.data(),
            &fill,
            &idx.iter()
                .map(|&s| if s == usize::MAX { len } else { s })
                .collect::<Vec<_>>(),
        )
        .ok_or_else(|| Error::Run("Pad: value type differs from the input's".into()))?;
        Ok(vec![Tensor::new(out, data)?])
    })
}

pub(crate) fn constant_of_shape(b: &Build) -> Result<Box<dyn Op>> {
    let value = b
        .node
        .tensor("value")?
        .unwrap_or_else(|| Tensor::scalar(0f32));
    if value.len() != 1 {
        return Err(invalid!("ConstantOfShape: value must hold one element"));
    }
    op(move |cx, i| {
        let shape: Vec<usize> = i
            .get(0)?
            .to_i64s()?
            .iter()
            .map(|&d| {
                usize::try_from(d)
                    .map_err(|_| Error::Run(format!("ConstantOfShape: negative dimension {d}")))
            })
            .collect::<Result<_>>()?;
        let n = cx.check_size(&shape, value.dtype().size())?;
        Ok(vec![Tensor::new(
            shape,
            value.data().gather(std::iter::repeat_n(0, n)),
        )?])
    })
}

pub(crate) fn range(_: &Build) -> Result<Box<dyn Op>> {
    op(|cx, i| {
        let (s, l, d) = (i.get(0)?, i.get(1)?, i.get(2)?);
        macro_rules! rng {
            ($t:ty, $var:ident, $get:ident) => {{
                let (s, l, d) = (s.$get()?[0] as $t, l.$get()?[0] as $t, d.$get()?[0] as $t);
                if d == 0 as $t {
                    bail!("Range: delta 0");
                }
                let n = (((l - s) as f64) / (d as f64)).ceil().max(0.0) as usize;
                cx.check_size(&[n], 8)?;
                let v: Vec<$t> = (0..n).map(|k| s + (k as $t) * d).collect();
                Tensor::new(vec![n], Data::$var(v))?
            }};
        }
        Ok(vec![match s.dtype() {
            DType::F32 => rng!(f32, F32, to_f64s),
            DType::F64 => rng!(f64, F64, to_f64s),
            DType::I32 => rng!(i32, I32, to_i64s),
            DType::I64 => rng!(i64, I64, to_i64s),
            DType::I16 => rng!(i16, I16, to_i64s),
            other => bail!("Range on {other} is not supported"),
        }])
    })
}

pub(crate) fn depth_to_space(b: &Build) -> Result<Box<dyn Op>> {
    let bs = b.node.need("blocksize", b.node.int("blocksize"))? as usize;
    let crd = b.node.string_or("mode", "DCR")? == "CRD";
    op(move |_, i| {
        let x = i.get(0)?;
        let &[n, c, h, w] = x.shape() else {
            bail!("DepthToSpace needs rank 4")
        };
        if c % (bs * bs) != 0 {
            bail!("DepthToSpace: {c} channels do not divide by {}", bs * bs);
        }
        let c2 = c / (bs * bs);
        let (tmp, perm) = if crd {
            (vec![n, c2, bs, bs, h, w], [0, 1, 4, 2, 5, 3])
        } else {
            (vec![n, bs, bs, c2, h, w], [0, 3, 4, 1, 5, 2])
        };
        let t = permute(&x.clone().reshaped(tmp)?, &perm)?;
        Ok(vec![t.reshaped(vec![n, c2, h * bs, w * bs])?])
    })
}

pub(crate) fn space_to_depth(b: &Build) -> Result<Box<dyn Op>> {
    let bs = b.node.need("blocksize", b.node.int("blocksize"))? as usize;
    op(move |_, i| {
        let x = i.get(0)?;
        let &[n, c, h, w] = x.shape() else {
            bail!("SpaceToDepth needs rank 4")
        };
        if h % bs != 0 || w % bs != 0 {
            bail!("SpaceToDepth: {h}x{w} does not divide by {bs}");
        }
        let t = x.clone().reshaped(vec![n, c, h / bs, bs, w / bs, bs])?;
        let t = permute(&t, &[0, 3, 5, 1, 2, 4])?;
        Ok(vec![t.reshaped(vec![n, c * bs * bs, h / bs, w / bs])?])
    })
}
