//! `MatMul` (with batch broadcasting) and `Gemm`. Constant right-hand
//! matrices (weights) are packed when the model loads; every element is one
//! FMA chain in ascending k (see [`crate::kernels::gemm`]).

use super::broadcast;
use super::{Build, Inputs, Op};
use crate::cx::Cx;
use crate::error::{bail, invalid, Result};
use crate::kernels::epilogue::{Operand, Step};
use crate::kernels::gemm::{gemm as run_gemm, AOp, BOp, Epilogue, PackedB, RowsB};
use crate::tensor::{numel, Data, Tensor};

struct MatMul {
    /// Constant 2-D B, packed.
    packed: Option<PackedB>,
    steps: Vec<Step>,
}

pub(crate) fn matmul(b: &Build) -> Result<Box<dyn Op>> {
    let packed = match b.constant(1) {
        Some(w) if w.rank() == 2 && matches!(w.data(), Data::F32(_)) => {
            let (k, n) = (w.shape()[0], w.shape()[1]);
            Some(PackedB::new(b.isa, w.f32s()?, k, n, n, 1))
        }
        _ => None,
    };
    Ok(Box::new(MatMul {
        packed,
        steps: b.node.epilogue.clone(),
    }))
}

/// A `[.., m, k]` by B `[.., k, n]` with numpy's matmul rules.
fn batched(cx: &Cx, a: &Tensor, b: &Tensor, steps: &[Step]) -> Result<Tensor> {
    let (mut sa, mut sb) = (a.shape().to_vec(), b.shape().to_vec());
    if sa.is_empty() || sb.is_empty() {
        bail!("MatMul of a scalar");
    }
    let (va, vb) = (sa.len() == 1, sb.len() == 1);
    if va {
        sa.insert(0, 1);
    }
    if vb {
        sb.push(1);
    }
    let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let (k2, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
    if k != k2 {
        bail!(
            "MatMul of shapes {:?} and {:?}: inner dimensions {k} and {k2} differ",
            a.shape(),
            b.shape()
        );
    }
    let (ba, bb) = (&sa[..sa.len() - 2], &sb[..sb.len() - 2]);
    let batch = broadcast::shape(&[ba, bb])?;
    let mut shape = batch.clone();
    shape.extend([m, n]);
    cx.check_size(&shape, 4)?;
    let (xa, xb) = (a.f32s()?, b.f32s()?);
    let mut out = cx.buffer(numel(&shape)?);
    let (ta, tb) = (
        broadcast::strides(ba, &batch),
        broadcast::strides(bb, &batch),
    );
    let mut pairs = vec![];
    broadcast::runs(&batch, [&ta, &tb], |_, [oa, ob], [da, db], len| {
        for i in 0..len {
            pairs.push((oa + i * da, ob + i * db));
        }
    });
    let epi = Epilogue { steps };
    for (i, (ia, ib)) in pairs.into_iter().enumerate() {
        let a = &xa[ia * m * k..][..m * k];
        let b = RowsB::new(&xb[ib * k * n..][..k * n], n, k);
        let c = &mut out[i * m * n..][..m * n];
        run_gemm(
            cx,
            m,
            n,
            k,
            AOp::Rows { a, lda: k },
            BOp::Packer(&b),
            c,
            n,
            epi,
        );
    }
    if va {
        shape.remove(shape.len() - 2);
    }
    if vb {
        shape.pop();
    }
    Tensor::from_vec(shape, out)
}

impl Op for MatMul {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let a = inputs.get(0)?;
        let Some(p) = &self.packed else {
            return Ok(vec![batched(cx, a, inputs.get(1)?, &self.steps)?]);
        };
        let sa = a.shape();
        if sa.is_empty() || sa[sa.len() - 1] != p.k {
            bail!(
                "MatMul of shape {sa:?} by weights [{}, {}]: inner dimensions differ",
                p.k,
                p.n
            );
        }
        let rows: usize = sa[..sa.len() - 1].iter().product();
        let mut shape = sa[..sa.len() - 1].to_vec();
        shape.push(p.n);
        cx.check_size(&shape, 4)?;
        let mut out = cx.buffer(rows * p.n);
        let epi = Epilogue { steps: &self.steps };
        run_gemm(
            cx,
            rows,
            p.n,
            p.k,
            AOp::Rows {
                a: a.f32s()?,
                lda: p.k,
            },
            BOp::Packed(p),
            &mut out,
            p.n,
            epi,
        );
        Ok(vec![Tensor::from_vec(shape, out)?])
    }
}

/// `Gemm`: `alpha * A' B' + beta * C`. The product's sums are computed as
/// MatMul's; then `x * alpha` (if alpha is not 1), then `+ beta * C` (C
/// scaled when the model loads, if constant).
struct Gemm {
    trans_a: bool,
    trans_b: bool,
    alpha: f32,
    beta: f32,
    packed: Option<PackedB>,
    /// alpha and a constant C as steps, then the fused steps.
    steps: Option<Vec<Step>>,
    fused: Vec<Step>,
}

pub(crate) fn gemm(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let trans_a = n.int_or("transA", 0)? != 0;
    let trans_b = n.int_or("transB", 0)? != 0;
    let alpha = n.float_or("alpha", 1.0)?;
    let beta = n.float_or("beta", 1.0)?;
    let packed = match b.constant(1) {
        Some(w) if w.rank() == 2 => {
            let (r, c) = (w.shape()[0], w.shape()[1]);
            let (k, nn) = if trans_b { (c, r) } else { (r, c) };
            let (ks, js) = if trans_b { (1, k) } else { (nn, 1) };
            Some(PackedB::new(b.isa, w.f32s()?, k, nn, ks, js))
        }
        Some(w) => return Err(invalid!("{}: B has shape {:?}", n.label(), w.shape())),
        None => None,
    };
    let mut steps = vec![];
    if alpha != 1.0 {
        steps.push(Step::Mul(Operand::Scalar(alpha)));
    }
    let c_step = match (n.input(2), b.constant(2), &packed) {
        (None, _, _) => Some(None),
        (Some(_), Some(c), Some(p)) => {
            let v: Vec<f32> = c
                .f32s()?
                .iter()
                .map(|&x| if beta == 1.0 { x } else { beta * x })
                .collect();
            match c.shape() {
                [] | [1] | [1, 1] => Some(Some(Step::Add(Operand::Scalar(v[0])))),
                [nn] | [1, nn] if *nn == p.n => Some(Some(Step::Add(Operand::Col(v)))),
                _ => None,
            }
        }
        _ => None,
    };
    let steps = c_step.map(|c| {
        steps.extend(c);
        steps.extend(n.epilogue.iter().cloned());
        steps
    });
    Ok(Box::new(Gemm {
        trans_a,
        trans_b,
        alpha,
        beta,
        packed,
        steps,
        fused: n.epilogue.clone(),
    }))
}

impl Op for Gemm {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let a = inputs.get(0)?;
        if a.rank() != 2 {
            bail!("Gemm: A has shape {:?}, not 2-D", a.shape());
        }
        let a = if self.trans_a {
            super::shape::permute(a, &[1, 0])?
        } else {
            a.clone()
        };
        let (m, k) = (a.shape()[0], a.shape()[1]);
        let local;
        let p = match &self.packed {
            Some(p) => p,
            None => {
                let w = inputs.get(1)?;
                if w.rank() != 2 {
                    bail!("Gemm: B has shape {:?}, not 2-D", w.shape());
                }
                let (r, c) = (w.shape()[0], w.shape()[1]);
                let (kk, nn) = if self.trans_b { (c, r) } else { (r, c) };
                let (ks, js) = if self.trans_b { (1, kk) } else { (nn, 1) };
                local = PackedB::new(cx.isa, w.f32s()?, kk, nn, ks, js);
                &local
            }
        };
        if p.k != k {
            bail!("Gemm: A is {m}x{k}, B' is {}x{}", p.k, p.n);
        }
        cx.check_size(&[m, p.n], 4)?;
        let mut out = cx.buffer(m * p.n);
        let a_rows = AOp::Rows {
            a: a.f32s()?,
            lda: k,
        };
        match &self.steps {
            Some(steps) => run_gemm(
                cx,
                m,
                p.n,
                k,
                a_rows,
                BOp::Packed(p),
                &mut out,
                p.n,
                Epilogue { steps },
            ),
            None => {
                // C computed at run time or of full shape: add it after
                let pre = if self.alpha != 1.0 {
                    vec![Step::Mul(Operand::Scalar(self.alpha))]
                } else {
                    vec![]
                };
                run_gemm(
                    cx,
                    m,
                    p.n,
                    k,
                    a_rows,
                    BOp::Packed(p),
                    &mut out,
                    p.n,
                    Epilogue { steps: &pre },
                );
                if let Some(c) = inputs.opt(2) {
                    let cv = c.f32s()?;
                    let full = super::broadcast::shape(&[&[m, p.n], c.shape()])?;
                    if full != [m, p.n] {
                        bail!(
                            "Gemm: C of shape {:?} does not broadcast to {m}x{}",
                            c.shape(),
                            p.n
                        );
                    }
                    let st = broadcast::strides(c.shape(), &full);
                    for i in 0..m {
                        for j in 0..p.n {
                            let cval = cv[i * st[0] + j * st[1]];
                            let cval = if self.beta == 1.0 {
                                cval
                            } else {
                                self.beta * cval
                            };
                            out[i * p.n + j] += cval;
                        }
                    }
                }
                if !self.fused.is_empty() {
                    crate::ops::conv_steps(cx, &self.fused, &mut out, p.n);
                }
            }
        }
        Ok(vec![Tensor::from_vec(vec![m, p.n], out)?])
    }
}
