//! LLMs from GGUF files: the llama family on gradnet's own forward pass
//! (`llama`, with the Q4_1 and Q8_0 kernels in `quant`), phi3 and qwen2 through
//! candle's quantized architectures. A model is loaded once per content id and cached
//! under a memory budget; each request gets its own session (the weights are
//! shared, the KV cache is its own), so requests never see each other's state
//! and a result does not depend on what else runs. candle's qwen2 cannot be
//! cloned, so its requests take turns on one instance, its cache cleared
//! between them.

mod batch;
mod convert;
mod generate;
pub mod grammar;
mod json;
#[cfg(target_arch = "x86_64")]
mod kernels_x86;
mod llama;
mod quant;
pub mod sample;
mod template;
mod tokenizer;
pub mod tools;

use std::sync::Arc;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use candle_transformers::models::{quantized_phi3, quantized_qwen2};
use gradnet_types::{ContentId, RuntimeId};
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use serde::Serialize;

pub use generate::{FinishReason, Generated, Piece, SamplingParams, TokenLogprob, PREFILL_CHUNK};
pub use template::ChatMessage;

use crate::error::{Result, RuntimeError};
use template::ChatTemplate;

/// The candle version pinned in the workspace `Cargo.toml`.
pub const CANDLE_VERSION: &str = "0.11.1";

/// What a client may want to know about a loaded model.
#[derive(Debug, Clone, Serialize)]
pub struct LlmInfo {
    /// `general.architecture` (llama, qwen2, phi3).
    pub architecture: String,
    /// `general.name`, when the file has one.
    pub name: Option<String>,
    /// Tokens of prompt and completion together.
    pub context_length: usize,
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Whether the chat template renders `tools`.
    pub supports_tools: bool,
    /// How the model writes tool calls.
    pub tool_style: tools::ToolStyle,
    /// Weight formats widened to Q8_0 at load (see [`widen`]).
    pub widened: Vec<String>,
}

enum Weights {
    Llama(Arc<llama::LlamaWeights>),
    Phi3(quantized_phi3::ModelWeights),
    Qwen2(std::sync::Mutex<quantized_qwen2::ModelWeights>),
}

/// One request's model state: shared weights, its own KV cache.
enum Session<'a> {
    Llama(llama::LlamaSession),
    Phi3(quantized_phi3::ModelWeights),
    Qwen2(std::sync::MutexGuard<'a, quantized_qwen2::ModelWeights>),
}

/// A loaded GGUF model: weights, tokenizer and chat template.
pub struct LlmModel {
    /// The GGUF file's content id.
    pub cid: ContentId,
    /// What the file says about the model.
    pub info: LlmInfo,
    weights: Weights,
    tokenizer: tokenizers::Tokenizer,
    template: ChatTemplate,
    bos: String,
    eos: String,
    /// Tokens that end an answer: end-of-sequence and end-of-turn markers.
    stop_ids: Vec<u32>,
    /// The beginning-of-sequence token every prompt starts with, when the
    /// file asks for one (`tokenizer.ggml.add_bos_token`).
    bos_id: Option<u32>,
    bytes: u64,
    /// Each token's text on its own, built the first time JSON mode needs it.
    pieces: std::sync::OnceLock<Vec<String>>,
    /// Sessions after chunk-aligned prompt prefixes (llama family), by hash
    /// of the prefix: a shared system prompt is computed once.
    prefixes: Cache<u64, Arc<(Vec<u32>, llama::LlamaSession)>, ByTokens>,
    prefix_hits: std::sync::atomic::AtomicU64,
    /// Decode steps of concurrent generations run together (llama family).
    batcher: batch::Batcher,
}

/// Longest context a llama-family model is served with (its KV cache grows
/// with use, up to this).
const MAX_LLAMA_CONTEXT: usize = 8192;

/// Tokens of KV cache kept for prompt prefixes, per model.
const PREFIX_CACHE_TOKENS: u64 = 4096;

#[derive(Clone)]
struct ByTokens;

impl Weighter<u64, Arc<(Vec<u32>, llama::LlamaSession)>> for ByTokens {
    fn weight(&self, _: &u64, v: &Arc<(Vec<u32>, llama::LlamaSession)>) -> u64 {
        v.0.len() as u64
    }
}

fn prefix_key(tokens: &[u32]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tokens.hash(&mut h);
    h.finish()
}

impl LlmModel {
    /// Loads a GGUF file whose content id is `cid`.
    pub fn load(cid: ContentId, bytes: &[u8]) -> Result<Self> {
        Self::load_within(cid, bytes, u64::MAX)
    }

    /// Loads a GGUF file whose weights take at most `budget` bytes; the
    /// header's promises are checked against the file and the budget
    /// before a weight is read.
    pub fn load_within(cid: ContentId, bytes: &[u8], budget: u64) -> Result<Self> {
        let bad = |e: candle_core::Error| RuntimeError::Unloadable(format!("GGUF: {e}"));
        let mut reader = std::io::Cursor::new(bytes);
        let ct = gguf_file::Content::read(&mut reader).map_err(bad)?;
        check_extents(&ct, bytes.len() as u64, budget)?;
        // the llama family multiplies Q4_1 with its own kernel (see `quant`)
        let own_q4_1 = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .is_some_and(|a| a == "llama" || a == "gemma3");
        let (widened_bytes, widened) = widen(&ct, &mut reader, own_q4_1).map_err(bad)?;
        let mut reader = std::io::Cursor::new(widened_bytes.as_deref().unwrap_or(bytes));
        let ct = gguf_file::Content::read(&mut reader).map_err(bad)?;
        let meta = ct.metadata.clone();
        let meta_str = |k: &str| meta.get(k).and_then(|v| v.to_string().ok()).cloned();
        let arch = meta_str("general.architecture")
            .ok_or_else(|| RuntimeError::Unloadable("GGUF has no general.architecture".into()))?;
        let meta_u32 = |k: &str| meta.get(k).and_then(|v| v.to_u32().ok());
        let tokenizer = tokenizer::from_gguf(&ct)?;
        let vocab_size = tokenizer.get_vocab_size(true);
        let template_src = meta_str("tokenizer.chat_template")
            .or_else(|| template::default_for(&arch).map(str::to_string));
        let template = ChatTemplate::new(template_src.as_deref())?;
        let bos_id = meta
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .filter(|add| *add)
            .and_then(|_| meta_u32("tokenizer.ggml.bos_token_id"));
        let token = |k: &str| {
            meta_u32(k)
                .and_then(|id| tokenizer.id_to_token(id))
                .unwrap_or_default()
        };
        let (bos, eos) = (
            token("tokenizer.ggml.bos_token_id"),
            token("tokenizer.ggml.eos_token_id"),
        );
        let mut stop_ids: Vec<u32> = meta_u32("tokenizer.ggml.eos_token_id")
            .into_iter()
            .collect();
        for marker in [
            "<|im_end|>",
            "<|eot_id|>",
            "<|end|>",
            "<|endoftext|>",
            "<end_of_turn>",
        ] {
            if let Some(id) = tokenizer.token_to_id(marker) {
                stop_ids.push(id);
            }
        }
        let arch_context = meta_u32(&format!("{arch}.context_length"));
        let (weights, context) = match arch.as_str() {
            "llama" | "gemma3" => {
                let w = llama::LlamaWeights::from_gguf(&ct, &mut reader, MAX_LLAMA_CONTEXT)
                    .map_err(bad)?;
                let context = w.context_length;
                (Weights::Llama(Arc::new(w)), context)
            }
            "qwen2" => (
                Weights::Qwen2(std::sync::Mutex::new(
                    quantized_qwen2::ModelWeights::from_gguf(ct, &mut reader, &Device::Cpu)
                        .map_err(bad)?,
                )),
                usize::MAX,
            ),
            "phi3" => (
                Weights::Phi3(
                    quantized_phi3::ModelWeights::from_gguf(false, ct, &mut reader, &Device::Cpu)
                        .map_err(bad)?,
                ),
                usize::MAX,
            ),
            other => {
                return Err(RuntimeError::Unloadable(format!(
                "GGUF architecture `{other}` is not supported (llama family, gemma3, qwen2 and phi3 are)"
            )))
            }
        };
        let context_length = arch_context
            .map(|c| c as usize)
            .unwrap_or(2048)
            .min(context);
        let info = LlmInfo {
            architecture: arch,
            name: meta_str("general.name"),
            context_length,
            vocab_size,
            supports_tools: template_src.as_deref().is_some_and(|t| t.contains("tools")),
            tool_style: tools::ToolStyle::of_template(template_src.as_deref()),
            widened,
        };
        Ok(LlmModel {
            cid,
            info,
            weights,
            tokenizer,
            template,
            bos,
            eos,
            stop_ids,
            bos_id,
            bytes: bytes.len() as u64,
            pieces: std::sync::OnceLock::new(),
            prefixes: Cache::with_weighter(256, PREFIX_CACHE_TOKENS, ByTokens),
            prefix_hits: Default::default(),
            batcher: Default::default(),
        })
    }

    /// The session after the longest cached chunk-aligned prefix of
    /// `prompt` that leaves at least one token to run, and its length.
    fn cached_prefix(&self, prompt: &[u32]) -> Option<(Session<'_>, usize)> {
        if !matches!(self.weights, Weights::Llama(_)) {
            return None;
        }
        let chunks = (prompt.len() - 1) / generate::PREFILL_CHUNK;
        let found = (1..=chunks).rev().find_map(|k| {
            let n = k * generate::PREFILL_CHUNK;
            let hit = self.prefixes.get(&prefix_key(&prompt[..n]))?;
            (hit.0 == prompt[..n]).then(|| (Session::Llama(hit.1.clone()), n))
        });
        if found.is_some() {
            self.prefix_hits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        found
    }

    fn remember_prefix(&self, prefix: &[u32], session: &Session<'_>) {
        if let Session::Llama(w) = session {
            self.prefixes
                .insert(prefix_key(prefix), Arc::new((prefix.to_vec(), w.clone())));
        }
    }

    /// Batched decode passes so far and the tokens they carried.
    pub fn batch_stats(&self) -> (u64, u64) {
        self.batcher.stats()
    }

    /// Drops every cached prompt prefix (benchmarks time cold prefills).
    pub fn forget_prefixes(&self) {
        self.prefixes.clear();
    }

    /// Prefix-cache hits so far (for tests and metrics).
    pub fn prefix_hits(&self) -> u64 {
        self.prefix_hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn session(&self) -> Session<'_> {
        match &self.weights {
            Weights::Llama(w) => Session::Llama(llama::LlamaSession::new(w.clone())),
            Weights::Phi3(w) => Session::Phi3(w.clone()),
            Weights::Qwen2(w) => {
                let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
                w.clear_kv_cache();
                Session::Qwen2(w)
            }
        }
    }

    /// The chat prompt for `messages`, rendered with the model's template.
    pub fn chat_prompt(
        &self,
        messages: &[ChatMessage],
        tools: Option<&serde_json::Value>,
    ) -> Result<String> {
        self.template.render(messages, tools, &self.bos, &self.eos)
    }

    /// Token ids of `text`; special tokens written in it (`<|im_start|>`) are
    /// parsed as such, which chat prompts rely on. Models that want a
    /// beginning-of-sequence token get one unless the text starts with it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self
            .tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| RuntimeError::BadInput(format!("tokenizer: {e}")))?;
        if let Some(bos) = self.bos_id {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// The text of token `id` alone.
    pub(crate) fn piece(&self, id: u32) -> &str {
        let pieces = self.pieces.get_or_init(|| {
            (0..self.info.vocab_size as u32)
                .map(|t| self.decode(&[t]))
                .collect()
        });
        pieces.get(id as usize).map(String::as_str).unwrap_or("")
    }

    /// Token ids back to text.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.tokenizer.decode(ids, true).unwrap_or_default()
    }

    /// A request must fit the context window; it is refused, never truncated.
    pub fn check_fits(&self, prompt_tokens: usize, max_tokens: usize) -> Result<()> {
        let ctx = self.info.context_length;
        if prompt_tokens + max_tokens > ctx {
            return Err(RuntimeError::ContextLength(format!(
                "This model's maximum context length is {ctx} tokens. However, you requested {} tokens ({prompt_tokens} in the prompt, {max_tokens} for the completion). Please reduce the length of the prompt or the completion.",
                prompt_tokens + max_tokens
            )));
        }
        Ok(())
    }
}

/// Fails if a tensor the header describes lies past the end of the file, or
/// if all of them together are over `budget` bytes: a header that promises
/// more than the file holds would otherwise have its sizes allocated first.
fn check_extents(ct: &gguf_file::Content, file_len: u64, budget: u64) -> Result<()> {
    let mut total: u64 = 0;
    for (name, t) in &ct.tensor_infos {
        let too_big = || {
            RuntimeError::Unloadable(format!(
                "GGUF tensor `{name}` of shape {:?} is larger than any file",
                t.shape.dims()
            ))
        };
        let elems = t
            .shape
            .dims()
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
            .ok_or_else(too_big)?;
        let block = t.ggml_dtype.block_size() as u64;
        let size = (elems / block.max(1))
            .checked_mul(t.ggml_dtype.type_size() as u64)
            .ok_or_else(too_big)?;
        let start = (ct.tensor_data_offset)
            .checked_add(t.offset)
            .ok_or_else(too_big)?;
        let end = start.checked_add(size).ok_or_else(too_big)?;
        if end > file_len {
            return Err(RuntimeError::Unloadable(format!(
                "GGUF tensor `{name}` claims bytes {start}..{end}, but the file has {file_len}"
            )));
        }
        total = total.saturating_add(size);
    }
    if total > budget {
        return Err(RuntimeError::Budget(format!(
            "the GGUF file's weights take {total} bytes, over this node's LLM memory budget of {budget} bytes"
        )));
    }
    Ok(())
}

/// Formats candle multiplies with scalar code only (Q4_1, Q5_1) are widened
/// to Q8_0, which has SIMD kernels: about 2x faster, and the Q8_0 grid holds
/// each 4- or 5-bit weight to within a fraction of its own step. Q4_1 stays
/// as it is when `own_q4_1` (gradnet's kernel multiplies it). Returns the
/// rewritten file, or `None` when nothing needed widening, and what was widened.
fn widen<R: std::io::Read + std::io::Seek>(
    ct: &gguf_file::Content,
    reader: &mut R,
    own_q4_1: bool,
) -> candle_core::Result<(Option<Vec<u8>>, Vec<String>)> {
    use candle_core::quantized::{GgmlDType, QTensor};
    let slow = |d: GgmlDType| d == GgmlDType::Q5_1 || (d == GgmlDType::Q4_1 && !own_q4_1);
    let mut widened: Vec<String> = ct
        .tensor_infos
        .values()
        .filter(|t| slow(t.ggml_dtype))
        .map(|t| format!("{:?}", t.ggml_dtype))
        .collect();
    if widened.is_empty() {
        return Ok((None, widened));
    }
    widened.sort();
    widened.dedup();
    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let t = ct.tensor(reader, name, &Device::Cpu)?;
        let t = if slow(t.dtype()) {
            QTensor::quantize(&t.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?
        } else {
            t
        };
        tensors.push((name.as_str(), t));
    }
    let mut meta: Vec<(&str, &gguf_file::Value)> =
        ct.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    meta.sort_by_key(|(k, _)| *k);
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut out, &meta, &refs)?;
    Ok((Some(out.into_inner()), widened))
}

impl LlmModel {
    /// What computes this model's answers, for receipts: gradnet's own
    /// forward pass and kernels for the llama family, candle's otherwise.
    pub fn runtime_id(&self) -> RuntimeId {
        match self.weights {
            // exact integer sums and a portable twin of every kernel
            Weights::Llama(_) => RuntimeId {
                name: "gradnet-llm".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                profile: gradnet_types::DETERMINISTIC_PROFILE.into(),
            },
            _ => RuntimeId {
                name: "candle".into(),
                version: CANDLE_VERSION.into(),
                profile: gradnet_types::NATIVE_PROFILE.into(),
            },
        }
    }
}

#[derive(Clone)]
struct ByFileSize;

/// Quantized weights take what the file weighs.
impl Weighter<ContentId, Arc<LlmModel>> for ByFileSize {
    fn weight(&self, _: &ContentId, m: &Arc<LlmModel>) -> u64 {
        m.bytes.max(1)
    }
}

/// Loaded LLMs by content id, under a memory budget.
pub struct LlmRuntime {
    models: Cache<ContentId, Arc<LlmModel>, ByFileSize>,
    /// Largest model's weights, in bytes.
    budget: u64,
}

impl LlmRuntime {
    /// A cache of loaded LLMs within `cache_bytes` of files.
    pub fn new(cache_bytes: u64) -> Self {
        LlmRuntime {
            models: Cache::with_weighter(64, cache_bytes, ByFileSize),
            budget: cache_bytes,
        }
    }

    /// The model `cid` if it is loaded.
    pub fn cached(&self, cid: &ContentId) -> Option<Arc<LlmModel>> {
        self.models.get(cid)
    }

    /// Loads the GGUF file `bytes` (once per content id).
    pub fn load(&self, cid: ContentId, bytes: &[u8]) -> Result<Arc<LlmModel>> {
        if let Some(m) = self.models.get(&cid) {
            return Ok(m);
        }
        let m = Arc::new(LlmModel::load_within(cid, bytes, self.budget)?);
        self.models.insert(cid, m.clone());
        Ok(m)
    }
}
