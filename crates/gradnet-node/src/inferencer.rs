//! How this node answers the chain: PIPE calls and the inference
//! precompile in `eth_call` / `eth_estimateGas`, run through the node's
//! inference service (the queue, workers, slots and metrics `/v1/infer`
//! and the OpenAI routes use).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gradnet_api::inference::{finish_reason, Kind};
use gradnet_api::{Admitted, ApiError, AppState, Caller};
use gradnet_inference::abi::ModelInput;
use gradnet_inference::abi::{
    ChatMessage as AbiMessage, LLMChatRequest, LLMChatResponse, LLMCompletionRequest,
    LLMCompletionResponse,
};
use gradnet_inference::precompile::Inferencer;
use gradnet_inference::zk::quantize_input;
use gradnet_zk::keys::{proof_to_bytes, proving_key_from_bytes};

use gradnet_runtime::llm::{ChatMessage, LlmModel, SamplingParams};
use gradnet_types::cid::ContentId;
use gradnet_types::tensor::NamedTensors;
use gradnet_zk::keys::{META_FILE as META, PROVING_KEY_FILE as PROVING_KEY};

/// Results kept for repeated calls: `eth_estimateGas` runs a call once per
/// probe of its gas search, and a model's output depends only on the model
/// and the inputs.
const REMEMBERED: usize = 64;

/// The chain's model runs on this node, through its inference service.
pub struct NodeInferencer {
    shared: Arc<Shared>,
    /// The place a PIPE request holds for all its calls; without one, each
    /// call takes its own (`eth_call`).
    admitted: Option<Admitted>,
}

struct Shared {
    state: AppState,
    caller: Caller,
    recent: Mutex<VecDeque<(String, NamedTensors)>>,
    /// Where `gradnet zk setup` directories are looked for (ZKML proving).
    zk_dir: Option<PathBuf>,
    provers: Mutex<HashMap<ContentId, Arc<Prover>>>,
}

/// A model's circuit and proving key, loaded once.
struct Prover {
    model: gradnet_zk::QuantModel,
    pk: gradnet_zk::keys::ProvingKeyBn254,
}

impl NodeInferencer {
    /// ResultSource for `caller`: [`Caller::EthCall`] or [`Caller::Pipe`];
    /// ZKML calls are proved with the keys under `zk_dir` (one directory
    /// per model, as `gradnet zk setup --out` writes them).
    pub fn new(state: AppState, caller: Caller, zk_dir: Option<PathBuf>) -> Self {
        NodeInferencer {
            shared: Arc::new(Shared {
                state,
                caller,
                recent: Default::default(),
                zk_dir,
                provers: Default::default(),
            }),
            admitted: None,
        }
    }

    fn state(&self) -> &AppState {
        &self.shared.state
    }

    /// Runs `f` under this batch's place in the queue, or a place of its
    /// own (refused when the queue is full).
    fn admitted<T>(
        &self,
        kind_llm: bool,
        f: impl FnOnce(&Admitted) -> Result<T, ApiError>,
    ) -> Result<T, String> {
        let own;
        let a = match &self.admitted {
            Some(a) => a,
            None => {
                let s = self.state();
                own = if kind_llm {
                    s.admit_llm(self.shared.caller)
                } else {
                    s.admit(self.shared.caller)
                }
                .map_err(|e| e.message)?;
                &own
            }
        };
        f(a).map_err(|e| e.message)
    }

    fn prover(&self, cid: &ContentId) -> Result<Arc<Prover>, String> {
        if let Some(p) = self.shared.provers.lock().unwrap().get(cid) {
            return Ok(p.clone());
        }
        let none = || format!("ZKML: this node holds no proving key for model {cid}");
        let dir = self.shared.zk_dir.as_ref().ok_or_else(none)?;
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
            self.shared.provers.lock().unwrap().insert(*cid, p.clone());
            return Ok(p);
        }
        Err(none())
    }

    /// Waits for `f` on this thread (a blocking one: JSON-RPC and PIPE
    /// run there).
    fn wait<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<T, String> {
        tokio::runtime::Handle::current()
            .block_on(f)
            .map_err(|e| e.message)
    }

    fn resolve(&self, model: &str) -> Result<ContentId, String> {
        self.wait(self.state().resolve(model))
    }

    /// The blob of `cid` from the hub (verified).
    fn read(&self, cid: &ContentId) -> Result<Vec<u8>, String> {
        self.wait(async { Ok(self.state().hub.read_all(cid).await?) })
    }

    fn generate(
        &self,
        model: &str,
        prompt: impl FnOnce(&LlmModel) -> Result<String, String>,
        max_tokens: u32,
        stop: &[String],
        temperature: u32,
    ) -> Result<(String, &'static str), String> {
        // named as OpenAI clients name it: content id, repository, `repo@version`
        let cid = self.wait(self.state().resolve_llm(model))?;
        let m = self.wait(self.state().llm_model(cid))?;
        let ids = m.encode(&prompt(&m)?).map_err(|e| e.to_string())?;
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
        let g = self.admitted(true, |a| {
            Ok(a.llm_slot_here()?.generate(&m, &ids, &params, |_| true)?)
        })?;
        Ok((g.text, finish_reason(g.finish_reason)))
    }
}

impl Inferencer for NodeInferencer {
    fn admit(self: Arc<Self>) -> Result<Arc<dyn Inferencer>, String> {
        let admitted = self
            .state()
            .admit(self.shared.caller)
            .map_err(|e| e.message)?;
        Ok(Arc::new(NodeInferencer {
            shared: self.shared.clone(),
            admitted: Some(admitted),
        }))
    }

    fn zk_prove(&self, model: &str, input: &ModelInput) -> Result<(Vec<u8>, Vec<i64>), String> {
        let p = self.prover(&self.resolve(model)?)?;
        let x = quantize_input(input, p.model.frac_bits)?;
        let (y, proof) = self.admitted(false, |a| {
            a.work_here(Kind::Zkml, || {
                gradnet_zk::prove(&p.model, &p.pk, &x)
                    .map_err(|e| ApiError::bad_request("zkml", format!("ZKML: {e}")))
            })
        })?;
        Ok((proof_to_bytes(&proof), y))
    }

    fn run_model(&self, model: &str, inputs: &serde_json::Value) -> Result<NamedTensors, String> {
        let cid = self.resolve(model)?;
        let key = format!("{cid}\n{inputs}");
        let recent = &self.shared.recent;
        if let Some((_, out)) = recent.lock().unwrap().iter().find(|(k, _)| *k == key) {
            return Ok(out.clone());
        }
        let inputs = gradnet_types::json::parse_inputs(inputs).map_err(|e| e.to_string())?;
        let out = self.admitted(false, |a| {
            let m = tokio::runtime::Handle::current().block_on(self.state().onnx_model(cid))?;
            let typed = m.signature.check_owned(inputs)?;
            a.run_onnx_here(&m, &typed)
        })?;
        let mut recent = recent.lock().unwrap();
        if recent.len() == REMEMBERED {
            recent.pop_front();
        }
        recent.push_back((key, out.clone()));
        Ok(out)
    }

    fn complete(&self, r: &LLMCompletionRequest) -> Result<LLMCompletionResponse, String> {
        let prompt = |_: &LlmModel| Ok(r.prompt.clone());
        let (answer, _) = self.generate(
            &r.modelCID,
            prompt,
            r.max_tokens,
            &r.stop_sequence,
            r.temperature,
        )?;
        Ok(LLMCompletionResponse { answer })
    }

    fn chat(&self, r: &LLMChatRequest) -> Result<LLMChatResponse, String> {
        if !r.tools.is_empty() {
            return Err("tool definitions are not served through the precompile; call the node's /v1/chat/completions".into());
        }
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
        let prompt = |m: &LlmModel| m.chat_prompt(&messages, None).map_err(|e| e.to_string());
        let (content, reason) = self.generate(
            &r.modelCID,
            prompt,
            r.max_tokens,
            &r.stop_sequence,
            r.temperature,
        )?;
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
