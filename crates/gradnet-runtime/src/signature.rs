//! A model's declared inputs and outputs, read from the ONNX graph, and the
//! check of a request's tensors against them before anything runs.

use std::collections::BTreeMap;
use std::fmt;

use gradnet_onnx::proto as pb;
use gradnet_onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
use gradnet_types::json::JsonInputs;
use gradnet_types::{DType, NamedTensors, Tensor, TensorError};
use serde::Serialize;

use crate::error::{Result, RuntimeError};

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(u64),
    /// A named symbolic dimension: every use of one name must agree.
    Named(String),
    /// Unnamed: any size.
    #[serde(serialize_with = "any_dim")]
    Any,
}

fn any_dim<S: serde::Serializer>(s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str("?")
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Named(s) => f.write_str(s),
            Dim::Any => f.write_str("?"),
        }
    }
}

/// A declared input or output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorSpec {
    /// Its name in the graph.
    pub name: String,
    /// `None` where the model uses a dtype gradnet cannot take as input.
    pub dtype: Option<DType>,
    /// `None` where the model does not declare a shape.
    pub shape: Option<Vec<Dim>>,
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self
            .dtype
            .map_or("unsupported".to_string(), |d| d.to_string());
        match &self.shape {
            Some(s) => write!(
                f,
                "{}: {d}[{}]",
                self.name,
                s.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => write!(f, "{}: {d}[any shape]", self.name),
        }
    }
}

/// A model's declared inputs and outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// The graph's inputs (initializers left out).
    pub inputs: Vec<TensorSpec>,
    /// The graph's outputs.
    pub outputs: Vec<TensorSpec>,
}

fn dtype_of(elem_type: i32) -> Option<DType> {
    use pb::tensor_proto::DataType as D;
    match D::try_from(elem_type).ok()? {
        D::Float => Some(DType::F32),
        D::Double => Some(DType::F64),
        D::Int32 => Some(DType::I32),
        D::Int64 => Some(DType::I64),
        D::Bool => Some(DType::Bool),
        D::String => Some(DType::String),
        _ => None,
    }
}

fn spec(v: &pb::ValueInfoProto) -> TensorSpec {
    let tensor = v.r#type.as_ref().and_then(|t| match &t.value {
        Some(pb::type_proto::Value::TensorType(t)) => Some(t),
        _ => None,
    });
    TensorSpec {
        name: v.name.clone(),
        dtype: tensor.and_then(|t| dtype_of(t.elem_type)),
        shape: tensor.and_then(|t| t.shape.as_ref()).map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(DimValue::DimValue(n)) if *n >= 0 => Dim::Fixed(*n as u64),
                    Some(DimValue::DimParam(p)) if !p.is_empty() && p != "?" => {
                        Dim::Named(p.clone())
                    }
                    _ => Dim::Any,
                })
                .collect()
        }),
    }
}

impl Signature {
    /// The signature an ONNX model declares.
    pub fn from_proto(model: &pb::ModelProto) -> Result<Signature> {
        let g = model
            .graph
            .as_ref()
            .ok_or_else(|| RuntimeError::Unloadable("the ONNX file has no graph".into()))?;
        let init: std::collections::HashSet<&str> =
            g.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<TensorSpec> = g
            .input
            .iter()
            .filter(|i| !init.contains(i.name.as_str()))
            .map(spec)
            .collect();
        if let Some(bad) = inputs.iter().find(|i| i.dtype.is_none()) {
            return Err(RuntimeError::Unloadable(format!(
                "input `{}` has an element type gradnet does not accept (f32, f64, i32, i64, bool, string)",
                bad.name
            )));
        }
        Ok(Signature {
            inputs,
            outputs: g.output.iter().map(spec).collect(),
        })
    }

    fn expected(&self) -> String {
        self.inputs
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Converts JSON inputs to the declared dtypes and checks names, ranks,
    /// fixed dims and that each named dim has one size across all inputs.
    pub fn check(&self, inputs: &JsonInputs) -> Result<NamedTensors> {
        self.no_unknown(inputs)?;
        self.convert(|name, dtype| inputs.get(name).map(|j| j.to_tensor(name, dtype)))
    }

    /// [`Signature::check`], moving binary tensors' values instead of copying them.
    pub fn check_owned(&self, mut inputs: JsonInputs) -> Result<NamedTensors> {
        self.no_unknown(&inputs)?;
        self.convert(|name, dtype| inputs.remove(name).map(|j| j.into_tensor(name, dtype)))
    }

    fn no_unknown(&self, inputs: &JsonInputs) -> Result<()> {
        match inputs
            .keys()
            .find(|k| !self.inputs.iter().any(|i| &i.name == *k))
        {
            Some(extra) => Err(RuntimeError::BadInput(format!(
                "unknown input `{extra}`; the model takes: {}",
                self.expected()
            ))),
            None => Ok(()),
        }
    }

    /// Takes each declared input through `take` (its name and dtype; `None`
    /// when missing) and checks the resulting shapes.
    fn convert(
        &self,
        mut take: impl FnMut(&str, DType) -> Option<std::result::Result<Tensor, TensorError>>,
    ) -> Result<NamedTensors> {
        let bad = |m: String| RuntimeError::BadInput(m);
        let mut named: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
        let mut out = NamedTensors::new();
        for spec in &self.inputs {
            let dtype = spec.dtype.expect("checked at load");
            let t = take(&spec.name, dtype)
                .ok_or_else(|| {
                    bad(format!(
                        "missing input `{}`; the model takes: {}",
                        spec.name,
                        self.expected()
                    ))
                })?
                .map_err(|e| bad(e.to_string()))?;
            if let Some(dims) = &spec.shape {
                let shape = t.shape();
                if shape.len() != dims.len() {
                    return Err(bad(format!(
                        "input `{}` has shape {shape:?} (rank {}), the model expects rank {}: {spec}",
                        spec.name,
                        shape.len(),
                        dims.len()
                    )));
                }
                for (axis, (d, &n)) in dims.iter().zip(shape).enumerate() {
                    match d {
                        Dim::Fixed(want) if *want != n as u64 => {
                            return Err(bad(format!(
                                "input `{}` has shape {shape:?}, the model expects {want} at axis {axis}: {spec}",
                                spec.name
                            )))
                        }
                        Dim::Named(sym) => match named.get(sym.as_str()) {
                            Some(&(v, first)) if v != n as u64 => {
                                return Err(bad(format!(
                                    "dimension `{sym}` is {v} in input `{first}` but {n} in input `{}`",
                                    spec.name
                                )))
                            }
                            Some(_) => {}
                            None => {
                                named.insert(sym, (n as u64, &spec.name));
                            }
                        },
                        _ => {}
                    }
                }
            }
            out.insert(spec.name.clone(), t);
        }
        Ok(out)
    }
}
