//! The ONNX-ML domain (`ai.onnx.ml`): tree ensembles, linear and SVM
//! models, preprocessing, encoders and feature plumbing, as scikit-learn,
//! XGBoost and LightGBM models exported to ONNX use them.
//!
//! Where the ONNX-ML specification leaves a case open (binary classifiers
//! with one score column, which post-transform applies to a second class),
//! these operators do what onnxruntime does, so exported models give the
//! answers their authors saw; every float step is a fixed sequence of IEEE
//! operations and gradnet's own `exp`, so the answer is the same on every CPU.

mod encode;
mod features;
mod linear;
mod preprocess;
mod svm;
mod tree;

use super::Ctor;
use crate::error::{invalid, Result};
use crate::graph::node::Node;
use crate::kernels::{math, Hard};
use crate::tensor::{Data, Tensor};

pub(crate) fn ctor(op: &str) -> Option<Ctor> {
    Some(match op {
        "TreeEnsembleRegressor" => tree::regressor,
        "TreeEnsembleClassifier" => tree::classifier,
        "LinearRegressor" => linear::regressor,
        "LinearClassifier" => linear::classifier,
        "SVMRegressor" => svm::regressor,
        "SVMClassifier" => svm::classifier,
        "Scaler" => preprocess::scaler,
        "Normalizer" => preprocess::normalizer,
        "Imputer" => preprocess::imputer,
        "Binarizer" => preprocess::binarizer,
        "OneHotEncoder" => encode::one_hot_encoder,
        "LabelEncoder" => encode::label_encoder,
        "CategoryMapper" => encode::category_mapper,
        "ArrayFeatureExtractor" => features::array_feature_extractor,
        "FeatureVectorizer" => features::feature_vectorizer,
        "ZipMap" => features::zip_map,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Post {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

pub(crate) fn post_transform(n: &Node) -> Result<Post> {
    Ok(match n.string_or("post_transform", "NONE")?.as_str() {
        "NONE" => Post::None,
        "LOGISTIC" => Post::Logistic,
        "SOFTMAX" => Post::Softmax,
        "SOFTMAX_ZERO" => Post::SoftmaxZero,
        "PROBIT" => Post::Probit,
        other => return Err(invalid!("{}: post_transform `{other}`", n.label())),
    })
}

/// The logistic function as onnxruntime writes it (symmetric around 0).
pub(crate) fn logistic(x: f32) -> f32 {
    let v = 1.0 / (1.0 + math::exp::<Hard>(-x.abs()));
    if x < 0.0 {
        1.0 - v
    } else {
        v
    }
}

/// erf⁻¹ by Winitzki's approximation (as onnxruntime), then √2 · erf⁻¹(2x - 1).
pub(crate) fn probit(x: f32) -> f32 {
    let y = 2.0 * x - 1.0;
    let sgn = if y < 0.0 { -1.0 } else { 1.0 };
    let t = (1.0 - y) * (1.0 + y);
    let l = math::ln::<Hard>(t);
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * l;
    let v2 = 1.0 / 0.147 * l;
    let v3 = -v + (v * v - v2).sqrt();
    std::f32::consts::SQRT_2 * (sgn * v3.sqrt())
}

fn softmax(v: &mut [f32]) {
    let mut m = -f32::MAX;
    for &x in v.iter() {
        if x > m {
            m = x;
        }
    }
    let mut s = 0f32;
    for x in v.iter_mut() {
        *x = math::exp::<Hard>(*x - m);
        s += *x;
    }
    for x in v.iter_mut() {
        *x /= s;
    }
}

/// Softmax over the non-zero scores (zeros stay near zero), as onnxruntime.
fn softmax_zero(v: &mut [f32]) {
    let mut m = -f32::MAX;
    for &x in v.iter() {
        if x > m {
            m = x;
        }
    }
    let e = math::exp::<Hard>(-m);
    let mut s = 0f32;
    for x in v.iter_mut() {
        if *x > 1e-7 || *x < -1e-7 {
            *x = math::exp::<Hard>(*x - m);
            s += *x;
        } else {
            *x *= e;
        }
    }
    for x in v.iter_mut() {
        *x /= s;
    }
}

/// How a single binary score becomes two columns (onnxruntime's
/// `add_second_class`): 0 / 1 as `[1 - s, s]`, 2 / 3 as `[-s, s]` (or both
/// through the logistic function).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Second {
    No,
    Complement,
    Negate,
}

/// Applies the post-transform to one row of scores, appending the second
/// class of a binary score where asked.
pub(crate) fn write_scores(scores: &mut Vec<f32>, post: Post, second: Second) {
    if scores.len() >= 2 {
        match post {
            Post::Probit => scores.iter_mut().for_each(|s| *s = probit(*s)),
            Post::Logistic => scores.iter_mut().for_each(|s| *s = logistic(*s)),
            Post::Softmax => softmax(scores),
            Post::SoftmaxZero => softmax_zero(scores),
            Post::None => {}
        }
    } else if scores.len() == 1 {
        let s = scores[0];
        if post == Post::Probit {
            scores[0] = probit(s);
            return;
        }
        match second {
            Second::Complement => *scores = vec![1.0 - s, s],
            Second::Negate if post == Post::Logistic => *scores = vec![logistic(-s), logistic(s)],
            Second::Negate => *scores = vec![-s, s],
            Second::No => {}
        }
    }
}

/// The rows of a model input `[N, F]` (or one row `[F]`) as f32 or f64.
pub(crate) fn rows(x: &Tensor) -> Result<(usize, usize)> {
    match x.shape() {
        [f] => Ok((1, *f)),
        [n, f] => Ok((*n, *f)),
        s => Err(crate::error::Error::Run(format!(
            "expected input [N, features], got {s:?}"
        ))),
    }
}

/// Input values widened to f64 (exact for every numeric type the ML
/// operators take).
pub(crate) fn as_f64(x: &Tensor) -> Result<Vec<f64>> {
    match x.data() {
        Data::F64(v) => Ok(v.clone()),
        Data::F32(v) => Ok(v.iter().map(|&x| x as f64).collect()),
        _ => x.to_f64s(),
    }
}

/// Input values as f32 (as onnxruntime casts them for its GEMMs).
pub(crate) fn as_f32(x: &Tensor) -> Result<Vec<f32>> {
    match x.data() {
        Data::F32(v) => Ok(v.clone()),
        _ => Ok(x.to_f64s()?.into_iter().map(|v| v as f32).collect()),
    }
}

/// Class labels: ints or strings, from the usual attribute pair.
#[derive(Debug, Clone)]
pub(crate) enum Labels {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

impl Labels {
    pub(crate) fn read(n: &Node, ints: &str, strings: &str) -> Result<Labels> {
        match (n.strings(strings)?, n.ints(ints)?) {
            (Some(s), _) if !s.is_empty() => Ok(Labels::Strings(s)),
            (_, Some(i)) => Ok(Labels::Ints(i)),
            _ => Ok(Labels::Ints(vec![])),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Labels::Ints(v) => v.len(),
            Labels::Strings(v) => v.len(),
        }
    }

    /// A label column from class indexes (or explicit values where given).
    pub(crate) fn tensor(&self, picks: &[Pick]) -> Result<Tensor> {
        let n = picks.len();
        match self {
            Labels::Ints(v) => Tensor::from_vec(
                vec![n],
                picks
                    .iter()
                    .map(|p| match p {
                        Pick::Class(i) => v[*i],
                        Pick::Int(x) => *x,
                        Pick::Str(_) => 0,
                    })
                    .collect::<Vec<i64>>(),
            ),
            Labels::Strings(v) => Tensor::from_vec(
                vec![n],
                picks
                    .iter()
                    .map(|p| match p {
                        Pick::Class(i) => v[*i].clone(),
                        Pick::Int(x) => x.to_string(),
                        Pick::Str(s) => s.to_string(),
                    })
                    .collect::<Vec<String>>(),
            ),
        }
    }
}

/// A predicted label: a class index, or a literal positive / negative label.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pick {
    Class(usize),
    Int(i64),
    Str(&'static str),
}

/// Floats of an attribute, or of its `_as_tensor` twin (ai.onnx.ml 3).
pub(crate) fn floats_or_tensor(n: &Node, name: &str) -> Result<Option<Vec<f64>>> {
    if let Some(t) = n.tensor(&format!("{name}_as_tensor"))? {
        return Ok(Some(t.to_f64s()?));
    }
    Ok(n.floats(name)?
        .map(|v| v.into_iter().map(|x| x as f64).collect()))
}
