//! `Scaler`, `Normalizer`, `Imputer` and `Binarizer`.

use super::{as_f64, rows};
use crate::cx::Cx;
use crate::error::{bail, invalid, Result};
use crate::ops::{Build, Inputs, Op};
use crate::tensor::{Data, Tensor};

/// Per-feature parameters: one value for all, or one per column.
fn per_feature(v: &[f32], f: usize, what: &str) -> Result<Vec<f32>> {
    match v.len() {
        1 => Ok(vec![v[0]; f]),
        l if l == f => Ok(v.to_vec()),
        l => bail!("{l} {what} values for {f} features"),
    }
}

struct Scaler {
    offset: Vec<f32>,
    scale: Vec<f32>,
}

pub(crate) fn scaler(b: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(Scaler {
        offset: b.node.floats("offset")?.unwrap_or(vec![0.0]),
        scale: b.node.floats("scale")?.unwrap_or(vec![1.0]),
    }))
}

/// The last axis' length (features) of any-rank input.
fn last_dim(x: &Tensor) -> usize {
    x.shape().last().copied().unwrap_or(1)
}

impl Op for Scaler {
    fn run(&self, _: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let f = last_dim(x);
        let (o, s) = (
            per_feature(&self.offset, f, "offset")?,
            per_feature(&self.scale, f, "scale")?,
        );
        let xs = as_f64(x)?;
        let out: Vec<f32> = xs
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let j = i % f.max(1);
                (v as f32 - o[j]) * s[j]
            })
            .collect();
        Ok(vec![Tensor::from_vec(x.shape().to_vec(), out)?])
    }
}

#[derive(Clone, Copy)]
enum Norm {
    Max,
    L1,
    L2,
}

struct Normalizer(Norm);

pub(crate) fn normalizer(b: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(Normalizer(
        match b.node.string_or("norm", "MAX")?.as_str() {
            "MAX" => Norm::Max,
            "L1" => Norm::L1,
            "L2" => Norm::L2,
            other => return Err(invalid!("{}: norm `{other}`", b.node.label())),
        },
    )))
}

impl Op for Normalizer {
    fn run(&self, _: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let (_, f) = rows(x)?;
        let mut v: Vec<f32> = as_f64(x)?.into_iter().map(|v| v as f32).collect();
        for r in v.chunks_mut(f.max(1)) {
            let d = match self.0 {
                Norm::Max => r
                    .iter()
                    .copied()
                    .fold(f32::NEG_INFINITY, |m, x| if x > m { x } else { m }),
                Norm::L1 => r.iter().fold(0.0, |s, x| s + x.abs()),
                Norm::L2 => r.iter().fold(0.0f32, |s, x| x.mul_add(*x, s)).sqrt(),
            };
            if d != 0.0 {
                r.iter_mut().for_each(|x| *x /= d);
            }
        }
        Ok(vec![Tensor::from_vec(x.shape().to_vec(), v)?])
    }
}

struct Imputer {
    floats: Option<(Vec<f32>, f32)>,
    ints: Option<(Vec<i64>, i64)>,
}

pub(crate) fn imputer(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let floats = n.floats("imputed_value_floats")?.filter(|v| !v.is_empty());
    let ints = n.ints("imputed_value_int64s")?.filter(|v| !v.is_empty());
    if floats.is_none() && ints.is_none() {
        return Err(invalid!("{}: no imputed values", n.label()));
    }
    Ok(Box::new(Imputer {
        floats: floats.map(|v| (v, n.float_or("replaced_value_float", 0.0).unwrap_or(0.0))),
        ints: ints.map(|v| (v, n.int_or("replaced_value_int64", 0).unwrap_or(0))),
    }))
}

impl Op for Imputer {
    fn run(&self, _: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let f = last_dim(x);
        let data = match (x.data(), &self.floats, &self.ints) {
            (Data::F32(v), Some((imp, rep)), _) => {
                let imp = per_feature(imp, f, "imputed")?;
                Data::F32(
                    v.iter()
                        .enumerate()
                        .map(|(i, &x)| {
                            if x == *rep || (rep.is_nan() && x.is_nan()) {
                                imp[i % f]
                            } else {
                                x
                            }
                        })
                        .collect(),
                )
            }
            (Data::I64(v), _, Some((imp, rep))) => {
                let imp: Vec<i64> = match imp.len() {
                    1 => vec![imp[0]; f],
                    l if l == f => imp.clone(),
                    l => bail!("{l} imputed values for {f} features"),
                };
                Data::I64(
                    v.iter()
                        .enumerate()
                        .map(|(i, &x)| if x == *rep { imp[i % f] } else { x })
                        .collect(),
                )
            }
            (d, _, _) => bail!("Imputer has no imputed values for {} input", d.dtype()),
        };
        Ok(vec![Tensor::new(x.shape().to_vec(), data)?])
    }
}

struct Binarizer(f32);

pub(crate) fn binarizer(b: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(Binarizer(b.node.float_or("threshold", 0.0)?)))
}

impl Op for Binarizer {
    fn run(&self, _: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let t = self.0;
        let data = match x.data() {
            Data::F32(v) => Data::F32(v.iter().map(|&x| if x > t { 1.0 } else { 0.0 }).collect()),
            Data::F64(v) => Data::F64(
                v.iter()
                    .map(|&x| if x > t as f64 { 1.0 } else { 0.0 })
                    .collect(),
            ),
            d => bail!("Binarizer needs float input, got {}", d.dtype()),
        };
        Ok(vec![Tensor::new(x.shape().to_vec(), data)?])
    }
}
