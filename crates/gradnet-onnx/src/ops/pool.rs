//! Pooling: max and average over windows (taps in (ky, kx) order), and
//! global average / max per channel (the average through the fixed-order
//! sum of [`crate::kernels::reduce`]).

use super::{Build, Inputs, Op};
use crate::cx::{Cx, SharedMut};
use crate::error::{bail, invalid, Result};
use crate::kernels::reduce;
use crate::tensor::Tensor;

#[derive(Debug, Clone)]
struct Window {
    rank: usize,
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
    pads: [usize; 4],
    auto_pad: String,
    ceil: bool,
}

/// Largest window, stride, dilation or padding accepted.
const LIMIT: i64 = 1 << 20;

fn two(v: &[i64]) -> [usize; 2] {
    let c = |x: i64| x.clamp(1, LIMIT) as usize;
    match v.len() {
        1 => [1, c(v[0])],
        _ => [c(v[0]), c(*v.get(1).unwrap_or(&1))],
    }
}

fn window(b: &Build) -> Result<Window> {
    let n = b.node;
    let k = n.need("kernel_shape", n.ints("kernel_shape"))?;
    let rank = k.len();
    if !(1..=2).contains(&rank) {
        return Err(b.unsupported(&format!("{rank}-D pooling")));
    }
    let ones = vec![1i64; rank];
    let p = n.ints("pads")?.unwrap_or(vec![0; 2 * rank]);
    if p.len() != 2 * rank || p.iter().any(|&x| !(0..=LIMIT).contains(&x)) {
        return Err(invalid!("{}: pads {p:?}", n.label()));
    }
    let pads = if rank == 1 {
        [0, p[0] as usize, 0, p[1] as usize]
    } else {
        [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
    };
    Ok(Window {
        rank,
        kernel: two(&k),
        strides: two(&n.ints("strides")?.unwrap_or(ones.clone())),
        dilations: two(&n.ints("dilations")?.unwrap_or(ones)),
        pads,
        auto_pad: n.string_or("auto_pad", "NOTSET")?,
        ceil: n.int_or("ceil_mode", 0)? != 0,
    })
}

impl Window {
    fn nchw(&self, s: &[usize]) -> Result<[usize; 4]> {
        match (self.rank, s) {
            (1, &[n, c, w]) => Ok([n, c, 1, w]),
            (2, &[n, c, h, w]) => Ok([n, c, h, w]),
            _ => bail!("input of shape {s:?} does not fit a {}-D pool", self.rank),
        }
    }

    /// Output size and padding along one axis.
    fn axis(&self, len: usize, i: usize) -> Result<(usize, usize, usize)> {
        let (k, s, d) = (self.kernel[i], self.strides[i], self.dilations[i]);
        let span = (k - 1) * d + 1;
        let (mut p0, mut p1) = (self.pads[i], self.pads[i + 2]);
        match self.auto_pad.as_str() {
            "SAME_UPPER" | "SAME_LOWER" => {
                let out = len.div_ceil(s);
                let total = ((out - 1) * s + span).saturating_sub(len);
                let small = total / 2;
                (p0, p1) = if self.auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                return Ok((out, p0, p1));
            }
            "VALID" => (p0, p1) = (0, 0),
            _ => {}
        }
        let full = len + p0 + p1;
        if full < span {
            bail!("input of length {len} is smaller than the pooling window {span}");
        }
        let mut out = if self.ceil {
            (full - span).div_ceil(s) + 1
        } else {
            (full - span) / s + 1
        };
        // the last window must start inside the input or its left padding
        if self.ceil && (out - 1) * s >= len + p0 {
            out -= 1;
        }
        Ok((out, p0, p1))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Max,
    Avg { include_pad: bool },
}

struct Pool {
    w: Window,
    kind: Kind,
}

pub(crate) fn max_pool(b: &Build) -> Result<Box<dyn Op>> {
    if b.node.outputs.get(1).is_some_and(|o| !o.is_empty()) {
        return Err(b.unsupported("the Indices output"));
    }
    Ok(Box::new(Pool {
        w: window(b)?,
        kind: Kind::Max,
    }))
}

pub(crate) fn average_pool(b: &Build) -> Result<Box<dyn Op>> {
    let include_pad = b.node.int_or("count_include_pad", 0)? != 0;
    Ok(Box::new(Pool {
        w: window(b)?,
        kind: Kind::Avg { include_pad },
    }))
}

impl Op for Pool {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let [n, c, h, w] = self.w.nchw(x.shape())?;
        let (oh, pt, pb) = self.w.axis(h, 0)?;
        let (ow, pl, pr) = self.w.axis(w, 1)?;
        let xs = x.f32s()?;
        let shape = if self.w.rank == 1 {
            vec![n, c, ow]
        } else {
            vec![n, c, oh, ow]
        };
        cx.check_size(&shape, 4)?;
        let mut out = cx.buffer(n * c * oh * ow);
        let [kh, kw] = self.w.kernel;
        let [sh, sw] = self.w.strides;
        let [dh, dw] = self.w.dilations;
        let dst = SharedMut(out.as_mut_ptr());
        let kind = self.kind;
        cx.par_for(n * c, |p| {
            let src = &xs[p * h * w..][..h * w];
            // SAFETY: each task writes its own plane.
            let o = unsafe { std::slice::from_raw_parts_mut(dst.get().add(p * oh * ow), oh * ow) };
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut acc, mut cnt) = (
                        if kind == Kind::Max {
                            f32::NEG_INFINITY
                        } else {
                            0.0
                        },
                        0usize,
                    );
                    for ky in 0..kh {
                        let y = (oy * sh + ky * dh) as isize - pt as isize;
                        for kx in 0..kw {
                            let xx = (ox * sw + kx * dw) as isize - pl as isize;
                            if y < 0 || xx < 0 || y as usize >= h || xx as usize >= w {
                                continue;
                            }
                            let v = src[y as usize * w + xx as usize];
                            if kind == Kind::Max {
                                if v > acc || v.is_nan() {
                                    acc = v;
                                }
                            } else {
                                acc += v;
                            }
                            cnt += 1;
                        }
                    }
                    o[oy * ow + ox] = match kind {
                        Kind::Max => acc,
                        Kind::Avg { include_pad: false } => acc / cnt.max(1) as f32,
                        Kind::Avg { include_pad: true } => {
                            // the window clipped to the padded input
                            let y0 = oy * sh;
                            let x0 = ox * sw;
                            let hh = (0..kh).filter(|&ky| y0 + ky * dh < h + pt + pb).count();
                            let ww = (0..kw).filter(|&kx| x0 + kx * dw < w + pl + pr).count();
                            acc / (hh * ww).max(1) as f32
                        }
                    };
                }
            }
        });
        Ok(vec![Tensor::from_vec(shape, out)?])
    }
}

struct Global {
    max: bool,
}

pub(crate) fn global_average_pool(_: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(Global { max: false }))
}

pub(crate) fn global_max_pool(_: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(Global { max: true }))
}

impl Op for Global {
    fn run(&self, _: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        if x.rank() < 3 {
            bail!("global pooling needs rank >= 3, got {:?}", x.shape());
        }
        let plane: usize = x.shape()[2..].iter().product();
        let xs = x.f32s()?;
        let out: Vec<f32> = xs
            .chunks(plane.max(1))
            .map(|p| {
                if self.max {
                    reduce::max(p)
                } else {
                    reduce::sum(p) / plane as f32
                }
            })
            .collect();
        let mut shape = x.shape()[..2].to_vec();
        shape.extend(std::iter::repeat_n(1, x.rank() - 2));
        Ok(vec![Tensor::from_vec(shape, out)?])
    }
}
