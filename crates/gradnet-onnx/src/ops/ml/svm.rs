//! `SVMRegressor` and `SVMClassifier` (libsvm / liblinear models): kernels
//! against the support vectors (linear, polynomial, RBF, sigmoid), one-vs-one
//! votes and pairwise scores, Platt probabilities coupled as libsvm does.

use super::{as_f32, post_transform, rows, write_scores, Labels, Pick, Post, Second};
use crate::cx::Cx;
use crate::error::{bail, invalid, Result};
use crate::graph::node::Node;
use crate::kernels::epilogue::{Operand, Step};
use crate::kernels::gemm::{gemm, AOp, BOp, Epilogue, PackedB};
use crate::kernels::{math, Hard};
use crate::ops::{Build, Inputs, Op};
use crate::tensor::Tensor;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Linear,
    Poly,
    Rbf,
    Sigmoid,
}

struct Kernel {
    kind: Kind,
    gamma: f32,
    coef0: f32,
    degree: f32,
}

impl Kernel {
    fn read(n: &Node) -> Result<Kernel> {
        let kind = match n.string_or("kernel_type", "LINEAR")?.as_str() {
            "LINEAR" => Kind::Linear,
            "POLY" => Kind::Poly,
            "RBF" => Kind::Rbf,
            "SIGMOID" => Kind::Sigmoid,
            other => return Err(invalid!("{}: kernel_type `{other}`", n.label())),
        };
        let p = n.floats("kernel_params")?.unwrap_or_default();
        let at = |i: usize| p.get(i).copied().unwrap_or(0.0);
        Ok(Kernel {
            kind,
            gamma: at(0),
            coef0: at(1),
            degree: at(2),
        })
    }

    /// `k(x_i, v_j)` for every row and vector: `[rows, vectors]`. For the
    /// linear kind, `c` is added to the dot products.
    fn apply(
        &self,
        cx: &Cx,
        x: &[f32],
        rows: usize,
        f: usize,
        vectors: &Vectors,
        c: f32,
    ) -> Vec<f32> {
        let nv = vectors.count;
        let mut out = vec![0f32; rows * nv];
        if self.kind == Kind::Rbf {
            for r in 0..rows {
                let xr = &x[r * f..(r + 1) * f];
                for (j, o) in out[r * nv..(r + 1) * nv].iter_mut().enumerate() {
                    let v = &vectors.raw[j * f..(j + 1) * f];
                    let mut s = 0f32;
                    for k in 0..f {
                        let d = xr[k] - v[k];
                        s = d.mul_add(d, s);
                    }
                    *o = math::exp::<Hard>(-self.gamma * s);
                }
            }
            return out;
        }
        let (alpha, c) = if self.kind == Kind::Linear {
            (1.0, c)
        } else {
            (self.gamma, self.coef0)
        };
        let mut steps = vec![];
        if alpha != 1.0 {
            steps.push(Step::Mul(Operand::Scalar(alpha)));
        }
        if c != 0.0 {
            steps.push(Step::Add(Operand::Scalar(c)));
        }
        gemm(
            cx,
            rows,
            nv,
            f,
            AOp::Rows { a: x, lda: f },
            BOp::Packed(&vectors.packed),
            &mut out,
            nv,
            Epilogue { steps: &steps },
        );
        match self.kind {
            Kind::Poly => {
                for v in out.iter_mut() {
                    *v = match self.degree {
                        2.0 => *v * *v,
                        3.0 => *v * *v * *v,
                        d => math::pow::<Hard>(*v, d),
                    };
                }
            }
            Kind::Sigmoid => out.iter_mut().for_each(|v| *v = math::tanh::<Hard>(*v)),
            _ => {}
        }
        out
    }
}

/// Support vectors (or liblinear coefficients), `count x features`.
struct Vectors {
    raw: Vec<f32>,
    packed: PackedB,
    count: usize,
}

impl Vectors {
    /// The input's rows as f32, checked to have as many features as the
    /// vectors: (rows, features, values).
    fn rows_of(&self, x: &Tensor) -> Result<(usize, usize, Vec<f32>)> {
        let (n, f) = rows(x)?;
        if f != self.features() {
            bail!(
                "the model takes {} features, the input has {f}",
                self.features()
            );
        }
        Ok((n, f, as_f32(x)?))
    }

    fn new(b: &Build, raw: Vec<f32>, count: usize) -> Result<Vectors> {
        if count == 0 || !raw.len().is_multiple_of(count) {
            return Err(invalid!(
                "{}: {} values for {count} vectors",
                b.node.label(),
                raw.len()
            ));
        }
        let f = raw.len() / count;
        Ok(Vectors {
            packed: PackedB::new(b.isa, &raw, f, count, 1, f),
            raw,
            count,
        })
    }

    fn features(&self) -> usize {
        self.raw.len() / self.count
    }
}

struct Regressor {
    kernel: Kernel,
    /// Support vectors (SVC mode) or the linear coefficients.
    vectors: Vectors,
    svc: bool,
    coefficients: Vec<f32>,
    rho: f32,
    one_class: bool,
}

pub(crate) fn regressor(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let count = n.int_or("n_supports", 0)?.max(0) as usize;
    let coefficients = n.need("coefficients", n.floats("coefficients"))?;
    let rho = n
        .need("rho", n.floats("rho"))?
        .first()
        .copied()
        .unwrap_or(0.0);
    let svc = count > 0;
    let mut kernel = Kernel::read(n)?;
    let vectors = if svc {
        let sv = n.floats("support_vectors")?.unwrap_or_default();
        if coefficients.len() != count {
            return Err(invalid!(
                "{}: {} coefficients for {count} support vectors",
                n.label(),
                coefficients.len()
            ));
        }
        Vectors::new(b, sv, count)?
    } else {
        kernel.kind = Kind::Linear;
        Vectors::new(b, coefficients.clone(), 1)?
    };
    Ok(Box::new(Regressor {
        kernel,
        vectors,
        svc,
        coefficients,
        rho,
        one_class: n.int_or("one_class", 0)? != 0,
    }))
}

impl Op for Regressor {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let (n, f, xs) = self.vectors.rows_of(inputs.get(0)?)?;
        let mut y = if self.svc {
            let k = self.kernel.apply(cx, &xs, n, f, &self.vectors, 0.0);
            let nv = self.vectors.count;
            k.chunks(nv.max(1))
                .map(|row| {
                    let mut s = 0f32;
                    for (a, c) in row.iter().zip(&self.coefficients) {
                        s = a.mul_add(*c, s);
                    }
                    s + self.rho
                })
                .collect()
        } else {
            self.kernel.apply(cx, &xs, n, f, &self.vectors, self.rho)
        };
        if self.one_class {
            y.iter_mut()
                .for_each(|v| *v = if *v > 0.0 { 1.0 } else { -1.0 });
        }
        Ok(vec![Tensor::from_vec(vec![n, 1], y)?])
    }
}

struct Classifier {
    kernel: Kernel,
    vectors: Vectors,
    svc: bool,
    per_class: Vec<usize>,
    starts: Vec<usize>,
    coefficients: Vec<f32>,
    rho: Vec<f32>,
    prob_a: Vec<f32>,
    prob_b: Vec<f32>,
    labels: Labels,
    post: Post,
    all_positive: bool,
}

pub(crate) fn classifier(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let bad = |m: String| invalid!("{}: {m}", n.label());
    let per_class: Vec<usize> = n
        .ints("vectors_per_class")?
        .unwrap_or_default()
        .iter()
        .map(|&v| v.max(0) as usize)
        .collect();
    let labels = Labels::read(n, "classlabels_ints", "classlabels_strings")?;
    let classes = labels.len();
    if classes == 0 {
        return Err(bad("no class labels".into()));
    }
    let coefficients = n.need("coefficients", n.floats("coefficients"))?;
    let rho = n.need("rho", n.floats("rho"))?;
    let prob_a = n.floats("prob_a")?.unwrap_or_default();
    let prob_b = n.floats("prob_b")?.unwrap_or_default();
    if prob_a.len() != prob_b.len() {
        return Err(bad("prob_a and prob_b differ in length".into()));
    }
    let count: usize = per_class.iter().sum();
    let svc = count > 0;
    let mut kernel = Kernel::read(n)?;
    let pairs = classes * (classes - 1) / 2;
    let vectors = if svc {
        if per_class.len() != classes {
            return Err(bad(format!(
                "vectors_per_class has {} entries for {classes} classes",
                per_class.len()
            )));
        }
        if coefficients.len() < (classes - 1) * count
            || rho.len() < pairs
            || (!prob_a.is_empty() && prob_a.len() < pairs)
        {
            return Err(bad(
                "coefficients, rho or probabilities are too short for the classes".into(),
            ));
        }
        Vectors::new(b, n.floats("support_vectors")?.unwrap_or_default(), count)?
    } else {
        kernel.kind = Kind::Linear;
        if rho.is_empty() {
            return Err(bad("rho is empty".into()));
        }
        Vectors::new(b, coefficients.clone(), classes)?
    };
    let mut starts = vec![];
    let mut acc = 0;
    for &c in &per_class {
        starts.push(acc);
        acc += c;
    }
    Ok(Box::new(Classifier {
        all_positive: coefficients.iter().all(|&c| c >= 0.0),
        kernel,
        vectors,
        svc,
        per_class,
        starts,
        coefficients,
        rho,
        prob_a,
        prob_b,
        labels,
        post: post_transform(n)?,
    }))
}

/// libsvm's pairwise coupling (Wu, Lin and Weng 2004), in f32 as
/// onnxruntime computes it: `r` holds pairwise probabilities, `p` the result.
fn multiclass_probability(k: usize, r: &[f32], p: &mut [f32]) {
    let mut q = vec![0f32; k * k];
    let mut qp = vec![0f32; k];
    let eps = 0.005 / k as f32;
    for i in 0..k {
        p[i] = 1.0 / k as f32;
        for j in 0..i {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = q[j * k + i];
        }
        for j in i + 1..k {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = -r[j * k + i] * r[i * k + j];
        }
    }
    for _ in 0..100 {
        let mut pqp = 0f32;
        for i in 0..k {
            qp[i] = 0.0;
            for j in 0..k {
                qp[i] += q[i * k + j] * p[j];
            }
            pqp += p[i] * qp[i];
        }
        let mut max_error = 0f32;
        for &v in qp.iter() {
            let e = (v - pqp).abs();
            if e > max_error {
                max_error = e;
            }
        }
        if max_error < eps {
            break;
        }
        for i in 0..k {
            let diff = (-qp[i] + pqp) / q[i * k + i];
            p[i] += diff;
            pqp = (pqp + diff * (diff * q[i * k + i] + 2.0 * qp[i])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[i * k + j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
}

impl Op for Classifier {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let (n, f, xs) = self.vectors.rows_of(inputs.get(0)?)?;
        let classes = self.labels.len();
        let pairs = classes * (classes - 1) / 2;
        let proba = !self.prob_a.is_empty();
        let mut picks = Vec::with_capacity(n);
        let mut z: Vec<f32> = vec![];
        let mut cols = classes;
        if !self.svc {
            let scores = self.kernel.apply(cx, &xs, n, f, &self.vectors, self.rho[0]);
            for row in scores.chunks(classes) {
                let mut best = 0;
                for j in 1..classes {
                    if row[j] > row[best] {
                        best = j;
                    }
                }
                picks.push(self.choose(row[best], best, proba));
                let mut r = row.to_vec();
                write_scores(&mut r, self.post, Second::No);
                z.extend(r);
            }
            return Ok(vec![
                self.labels.tensor(&picks)?,
                Tensor::from_vec(vec![n, cols], z)?,
            ]);
        }
        let kern = self.kernel.apply(cx, &xs, n, f, &self.vectors, 0.0);
        let nv = self.vectors.count;
        for k in kern.chunks(nv) {
            let mut votes = vec![0i64; classes];
            let mut pair_scores = Vec::with_capacity(pairs);
            let mut idx = 0;
            for i in 0..classes - 1 {
                for j in i + 1..classes {
                    let mut sum = 0f64;
                    let (si, sj) = (self.starts[i], self.starts[j]);
                    for m in 0..self.per_class[i] {
                        sum += (self.coefficients[nv * (j - 1) + si + m] * k[si + m]) as f64;
                    }
                    for m in 0..self.per_class[j] {
                        sum += (self.coefficients[nv * i + sj + m] * k[sj + m]) as f64;
                    }
                    sum += self.rho[idx] as f64;
                    idx += 1;
                    pair_scores.push(sum as f32);
                    votes[if sum > 0.0 { i } else { j }] += 1;
                }
            }
            let mut best = 0;
            for c in 1..classes {
                if votes[c] > votes[best] {
                    best = c;
                }
            }
            let mut scores = if proba {
                let mut r = vec![0f32; classes * classes];
                let mut index = 0;
                for i in 0..classes - 1 {
                    for j in i + 1..classes {
                        let v = 1.0
                            - super::logistic(
                                pair_scores[index].mul_add(self.prob_a[index], self.prob_b[index]),
                            );
                        let v = v.clamp(1e-7, 1.0 - 1e-7);
                        r[i * classes + j] = v;
                        r[j * classes + i] = 1.0 - v;
                        index += 1;
                    }
                }
                let mut p = vec![0f32; classes];
                multiclass_probability(classes, &r, &mut p);
                p
            } else {
                pair_scores
            };
            picks.push(self.choose(0.0, best, proba));
            if proba {
                write_scores(&mut scores, self.post, Second::No);
            } else if classes <= 2 {
                let second = if self.post == Post::None {
                    Second::Negate
                } else {
                    Second::Complement
                };
                write_scores(&mut scores, self.post, second);
                scores.resize(2, 0.0);
                cols = 2;
            } else {
                write_scores(&mut scores, self.post, Second::No);
                cols = pairs;
            }
            z.extend(scores);
        }
        Ok(vec![
            self.labels.tensor(&picks)?,
            Tensor::from_vec(vec![n, cols], z)?,
        ])
    }
}

impl Classifier {
    /// The label, as onnxruntime picks it for binary and multiclass models.
    fn choose(&self, max_weight: f32, best: usize, proba: bool) -> Pick {
        let classes = self.labels.len();
        if classes * (classes - 1) / 2 != 1 {
            return Pick::Class(best);
        }
        if classes == 2 {
            if proba {
                Pick::Class(best)
            } else if (self.all_positive && max_weight >= 0.5)
                || (max_weight > 0.0 && !self.all_positive)
            {
                Pick::Class(1)
            } else {
                Pick::Class(best)
            }
        } else {
            match (&self.labels, max_weight > 0.0) {
                (Labels::Ints(_), p) => Pick::Int(p as i64),
                (Labels::Strings(_), p) => Pick::Str(if p { "1" } else { "0" }),
            }
        }
    }
}
