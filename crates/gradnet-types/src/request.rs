//! Inference requests and the model references they name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cid::{CidError, ContentId};
use crate::json::OutputFormat;
use crate::mode::InferenceMode;
use crate::tensor::{hash_tensors, put_bytes, write_canonical, NamedTensors};

/// `POST /v1/infer` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferRequest {
    /// A content id, or `repo@version/file` (`repo/file` for the latest version).
    pub model: String,
    /// Named tensors in either JSON encoding (see [`crate::json`]).
    pub inputs: serde_json::Value,
    #[serde(default)]
    pub mode: InferenceMode,
    /// Encoding of `outputs` in the response.
    #[serde(default)]
    pub output_format: OutputFormat,
}

/// The node's view of an [`InferRequest`] body, read in one pass: base64
/// tensors stay borrowed from the body (see [`crate::json_body`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferRequestRef<'a> {
    #[serde(borrow)]
    pub model: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub inputs: crate::json_body::BodyInputs<'a>,
    #[serde(default)]
    pub mode: InferenceMode,
    #[serde(default)]
    pub output_format: OutputFormat,
}

/// How a request names a model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    Cid(ContentId),
    /// `version` is `None` for the latest.
    Path {
        repo: String,
        version: Option<String>,
        file: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelRefError {
    #[error("invalid content id: {0}")]
    Cid(#[from] CidError),
    #[error("model `{0}` must be a content id (`b3…`) or `repo@version/file`")]
    Shape(String),
    #[error("invalid name `{0}`: use 1-100 characters from A-Z a-z 0-9 . _ - (not starting with . or -)")]
    Name(String),
}

/// Repository and file names: short, path-safe, never `.`/`..`.
pub fn check_name(s: &str) -> Result<(), ModelRefError> {
    let ok = !s.is_empty()
        && s.len() <= 100
        && !s.starts_with(['.', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ModelRefError::Name(s.to_string()))
    }
}

impl FromStr for ModelRef {
    type Err = ModelRefError;
    fn from_str(s: &str) -> Result<Self, ModelRefError> {
        if ContentId::looks_like(s) {
            return Ok(ModelRef::Cid(s.parse()?));
        }
        let (head, file) = s
            .split_once('/')
            .ok_or_else(|| ModelRefError::Shape(s.to_string()))?;
        let (repo, version) = match head.split_once('@') {
            Some((r, v)) if v.is_empty() || v == "latest" => (r, None),
            Some((r, v)) => (r, Some(v.to_string())),
            None => (head, None),
        };
        check_name(repo)?;
        check_name(file)?;
        Ok(ModelRef::Path {
            repo: repo.to_string(),
            version,
            file: file.to_string(),
        })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Cid(c) => write!(f, "{c}"),
            ModelRef::Path {
                repo,
                version: Some(v),
                file,
            } => write!(f, "{repo}@{v}/{file}"),
            ModelRef::Path {
                repo,
                version: None,
                file,
            } => write!(f, "{repo}/{file}"),
        }
    }
}

/// The hash that names a request: model, mode and the inputs after conversion
/// to the model's dtypes, so both JSON encodings of one input give one hash.
pub fn request_hash(model: &ContentId, mode: InferenceMode, inputs: &NamedTensors) -> ContentId {
    let mut head = Vec::new();
    put_bytes(&mut head, b"gradnet/infer-request/v1");
    put_bytes(&mut head, model.as_bytes());
    head.push(mode.abi_code());
    let mut h = blake3::Hasher::new();
    h.update(&head);
    write_canonical(inputs, &mut |b| {
        h.update(b);
    });
    ContentId::from_hash(h.finalize())
}

/// An LLM request's hash: the model and the normalized request (prompt as
/// the model reads it, sampling settings), as compact JSON.
pub fn llm_request_hash(model: &ContentId, normalized_json: &[u8]) -> ContentId {
    let mut buf = Vec::new();
    put_bytes(&mut buf, b"gradnet/llm-request/v1");
    put_bytes(&mut buf, model.as_bytes());
    put_bytes(&mut buf, normalized_json);
    ContentId::of(&buf)
}

/// An LLM answer's hash: the generated text and why it ended.
pub fn llm_output_hash(text: &str, finish_reason: &str) -> ContentId {
    let mut buf = Vec::new();
    put_bytes(&mut buf, b"gradnet/llm-output/v1");
    put_bytes(&mut buf, finish_reason.as_bytes());
    put_bytes(&mut buf, text.as_bytes());
    ContentId::of(&buf)
}

/// The hash of a result's outputs, as receipts carry it.
pub fn output_hash(outputs: &NamedTensors) -> ContentId {
    hash_tensors("gradnet/infer-output/v1", outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_refs() {
        let c = ContentId::of(b"m");
        assert_eq!(c.to_string().parse::<ModelRef>().unwrap(), ModelRef::Cid(c));
        assert_eq!(
            "mnist@1.00/model.onnx".parse::<ModelRef>().unwrap(),
            ModelRef::Path {
                repo: "mnist".into(),
                version: Some("1.00".into()),
                file: "model.onnx".into()
            }
        );
        assert_eq!(
            "mnist/model.onnx".parse::<ModelRef>().unwrap(),
            ModelRef::Path {
                repo: "mnist".into(),
                version: None,
                file: "model.onnx".into()
            }
        );
        assert!(matches!(
            "mnist".parse::<ModelRef>(),
            Err(ModelRefError::Shape(_))
        ));
        assert!(matches!(
            "a@1.00/../x".parse::<ModelRef>(),
            Err(ModelRefError::Name(_))
        ));
        assert!(matches!(
            "b3aaaa".parse::<ModelRef>(),
            Err(ModelRefError::Shape(_))
        ));
        let bad_cid = format!("b3{}", "1".repeat(52));
        assert!(matches!(
            bad_cid.parse::<ModelRef>(),
            Err(ModelRefError::Cid(_))
        ));
    }

    #[test]
    fn request_json_rejects_unknown_fields() {
        let e =
            serde_json::from_str::<InferRequest>(r#"{"model":"m/x","inputs":{},"mdoe":"VANILLA"}"#)
                .unwrap_err();
        assert!(e.to_string().contains("mdoe"));
        let r: InferRequest = serde_json::from_str(r#"{"model":"m/x","inputs":{}}"#).unwrap();
        assert_eq!(r.mode, InferenceMode::Vanilla);
    }
}
