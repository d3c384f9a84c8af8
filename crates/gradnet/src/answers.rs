//! How this node answers the inference precompile in `eth_call` and
//! `eth_estimateGas`: models from its hub, run on its runtimes, exactly as
//! `/v1/infer` and the OpenAI endpoints run them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use gradnet_api::AppState;
use gradnet_chain::inference::abi::ModelInput;
use gradnet_chain::inference::abi::{
    ChatMessage as AbiMessage, LLMChatRequest, LLMChatResponse, LLMCompletionRequest,
    LLMCompletionResponse,
};
use gradnet_chain::inference::precompile::Inferencer;
use gradnet_chain::inference::zk::quantize_input;
use gradnet_zk::keys::{proof_to_bytes, proving_key_from_bytes};

use crate::commands::zk::{META, PROVING_KEY};
use gradnet_runtime::llm::{ChatMessage, LlmModel, SamplingParams};
use gradnet_types::cid::ContentId;
use gradnet_types::request::ModelRef;
use gradnet_types::tensor::NamedTensors;

/// Results kept for repeated calls: `eth_estimateGas` runs a call once per
/// probe of its gas search, and a model's output depends only on the model
/// and the inputs.
const REMEMBERED: usize = 64;

pub struct NodeAnswers {
    pub state: AppState,
    recent: std::sync::Mutex<std::collections::VecDeque<(String, NamedTensors)>>,
    /// Where `gradnet zk setup` directories are looked for (ZKML proving).
    zk_dir: Option<PathBuf>,
    provers: std::sync::Mutex<HashMap<ContentId, Arc<Prover>>>,
}

/// A model's circuit and proving key, loaded once.
struct Prover {
    model: gradnet_zk::QuantModel,
    pk: gradnet_zk::keys::ProvingKeyBn254,
}

impl NodeAnswers {
    pub fn new(state: AppState) -> Self {
        NodeAnswers {
            state,
            recent: Default::default(),
            zk_dir: None,
            provers: Default::default(),
        }
    }

    /// Proves ZKML calls with the keys under `dir` (one directory per
    /// model, as `gradnet zk setup --out` writes them).
    pub fn with_zk_dir(mut self, dir: PathBuf) -> Self {
        self.zk_dir = Some(dir);
        self
    }

    fn prover(&self, cid: &ContentId) -> Result<Arc<Prover>, String> {
        if let Some(p) = self.provers.lock().unwrap().get(cid) {
            return Ok(p.clone());
        }
        let none = || format!("ZKML: this node holds no proving key for model {cid}");
        let dir = self.zk_dir.as_ref().ok_or_else(none)?;
        let entries = std::fs::read_dir(dir).map_err(|_| none())?;
        for e in entries.flatten() {
            let Ok(meta) = std::fs::read(e.path().join(META)) else {
                continue;
            };
            let Ok(meta) = serde_json::from_slice::<serde_json::Value>(&meta) else {
                continue;
            };
            if meta["model"] != cid.to_string().as_str() {
                continue;
            }
            let frac_bits = meta["frac_bits"].as_u64().unwrap_or(0) as u32;
            let model = gradnet_zk::onnx::compile(&self.read(cid)?, frac_bits)
                .map_err(|e| format!("ZKML: {e}"))?;
            if meta["model_hash"] != hex::encode(model.hash()).as_str() {
                return Err(format!(
                    "ZKML: the keys in {} are for another circuit",
                    e.path().display()
                ));
            }
            let pk = std::fs::read(e.path().join(PROVING_KEY))
                .map_err(|err| format!("ZKML: reading the proving key: {err}"))?;
            let pk = proving_key_from_bytes(&pk).map_err(|e| format!("ZKML: {e}"))?;
            let p = Arc::new(Prover { model, pk });
            self.provers.lock().unwrap().insert(*cid, p.clone());
            return Ok(p);
        }
        Err(none())
    }

    fn resolve(&self, model: &str) -> Result<ContentId, String> {
        let r: ModelRef = model.parse().map_err(|e| format!("model `{model}`: {e}"))?;
        // on a blocking thread (JSON-RPC and PIPE run there)
        tokio::runtime::Handle::current()
            .block_on(self.state.hub.resolve_model(&r))
            .map_err(|e| format!("model `{model}`: {e}"))
    }

    /// The blob of `cid` from the hub (verified). Called on a blocking
    /// thread (JSON-RPC runs there), so it may wait for the async read.
    fn read(&self, cid: &ContentId) -> Result<Vec<u8>, String> {
        tokio::runtime::Handle::current()
            .block_on(self.state.hub.read_all(cid))
            .map_err(|e| e.to_string())
    }

    fn llm(&self, model: &str) -> Result<Arc<LlmModel>, String> {
        let cid = self.resolve(model)?;
        if let Some(m) = self.state.llm.cached(&cid) {
            return Ok(m);
        }
        let bytes = self.read(&cid)?;
        self.state.llm.load(cid, &bytes).map_err(|e| e.to_string())
    }

    fn generate(
        &self,
        m: &LlmModel,
        prompt: &str,
        max_tokens: u32,
        stop: &[String],
        temperature: u32,
    ) -> Result<(String, &'static str), String> {
        let ids = m.encode(prompt).map_err(|e| e.to_string())?;
        let params = SamplingParams {
            max_tokens: if max_tokens == 0 {
                256
            } else {
                max_tokens as usize
            },
            // OpenGradient sends the temperature times 100
            temperature: temperature as f64 / 100.0,
            stop: stop.to_vec(),
            ..SamplingParams::default()
        };
        let g = m
            .generate(&ids, &params, |_| true)
            .map_err(|e| e.to_string())?;
        let reason = match g.finish_reason {
            gradnet_runtime::llm::FinishReason::Length => "length",
            _ => "stop",
        };
        Ok((g.text, reason))
    }
}

impl Inferencer for NodeAnswers {
    fn zk_prove(&self, model: &str, input: &ModelInput) -> Result<(Vec<u8>, Vec<i64>), String> {
        let p = self.prover(&self.resolve(model)?)?;
        let x = quantize_input(input, p.model.frac_bits)?;
        let (y, proof) =
            gradnet_zk::prove(&p.model, &p.pk, &x).map_err(|e| format!("ZKML: {e}"))?;
        Ok((proof_to_bytes(&proof), y))
    }

    fn run_model(&self, model: &str, inputs: &serde_json::Value) -> Result<NamedTensors, String> {
        let cid = self.resolve(model)?;
        let key = format!("{cid}\n{inputs}");
        if let Some((_, out)) = self.recent.lock().unwrap().iter().find(|(k, _)| *k == key) {
            return Ok(out.clone());
        }
        let m = match self.state.runtime.cached(&cid) {
            Some(m) => m,
            None => {
                let bytes = self.read(&cid)?;
                self.state
                    .runtime
                    .load(cid, &bytes)
                    .map_err(|e| e.to_string())?
            }
        };
        let inputs = gradnet_types::json::parse_inputs(inputs).map_err(|e| e.to_string())?;
        let (_, out) = self
            .state
            .runtime
            .infer(&m, &inputs)
            .map_err(|e| e.to_string())?;
        let mut recent = self.recent.lock().unwrap();
        if recent.len() == REMEMBERED {
            recent.pop_front();
        }
        recent.push_back((key, out.clone()));
        Ok(out)
    }

    fn complete(&self, r: &LLMCompletionRequest) -> Result<LLMCompletionResponse, String> {
        let m = self.llm(&r.modelCID)?;
        let (answer, _) =
            self.generate(&m, &r.prompt, r.max_tokens, &r.stop_sequence, r.temperature)?;
        Ok(LLMCompletionResponse { answer })
    }

    fn chat(&self, r: &LLMChatRequest) -> Result<LLMChatResponse, String> {
        if !r.tools.is_empty() {
            return Err("tool definitions are not served through the precompile; call the node's /v1/chat/completions".into());
        }
        let m = self.llm(&r.modelCID)?;
        let messages: Vec<ChatMessage> = r
            .messages
            .iter()
            .map(|x| ChatMessage {
                role: x.role.clone(),
                content: x.content.clone(),
                name: Some(x.name.clone()).filter(|n| !n.is_empty()),
                tool_calls: None,
                tool_call_id: Some(x.tool_call_id.clone()).filter(|n| !n.is_empty()),
            })
            .collect();
        let prompt = m.chat_prompt(&messages, None).map_err(|e| e.to_string())?;
        let (content, reason) =
            self.generate(&m, &prompt, r.max_tokens, &r.stop_sequence, r.temperature)?;
        Ok(LLMChatResponse {
            finish_reason: reason.into(),
            message: AbiMessage {
                role: "assistant".into(),
                content,
                name: String::new(),
                tool_call_id: String::new(),
                tool_calls: vec![],
            },
        })
    }
}
