//! A node of the graph as the loader and the optimizer see it, with typed
//! access to its attributes.

use crate::error::{invalid, Result};
use crate::kernels::epilogue::Step;
use crate::proto::attribute_proto::AttributeType;
use crate::proto::{AttributeProto, NodeProto};
use crate::tensor::Tensor;

/// The default domain; `ai.onnx` is an alias of it.
pub(crate) const ONNX: &str = "";
pub(crate) const ONNX_ML: &str = "ai.onnx.ml";
/// Fused operators the optimizer writes; never accepted from a file.
pub(crate) const INTERNAL: &str = "gradnet.internal";

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: String,
    pub op: String,
    pub domain: String,
    /// Empty names are absent optional inputs.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: Vec<AttributeProto>,
    /// Element-wise steps the optimizer fused into this node's output.
    pub epilogue: Vec<Step>,
    /// The last `implicit` inputs are values its control-flow bodies read
    /// from the enclosing scope.
    pub implicit: usize,
}

impl Node {
    pub(crate) fn from_proto(n: &NodeProto) -> Node {
        let domain = if n.domain == "ai.onnx" {
            ONNX.to_string()
        } else {
            n.domain.clone()
        };
        Node {
            name: n.name.clone(),
            op: n.op_type.clone(),
            domain,
            inputs: n.input.clone(),
            outputs: n.output.clone(),
            attrs: n.attribute.clone(),
            epilogue: vec![],
            implicit: 0,
        }
    }

    /// `domain:Op` for messages (just `Op` in the default domain).
    pub(crate) fn kind(&self) -> String {
        if self.domain.is_empty() {
            self.op.clone()
        } else {
            format!("{}:{}", self.domain, self.op)
        }
    }

    /// How the node is named in errors.
    pub(crate) fn label(&self) -> String {
        if self.name.is_empty() {
            format!(
                "{} node (output `{}`)",
                self.kind(),
                self.outputs.first().map_or("", |s| s)
            )
        } else {
            format!("{} node `{}`", self.kind(), self.name)
        }
    }

    pub(crate) fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.attrs.iter().find(|a| a.name == name)
    }

    fn typed(&self, name: &str, want: AttributeType) -> Result<Option<&AttributeProto>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) if a.r#type == want as i32 || a.r#type == AttributeType::Undefined as i32 => {
                Ok(Some(a))
            }
            Some(a) => Err(invalid!(
                "{}: attribute `{name}` should be {want:?}, is {:?}",
                self.label(),
                AttributeType::try_from(a.r#type).unwrap_or(AttributeType::Undefined)
            )),
        }
    }

    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.typed(name, AttributeType::Int)?.map(|a| a.i))
    }

    pub(crate) fn int_or(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    pub(crate) fn float(&self, name: &str) -> Result<Option<f32>> {
        Ok(self.typed(name, AttributeType::Float)?.map(|a| a.f))
    }

    pub(crate) fn float_or(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    pub(crate) fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self
            .typed(name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }

    pub(crate) fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self
            .typed(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .typed(name, AttributeType::String)?
            .map(|a| String::from_utf8_lossy(&a.s).into_owned()))
    }

    pub(crate) fn string_or(&self, name: &str, default: &str) -> Result<String> {
        Ok(self.string(name)?.unwrap_or_else(|| default.to_string()))
    }

    pub(crate) fn strings(&self, name: &str) -> Result<Option<Vec<String>>> {
        Ok(self.typed(name, AttributeType::Strings)?.map(|a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        }))
    }

    pub(crate) fn tensor(&self, name: &str) -> Result<Option<Tensor>> {
        match self.typed(name, AttributeType::Tensor)? {
            Some(a) => match &a.t {
                Some(t) => Ok(Some(Tensor::from_proto(t)?)),
                None => Err(invalid!(
                    "{}: attribute `{name}` has no tensor",
                    self.label()
                )),
            },
            None => Ok(None),
        }
    }

    /// A required attribute, or an error naming it.
    pub(crate) fn need<T>(&self, name: &str, v: Result<Option<T>>) -> Result<T> {
        v?.ok_or_else(|| invalid!("{}: attribute `{name}` is required", self.label()))
    }

    /// The input name at `i`, if present and not empty.
    pub(crate) fn input(&self, i: usize) -> Option<&str> {
        self.inputs
            .get(i)
            .map(|s| s.as_str())
            .filter(|s| !s.is_empty())
    }
}
