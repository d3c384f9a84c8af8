//! LLMs: names as OpenAI clients write them, loading, slots and
//! generation.

use std::sync::Arc;
use std::time::Instant;

use gradnet_runtime::llm::{FinishReason, Generated, LlmModel, SamplingParams};
use gradnet_runtime::RuntimeError;
use gradnet_types::{ContentId, ModelRef};
use tokio::sync::OwnedSemaphorePermit;

use super::{Admitted, Caller, Kind};
use crate::error::ApiError;
use crate::AppState;

impl AppState {
    /// A model name as OpenAI clients write it: a content id, `repo`,
    /// `repo@version` (the version's `.gguf` file), or `repo@version/file`.
    pub async fn resolve_llm(&self, name: &str) -> Result<ContentId, ApiError> {
        if ContentId::looks_like(name) || name.contains('/') {
            let r: ModelRef =
                name.parse()
                    .map_err(|e: gradnet_types::request::ModelRefError| {
                        ApiError::not_found(format!("The model `{name}` does not exist: {e}"))
                    })?;
            let found = self.hub.resolve_model(&r).await;
            // OpenGradient names LLMs `provider/model`: a missing repository
            // `provider` reads as the repository `model`
            if let (Err(gradnet_hub::HubError::NotFound(_)), Some((_, model))) =
                (&found, name.split_once('/'))
            {
                if !model.contains('/') && !ContentId::looks_like(model) {
                    if let Ok(cid) = Box::pin(self.resolve_llm(model)).await {
                        return Ok(cid);
                    }
                }
            }
            return Ok(found?);
        }
        self.find_named(name, ".gguf")
    }

    /// The file ending in `ext` in the repository `repo[@version]` that
    /// `name` is (its latest version when none is given).
    pub(crate) fn find_named(&self, name: &str, ext: &str) -> Result<ContentId, ApiError> {
        let (repo, version) = match name.split_once('@') {
            Some((r, v)) => (r, Some(v).filter(|v| !v.is_empty() && *v != "latest")),
            None => (name, None),
        };
        self.hub
            .find_file(repo, version, ext)
            .map(|f| f.cid)
            .map_err(|e| match e {
                gradnet_hub::HubError::NotFound(_) | gradnet_hub::HubError::Invalid(_) => {
                    ApiError::not_found(format!("The model `{name}` does not exist ({e})"))
                }
                e => e.into(),
            })
    }

    /// The loaded LLM, from the cache or read (verified) from the hub.
    pub async fn llm_model(&self, cid: ContentId) -> Result<Arc<LlmModel>, ApiError> {
        if let Some(m) = self.llm.cached(&cid) {
            return Ok(m);
        }
        let bytes = self.hub.read_all(&cid).await?;
        let llm = self.llm.clone();
        Ok(tokio::task::spawn_blocking(move || llm.load(cid, &bytes)).await??)
    }
}

/// A running LLM generation's slot (FIFO: fair to waiting clients), and
/// the place in the queue it was admitted with.
pub struct LlmSlot {
    state: AppState,
    caller: Caller,
    asked: Instant,
    _slot: OwnedSemaphorePermit,
}

impl Admitted {
    /// Waits for an LLM slot.
    pub async fn llm_slot(&self) -> Result<LlmSlot, ApiError> {
        let asked = Instant::now();
        let slot = self.state.llm_slots.clone().acquire_owned().await;
        self.slot(asked, slot)
    }

    /// [`Admitted::llm_slot`] on a thread that may block.
    pub fn llm_slot_here(&self) -> Result<LlmSlot, ApiError> {
        let asked = Instant::now();
        let slot = tokio::runtime::Handle::current()
            .block_on(self.state.llm_slots.clone().acquire_owned());
        self.slot(asked, slot)
    }

    fn slot(
        &self,
        asked: Instant,
        slot: Result<OwnedSemaphorePermit, tokio::sync::AcquireError>,
    ) -> Result<LlmSlot, ApiError> {
        let slot = slot.map_err(|_| ApiError::internal("LLM slots closed"))?;
        Ok(LlmSlot {
            state: self.state.clone(),
            caller: self.caller,
            asked,
            _slot: slot,
        })
    }
}

impl LlmSlot {
    /// Generates on this thread (one that may block), holding the slot
    /// until it is dropped; `on_text` gets each piece and stops generation by
    /// returning false. Counted with its tokens in the node's metrics.
    pub fn generate(
        &self,
        model: &LlmModel,
        prompt: &[u32],
        params: &SamplingParams,
        on_text: impl FnMut(&gradnet_runtime::llm::Piece<'_>) -> bool,
    ) -> Result<Generated, RuntimeError> {
        let m = &self.state.metrics;
        m.llm_running.inc();
        let out = model.generate(prompt, params, on_text);
        m.llm_running.dec();
        if let Ok(g) = &out {
            m.llm_tokens
                .with_label_values(&["prompt"])
                .inc_by(g.prompt_tokens as u64);
            m.llm_tokens
                .with_label_values(&["completion"])
                .inc_by(g.completion_tokens as u64);
        }
        super::record(&self.state, Kind::Llm, self.caller, self.asked, out.is_ok());
        out
    }
}

/// The finish reason clients see for a generation.
pub fn finish_reason(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        // nobody reads this answer; recorded for the receipt all the same
        FinishReason::Cancelled => "cancelled",
    }
}
