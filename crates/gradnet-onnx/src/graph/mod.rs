//! From an ONNX file to a runnable plan: constants read, nodes put in
//! dependency order, fused where the result stays bit-identical to the
//! definition the fused kernel implements, folded where every input is
//! constant, and each value freed after its last use.

mod fuse;
pub(crate) mod node;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use node::{Node, ONNX};

use crate::cx::Cx;
use crate::error::{invalid, Error, Result};
use crate::kernels::Isa;
use crate::ops::{self, Build, Inputs, Op};
use crate::proto::{GraphProto, ModelProto};
use crate::tensor::{DType, Tensor};

/// A graph input or output as the file declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueSpec {
    pub name: String,
    /// `None` for non-tensor types (sequences, maps) or unknown ones.
    pub dtype: Option<DType>,
}

pub(crate) struct Step {
    pub op: Box<dyn Op>,
    pub label: Arc<str>,
    pub inputs: Vec<Option<usize>>,
    pub outputs: Vec<usize>,
    /// Values whose last use is this step.
    pub frees: Vec<usize>,
}

pub(crate) struct Graph {
    pub inputs: Vec<(ValueSpec, usize)>,
    pub outputs: Vec<(String, usize)>,
    pub values: usize,
    pub consts: Vec<(usize, Arc<Tensor>)>,
    pub steps: Vec<Step>,
}

/// The opset version per domain, as the model imports them.
fn opsets(m: &ModelProto) -> HashMap<String, i64> {
    m.opset_import
        .iter()
        .map(|o| {
            let d = if o.domain == "ai.onnx" {
                ONNX
            } else {
                &o.domain
            };
            (d.to_string(), o.version)
        })
        .collect()
}

fn value_spec(v: &crate::proto::ValueInfoProto) -> ValueSpec {
    use crate::proto::type_proto::Value;
    let dtype = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(Value::TensorType(t)) => DType::from_onnx(t.elem_type),
        _ => None,
    };
    ValueSpec {
        name: v.name.clone(),
        dtype,
    }
}

/// Reads the tensors that `Constant` nodes hold.
fn constant_node(n: &Node) -> Result<Tensor> {
    if let Some(t) = n.tensor("value")? {
        return Ok(t);
    }
    if let Some(f) = n.float("value_float")? {
        return Ok(Tensor::scalar(f));
    }
    if let Some(v) = n.floats("value_floats")? {
        return Tensor::from_vec(vec![v.len()], v);
    }
    if let Some(i) = n.int("value_int")? {
        return Ok(Tensor::scalar(i));
    }
    if let Some(v) = n.ints("value_ints")? {
        return Tensor::from_vec(vec![v.len()], v);
    }
    if let Some(s) = n.string("value_string")? {
        return Ok(Tensor::scalar(s));
    }
    if let Some(v) = n.strings("value_strings")? {
        return Tensor::from_vec(vec![v.len()], v);
    }
    if n.attr("sparse_value").is_some() {
        return Err(Error::Unsupported(vec!["Constant (sparse_value)".into()]));
    }
    Err(invalid!("{} holds no value", n.label()))
}

/// Orders nodes so every input is produced before it is used.
fn topo_sort(nodes: Vec<Node>, known: &HashSet<String>) -> Result<Vec<Node>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in n.outputs.iter().filter(|o| !o.is_empty()) {
            if producer.insert(o, i).is_some() || known.contains(o) {
                return Err(invalid!("value `{o}` is defined twice"));
            }
        }
    }
    let mut deps = vec![0usize; nodes.len()];
    let mut users: Vec<Vec<usize>> = vec![vec![]; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for inp in n.inputs.iter().filter(|s| !s.is_empty()) {
            match producer.get(inp.as_str()) {
                Some(&p) => {
                    deps[i] += 1;
                    users[p].push(i);
                }
                None if known.contains(inp) => {}
                None => {
                    return Err(invalid!(
                        "{} reads `{inp}`, which nothing defines",
                        n.label()
                    ))
                }
            }
        }
    }
    let mut ready: Vec<usize> = (0..nodes.len()).rev().filter(|&i| deps[i] == 0).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop() {
        order.push(i);
        for &u in users[i].iter().rev() {
            deps[u] -= 1;
            if deps[u] == 0 {
                ready.push(u);
            }
        }
    }
    if order.len() != nodes.len() {
        return Err(invalid!("the graph has a cycle"));
    }
    let mut slots: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .map(|i| slots[i].take().expect("each once"))
        .collect())
}

/// `GRADNET_ONNX_PROFILE=1` prints each run's slowest nodes to stderr.
fn profiling() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("GRADNET_ONNX_PROFILE").is_ok_and(|v| v == "1"))
}

fn report(times: &mut [(std::time::Duration, &str)]) {
    let total: std::time::Duration = times.iter().map(|t| t.0).sum();
    let mut by_op: HashMap<String, (std::time::Duration, usize)> = HashMap::new();
    for (d, label) in times.iter() {
        let op = label.split(' ').next().unwrap_or("").to_string();
        let e = by_op.entry(op).or_default();
        e.0 += *d;
        e.1 += 1;
    }
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by_key(|o| std::cmp::Reverse(o.1 .0));
    eprintln!(
        "run: {:.3} ms in {} nodes",
        total.as_secs_f64() * 1e3,
        times.len()
    );
    for (op, (d, n)) in ops.iter().take(12) {
        eprintln!("  {op:<24} {:>9.3} ms  {n:>4} nodes", d.as_secs_f64() * 1e3);
    }
    times.sort_by_key(|t| std::cmp::Reverse(t.0));
    for (d, label) in times.iter().take(8) {
        eprintln!("  {:>9.3} ms  {label}", d.as_secs_f64() * 1e3);
    }
}

/// What every graph of a model (the main one and control-flow bodies) is
/// loaded with.
pub(crate) struct LoadCx {
    pub opsets: HashMap<String, i64>,
    pub isa: Isa,
    pub max_bytes: u64,
}

/// Names a subgraph reads from the scopes around it: used but not defined
/// inside (its own inputs, initializers and node outputs), nested bodies
/// included, in order of first use.
pub(crate) fn free_vars(g: &GraphProto) -> Vec<String> {
    let mut defined: HashSet<&str> = g.input.iter().map(|i| i.name.as_str()).collect();
    defined.extend(g.initializer.iter().map(|t| t.name.as_str()));
    for n in &g.node {
        defined.extend(n.output.iter().map(|s| s.as_str()));
    }
    let mut out: Vec<String> = vec![];
    let push = |name: &str, out: &mut Vec<String>| {
        if !name.is_empty() && !defined.contains(name) && !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    };
    for n in &g.node {
        for i in &n.input {
            push(i, &mut out);
        }
        for a in &n.attribute {
            for sub in a.g.iter().chain(a.graphs.iter()) {
                for v in free_vars(sub) {
                    push(&v, &mut out);
                }
            }
        }
    }
    for o in &g.output {
        push(&o.name, &mut out);
    }
    out
}

impl Graph {
    pub(crate) fn load(model: &ModelProto, isa: Isa, max_bytes: u64) -> Result<Graph> {
        let g: &GraphProto = model
            .graph
            .as_ref()
            .ok_or_else(|| invalid!("the file has no graph"))?;
        let lx = LoadCx {
            opsets: opsets(model),
            isa,
            max_bytes,
        };
        Graph::from_proto(g, &lx, &HashMap::new(), &[])
    }

    /// Loads one graph. `outer` holds the constants of the enclosing scopes;
    /// `captured` names values of those scopes this graph reads, which come
    /// as extra inputs after its own (see [`free_vars`]).
    pub(crate) fn from_proto(
        g: &GraphProto,
        lx: &LoadCx,
        outer: &HashMap<String, Arc<Tensor>>,
        captured: &[String],
    ) -> Result<Graph> {
        let (opsets, isa, max_bytes) = (&lx.opsets, lx.isa, lx.max_bytes);
        let mut unsupported = vec![];
        let mut consts: HashMap<String, Arc<Tensor>> = HashMap::new();
        for t in &g.initializer {
            match Tensor::from_proto(t) {
                Ok(v) => {
                    consts.insert(t.name.clone(), Arc::new(v));
                }
                Err(Error::Unsupported(u)) => unsupported.extend(u),
                Err(e) => return Err(e),
            }
        }
        if !g.sparse_initializer.is_empty() {
            unsupported.push("sparse initializers".into());
        }
        // inputs that an initializer also names are constants (ONNX's
        // defaults that a caller could override; gradnet does not)
        let mut inputs: Vec<ValueSpec> = g
            .input
            .iter()
            .filter(|i| !consts.contains_key(&i.name))
            .map(value_spec)
            .collect();
        for c in captured {
            match outer.get(c) {
                Some(t) => {
                    consts.entry(c.clone()).or_insert_with(|| t.clone());
                }
                None => inputs.push(ValueSpec {
                    name: c.clone(),
                    dtype: None,
                }),
            }
        }
        let mut nodes = vec![];
        for p in &g.node {
            let mut n = Node::from_proto(p);
            if n.op == "Constant" && n.domain == ONNX {
                match constant_node(&n) {
                    Ok(t) => {
                        let out = n
                            .outputs
                            .first()
                            .ok_or_else(|| invalid!("{} has no output", n.label()))?;
                        consts.insert(out.clone(), Arc::new(t));
                    }
                    Err(Error::Unsupported(u)) => unsupported.extend(u),
                    Err(e) => return Err(e),
                }
                continue;
            }
            if n.domain == node::INTERNAL {
                return Err(invalid!("{} uses a domain reserved for gradnet", n.label()));
            }
            // control flow: the values its bodies read from this scope
            // become inputs of the node
            let mut implicit = vec![];
            for a in &p.attribute {
                for sub in a.g.iter().chain(a.graphs.iter()) {
                    for v in free_vars(sub) {
                        if !implicit.contains(&v) {
                            implicit.push(v);
                        }
                    }
                }
            }
            n.implicit = implicit.len();
            n.inputs.extend(implicit);
            nodes.push(n);
        }
        let mut known: HashSet<String> = consts.keys().cloned().collect();
        known.extend(inputs.iter().map(|i| i.name.clone()));
        let nodes = topo_sort(nodes, &known)?;
        let outputs: Vec<String> = g.output.iter().map(|o| o.name.clone()).collect();
        let nodes = fuse::fuse(nodes, &consts, lx, &outputs)?;

        // build every operator, folding those whose inputs are all constant
        let cx = Cx::new(isa, None, max_bytes);
        let mut built: Vec<(Node, Box<dyn Op>)> = vec![];
        for n in nodes {
            let opset = match opsets.get(&n.domain) {
                Some(&v) => v,
                None => {
                    return Err(invalid!(
                        "{} is in domain `{}`, which the model does not import",
                        n.label(),
                        n.domain
                    ))
                }
            };
            let b = Build {
                node: &n,
                opset,
                consts: &consts,
                isa,
                load: lx,
            };
            let op = match ops::build(&b) {
                Ok(op) => op,
                Err(Error::Unsupported(u)) => {
                    unsupported.extend(u);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let all_const = n
                .inputs
                .iter()
                .filter(|s| !s.is_empty())
                .all(|s| consts.contains_key(s));
            if all_const && unsupported.is_empty() && !n.inputs.is_empty() {
                let vals = n
                    .inputs
                    .iter()
                    .map(|s| (!s.is_empty()).then(|| consts[s].clone()))
                    .collect();
                let outs = op.run(
                    &cx,
                    Inputs {
                        vals,
                        label: n.label().into(),
                        recycle: None,
                    },
                )?;
                for (name, t) in n.outputs.iter().zip(outs) {
                    if !name.is_empty() {
                        consts.insert(name.clone(), Arc::new(t));
                    }
                }
                continue;
            }
            built.push((n, op));
        }
        if !unsupported.is_empty() {
            let mut seen = HashSet::new();
            unsupported.retain(|u| seen.insert(u.clone()));
            return Err(Error::Unsupported(unsupported));
        }
        Graph::plan(inputs, outputs, consts, built)
    }

    /// Numbers the values and works out when each can be freed.
    fn plan(
        inputs: Vec<ValueSpec>,
        outputs: Vec<String>,
        consts: HashMap<String, Arc<Tensor>>,
        built: Vec<(Node, Box<dyn Op>)>,
    ) -> Result<Graph> {
        let mut ids: HashMap<String, usize> = HashMap::new();
        let id = |name: &str, ids: &mut HashMap<String, usize>| {
            let next = ids.len();
            *ids.entry(name.to_string()).or_insert(next)
        };
        let inputs: Vec<(ValueSpec, usize)> = inputs
            .into_iter()
            .map(|s| {
                let i = id(&s.name, &mut ids);
                (s, i)
            })
            .collect();
        let mut used_consts = vec![];
        let mut steps = vec![];
        for (n, op) in built {
            let mut ins = vec![];
            for s in &n.inputs {
                if s.is_empty() {
                    ins.push(None);
                    continue;
                }
                let known = ids.contains_key(s.as_str());
                let i = id(s, &mut ids);
                if !known {
                    match consts.get(s) {
                        Some(c) => used_consts.push((i, c.clone())),
                        None => {
                            return Err(invalid!("{} reads `{s}` before it is defined", n.label()))
                        }
                    }
                }
                ins.push(Some(i));
            }
            let outs = n.outputs.iter().map(|s| id(s, &mut ids)).collect();
            steps.push(Step {
                op,
                label: n.label().into(),
                inputs: ins,
                outputs: outs,
                frees: vec![],
            });
        }
        let mut outs = vec![];
        for o in &outputs {
            let known = ids.contains_key(o.as_str());
            let i = id(o, &mut ids);
            if !known {
                match consts.get(o) {
                    Some(c) => used_consts.push((i, c.clone())),
                    None => return Err(invalid!("graph output `{o}` is never computed")),
                }
            }
            outs.push((o.clone(), i));
        }
        // free each value after its last reader, unless it is an output
        let keep: HashSet<usize> = outs.iter().map(|(_, i)| *i).collect();
        let mut last: HashMap<usize, usize> = HashMap::new();
        for (si, s) in steps.iter().enumerate() {
            for i in s.inputs.iter().flatten() {
                last.insert(*i, si);
            }
        }
        for (v, si) in last {
            if !keep.contains(&v) {
                steps[si].frees.push(v);
            }
        }
        Ok(Graph {
            inputs,
            outputs: outs,
            values: ids.len(),
            consts: used_consts,
            steps,
        })
    }

    /// Runs the plan on inputs given in the order of `self.inputs`.
    pub(crate) fn run(&self, cx: &Cx, inputs: Vec<Arc<Tensor>>) -> Result<Vec<(String, Tensor)>> {
        let mut vals: Vec<Option<Arc<Tensor>>> = vec![None; self.values];
        for ((_, i), t) in self.inputs.iter().zip(inputs) {
            vals[*i] = Some(t);
        }
        for (i, c) in &self.consts {
            vals[*i] = Some(c.clone());
        }
        let profile = profiling();
        let mut times: Vec<(std::time::Duration, &str)> = vec![];
        let bytes = |t: &Option<Arc<Tensor>>| {
            t.as_ref()
                .map_or(0, |t| (t.len() * t.dtype().size()) as u64)
        };
        cx.hold(self.inputs.iter().map(|(_, i)| bytes(&vals[*i])).sum(), 0);
        for s in &self.steps {
            cx.check_time(&s.label)?;
            let started = profile.then(std::time::Instant::now);
            let mut ins = Vec::with_capacity(s.inputs.len());
            for i in &s.inputs {
                ins.push(match i {
                    // the last reader takes the value, so it can reuse the buffer
                    Some(i)
                        if s.frees.contains(i)
                            && s.inputs.iter().filter(|j| **j == Some(*i)).count() == 1 =>
                    {
                        let v = vals[*i].take();
                        cx.hold(0, bytes(&v)); // the operator frees or reuses it
                        v
                    }
                    Some(i) => vals[*i].clone(),
                    None => None,
                });
            }
            let outs = s.op.run(
                cx,
                Inputs {
                    vals: ins,
                    label: s.label.clone(),
                    recycle: cx.recycler(),
                },
            )?;
            for (i, t) in s.outputs.iter().zip(outs) {
                vals[*i] = Some(Arc::new(t));
                cx.hold(bytes(&vals[*i]), 0);
            }
            cx.check_held(&s.label)?;
            for i in &s.frees {
                let taken = vals[*i].take();
                cx.hold(0, bytes(&taken));
                if let (Some(Ok(t)), Some(r)) = (taken.map(Arc::try_unwrap), cx.recycler()) {
                    r.put(t);
                }
            }
            if let Some(t) = started {
                times.push((t.elapsed(), &s.label));
            }
        }
        if profile {
            report(&mut times);
        }
        self.outputs
            .iter()
            .map(|(name, i)| {
                let t = vals[*i]
                    .clone()
                    .ok_or_else(|| Error::Run(format!("output `{name}` was not computed")))?;
                Ok((
                    name.clone(),
                    Arc::try_unwrap(t).unwrap_or_else(|t| (*t).clone()),
                ))
            })
            .collect()
    }
}
