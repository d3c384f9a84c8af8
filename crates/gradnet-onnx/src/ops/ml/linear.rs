//! `LinearRegressor` and `LinearClassifier`: `X·Wᵀ + b` with this engine's
//! matrix product (one FMA chain per score), then the post-transform and,
//! for classifiers, the label.

use super::{as_f32, post_transform, rows, write_scores, Labels, Pick, Post, Second};
use crate::cx::Cx;
use crate::error::{bail, invalid, Result};
use crate::kernels::epilogue::{Operand, Step};
use crate::kernels::gemm::{gemm, AOp, BOp, Epilogue, PackedB};
use crate::ops::{Build, Inputs, Op};
use crate::tensor::Tensor;

/// `X·Wᵀ + b` for `W` of `targets x features`.
struct Affine {
    w: PackedB,
    steps: Vec<Step>,
    targets: usize,
    features: usize,
}

impl Affine {
    fn new(b: &Build, coef: Vec<f32>, intercepts: Vec<f32>, targets: usize) -> Result<Affine> {
        if targets == 0 || !coef.len().is_multiple_of(targets) || coef.is_empty() {
            return Err(invalid!(
                "{}: {} coefficients for {targets} targets",
                b.node.label(),
                coef.len()
            ));
        }
        let features = coef.len() / targets;
        let steps = match intercepts.len() {
            0 => vec![],
            l if l == targets => vec![Step::Add(Operand::Col(intercepts))],
            l => {
                return Err(invalid!(
                    "{}: {l} intercepts for {targets} targets",
                    b.node.label()
                ))
            }
        };
        Ok(Affine {
            w: PackedB::new(b.isa, &coef, features, targets, 1, features),
            steps,
            targets,
            features,
        })
    }

    fn scores(&self, cx: &Cx, x: &Tensor) -> Result<(usize, Vec<f32>)> {
        let (n, f) = rows(x)?;
        if f != self.features {
            bail!(
                "the model takes {} features, the input has {f}",
                self.features
            );
        }
        let xs = as_f32(x)?;
        let mut out = vec![0f32; n * self.targets];
        let epi = Epilogue { steps: &self.steps };
        gemm(
            cx,
            n,
            self.targets,
            f,
            AOp::Rows { a: &xs, lda: f },
            BOp::Packed(&self.w),
            &mut out,
            self.targets,
            epi,
        );
        Ok((n, out))
    }
}

struct Regressor {
    affine: Affine,
    post: Post,
}

pub(crate) fn regressor(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let coef = n.need("coefficients", n.floats("coefficients"))?;
    let targets = n.int_or("targets", 1)?.max(1) as usize;
    Ok(Box::new(Regressor {
        affine: Affine::new(
            b,
            coef,
            n.floats("intercepts")?.unwrap_or_default(),
            targets,
        )?,
        post: post_transform(n)?,
    }))
}

impl Op for Regressor {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let (n, mut s) = self.affine.scores(cx, inputs.get(0)?)?;
        let t = self.affine.targets;
        if self.post != Post::None && t > 1 {
            let mut out = Vec::with_capacity(s.len());
            for row in s.chunks(t) {
                let mut r = row.to_vec();
                write_scores(&mut r, self.post, Second::No);
                out.extend(r);
            }
            s = out;
        } else if self.post == Post::Probit {
            s.iter_mut().for_each(|v| *v = super::probit(*v));
        }
        Ok(vec![Tensor::from_vec(vec![n, t], s)?])
    }
}

struct Classifier {
    affine: Affine,
    labels: Labels,
    post: Post,
}

pub(crate) fn classifier(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let coef = n.need("coefficients", n.floats("coefficients"))?;
    let intercepts = n.floats("intercepts")?.unwrap_or_default();
    let labels = Labels::read(n, "classlabels_ints", "classlabels_strings")?;
    let targets = intercepts.len().max(1);
    let post = post_transform(n)?;
    if targets == 1 && labels.len() == 2 && post == Post::Probit {
        return Err(b.unsupported("PROBIT on a binary classifier with one score column"));
    }
    Ok(Box::new(Classifier {
        affine: Affine::new(b, coef, intercepts, targets)?,
        labels,
        post,
    }))
}

impl Op for Classifier {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let (n, s) = self.affine.scores(cx, inputs.get(0)?)?;
        let t = self.affine.targets;
        let two_labels = self.labels.len() == 2;
        let second = t == 1 && two_labels;
        let mut picks = Vec::with_capacity(n);
        let mut z = Vec::with_capacity(n * if second { 2 } else { t });
        for row in s.chunks(t) {
            if t == 1 {
                let pos = row[0] > 0.0;
                picks.push(match (&self.labels, two_labels) {
                    (_, true) => Pick::Class(pos as usize),
                    (Labels::Ints(_), false) => Pick::Int(pos as i64),
                    (Labels::Strings(_), false) => Pick::Str(if pos { "1" } else { "0" }),
                });
            } else {
                let mut best = 0;
                for j in 1..t {
                    if row[j] > row[best] {
                        best = j;
                    }
                }
                if best >= self.labels.len() {
                    bail!("score column {best} has no class label");
                }
                picks.push(Pick::Class(best));
            }
            let mut r = row.to_vec();
            if second {
                // one score, two labels: [1 - p, p], p through the logistic
                // function if asked (the other transforms do not apply)
                let p = if self.post == Post::Logistic {
                    super::logistic(r[0])
                } else {
                    r[0]
                };
                r = vec![1.0 - p, p];
            } else if t > 1 || self.post == Post::Probit {
                write_scores(&mut r, self.post, Second::No);
            }
            z.extend(r);
        }
        let cols = z.len() / n.max(1);
        Ok(vec![
            self.labels.tensor(&picks)?,
            Tensor::from_vec(vec![n, cols], z)?,
        ])
    }
}
