//! `Conv` and `ConvTranspose` (1-D and 2-D, groups, dilations, padding),
//! with the element-wise steps the optimizer fused into them. Weights are
//! packed when the model loads.

use super::{Build, Inputs, Op};
use crate::cx::Cx;
use crate::error::{bail, invalid, Result};
use crate::kernels::conv::{conv2d, Geom};
use crate::kernels::depthwise;
use crate::kernels::epilogue::{self, Operand, Step};
use crate::kernels::gemm::{self, AOp, BOp, Epilogue, PackedA, RowsB};
use crate::kernels::{multiversion, Isa};
use crate::tensor::Tensor;

#[derive(Debug, Clone, PartialEq)]
enum AutoPad {
    NotSet,
    SameUpper,
    SameLower,
    Valid,
}

/// Attributes common to both operators, normalized to two spatial axes.
#[derive(Debug, Clone)]
struct Spec {
    /// 1 or 2 (1-D convolutions run as 2-D ones of height 1).
    rank: usize,
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
    /// top, left, bottom, right
    pads: [usize; 4],
    auto_pad: AutoPad,
    group: usize,
}

/// Largest kernel size, stride, dilation or padding accepted (far beyond
/// any real model; keeps every size computation far from overflow).
const LIMIT: i64 = 1 << 20;

fn two(v: &[i64], d: usize) -> Result<[usize; 2]> {
    let v: Vec<usize> = v
        .iter()
        .map(|&x| {
            usize::try_from(x)
                .ok()
                .filter(|&x| x as i64 <= LIMIT)
                .ok_or_else(|| invalid!("convolution attribute {x} is out of range"))
        })
        .collect::<Result<_>>()?;
    Ok(match v.len() {
        1 => [1, v[0]],
        2 => [v[0], v[1]],
        _ => [d, d],
    })
}

fn spec(b: &Build, wshape: Option<&[usize]>) -> Result<Spec> {
    let n = b.node;
    let kernel_attr = n.ints("kernel_shape")?;
    let rank = match (&kernel_attr, wshape) {
        (Some(k), _) => k.len(),
        (None, Some(w)) => w.len().saturating_sub(2),
        (None, None) => {
            return Err(b.unsupported("weights computed at run time without kernel_shape"))
        }
    };
    if !(1..=2).contains(&rank) {
        return Err(b.unsupported(&format!("{rank}-D convolution")));
    }
    let kernel = match (&kernel_attr, wshape) {
        (Some(k), Some(w)) => {
            if w.len() != k.len() + 2 {
                return Err(invalid!(
                    "{}: kernel_shape {k:?} does not fit weights of shape {w:?}",
                    n.label()
                ));
            }
            let from_w = two(&w[2..].iter().map(|&d| d as i64).collect::<Vec<_>>(), 1)?;
            if two(k, 1)? != from_w {
                return Err(invalid!(
                    "{}: kernel_shape {k:?} differs from the weights' {w:?}",
                    n.label()
                ));
            }
            from_w
        }
        (Some(k), None) => two(k, 1)?,
        (None, Some(w)) if w.len() >= 3 => {
            two(&w[2..].iter().map(|&d| d as i64).collect::<Vec<_>>(), 1)?
        }
        (None, Some(w)) => return Err(invalid!("{}: weights of shape {w:?}", n.label())),
        (None, None) => unreachable!(),
    };
    let ones = vec![1i64; rank];
    let strides = two(&n.ints("strides")?.unwrap_or(ones.clone()), 1)?;
    let dilations = two(&n.ints("dilations")?.unwrap_or(ones), 1)?;
    let p = n.ints("pads")?.unwrap_or(vec![0; 2 * rank]);
    if p.len() != 2 * rank || p.iter().any(|&x| !(0..=LIMIT).contains(&x)) {
        return Err(invalid!("{}: pads {p:?}", n.label()));
    }
    let pads = if rank == 1 {
        [0, p[0] as usize, 0, p[1] as usize]
    } else {
        [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
    };
    let auto_pad = match n.string_or("auto_pad", "NOTSET")?.as_str() {
        "NOTSET" | "" => AutoPad::NotSet,
        "SAME_UPPER" => AutoPad::SameUpper,
        "SAME_LOWER" => AutoPad::SameLower,
        "VALID" => AutoPad::Valid,
        other => return Err(invalid!("{}: auto_pad `{other}`", n.label())),
    };
    let group = n.int_or("group", 1)?;
    if group < 1 {
        return Err(invalid!("{}: group {group}", n.label()));
    }
    if strides.contains(&0) || dilations.contains(&0) || kernel.contains(&0) {
        return Err(invalid!(
            "{}: zero kernel size, stride or dilation",
            n.label()
        ));
    }
    Ok(Spec {
        rank,
        kernel,
        strides,
        dilations,
        pads,
        auto_pad,
        group: group as usize,
    })
}

impl Spec {
    /// The input as (n, c, h, w).
    fn nchw(&self, x: &[usize]) -> Result<[usize; 4]> {
        match (self.rank, x) {
            (1, &[n, c, w]) => Ok([n, c, 1, w]),
            (2, &[n, c, h, w]) => Ok([n, c, h, w]),
            _ => bail!(
                "input of shape {x:?} does not fit a {}-D convolution",
                self.rank
            ),
        }
    }

    /// Padding for an input of height h and width w (auto_pad resolved).
    fn pads_for(&self, h: usize, w: usize) -> [usize; 4] {
        let same = |len: usize, k: usize, s: usize, d: usize, upper: bool| {
            let out = len.div_ceil(s);
            let total = ((out.max(1) - 1) * s + (k - 1) * d + 1).saturating_sub(len);
            let small = total / 2;
            if upper {
                (small, total - small)
            } else {
                (total - small, small)
            }
        };
        match self.auto_pad {
            AutoPad::NotSet => self.pads,
            AutoPad::Valid => [0; 4],
            AutoPad::SameUpper | AutoPad::SameLower => {
                let up = self.auto_pad == AutoPad::SameUpper;
                let (t, b) = if self.rank == 1 {
                    (0, 0)
                } else {
                    same(h, self.kernel[0], self.strides[0], self.dilations[0], up)
                };
                let (l, r) = same(w, self.kernel[1], self.strides[1], self.dilations[1], up);
                [t, l, b, r]
            }
        }
    }

    fn out_shape(&self, n: usize, m: usize, oh: usize, ow: usize) -> Vec<usize> {
        if self.rank == 1 {
            vec![n, m, ow]
        } else {
            vec![n, m, oh, ow]
        }
    }
}

/// Every per-channel operand of `steps` has one value per channel.
fn check_rows(steps: &[Step], channels: usize) -> Result<()> {
    let ok = |o: &Operand| !matches!(o, Operand::Row(v) if v.len() != channels);
    for s in steps {
        let good = match s {
            Step::Add(o) | Step::Sub(o, _) | Step::Mul(o) | Step::Div(o, _) => ok(o),
            Step::Fma(a, b) => ok(a) && ok(b),
            Step::Act(_) => true,
            Step::Gate(inner) => check_rows(inner, channels).is_ok(),
        };
        if !good {
            bail!("a bias or per-channel parameter does not have one value per output channel ({channels})");
        }
    }
    Ok(())
}

/// The fused steps, with per-channel operands cut to `g`'s channels.
fn steps_for_group(steps: &[Step], g: usize, mg: usize) -> Vec<Step> {
    let cut = |o: &Operand| match o {
        Operand::Row(v) => Operand::Row(v[g * mg..(g + 1) * mg].to_vec()),
        other => other.clone(),
    };
    steps
        .iter()
        .map(|s| match s {
            Step::Add(o) => Step::Add(cut(o)),
            Step::Sub(o, r) => Step::Sub(cut(o), *r),
            Step::Mul(o) => Step::Mul(cut(o)),
            Step::Div(o, r) => Step::Div(cut(o), *r),
            Step::Fma(a, b) => Step::Fma(cut(a), cut(b)),
            Step::Act(a) => Step::Act(*a),
            Step::Gate(inner) => Step::Gate(steps_for_group(inner, g, mg)),
        })
        .collect()
}

/// The bias (if constant) followed by the fused steps.
fn steps(b: &Build, bias_input: usize) -> Result<Option<Vec<Step>>> {
    let mut steps = vec![];
    match (b.node.input(bias_input), b.constant(bias_input)) {
        (None, _) => {}
        (Some(_), Some(t)) => steps.push(Step::Add(Operand::Row(t.f32s()?.to_vec()))),
        (Some(_), None) => return Ok(None),
    }
    steps.extend(b.node.epilogue.iter().cloned());
    Ok(Some(steps))
}

struct Conv {
    spec: Spec,
    /// Per group: packed weights and the steps with the group's operands.
    packed: Option<Vec<(PackedA, Vec<Step>)>>,
    /// Depthwise filters (channels x taps), when the convolution is one.
    depthwise: Option<Vec<f32>>,
    steps: Option<Vec<Step>>,
    m: usize,
    isa: Isa,
}

pub(crate) fn conv(b: &Build) -> Result<Box<dyn Op>> {
    let wt = b.constant(1);
    let spec = spec(b, wt.map(|t| t.shape()))?;
    let steps = steps(b, 2)?;
    let (mut packed, mut dw, mut m) = (None, None, 0);
    if let (Some(w), Some(steps)) = (wt, &steps) {
        let ws = w.shape();
        if ws.len() != spec.rank + 2 {
            return Err(invalid!("{}: weights of shape {ws:?}", b.node.label()));
        }
        m = ws[0];
        let g = spec.group;
        if m % g != 0 {
            return Err(invalid!(
                "{}: {m} filters do not divide into {g} groups",
                b.node.label()
            ));
        }
        check_rows(steps, m).map_err(|e| invalid!("{}: {e}", b.node.label()))?;
        let wv = w.f32s()?;
        if g > 1 && g == m && ws[1] == 1 {
            dw = Some(wv.to_vec());
        } else {
            let (mg, k) = (m / g, wv.len() / m);
            packed = Some(
                (0..g)
                    .map(|gi| {
                        let a = &wv[gi * mg * k..(gi + 1) * mg * k];
                        (
                            PackedA::new(b.isa, a, mg, k),
                            steps_for_group(steps, gi, mg),
                        )
                    })
                    .collect(),
            );
        }
    }
    Ok(Box::new(Conv {
        spec,
        packed,
        depthwise: dw,
        steps,
        m,
        isa: b.isa,
    }))
}

impl Op for Conv {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let [n, c, h, w] = self.spec.nchw(x.shape())?;
        let xs = x.f32s()?;
        // weights or bias computed at run time: pack them now
        let runtime;
        let (packed, depthwise, steps, m) = match (&self.packed, &self.depthwise, &self.steps) {
            (p, d, Some(s)) if p.is_some() || d.is_some() => (p.as_ref(), d.as_ref(), s, self.m),
            _ => {
                runtime = self.pack_now(&inputs)?;
                (Some(&runtime.0), None, &runtime.1, runtime.2)
            }
        };
        let g = self.spec.group;
        if c % g != 0 {
            bail!("{} input channels do not divide into {g} groups", c);
        }
        let cg = c / g;
        let [pt, pl, pb, pr] = self.spec.pads_for(h, w);
        let geom = Geom {
            c: cg,
            h,
            w,
            kh: self.spec.kernel[0],
            kw: self.spec.kernel[1],
            sh: self.spec.strides[0],
            sw: self.spec.strides[1],
            dh: self.spec.dilations[0],
            dw: self.spec.dilations[1],
            pt,
            pl,
            pb,
            pr,
        };
        if h + pt + pb < (geom.kh - 1) * geom.dh + 1 || w + pl + pr < (geom.kw - 1) * geom.dw + 1 {
            bail!(
                "input {h}x{w} is smaller than the {}x{} kernel",
                geom.kh,
                geom.kw
            );
        }
        let (oh, ow) = (geom.oh(), geom.ow());
        let shape = self.spec.out_shape(n, m, oh, ow);
        cx.check_size(&shape, 4)?;
        // every element written by the kernels below
        let mut out = cx.buffer(n * m * oh * ow);
        let (plane_in, plane_out) = (c * h * w, m * oh * ow);
        for i in 0..n {
            let xi = &xs[i * plane_in..(i + 1) * plane_in];
            let oi = &mut out[i * plane_out..(i + 1) * plane_out];
            if let Some(dw) = depthwise {
                if cg != 1 || m != c {
                    bail!("depthwise weights for {m} channels, input has {c}");
                }
                let g1 = Geom { c: 1, ..geom };
                depthwise::depthwise(cx, &g1, c, xi, dw, steps, oi);
                continue;
            }
            let packed = packed.expect("packed when not depthwise");
            let mg = m / g;
            for (gi, (pw, st)) in packed.iter().enumerate() {
                if pw.k != geom.k() {
                    bail!(
                        "weights expect {} input channels per group, input has {cg}",
                        pw.k / (geom.kh * geom.kw)
                    );
                }
                let xg = &xi[gi * cg * h * w..(gi + 1) * cg * h * w];
                let og = &mut oi[gi * mg * oh * ow..(gi + 1) * mg * oh * ow];
                conv2d(cx, &geom, xg, pw, st, og);
            }
        }
        Ok(vec![Tensor::from_vec(shape, out)?])
    }
}

impl Conv {
    #[allow(clippy::type_complexity)]
    fn pack_now(&self, inputs: &Inputs) -> Result<(Vec<(PackedA, Vec<Step>)>, Vec<Step>, usize)> {
        let w = inputs.get(1)?;
        let ws = w.shape();
        if ws.len() != self.spec.rank + 2 {
            bail!(
                "weights of shape {ws:?} do not fit a {}-D convolution",
                self.spec.rank
            );
        }
        let m = ws[0];
        let g = self.spec.group;
        if m % g != 0 {
            bail!("{m} filters do not divide into {g} groups");
        }
        let mut steps = vec![];
        if let Some(bias) = inputs.opt(2) {
            steps.push(Step::Add(Operand::Row(bias.f32s()?.to_vec())));
        }
        steps.extend(self.steps.iter().flatten().cloned());
        check_rows(&steps, m)?;
        let wv = w.f32s()?;
        let (mg, k) = (m / g, wv.len() / m.max(1));
        let packed = (0..g)
            .map(|gi| {
                (
                    PackedA::new(self.isa, &wv[gi * mg * k..(gi + 1) * mg * k], mg, k),
                    steps_for_group(&steps, gi, mg),
                )
            })
            .collect();
        Ok((packed, steps, m))
    }
}

/// `ConvTranspose`: each input pixel scatters `W·x` over a kernel-sized
/// patch. Computed as a matrix product (W transposed times the input) then
/// added into the output in a fixed order: (channel, ky, kx, y, x)
/// ascending, starting from zero; then bias and fused steps.
struct ConvTranspose {
    spec: Spec,
    output_padding: [usize; 2],
    output_shape: Option<Vec<i64>>,
    /// Per group: W transposed and packed (mg*kh*kw rows, cg columns).
    packed: Vec<PackedA>,
    steps: Vec<Step>,
    m: usize,
}

pub(crate) fn conv_transpose(b: &Build) -> Result<Box<dyn Op>> {
    let Some(w) = b.constant(1) else {
        return Err(b.unsupported("weights computed at run time"));
    };
    let spec = spec(b, Some(w.shape()))?;
    let Some(steps) = steps(b, 2)? else {
        return Err(b.unsupported("bias computed at run time"));
    };
    let ws = w.shape();
    if ws.len() != spec.rank + 2 {
        return Err(invalid!("{}: weights of shape {ws:?}", b.node.label()));
    }
    let (c, mg) = (ws[0], ws[1]);
    let g = spec.group;
    check_rows(&steps, mg * g).map_err(|e| invalid!("{}: {e}", b.node.label()))?;
    if c % g != 0 {
        return Err(invalid!(
            "{}: {c} channels do not divide into {g} groups",
            b.node.label()
        ));
    }
    let cg = c / g;
    let taps = spec.kernel[0] * spec.kernel[1];
    let rows = mg * taps;
    let wv = w.f32s()?;
    let packed = (0..g)
        .map(|gi| {
            // W[c][m][ky][kx] for c in the group, as rows (m, ky, kx) by columns c
            let mut t = vec![0f32; rows * cg];
            for ci in 0..cg {
                for r in 0..rows {
                    t[r * cg + ci] = wv[(gi * cg + ci) * rows + r];
                }
            }
            PackedA::new(b.isa, &t, rows, cg)
        })
        .collect();
    let op = two(
        &b.node.ints("output_padding")?.unwrap_or(vec![0; spec.rank]),
        0,
    )?;
    Ok(Box::new(ConvTranspose {
        output_padding: op,
        output_shape: b.node.ints("output_shape")?,
        packed,
        steps,
        m: mg * g,
        spec,
    }))
}

multiversion! {
    /// The bias and fused steps over (part of) channel `ch`'s plane.
    fn finish(steps: &[Step], p: &mut [f32], ch: usize) {
        epilogue::apply::<F>(steps, ch, 0, p);
    }
}

impl Op for ConvTranspose {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let [n, c, h, w] = self.spec.nchw(x.shape())?;
        let g = self.spec.group;
        let (cg, m, mg) = (c / g, self.m, self.m / g);
        if c % g != 0 || self.packed[0].k != cg {
            bail!(
                "input has {c} channels, weights expect {}",
                self.packed[0].k * g
            );
        }
        let [kh, kw] = self.spec.kernel;
        let [sh, sw] = self.spec.strides;
        let [dh, dw] = self.spec.dilations;
        let full = |len: usize, k: usize, s: usize, d: usize, op: usize| {
            (len - 1) * s + (k - 1) * d + 1 + op
        };
        let (fh, fw) = (
            full(h, kh, sh, dh, self.output_padding[0]),
            full(w, kw, sw, dw, self.output_padding[1]),
        );
        // padding from output_shape or auto_pad, else the pads attribute
        let [pt, pl, pb, pr] = match (&self.output_shape, &self.spec.auto_pad) {
            (Some(os), _) => {
                let want = two(&os[os.len().saturating_sub(self.spec.rank)..], 1)?;
                let split = |total: usize, upper: bool| {
                    if upper {
                        (total / 2, total - total / 2)
                    } else {
                        (total - total / 2, total / 2)
                    }
                };
                let up = self.spec.auto_pad != AutoPad::SameLower;
                let (t, b) = split(fh.saturating_sub(want[0]), up);
                let (l, r) = split(fw.saturating_sub(want[1]), up);
                [t, l, b, r]
            }
            (None, AutoPad::SameUpper | AutoPad::SameLower) => {
                let up = self.spec.auto_pad == AutoPad::SameUpper;
                let split = |total: usize| {
                    if up {
                        (total / 2, total - total / 2)
                    } else {
                        (total - total / 2, total / 2)
                    }
                };
                let (t, b) = split(fh.saturating_sub(h * sh));
                let (l, r) = split(fw.saturating_sub(w * sw));
                [t, l, b, r]
            }
            _ => self.spec.pads,
        };
        if fh < pt + pb + 1 || fw < pl + pr + 1 {
            bail!("padding leaves no output");
        }
        let (oh, ow) = (fh - pt - pb, fw - pl - pr);
        let shape = self.spec.out_shape(n, m, oh, ow);
        cx.check_size(&shape, 4)?;
        let xs = x.f32s()?;
        let mut out = vec![0f32; n * m * oh * ow];
        let rows = mg * kh * kw;
        let mut cols = cx.buffer(rows * h * w);
        for i in 0..n {
            for gi in 0..g {
                let xg = &xs[(i * c + gi * cg) * h * w..][..cg * h * w];
                let b = RowsB::new(xg, h * w, cg);
                gemm::gemm(
                    cx,
                    rows,
                    h * w,
                    cg,
                    AOp::Packed(&self.packed[gi]),
                    BOp::Packer(&b),
                    &mut cols,
                    h * w,
                    Epilogue::NONE,
                );
                let og = &mut out[(i * m + gi * mg) * oh * ow..][..mg * oh * ow];
                let dst = crate::cx::SharedMut(og.as_mut_ptr());
                let cols = &cols;
                // output channels in parallel; within one, contributions
                // added in (ky, kx, iy, ix) order
                cx.par_for_if(mg * oh * ow, 1 << 16, mg, |mi| {
                    // SAFETY: each task writes its own channel's plane.
                    let o = unsafe {
                        std::slice::from_raw_parts_mut(dst.get().add(mi * oh * ow), oh * ow)
                    };
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let src = &cols[((mi * kh + ky) * kw + kx) * h * w..][..h * w];
                            // the input columns whose output column is inside
                            let shift = (kx * dw) as isize - pl as isize;
                            let lo = if shift >= 0 {
                                0
                            } else {
                                ((-shift) as usize).div_ceil(sw)
                            };
                            let hi = if (ow as isize) <= shift {
                                0
                            } else {
                                (((ow as isize - shift) as usize).div_ceil(sw)).min(w)
                            };
                            if lo >= hi {
                                continue;
                            }
                            for iy in 0..h {
                                let y = (iy * sh + ky * dh) as isize - pt as isize;
                                if y < 0 || y as usize >= oh {
                                    continue;
                                }
                                let orow = &mut o[y as usize * ow..][..ow];
                                let srow = &src[iy * w..][..w];
                                let start = (lo as isize * sw as isize + shift) as usize;
                                for (j, &v) in srow[lo..hi].iter().enumerate() {
                                    orow[start + j * sw] += v;
                                }
                            }
                        }
                    }
                });
            }
            let oi = &mut out[i * m * oh * ow..][..m * oh * ow];
            let dst = crate::cx::SharedMut(oi.as_mut_ptr());
            let plane = oh * ow;
            // planes cut in pieces, so one large plane splits too
            const PIECE: usize = 1 << 14;
            let pieces = plane.div_ceil(PIECE);
            cx.par_for_if(m * plane, 1 << 16, m * pieces, |t| {
                let (ch, piece) = (t / pieces, t % pieces);
                let start = piece * PIECE;
                let len = PIECE.min(plane - start);
                // SAFETY: each task writes its own piece of one plane.
                let p = unsafe {
                    std::slice::from_raw_parts_mut(dst.get().add(ch * plane + start), len)
                };
                finish(cx.isa, &self.steps, p, ch);
            });
        }
        Ok(vec![Tensor::from_vec(shape, out)?])
    }
}
