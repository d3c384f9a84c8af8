//! Control flow: `If`, `Loop` and `Scan`, whose bodies are graphs loaded
//! (optimized, constants folded) when the model loads. A body reads values
//! of the enclosing scope through the node's implicit inputs.

use std::sync::Arc;

use super::shape::{axis, concat_tensors, narrow};
use super::{Build, Inputs, Op};
use crate::cx::Cx;
use crate::error::{bail, invalid, Result};
use crate::graph::{free_vars, Graph};
use crate::tensor::{Data, Tensor};

/// Runaway loops are cut off (a model must not hold a node forever).
const MAX_ITERATIONS: usize = 1 << 20;

struct Body {
    graph: Graph,
    /// For each input of the body after its own: the node input it is.
    captured: Vec<usize>,
}

fn body(b: &Build, attr: &str) -> Result<Body> {
    let n = b.node;
    let g = n
        .attr(attr)
        .and_then(|a| a.g.as_ref())
        .ok_or_else(|| invalid!("{}: attribute `{attr}` must hold a graph", n.label()))?;
    let names = free_vars(g);
    let graph = Graph::from_proto(g, b.load, b.consts, &names)?;
    let first_implicit = n.inputs.len() - n.implicit;
    let own = g
        .input
        .iter()
        .filter(|i| !g.initializer.iter().any(|t| t.name == i.name))
        .count();
    let captured = graph.inputs[own..]
        .iter()
        .map(|(spec, _)| {
            n.inputs[first_implicit..]
                .iter()
                .position(|s| *s == spec.name)
                .map(|p| first_implicit + p)
                .ok_or_else(|| {
                    invalid!(
                        "{}: body reads `{}`, which is not in scope",
                        n.label(),
                        spec.name
                    )
                })
        })
        .collect::<Result<_>>()?;
    Ok(Body { graph, captured })
}

impl Body {
    fn run(&self, cx: &Cx, mut own: Vec<Arc<Tensor>>, inputs: &Inputs) -> Result<Vec<Tensor>> {
        for &i in &self.captured {
            own.push(inputs.vals[i].clone().ok_or_else(|| {
                crate::error::Error::Run(format!(
                    "{}: a value the body reads is missing",
                    inputs.label
                ))
            })?);
        }
        Ok(self
            .graph
            .run(cx, own)?
            .into_iter()
            .map(|(_, t)| t)
            .collect())
    }
}

fn flag(t: &Tensor, what: &str) -> Result<bool> {
    match t.data() {
        Data::Bool(v) if v.len() == 1 => Ok(v[0]),
        _ => bail!("{what} must be one bool, got {} {:?}", t.dtype(), t.shape()),
    }
}

struct If {
    then: Body,
    els: Body,
}

pub(crate) fn if_(b: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(If {
        then: body(b, "then_branch")?,
        els: body(b, "else_branch")?,
    }))
}

impl Op for If {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let branch = if flag(inputs.get(0)?, "If's condition")? {
            &self.then
        } else {
            &self.els
        };
        branch.run(cx, vec![], &inputs)
    }
}

/// Stacks per-iteration tensors along a new axis `ax`.
fn stack(items: &[Tensor], ax: i64) -> Result<Tensor> {
    if items.is_empty() {
        return Tensor::new(vec![0], Data::F32(vec![]));
    }
    let r = items[0].rank() + 1;
    let a = axis(ax, r)?;
    let parts: Vec<Tensor> = items
        .iter()
        .map(|t| {
            let mut s = t.shape().to_vec();
            s.insert(a, 1);
            t.clone().reshaped(s)
        })
        .collect::<Result<_>>()?;
    concat_tensors(&parts.iter().collect::<Vec<_>>(), a as i64)
}

struct Loop {
    body: Body,
    /// Declared inputs: M, cond, then the loop-carried values.
    declared: usize,
}

pub(crate) fn loop_(b: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(Loop {
        body: body(b, "body")?,
        declared: b.node.inputs.len() - b.node.implicit,
    }))
}

impl Op for Loop {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let max = match inputs.opt(0) {
            Some(t) => Some(t.to_i64s()?.first().copied().unwrap_or(0).max(0) as usize),
            None => None,
        };
        let mut cond = match inputs.opt(1) {
            Some(t) => flag(t, "Loop's condition")?,
            None => true,
        };
        let mut carried: Vec<Arc<Tensor>> = (2..self.declared)
            .map(|i| {
                inputs.vals[i].clone().ok_or_else(|| {
                    crate::error::Error::Run(format!(
                        "{}: loop-carried input {i} is missing",
                        inputs.label
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let mut scans: Vec<Vec<Tensor>> = vec![];
        let mut i = 0usize;
        while cond && max.is_none_or(|m| i < m) {
            if i >= MAX_ITERATIONS {
                bail!("Loop ran {MAX_ITERATIONS} iterations without stopping");
            }
            let mut own = vec![
                Arc::new(Tensor::scalar(i as i64)),
                Arc::new(Tensor::scalar(cond)),
            ];
            own.extend(carried.iter().cloned());
            let mut out = self.body.run(cx, own, &inputs)?.into_iter();
            let c = out
                .next()
                .ok_or_else(|| crate::error::Error::Run("Loop body gave no condition".into()))?;
            cond = flag(&c, "Loop body's condition")?;
            carried = out.by_ref().take(carried.len()).map(Arc::new).collect();
            for (k, t) in out.enumerate() {
                if scans.len() <= k {
                    scans.push(vec![]);
                }
                scans[k].push(t);
            }
            i += 1;
        }
        let mut result: Vec<Tensor> = carried
            .into_iter()
            .map(|t| Arc::try_unwrap(t).unwrap_or_else(|t| (*t).clone()))
            .collect();
        for s in scans {
            result.push(stack(&s, 0)?);
        }
        Ok(result)
    }
}

struct Scan {
    body: Body,
    scans: usize,
    declared: usize,
    in_axes: Vec<i64>,
    in_reverse: Vec<bool>,
    out_axes: Vec<i64>,
    out_reverse: Vec<bool>,
}

pub(crate) fn scan(b: &Build) -> Result<Box<dyn Op>> {
    if b.opset < 9 {
        return Err(b.unsupported("opset 8's batched Scan"));
    }
    let n = b.node;
    let scans = n.need("num_scan_inputs", n.int("num_scan_inputs"))?.max(0) as usize;
    let declared = n.inputs.len() - n.implicit;
    if scans > declared {
        return Err(invalid!("{}: {scans} scan inputs of {declared}", n.label()));
    }
    let flags = |name: &str| -> Result<Vec<bool>> {
        Ok(n.ints(name)?
            .unwrap_or_default()
            .into_iter()
            .map(|v| v != 0)
            .collect())
    };
    Ok(Box::new(Scan {
        body: body(b, "body")?,
        scans,
        declared,
        in_axes: n.ints("scan_input_axes")?.unwrap_or_default(),
        in_reverse: flags("scan_input_directions")?,
        out_axes: n.ints("scan_output_axes")?.unwrap_or_default(),
        out_reverse: flags("scan_output_directions")?,
    }))
}

impl Op for Scan {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let states = self.declared - self.scans;
        let mut state: Vec<Arc<Tensor>> = (0..states)
            .map(|i| {
                inputs.vals[i].clone().ok_or_else(|| {
                    crate::error::Error::Run(format!(
                        "{}: state input {i} is missing",
                        inputs.label
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let mut len = None;
        let mut seqs = vec![];
        for j in 0..self.scans {
            let t = inputs.get(states + j)?;
            let a = axis(*self.in_axes.get(j).unwrap_or(&0), t.rank())?;
            let l = t.shape()[a];
            if len.is_some_and(|m| m != l) {
                bail!("Scan inputs differ in length along their scan axes");
            }
            len = Some(l);
            seqs.push((t, a));
        }
        let len = len.unwrap_or(0);
        let mut outs: Vec<Vec<Tensor>> = vec![];
        for step in 0..len {
            let mut own = state.clone();
            for (j, (t, a)) in seqs.iter().enumerate() {
                let at = if self.in_reverse.get(j) == Some(&true) {
                    len - 1 - step
                } else {
                    step
                };
                let slice = narrow(t, *a, at, 1)?;
                let mut shape = slice.shape().to_vec();
                shape.remove(*a);
                own.push(Arc::new(slice.reshaped(shape)?));
            }
            let mut out = self.body.run(cx, own, &inputs)?.into_iter();
            state = out.by_ref().take(states).map(Arc::new).collect();
            for (k, t) in out.enumerate() {
                if outs.len() <= k {
                    outs.push(vec![]);
                }
                outs[k].push(t);
            }
        }
        let mut result: Vec<Tensor> = state
            .into_iter()
            .map(|t| Arc::try_unwrap(t).unwrap_or_else(|t| (*t).clone()))
            .collect();
        for (k, mut items) in outs.into_iter().enumerate() {
            if self.out_reverse.get(k) == Some(&true) {
                items.reverse();
            }
            result.push(stack(&items, *self.out_axes.get(k).unwrap_or(&0))?);
        }
        Ok(result)
    }
}
