//! `TreeEnsembleRegressor` and `TreeEnsembleClassifier` (ai.onnx.ml 1 and
//! 3): every tree walked from its root for every row; leaf values summed in
//! tree order in the model's own precision (f32, or f64 for `_as_tensor`
//! double attributes), so a float model's scores are the ones onnxruntime's
//! single-threaded evaluation gives; then aggregation, base values and the
//! post-transform.

use std::collections::HashMap;

use super::{
    as_f64, floats_or_tensor, post_transform, rows, write_scores, Labels, Pick, Post, Second,
};
use crate::cx::Cx;
use crate::error::{bail, invalid, Result};
use crate::graph::node::Node;
use crate::ops::{Build, Inputs, Op};
use crate::tensor::Tensor;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

#[derive(Debug, Clone)]
struct TreeNode {
    feature: usize,
    mode: Mode,
    threshold: f64,
    yes: u32,
    no: u32,
    missing_yes: bool,
    /// Range into `Forest::weights`.
    weights: (u32, u32),
}

/// The trees of an ensemble, flattened.
struct Forest {
    nodes: Vec<TreeNode>,
    roots: Vec<u32>,
    /// (target or class, value) per leaf, in attribute order.
    weights: Vec<(usize, f64)>,
    /// Thresholds and weights are doubles: accumulate in f64.
    double: bool,
    max_feature: usize,
}

fn ints(n: &Node, name: &str) -> Result<Vec<i64>> {
    Ok(n.ints(name)?.unwrap_or_default())
}

impl Forest {
    /// `prefix` is `target` (regressor) or `class` (classifier).
    fn read(n: &Node, prefix: &str, outputs: usize) -> Result<Forest> {
        let bad = |m: String| invalid!("{}: {m}", n.label());
        let tree = ints(n, "nodes_treeids")?;
        let id = ints(n, "nodes_nodeids")?;
        let feat = ints(n, "nodes_featureids")?;
        let modes = n.strings("nodes_modes")?.unwrap_or_default();
        let values = floats_or_tensor(n, "nodes_values")?.unwrap_or_default();
        let yes = ints(n, "nodes_truenodeids")?;
        let no = ints(n, "nodes_falsenodeids")?;
        let missing = ints(n, "nodes_missing_value_tracks_true")?;
        let count = tree.len();
        if [
            id.len(),
            feat.len(),
            modes.len(),
            values.len(),
            yes.len(),
            no.len(),
        ]
        .iter()
        .any(|&l| l != count)
        {
            return Err(bad("the nodes_* attributes differ in length".into()));
        }
        let double = n
            .tensor("nodes_values_as_tensor")?
            .is_some_and(|t| t.dtype() == crate::tensor::DType::F64)
            || n.tensor(&format!("{prefix}_weights_as_tensor"))?
                .is_some_and(|t| t.dtype() == crate::tensor::DType::F64);
        let mut index: HashMap<(i64, i64), u32> = HashMap::new();
        for i in 0..count {
            if index.insert((tree[i], id[i]), i as u32).is_some() {
                return Err(bad(format!(
                    "node {} of tree {} is defined twice",
                    id[i], tree[i]
                )));
            }
        }
        let mut nodes = Vec::with_capacity(count);
        let mut max_feature = 0;
        for i in 0..count {
            let mode = match modes[i].as_str() {
                "BRANCH_LEQ" => Mode::Leq,
                "BRANCH_LT" => Mode::Lt,
                "BRANCH_GTE" => Mode::Gte,
                "BRANCH_GT" => Mode::Gt,
                "BRANCH_EQ" => Mode::Eq,
                "BRANCH_NEQ" => Mode::Neq,
                "LEAF" => Mode::Leaf,
                other => {
                    return Err(crate::error::Error::Unsupported(vec![format!(
                        "{} (node mode {other})",
                        n.kind()
                    )]))
                }
            };
            let child = |c: i64| -> Result<u32> {
                index
                    .get(&(tree[i], c))
                    .copied()
                    .filter(|&j| j as usize != i)
                    .ok_or_else(|| {
                        bad(format!(
                            "node {} of tree {} points to missing node {c}",
                            id[i], tree[i]
                        ))
                    })
            };
            let (y, f) = if mode == Mode::Leaf {
                (0, 0)
            } else {
                (child(yes[i])?, child(no[i])?)
            };
            let feature = usize::try_from(feat[i])
                .map_err(|_| bad(format!("negative feature id {}", feat[i])))?;
            if mode != Mode::Leaf {
                max_feature = max_feature.max(feature + 1);
            }
            nodes.push(TreeNode {
                feature,
                mode,
                threshold: if double {
                    values[i]
                } else {
                    values[i] as f32 as f64
                },
                yes: y,
                no: f,
                missing_yes: missing.get(i) == Some(&1),
                weights: (0, 0),
            });
        }
        // a root wherever the tree id changes, as onnxruntime reads them
        let mut roots = vec![];
        for i in 0..count {
            if i == 0 || tree[i] != tree[i - 1] {
                roots.push(i as u32);
            }
        }
        let (wt, wn, wi) = (
            ints(n, &format!("{prefix}_treeids"))?,
            ints(n, &format!("{prefix}_nodeids"))?,
            ints(n, &format!("{prefix}_ids"))?,
        );
        let ww = floats_or_tensor(n, &format!("{prefix}_weights"))?.unwrap_or_default();
        if wn.len() != wt.len() || wi.len() != wt.len() || ww.len() != wt.len() {
            return Err(bad(format!("the {prefix}_* attributes differ in length")));
        }
        let mut per: Vec<Vec<(usize, f64)>> = vec![vec![]; count];
        for k in 0..wt.len() {
            let j = *index.get(&(wt[k], wn[k])).ok_or_else(|| {
                bad(format!(
                    "a weight names missing node {} of tree {}",
                    wn[k], wt[k]
                ))
            })?;
            let target = usize::try_from(wi[k])
                .ok()
                .filter(|&t| t < outputs)
                .ok_or_else(|| bad(format!("{prefix} id {} is out of range", wi[k])))?;
            let w = if double { ww[k] } else { ww[k] as f32 as f64 };
            per[j as usize].push((target, w));
        }
        let mut weights = vec![];
        for (node, w) in nodes.iter_mut().zip(per) {
            node.weights = (weights.len() as u32, (weights.len() + w.len()) as u32);
            weights.extend(w);
        }
        let forest = Forest {
            nodes,
            roots,
            weights,
            double,
            max_feature,
        };
        forest.check_acyclic().map_err(bad)?;
        Ok(forest)
    }

    /// Every walk ends: each tree is a tree, not a cycle.
    fn check_acyclic(&self) -> std::result::Result<(), String> {
        let mut state = vec![0u8; self.nodes.len()];
        for &r in &self.roots {
            let mut stack = vec![(r, false)];
            while let Some((i, done)) = stack.pop() {
                let i = i as usize;
                if done {
                    state[i] = 2;
                    continue;
                }
                match state[i] {
                    1 => return Err(format!("the trees have a cycle through node index {i}")),
                    2 => continue,
                    _ => {}
                }
                state[i] = 1;
                stack.push((i as u32, true));
                let n = &self.nodes[i];
                if n.mode != Mode::Leaf {
                    stack.push((n.yes, false));
                    stack.push((n.no, false));
                }
            }
        }
        Ok(())
    }

    /// The leaf a row reaches from `root`.
    #[inline]
    fn leaf(&self, root: u32, x: &[f64]) -> &TreeNode {
        let mut n = &self.nodes[root as usize];
        while n.mode != Mode::Leaf {
            let v = x[n.feature];
            let t = n.threshold;
            let go = match n.mode {
                Mode::Leq => v <= t,
                Mode::Lt => v < t,
                Mode::Gte => v >= t,
                Mode::Gt => v > t,
                Mode::Eq => v == t,
                Mode::Neq => v != t,
                Mode::Leaf => unreachable!(),
            } || (n.missing_yes && v.is_nan());
            n = &self.nodes[if go { n.yes } else { n.no } as usize];
        }
        n
    }

    fn leaf_weights(&self, n: &TreeNode) -> &[(usize, f64)] {
        &self.weights[n.weights.0 as usize..n.weights.1 as usize]
    }
}

/// A running score in the model's precision, and whether any leaf set it.
#[derive(Debug, Clone, Copy, Default)]
struct Score {
    v: f64,
    set: bool,
}

impl Score {
    /// `a + b` in f32 or f64.
    fn add(double: bool, a: f64, b: f64) -> f64 {
        if double {
            a + b
        } else {
            (a as f32 + b as f32) as f64
        }
    }

    fn value(&self) -> f32 {
        if self.set {
            self.v as f32
        } else {
            0.0
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

struct Regressor {
    forest: Forest,
    n_targets: usize,
    aggregate: Aggregate,
    base: Vec<f64>,
    post: Post,
}

pub(crate) fn regressor(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let n_targets = n.int_or("n_targets", 1)?;
    if !(1..=1 << 20).contains(&n_targets) {
        return Err(invalid!("{}: n_targets {n_targets}", n.label()));
    }
    let n_targets = n_targets as usize;
    let aggregate = match n.string_or("aggregate_function", "SUM")?.as_str() {
        "SUM" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Average,
        "MIN" => Aggregate::Min,
        "MAX" => Aggregate::Max,
        other => return Err(invalid!("{}: aggregate_function `{other}`", n.label())),
    };
    Ok(Box::new(Regressor {
        forest: Forest::read(n, "target", n_targets)?,
        n_targets,
        aggregate,
        base: floats_or_tensor(n, "base_values")?.unwrap_or_default(),
        post: post_transform(n)?,
    }))
}

fn check_features(forest: &Forest, f: usize) -> Result<()> {
    if forest.max_feature > f {
        bail!(
            "the trees read feature {} but the input has {f} features",
            forest.max_feature - 1
        );
    }
    Ok(())
}

impl Regressor {
    fn row(&self, x: &[f64]) -> Vec<f32> {
        let (fo, d) = (&self.forest, self.forest.double);
        let ntrees = fo.roots.len() as f64;
        let round = |v: f64| if d { v } else { v as f32 as f64 };
        if self.n_targets == 1 {
            let origin = if self.base.len() == 1 {
                self.base[0]
            } else {
                0.0
            };
            let mut s = Score::default();
            for &r in &fo.roots {
                let w = fo.leaf_weights(fo.leaf(r, x)).first().map_or(0.0, |w| w.1);
                match self.aggregate {
                    Aggregate::Sum | Aggregate::Average => s.v = Score::add(d, s.v, w),
                    Aggregate::Min => s.v = if !s.set || w < s.v { w } else { s.v },
                    Aggregate::Max => s.v = if !s.set || w > s.v { w } else { s.v },
                }
                s.set = true;
            }
            let v = match self.aggregate {
                Aggregate::Average => Score::add(d, round(s.v / ntrees), origin),
                _ if s.set || self.aggregate == Aggregate::Sum => Score::add(d, s.v, origin),
                _ => origin,
            };
            let v = v as f32;
            return vec![if self.post == Post::Probit {
                super::probit(v)
            } else {
                v
            }];
        }
        let mut p = vec![Score::default(); self.n_targets];
        for &r in &fo.roots {
            for &(t, w) in fo.leaf_weights(fo.leaf(r, x)) {
                let s = &mut p[t];
                match self.aggregate {
                    Aggregate::Sum | Aggregate::Average => s.v = Score::add(d, s.v, w),
                    Aggregate::Min => s.v = if !s.set || w < s.v { w } else { s.v },
                    Aggregate::Max => s.v = if !s.set || w > s.v { w } else { s.v },
                }
                s.set = true;
            }
        }
        let use_base = self.base.len() == self.n_targets;
        for (i, s) in p.iter_mut().enumerate() {
            let b = if use_base { self.base[i] } else { 0.0 };
            match self.aggregate {
                Aggregate::Sum => {
                    if use_base {
                        s.v = Score::add(d, s.v, b);
                    }
                }
                Aggregate::Average => s.v = Score::add(d, round(s.v / ntrees), b),
                Aggregate::Min | Aggregate::Max => {
                    s.v = Score::add(d, b, if s.set { s.v } else { 0.0 })
                }
            }
        }
        let mut scores: Vec<f32> = p.iter().map(|s| s.value()).collect();
        write_scores(&mut scores, self.post, Second::No);
        scores
    }
}

impl Op for Regressor {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let (n, f) = rows(x)?;
        cx.check_size(&[n, self.n_targets], 4)?;
        check_features(&self.forest, f)?;
        let xs = as_f64(x)?;
        let mut out = Vec::with_capacity(n * self.n_targets);
        for r in 0..n {
            out.extend(self.row(&xs[r * f..(r + 1) * f]));
        }
        Ok(vec![Tensor::from_vec(vec![n, self.n_targets], out)?])
    }
}

struct Classifier {
    forest: Forest,
    labels: Labels,
    base: Vec<f64>,
    post: Post,
    binary_case: bool,
    all_positive: bool,
}

pub(crate) fn classifier(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let labels = Labels::read(n, "classlabels_int64s", "classlabels_strings")?;
    let classes = labels.len();
    if classes < 2 {
        return Err(b.unsupported("fewer than two class labels"));
    }
    let forest = Forest::read(n, "class", classes)?;
    let ids = ints(n, "class_ids")?;
    let distinct: std::collections::HashSet<i64> = ids.iter().copied().collect();
    let all_positive = forest.weights.iter().all(|w| w.1 >= 0.0);
    Ok(Box::new(Classifier {
        binary_case: classes == 2 && distinct.len() == 1,
        all_positive,
        base: floats_or_tensor(n, "base_values")?.unwrap_or_default(),
        post: post_transform(n)?,
        forest,
        labels,
    }))
}

impl Classifier {
    /// The label and the class scores of one row.
    fn row(&self, x: &[f64]) -> (Pick, Vec<f32>) {
        let (fo, d) = (&self.forest, self.forest.double);
        let classes = self.labels.len();
        let mut p = vec![Score::default(); classes];
        for &r in &fo.roots {
            for &(c, w) in fo.leaf_weights(fo.leaf(r, x)) {
                p[c].v = Score::add(d, p[c].v, w);
                p[c].set = true;
            }
        }
        if classes > 2 {
            for (k, &b) in self.base.iter().enumerate().take(classes) {
                if p[k].set {
                    p[k].v = Score::add(d, p[k].v, b);
                } else {
                    p[k] = Score { v: b, set: true };
                }
            }
            let mut best: Option<(usize, f64)> = None;
            for (i, s) in p.iter().enumerate() {
                if s.set && best.is_none_or(|(_, m)| s.v > m) {
                    best = Some((i, s.v));
                }
            }
            let mut scores: Vec<f32> = p.iter().map(|s| s.value()).collect();
            write_scores(&mut scores, self.post, Second::No);
            return (Pick::Class(best.map_or(0, |b| b.0)), scores);
        }
        // binary
        let mut second = None;
        match self.base.len() {
            2 => {
                if p[1].set {
                    p[1].v = Score::add(d, self.base[1], p[0].v);
                    p[0].v = -p[1].v;
                } else {
                    p[1].v = Score::add(d, p[1].v, self.base[1]);
                    p[0].v = Score::add(d, p[0].v, self.base[0]);
                }
            }
            1 => {
                p[0].v = Score::add(d, p[0].v, self.base[0]);
                if !p[1].set {
                    p.pop();
                }
            }
            0 => {
                second = Some(Second::Negate);
                if !p[1].set {
                    p.pop();
                }
            }
            _ => {}
        }
        let (s0, h0) = (p[0].v, p[0].set);
        let (s1, h1) = if p.len() == 2 && p[1].set {
            (p[1].v, true)
        } else {
            (0.0, false)
        };
        let pos = if h1 {
            s1
        } else if h0 {
            s0
        } else {
            0.0
        };
        let pick = if self.binary_case {
            let (sec, class) = match (self.all_positive, pos) {
                (true, v) if v > 0.5 => (Second::Complement, 1),
                (true, _) => (Second::Complement, 0),
                (false, v) if v > 0.0 => (Second::Negate, 1),
                (false, _) => (Second::Negate, 0),
            };
            second = Some(sec);
            Pick::Class(class)
        } else {
            let v = if pos > 0.0 { 1 } else { 0 };
            match self.labels {
                Labels::Ints(_) => Pick::Int(v),
                Labels::Strings(_) => Pick::Class(v as usize),
            }
        };
        let mut scores: Vec<f32> = p.iter().map(|s| s.value()).collect();
        write_scores(&mut scores, self.post, second.unwrap_or(Second::No));
        scores.resize(2, 0.0);
        (pick, scores)
    }
}

impl Op for Classifier {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let (n, f) = rows(x)?;
        cx.check_size(&[n, self.labels.len()], 4)?;
        check_features(&self.forest, f)?;
        let xs = as_f64(x)?;
        let classes = self.labels.len();
        let mut picks = Vec::with_capacity(n);
        let mut z = Vec::with_capacity(n * classes);
        for r in 0..n {
            let (p, s) = self.row(&xs[r * f..(r + 1) * f]);
            picks.push(p);
            z.extend(s);
        }
        Ok(vec![
            self.labels.tensor(&picks)?,
            Tensor::from_vec(vec![n, classes], z)?,
        ])
    }
}
