//! `POST /v1/embeddings`: OpenAI's embeddings API on a sentence-embedding
//! model (`gradnet_runtime::embed`), with a signed receipt whose output hash
//! is that of the vectors as one `[inputs, dimensions]` f32 tensor.

use axum::extract::State;
use axum::Json;
use base64::Engine;
use gradnet_runtime::embed::Embedder;
use gradnet_types::receipt::RECEIPT_VERSION;
use gradnet_types::request::{llm_request_hash, output_hash};
use gradnet_types::{now_ms, ContentId, InferenceMode, NamedTensors, ReceiptBody, Tensor};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::error::{ApiError, JsonBody};
use crate::inference::Caller;
use crate::AppState;

/// Inputs one request may carry, as OpenAI allows.
const MAX_INPUTS: usize = 2048;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddingRequest {
    model: String,
    input: Value,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<i64>,
    #[serde(default)]
    #[allow(dead_code)]
    user: Option<String>,
}

fn bad(param: &'static str, m: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", m).with_param(param)
}

/// The inputs as token ids: a string, a list of strings, a list of token
/// ids, or a list of such lists.
fn inputs(m: &Embedder, input: &Value) -> Result<Vec<Vec<u32>>, ApiError> {
    let ids = |v: &[Value]| -> Option<Vec<u32>> {
        v.iter()
            .map(|t| t.as_u64().and_then(|t| u32::try_from(t).ok()))
            .collect()
    };
    let list: Vec<Value> = match input {
        Value::String(_) => vec![input.clone()],
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_number) => {
            vec![input.clone()]
        }
        Value::Array(a) => a.clone(),
        _ => {
            return Err(bad(
                "input",
                "`input` must be a string, a list of strings, or token ids",
            ))
        }
    };
    if list.is_empty() {
        return Err(bad("input", "`input` is empty"));
    }
    if list.len() > MAX_INPUTS {
        return Err(bad(
            "input",
            format!("`input` has {} items; at most {MAX_INPUTS}", list.len()),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) if s.is_empty() => Err(bad("input", format!("input[{i}] is empty"))),
            Value::String(s) => Ok(m.encode(s)?),
            Value::Array(a) => ids(a).ok_or_else(|| {
                bad(
                    "input",
                    format!("input[{i}] must be token ids (non-negative integers)"),
                )
            }),
            _ => Err(bad(
                "input",
                format!("input[{i}] must be a string or token ids"),
            )),
        })
        .collect()
}

pub(crate) async fn embeddings(
    State(s): State<AppState>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let req: EmbeddingRequest = body.parse()?;
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(f) => {
            return Err(bad(
                "encoding_format",
                format!("encoding_format `{f}` is not one of float, base64"),
            ))
        }
    };
    let cid = s.resolve_embedder(&req.model).await?;
    let model = s.embedder(cid).await?;
    let dims = model.info.dimensions;
    if let Some(d) = req.dimensions.filter(|&d| d != dims as i64) {
        return Err(bad(
            "dimensions",
            format!("`{}` gives {dims}-dimensional vectors only (asked for {d}); it was not trained to be cut shorter", req.model),
        ));
    }
    let ids = inputs(&model, &req.input)?;
    let tokens: usize = ids.iter().map(Vec::len).sum();
    let norm = json!({"kind": "embedding", "inputs": ids, "dimensions": dims});
    let request_hash = llm_request_hash(&cid, norm.to_string().as_bytes());
    let admitted = s.admit_llm(Caller::OpenAi)?;
    let slot = admitted.llm_slot().await?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let m = model.clone();
    let vectors = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        m.embed(&ids, threads)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let flat: Vec<f32> = vectors.iter().flatten().copied().collect();
    let mut outputs = NamedTensors::new();
    outputs.insert(
        "embeddings".into(),
        Tensor::new(
            vec![vectors.len(), dims],
            gradnet_types::TensorData::F32(flat),
        )
        .map_err(|e| ApiError::internal(e.to_string()))?,
    );
    let receipt = ReceiptBody {
        version: RECEIPT_VERSION,
        kind: "embedding".into(),
        request_hash,
        model: cid,
        output_hash: output_hash(&outputs),
        mode: InferenceMode::Vanilla,
        runtime: model.runtime_id(),
        node: s.key.public_hex(),
        timestamp_ms: now_ms(),
        charge: None,
    }
    .sign(&s.key);
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        "gradnet_receipt": receipt,
    })))
}

impl AppState {
    /// The content id of an embedding model: a content id, a path, or a
    /// repository (`repo[@version]`) whose version holds a `.safetensors`.
    pub(crate) async fn resolve_embedder(&self, name: &str) -> Result<ContentId, ApiError> {
        if ContentId::looks_like(name) || name.contains('/') {
            let r: gradnet_types::ModelRef =
                name.parse()
                    .map_err(|e: gradnet_types::request::ModelRefError| {
                        ApiError::not_found(format!("The model `{name}` does not exist: {e}"))
                    })?;
            return Ok(self.hub.resolve_model(&r).await?);
        }
        self.find_named(name, ".safetensors")
    }

    /// The loaded embedding model, from the cache or read (verified) from the hub.
    pub(crate) async fn embedder(&self, cid: ContentId) -> Result<Arc<Embedder>, ApiError> {
        if let Some(m) = self.embed.cached(&cid) {
            return Ok(m);
        }
        let bytes = self.hub.read_all(&cid).await?;
        let rt = self.embed.clone();
        Ok(tokio::task::spawn_blocking(move || rt.load(cid, &bytes)).await??)
    }
}
