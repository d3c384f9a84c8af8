//! Fusion of element-wise operators into the convolution or matrix product
//! before them. Fused steps compute exactly what the operators would (see
//! [`crate::kernels::epilogue`]); fusion saves passes over memory and never
//! changes a bit (the conformance tests run every model both ways).
//!
//! A chain is fused while each next operator is the only reader of the
//! value before it and is one of: an activation, Add / Sub / Mul / Div by a
//! constant that is one number or one per channel (per column after a
//! matrix product), a batch normalization with constant parameters, or a
//! gate `x * f(x)` where `f` is itself such a chain (HardSwish, SiLU).

use std::collections::HashMap;
use std::sync::Arc;

use super::node::{Node, ONNX};
use super::LoadCx;
use crate::error::Result;
use crate::kernels::epilogue::{Operand, Step};
use crate::ops::{unary, Build};
use crate::tensor::{DType, Tensor};

/// How the producer's output is laid out, for constant operands.
#[derive(Clone, Copy)]
enum Layout {
    /// A convolution: rank, channels on axis 1.
    Channels { rank: usize, channels: usize },
    /// A matrix product: columns on the last axis (count if known).
    Columns { cols: Option<usize> },
}

fn layout(n: &Node, consts: &HashMap<String, Arc<Tensor>>) -> Option<Layout> {
    if n.domain != ONNX || n.outputs.len() != 1 {
        return None;
    }
    let w = n.input(1).and_then(|w| consts.get(w));
    match n.op.as_str() {
        "Conv" => w
            .filter(|w| (3..=4).contains(&w.rank()))
            .map(|w| Layout::Channels {
                rank: w.rank(),
                channels: w.shape()[0],
            }),
        "ConvTranspose" => {
            let group = n.int_or("group", 1).ok()? as usize;
            w.filter(|w| (3..=4).contains(&w.rank()))
                .map(|w| Layout::Channels {
                    rank: w.rank(),
                    channels: w.shape()[1] * group,
                })
        }
        "MatMul" => Some(Layout::Columns {
            cols: w.filter(|w| w.rank() == 2).map(|w| w.shape()[1]),
        }),
        "Gemm" => {
            let tb = n.int_or("transB", 0).ok()? != 0;
            Some(Layout::Columns {
                cols: w
                    .filter(|w| w.rank() == 2)
                    .map(|w| w.shape()[if tb { 0 } else { 1 }]),
            })
        }
        _ => None,
    }
}

/// A constant as an operand of the producer's output, if it broadcasts
/// without changing that output's shape.
fn operand(t: &Tensor, lay: Layout) -> Option<Operand> {
    if t.dtype() != DType::F32 {
        return None;
    }
    let v = t.f32s().ok()?;
    if v.len() == 1 {
        return match lay {
            Layout::Channels { rank, .. } if t.rank() > rank => None,
            _ => Some(Operand::Scalar(v[0])),
        };
    }
    let s = t.shape();
    match lay {
        Layout::Channels { rank, channels } => {
            // right-aligned to the output's rank: [.., C, 1, 1]
            if s.len() > rank || s.len() < rank - 1 {
                return None;
            }
            let off = rank - s.len();
            let ok = s
                .iter()
                .enumerate()
                .all(|(i, &d)| if i + off == 1 { d == channels } else { d == 1 });
            ok.then(|| Operand::Row(v.to_vec()))
        }
        Layout::Columns { cols: Some(n) } => {
            let ok =
                s.last() == Some(&n) && s[..s.len() - 1].iter().all(|&d| d == 1) && s.len() <= 2;
            ok.then(|| Operand::Col(v.to_vec()))
        }
        Layout::Columns { cols: None } => None,
    }
}

struct Ctx<'a> {
    consts: &'a HashMap<String, Arc<Tensor>>,
    lx: &'a LoadCx,
}

/// The step node `u` applies to its input `x`, if it can be fused.
fn as_step(u: &Node, x: &str, lay: Layout, cx: &Ctx) -> Result<Option<Step>> {
    if u.domain != ONNX || u.outputs.len() != 1 {
        return Ok(None);
    }
    let build = Build {
        node: u,
        opset: cx.lx.opsets.get(ONNX).copied().unwrap_or(1),
        consts: cx.consts,
        isa: cx.lx.isa,
        load: cx.lx,
    };
    match u.op.as_str() {
        "Add" | "Sub" | "Mul" | "Div" => {
            if u.inputs.len() != 2 || u.inputs[0] == u.inputs[1] {
                return Ok(None);
            }
            let (first, other) = if u.inputs[0] == x {
                (true, &u.inputs[1])
            } else {
                (false, &u.inputs[0])
            };
            if !first && u.inputs[1] != x {
                return Ok(None);
            }
            let Some(op) = cx.consts.get(other).and_then(|c| operand(c, lay)) else {
                return Ok(None);
            };
            Ok(Some(match u.op.as_str() {
                "Add" => Step::Add(op),
                "Mul" => Step::Mul(op),
                "Sub" => Step::Sub(op, !first),
                _ => Step::Div(op, !first),
            }))
        }
        "BatchNormalization" => match lay {
            Layout::Channels { .. } if u.inputs.first().is_some_and(|i| i == x) => {
                crate::ops::norm::bn_step(&build)
            }
            _ => Ok(None),
        },
        _ if u.inputs.first().is_some_and(|i| i == x)
            && u.input(1).is_none_or(|_| u.op == "Clip") =>
        {
            Ok(match unary::kind(&build) {
                Ok(Some(unary::Unary::Act(a))) => Some(Step::Act(a)),
                _ => None,
            })
        }
        _ => Ok(None),
    }
}

pub(crate) fn fuse(
    mut nodes: Vec<Node>,
    consts: &HashMap<String, Arc<Tensor>>,
    lx: &LoadCx,
    outputs: &[String],
) -> Result<Vec<Node>> {
    if std::env::var("GRADNET_ONNX_NO_FUSION").is_ok_and(|v| v == "1") {
        return Ok(nodes);
    }
    let cx = Ctx { consts, lx };
    let mut users: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for inp in n.inputs.iter().filter(|s| !s.is_empty()) {
            users.entry(inp.clone()).or_default().push(i);
        }
    }
    let mut removed = vec![false; nodes.len()];
    let readers = |v: &str, users: &HashMap<String, Vec<usize>>, removed: &[bool]| -> Vec<usize> {
        let mut r: Vec<usize> = users
            .get(v)
            .map(|u| u.iter().copied().filter(|&i| !removed[i]).collect())
            .unwrap_or_default();
        r.dedup();
        r
    };
    for p in 0..nodes.len() {
        if removed[p] {
            continue;
        }
        let Some(lay) = layout(&nodes[p], consts) else {
            continue;
        };
        let mut out = nodes[p].outputs[0].clone();
        let mut steps = vec![];
        loop {
            if outputs.contains(&out) {
                break;
            }
            let rs = readers(&out, &users, &removed);
            if rs.len() == 1 {
                if let Some(step) = as_step(&nodes[rs[0]], &out, lay, &cx)? {
                    steps.push(step);
                    removed[rs[0]] = true;
                    out = nodes[rs[0]].outputs[0].clone();
                    continue;
                }
            }
            if rs.len() == 2 {
                if let Some((gate, taken, next)) =
                    gate(&nodes, &rs, &out, lay, &cx, &users, &removed, outputs)?
                {
                    steps.push(Step::Gate(gate));
                    for t in taken {
                        removed[t] = true;
                    }
                    out = next;
                    continue;
                }
            }
            break;
        }
        if !steps.is_empty() {
            nodes[p].epilogue.extend(steps);
            nodes[p].outputs[0] = out;
        }
    }
    Ok(nodes
        .into_iter()
        .zip(removed)
        .filter(|(_, r)| !r)
        .map(|(n, _)| n)
        .collect())
}

/// A gate found: the chain's steps, the nodes taken, and the Mul's output.
type Gate = (Vec<Step>, Vec<usize>, String);

/// `x` read by a `Mul` and by a chain whose end is the Mul's other input.
#[allow(clippy::too_many_arguments)]
fn gate(
    nodes: &[Node],
    rs: &[usize],
    x: &str,
    lay: Layout,
    cx: &Ctx,
    users: &HashMap<String, Vec<usize>>,
    removed: &[bool],
    outputs: &[String],
) -> Result<Option<Gate>> {
    for (&m, &c) in [(rs[0], rs[1]), (rs[1], rs[0])].iter().map(|(a, b)| (a, b)) {
        let mul = &nodes[m];
        if mul.op != "Mul"
            || mul.domain != ONNX
            || mul.inputs.len() != 2
            || !mul.inputs.iter().any(|i| i == x)
        {
            continue;
        }
        let other = if mul.inputs[0] == x {
            &mul.inputs[1]
        } else {
            &mul.inputs[0]
        };
        let (mut v, mut at) = (x.to_string(), c);
        let (mut steps, mut taken) = (vec![], vec![]);
        while let Some(step) = as_step(&nodes[at], &v, lay, cx)? {
            steps.push(step);
            taken.push(at);
            v = nodes[at].outputs[0].clone();
            if outputs.contains(&v) {
                break;
            }
            let next: Vec<usize> = users
                .get(&v)
                .map(|u| u.iter().copied().filter(|&i| !removed[i]).collect())
                .unwrap_or_default();
            if &v == other {
                if next == [m] {
                    taken.push(m);
                    return Ok(Some((steps, taken, mul.outputs[0].clone())));
                }
                break;
            }
            if next.len() != 1 {
                break;
            }
            at = next[0];
        }
    }
    Ok(None)
}
