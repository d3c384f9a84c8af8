//! Recurrent layers, `LSTM` and `GRU` (forward, reverse, bidirectional).
//! Per step a gate's input is `((x·Wᵀ) + (h·Rᵀ)) + (Wb + Rb)`, each product
//! a matrix product of this engine; LSTM's cell is `fma(f, c, i * g)`,
//! peepholes are FMAs; GRU's state is `fma(z, h - h~, h~)`.

use super::{Build, Inputs, Op};
use crate::cx::Cx;
use crate::error::{bail, invalid, Result};
use crate::kernels::act::Act;
use crate::kernels::gemm::{gemm, AOp, BOp, Epilogue, PackedB};
use crate::kernels::{multiversion, Isa};
use crate::tensor::Tensor;

fn activation(name: &str, alpha: Option<f32>, beta: Option<f32>) -> Result<Act> {
    Ok(match name {
        "Sigmoid" => Act::Sigmoid,
        "Tanh" => Act::Tanh,
        "Relu" => Act::Relu,
        "HardSigmoid" => Act::HardSigmoid(alpha.unwrap_or(0.2), beta.unwrap_or(0.5)),
        "LeakyRelu" => Act::LeakyRelu(alpha.unwrap_or(0.01)),
        other => {
            return Err(crate::error::Error::Unsupported(vec![format!(
                "recurrent activation {other}"
            )]))
        }
    })
}

/// Per direction: packed Wᵀ and Rᵀ, the summed biases, peepholes.
struct Dir {
    w: PackedB,
    r: PackedB,
    bias: Vec<f32>,
    peep: Option<Vec<f32>>,
    /// GRU with linear_before_reset: Rbh kept apart.
    rbh: Vec<f32>,
}

struct Rnn {
    lstm: bool,
    hidden: usize,
    gates: usize,
    dirs: Vec<Dir>,
    reverse_only: bool,
    acts: Vec<Act>,
    clip: Option<f32>,
    layout: i64,
    linear_before_reset: bool,
    input_forget: bool,
}

fn build(b: &Build, lstm: bool) -> Result<Box<dyn Op>> {
    let n = b.node;
    let gates = if lstm { 4 } else { 3 };
    let (Some(w), Some(r)) = (b.constant(1), b.constant(2)) else {
        return Err(b.unsupported("weights computed at run time"));
    };
    if n.input(4).is_some() {
        return Err(b.unsupported("sequence_lens"));
    }
    let hidden = n.need("hidden_size", n.int("hidden_size"))?;
    if !(1..=1 << 16).contains(&hidden) {
        return Err(invalid!("{}: hidden_size {hidden}", n.label()));
    }
    let hidden = hidden as usize;
    let direction = n.string_or("direction", "forward")?;
    let ndir = if direction == "bidirectional" { 2 } else { 1 };
    let (ws, rs) = (w.shape(), r.shape());
    if ws.len() != 3
        || ws[0] != ndir
        || ws[1] != gates * hidden
        || rs != [ndir, gates * hidden, hidden]
    {
        return Err(invalid!(
            "{}: W {ws:?} / R {rs:?} do not fit hidden size {hidden}",
            n.label()
        ));
    }
    let input = ws[2];
    let bias = b.constant(3);
    if n.input(3).is_some() && bias.is_none() {
        return Err(b.unsupported("bias computed at run time"));
    }
    let peep = if lstm { b.constant(7) } else { None };
    if lstm && n.input(7).is_some() && peep.is_none() {
        return Err(b.unsupported("peepholes computed at run time"));
    }
    let linear_before_reset = !lstm && n.int_or("linear_before_reset", 0)? != 0;
    let gh = gates * hidden;
    let (wv, rv) = (w.f32s()?, r.f32s()?);
    let mut dirs = vec![];
    for d in 0..ndir {
        let wd = &wv[d * gh * input..][..gh * input];
        let rd = &rv[d * gh * hidden..][..gh * hidden];
        let (mut sum, mut rbh) = (vec![0f32; gh], vec![0f32; hidden]);
        if let Some(bt) = bias {
            let bv = bt.f32s()?;
            if bv.len() != ndir * 2 * gh {
                return Err(invalid!("{}: bias of {} values", n.label(), bv.len()));
            }
            let (wb, rb) = (&bv[d * 2 * gh..][..gh], &bv[d * 2 * gh + gh..][..gh]);
            for i in 0..gh {
                // GRU's hidden gate with linear_before_reset keeps Rbh apart
                if linear_before_reset && i >= 2 * hidden {
                    sum[i] = wb[i];
                    rbh[i - 2 * hidden] = rb[i];
                } else {
                    sum[i] = wb[i] + rb[i];
                }
            }
        }
        dirs.push(Dir {
            w: PackedB::new(b.isa, wd, input, gh, 1, input),
            r: PackedB::new(b.isa, rd, hidden, gh, 1, hidden),
            bias: sum,
            peep: peep
                .map(|p| p.f32s().map(|v| v[d * 3 * hidden..][..3 * hidden].to_vec()))
                .transpose()?,
            rbh,
        });
    }
    let names = n.strings("activations")?;
    let alphas = n.floats("activation_alpha")?.unwrap_or_default();
    let betas = n.floats("activation_beta")?.unwrap_or_default();
    let per = if lstm { 3 } else { 2 };
    let default: Vec<String> = if lstm {
        vec!["Sigmoid", "Tanh", "Tanh"]
    } else {
        vec!["Sigmoid", "Tanh"]
    }
    .into_iter()
    .map(String::from)
    .collect();
    let names = names.unwrap_or_else(|| default.iter().cycle().take(per * ndir).cloned().collect());
    let acts = names
        .iter()
        .enumerate()
        .map(|(i, s)| activation(s, alphas.get(i).copied(), betas.get(i).copied()))
        .collect::<Result<Vec<_>>>()?;
    if acts.len() < per * ndir {
        return Err(invalid!(
            "{}: {} activations for {ndir} direction(s)",
            n.label(),
            acts.len()
        ));
    }
    Ok(Box::new(Rnn {
        lstm,
        hidden,
        gates,
        dirs,
        reverse_only: direction == "reverse",
        acts,
        clip: n.float("clip")?,
        layout: n.int_or("layout", 0)?,
        linear_before_reset,
        input_forget: lstm && n.int_or("input_forget", 0)? != 0,
    }))
}

pub(crate) fn lstm(b: &Build) -> Result<Box<dyn Op>> {
    build(b, true)
}

pub(crate) fn gru(b: &Build) -> Result<Box<dyn Op>> {
    build(b, false)
}

multiversion! {
    fn act_slice(a: Act, v: &mut [f32]) {
        a.apply_slice::<F>(v)
    }
}

multiversion! {
    /// LSTM cell update for one row of the batch: gates `g` (i, o, f, c
    /// pre-activations, bias added), state `c`, output `h`.
    fn lstm_cell(g: &mut [f32], c: &mut [f32], h: &mut [f32], peep: Option<&[f32]>, acts: [Act; 3], clip: Option<f32>, input_forget: bool) {
        let n = c.len();
        let clipv = |x: f32| match clip {
            Some(cl) => if x < -cl { -cl } else if x > cl { cl } else { x },
            None => x,
        };
        for j in 0..n {
            let (mut gi, mut go, mut gf, gc) = (g[j], g[n + j], g[2 * n + j], g[3 * n + j]);
            if let Some(p) = peep {
                gi = F::fma(p[j], c[j], gi);
                gf = F::fma(p[2 * n + j], c[j], gf);
            }
            let i = acts[0].apply::<F>(clipv(gi));
            let f = if input_forget { 1.0 - i } else { acts[0].apply::<F>(clipv(gf)) };
            let cc = acts[1].apply::<F>(clipv(gc));
            let cn = F::fma(f, c[j], i * cc);
            c[j] = cn;
            if let Some(p) = peep {
                go = F::fma(p[n + j], cn, go);
            }
            let o = acts[0].apply::<F>(clipv(go));
            h[j] = o * acts[2].apply::<F>(cn);
        }
    }
}

fn add_rows(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

impl Op for Rnn {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        if x.rank() != 3 {
            bail!("input of shape {:?}, expected rank 3", x.shape());
        }
        let (seq, batch, input) = if self.layout == 0 {
            (x.shape()[0], x.shape()[1], x.shape()[2])
        } else {
            (x.shape()[1], x.shape()[0], x.shape()[2])
        };
        let dir0 = &self.dirs[0];
        if input != dir0.w.k {
            bail!("input size {input}, weights expect {}", dir0.w.k);
        }
        let xs: Vec<f32> = if self.layout == 0 {
            x.f32s()?.to_vec()
        } else {
            super::shape::permute(x, &[1, 0, 2])?.into_vec()?
        };
        let (hid, gh, nd) = (self.hidden, self.gates * self.hidden, self.dirs.len());
        let state = |i: usize| -> Result<Vec<f32>> {
            match inputs.opt(i) {
                Some(t) if t.len() == nd * batch * hid => Ok(t.f32s()?.to_vec()),
                Some(t) => bail!(
                    "initial state of shape {:?}, expected [{nd}, {batch}, {hid}]",
                    t.shape()
                ),
                None => Ok(vec![0.0; nd * batch * hid]),
            }
        };
        let (h0, c0) = (state(5)?, if self.lstm { state(6)? } else { vec![] });
        let mut y = vec![0f32; seq * nd * batch * hid];
        let (mut yh, mut yc) = (vec![0f32; nd * batch * hid], vec![0f32; nd * batch * hid]);
        for (d, dir) in self.dirs.iter().enumerate() {
            let reverse = self.reverse_only || d == 1;
            // x·Wᵀ for every step at once
            let mut xw = vec![0f32; seq * batch * gh];
            gemm(
                cx,
                seq * batch,
                gh,
                input,
                AOp::Rows { a: &xs, lda: input },
                BOp::Packed(&dir.w),
                &mut xw,
                gh,
                Epilogue::NONE,
            );
            let mut h = h0[d * batch * hid..][..batch * hid].to_vec();
            let mut c = if self.lstm {
                c0[d * batch * hid..][..batch * hid].to_vec()
            } else {
                vec![]
            };
            let acts = &self.acts[d * if self.lstm { 3 } else { 2 }..];
            let mut hr = vec![0f32; batch * gh];
            for step in 0..seq {
                let t = if reverse { seq - 1 - step } else { step };
                gemm(
                    cx,
                    batch,
                    gh,
                    hid,
                    AOp::Rows { a: &h, lda: hid },
                    BOp::Packed(&dir.r),
                    &mut hr,
                    gh,
                    Epilogue::NONE,
                );
                for bi in 0..batch {
                    let g = &mut xw[(t * batch + bi) * gh..][..gh];
                    let r = &hr[bi * gh..][..gh];
                    let hb = &mut h[bi * hid..][..hid];
                    if self.lstm {
                        add_rows(g, r);
                        add_rows(g, &dir.bias);
                        let cb = &mut c[bi * hid..][..hid];
                        lstm_cell(
                            cx.isa,
                            g,
                            cb,
                            hb,
                            dir.peep.as_deref(),
                            [acts[0], acts[1], acts[2]],
                            self.clip,
                            self.input_forget,
                        );
                    } else {
                        gru_cell(
                            cx.isa,
                            g,
                            r,
                            &dir.bias,
                            &dir.rbh,
                            hb,
                            [acts[0], acts[1]],
                            self.clip,
                            self.linear_before_reset,
                            &dir.r,
                            cx,
                        )?;
                    }
                }
                for bi in 0..batch {
                    y[((t * nd + d) * batch + bi) * hid..][..hid]
                        .copy_from_slice(&h[bi * hid..][..hid]);
                }
            }
            yh[d * batch * hid..][..batch * hid].copy_from_slice(&h);
            if self.lstm {
                yc[d * batch * hid..][..batch * hid].copy_from_slice(&c);
            }
        }
        let (yshape, y) = if self.layout == 0 {
            (vec![seq, nd, batch, hid], y)
        } else {
            let t = Tensor::from_vec(vec![seq, nd, batch, hid], y)?;
            (
                vec![batch, seq, nd, hid],
                super::shape::permute(&t, &[2, 0, 1, 3])?.into_vec()?,
            )
        };
        let st = |v: Vec<f32>| -> Result<Tensor> {
            if self.layout == 0 {
                Tensor::from_vec(vec![nd, batch, hid], v)
            } else {
                super::shape::permute(&Tensor::from_vec(vec![nd, batch, hid], v)?, &[1, 0, 2])
            }
        };
        let mut out = vec![Tensor::from_vec(yshape, y)?, st(yh)?];
        if self.lstm {
            out.push(st(yc)?);
        }
        Ok(out)
    }
}

/// GRU cell for one batch row: `g` holds x·Wᵀ (z, r, h), `r_` h·Rᵀ.
#[allow(clippy::too_many_arguments)]
fn gru_cell(
    isa: Isa,
    g: &mut [f32],
    r_: &[f32],
    bias: &[f32],
    rbh: &[f32],
    h: &mut [f32],
    acts: [Act; 2],
    clip: Option<f32>,
    lbr: bool,
    rw: &PackedB,
    cx: &Cx,
) -> Result<()> {
    let n = h.len();
    let clipv = |x: f32| match clip {
        Some(cl) => x.max(-cl).min(cl),
        None => x,
    };
    let mut z = vec![0f32; n];
    let mut rg = vec![0f32; n];
    for j in 0..n {
        z[j] = clipv((g[j] + r_[j]) + bias[j]);
        rg[j] = clipv((g[n + j] + r_[n + j]) + bias[n + j]);
    }
    act_slice(isa, acts[0], &mut z);
    act_slice(isa, acts[0], &mut rg);
    let mut hh = vec![0f32; n];
    if lbr {
        for j in 0..n {
            hh[j] = clipv((g[2 * n + j] + rg[j] * (r_[2 * n + j] + rbh[j])) + bias[2 * n + j]);
        }
    } else {
        // (r ⊙ h)·Rhᵀ: a second product with the reset state
        let rh: Vec<f32> = (0..n).map(|j| rg[j] * h[j]).collect();
        let mut full = vec![0f32; 3 * n];
        gemm(
            cx,
            1,
            3 * n,
            n,
            AOp::Rows { a: &rh, lda: n },
            BOp::Packed(rw),
            &mut full,
            3 * n,
            Epilogue::NONE,
        );
        for j in 0..n {
            hh[j] = clipv((g[2 * n + j] + full[2 * n + j]) + bias[2 * n + j]);
        }
    }
    act_slice(isa, acts[1], &mut hh);
    for j in 0..n {
        // (1 - z) h~ + z h = h~ + z (h - h~)
        h[j] = (h[j] - hh[j]).mul_add(z[j], hh[j]);
    }
    Ok(())
}
