//! Sentence embeddings: a BERT-family encoder stored as one `.safetensors`
//! file whose metadata carries the tokenizer and the sentence-transformers
//! settings (`gradnet.kind = sentence-embedding`; `scripts/fetch-models`
//! packs all-MiniLM-L6-v2 so), pooled and normalized as sentence-transformers
//! does. Bit-identical on every CPU, thread count and batch (linear layers on
//! the ONNX engine's deterministic matrix product, attention in `kernels`).

mod bert;
mod kernels;

use std::sync::Arc;

use gradnet_types::{ContentId, RuntimeId};
use quick_cache::sync::Cache;
use tokenizers::Tokenizer;

use crate::error::{Result, RuntimeError};

/// What a file's metadata says of the model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EmbedderInfo {
    /// Length of a vector.
    pub dimensions: usize,
    /// Most tokens an input may have (special tokens included).
    pub max_tokens: usize,
    /// `mean` or `cls`.
    pub pooling: String,
    /// Whether vectors are scaled to length 1.
    pub normalize: bool,
}

/// A loaded embedding model.
pub struct Embedder {
    /// The file's content id.
    pub cid: ContentId,
    /// Its settings.
    pub info: EmbedderInfo,
    bert: bert::Bert,
    tokenizer: Tokenizer,
}

/// Whether `bytes` are meant as an embedding model (the metadata says so),
/// without loading the weights.
pub fn is_embedding_file(bytes: &[u8]) -> bool {
    safetensors::SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
        .is_some_and(|m| m.get("gradnet.kind").map(String::as_str) == Some("sentence-embedding"))
}

impl Embedder {
    /// Loads a packed `.safetensors` embedding model.
    pub fn load(cid: ContentId, bytes: &[u8]) -> Result<Embedder> {
        let bad = |m: String| RuntimeError::Unloadable(m);
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("gradnet.kind").map(String::as_str) != Some("sentence-embedding") {
            return Err(bad(
                "the safetensors metadata has no `gradnet.kind = sentence-embedding`".into(),
            ));
        }
        let get = |k: &str| {
            meta.get(k)
                .ok_or_else(|| bad(format!("the safetensors metadata has no `{k}`")))
        };
        let cfg: bert::Config = serde_json::from_str(get("config.json")?)
            .map_err(|e| bad(format!("config.json: {e}")))?;
        let mut tokenizer = Tokenizer::from_bytes(get("tokenizer.json")?.as_bytes())
            .map_err(|e| bad(format!("tokenizer.json: {e}")))?;
        // inputs are refused when too long, never cut; nor padded
        tokenizer
            .with_truncation(None)
            .map_err(|e| bad(format!("tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);
        let vocab = tokenizer.get_vocab_size(true);
        let max_tokens = get("max_seq_length")?
            .parse::<usize>()
            .map_err(|e| bad(format!("max_seq_length: {e}")))?
            .min(cfg.max_position_embeddings);
        let pooling = get("pooling")?.clone();
        if pooling != "mean" && pooling != "cls" {
            return Err(bad(format!(
                "pooling `{pooling}` is not supported (mean, cls)"
            )));
        }
        let normalize = get("normalize")? == "true";
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("safetensors: {e}")))?;
        let bert = bert::Bert::load(&st, cfg, vocab)?;
        Ok(Embedder {
            cid,
            info: EmbedderInfo {
                dimensions: bert.cfg.hidden_size,
                max_tokens,
                pooling,
                normalize,
            },
            bert,
            tokenizer,
        })
    }

    /// Token ids of `text`, with the model's special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| RuntimeError::BadInput(format!("tokenizer: {e}")))
    }

    /// The vectors of tokenized inputs (each checked: not empty, within
    /// `max_tokens`, ids in the vocabulary), over `threads` threads.
    pub fn embed(&self, inputs: &[Vec<u32>], threads: usize) -> Result<Vec<Vec<f32>>> {
        let vocab = self.tokenizer.get_vocab_size(true) as u32;
        for (i, ids) in inputs.iter().enumerate() {
            if ids.is_empty() {
                return Err(RuntimeError::BadInput(format!("input[{i}] is empty")));
            }
            if ids.len() > self.info.max_tokens {
                return Err(RuntimeError::ContextLength(format!(
                    "input[{i}] has {} tokens; this model reads at most {}",
                    ids.len(),
                    self.info.max_tokens
                )));
            }
            if let Some(t) = ids.iter().find(|&&t| t >= vocab) {
                return Err(RuntimeError::BadInput(format!(
                    "input[{i}] has token {t}; the vocabulary has {vocab} tokens"
                )));
            }
        }
        let hidden = self.bert.forward(inputs, threads);
        let h = self.info.dimensions;
        Ok(hidden
            .into_iter()
            .map(|states| {
                let n = states.len() / h;
                let mut v = if self.info.pooling == "cls" {
                    states[..h].to_vec()
                } else {
                    let mut sum = vec![0f32; h];
                    for row in states.chunks_exact(h) {
                        sum.iter_mut().zip(row).for_each(|(s, x)| *s += x);
                    }
                    sum.iter_mut().for_each(|s| *s /= n as f32);
                    sum
                };
                if self.info.normalize {
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                    v.iter_mut().for_each(|x| *x /= norm);
                }
                v
            })
            .collect())
    }

    /// What computes the vectors, for receipts.
    pub fn runtime_id(&self) -> RuntimeId {
        RuntimeId {
            name: "gradnet-embed".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            profile: gradnet_types::DETERMINISTIC_PROFILE.into(),
        }
    }
}

#[derive(Clone)]
struct One;

impl quick_cache::Weighter<ContentId, Arc<Embedder>> for One {
    fn weight(&self, _: &ContentId, _: &Arc<Embedder>) -> u64 {
        1
    }
}

/// Loaded embedding models by content id (a few at a time).
pub struct EmbedRuntime {
    models: Cache<ContentId, Arc<Embedder>, One>,
}

impl Default for EmbedRuntime {
    fn default() -> Self {
        EmbedRuntime {
            models: Cache::with_weighter(8, 4, One),
        }
    }
}

impl EmbedRuntime {
    /// The model `cid` if it is loaded.
    pub fn cached(&self, cid: &ContentId) -> Option<Arc<Embedder>> {
        self.models.get(cid)
    }

    /// Loads `bytes` (once per content id).
    pub fn load(&self, cid: ContentId, bytes: &[u8]) -> Result<Arc<Embedder>> {
        if let Some(m) = self.models.get(&cid) {
            return Ok(m);
        }
        let m = Arc::new(Embedder::load(cid, bytes)?);
        self.models.insert(cid, m.clone());
        Ok(m)
    }
}
