//! `ArrayFeatureExtractor`, `FeatureVectorizer` and `ZipMap` (whose maps
//! come back as the score tensor: one row per input row, one column per
//! class label, in label order).

use crate::cx::Cx;
use crate::error::{bail, Result};
use crate::ops::{Build, Inputs, Op};
use crate::tensor::{Data, Tensor};

struct ArrayFeatureExtractor;

pub(crate) fn array_feature_extractor(_: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(ArrayFeatureExtractor))
}

impl Op for ArrayFeatureExtractor {
    fn run(&self, _: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let (x, idx) = (inputs.get(0)?, inputs.get(1)?);
        let ids = idx.to_i64s()?;
        let f = *x.shape().last().unwrap_or(&1);
        let pos: Vec<usize> = ids
            .iter()
            .map(|&i| {
                usize::try_from(i).ok().filter(|&i| i < f).ok_or_else(|| {
                    crate::error::Error::Run(format!(
                        "ArrayFeatureExtractor: index {i} is out of range for {f} features"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let rows = x.len() / f.max(1);
        let src = (0..rows)
            .flat_map(|r| pos.iter().map(move |&p| r * f + p))
            .collect::<Vec<_>>();
        let shape = if x.rank() <= 1 {
            vec![1, pos.len()]
        } else {
            let mut s = x.shape()[..x.rank() - 1].to_vec();
            s.push(pos.len());
            s
        };
        Ok(vec![Tensor::new(shape, x.data().gather(src.into_iter()))?])
    }
}

struct FeatureVectorizer {
    dims: Vec<usize>,
}

pub(crate) fn feature_vectorizer(b: &Build) -> Result<Box<dyn Op>> {
    let dims = b
        .node
        .ints("inputdimensions")?
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.max(0) as usize)
        .collect();
    Ok(Box::new(FeatureVectorizer { dims }))
}

impl Op for FeatureVectorizer {
    fn run(&self, _: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let n = inputs.len();
        if n == 0 || self.dims.len() != n {
            bail!(
                "FeatureVectorizer: {n} inputs, {} input dimensions",
                self.dims.len()
            );
        }
        let first = inputs.get(0)?;
        let rows = if first.rank() <= 1 {
            1
        } else {
            first.shape()[0]
        };
        let total: usize = self.dims.iter().sum();
        let mut out = vec![0f32; rows * total];
        let mut col = 0;
        for (i, &d) in self.dims.iter().enumerate() {
            let t = inputs.get(i)?;
            let r = if t.rank() <= 1 { 1 } else { t.shape()[0] };
            if r != rows {
                bail!("FeatureVectorizer: inputs have {rows} and {r} rows");
            }
            let v = t.to_f64s()?;
            let w = v.len() / rows.max(1);
            for row in 0..rows {
                for j in 0..w.min(d) {
                    out[row * total + col + j] = v[row * w + j] as f32;
                }
            }
            col += d;
        }
        Ok(vec![Tensor::from_vec(vec![rows, total], out)?])
    }
}

struct ZipMap;

pub(crate) fn zip_map(_: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(ZipMap))
}

impl Op for ZipMap {
    fn run(&self, _: &Cx, mut inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.take(0)?;
        match x.data() {
            Data::F32(_) => Ok(vec![x]),
            d => bail!("ZipMap needs float scores, got {}", d.dtype()),
        }
    }
}
