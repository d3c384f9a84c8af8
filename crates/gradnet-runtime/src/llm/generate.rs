//! The decoding loop: prefill, then one token at a time, with seeded
//! sampling, stop tokens, stop strings (text that might begin one is held
//! back until it cannot), and text streamed out as it becomes valid UTF-8.

use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use serde::{Deserialize, Serialize};

use super::{json, llama, LlmModel, Session, Weights};
use crate::error::{Result, RuntimeError};

/// How to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Tokens to generate at most.
    pub max_tokens: usize,
    /// 0 is greedy (bit-reproducible); above 0 samples with `seed`.
    pub temperature: f64,
    /// Nucleus sampling: the smallest set of tokens with this much mass.
    pub top_p: Option<f64>,
    /// The sampler's seed (the same seed, the same text).
    pub seed: u64,
    /// Strings that end the generation (not included in the text).
    pub stop: Vec<String>,
    /// Constrain the answer to one JSON object (OpenAI's `json_object`).
    pub json: bool,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            max_tokens: 256,
            temperature: 1.0,
            top_p: None,
            seed: 0,
            stop: vec![],
            json: false,
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A stop token or stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The caller stopped listening (a client that went away).
    Cancelled,
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The completion's text.
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
}

impl LlmModel {
    /// Generates from `prompt` (token ids). `on_text` receives each piece of
    /// text as it is settled and returns false to stop early.
    pub fn generate(
        &self,
        prompt: &[u32],
        params: &SamplingParams,
        mut on_text: impl FnMut(&str) -> bool,
    ) -> Result<Generated> {
        let exec = |e: candle_core::Error| RuntimeError::Execution(e.to_string());
        if prompt.is_empty() {
            return Err(RuntimeError::BadInput("the prompt is empty".into()));
        }
        self.check_fits(prompt.len(), params.max_tokens)?;
        let (mut session, mut logits) = self.prefill(prompt).map_err(exec)?;
        // from here on, this generation's steps may be batched with others'
        let _decoding = matches!(session, Session::Llama(_)).then(|| self.batcher.enter());
        let temperature = (params.temperature > 0.0).then_some(params.temperature);
        let mut sampler = LogitsProcessor::new(params.seed, temperature, params.top_p);
        let mut text = TextStream::new(self, &params.stop);
        let mut tokens: Vec<u32> = Vec::new();
        let mut finish = FinishReason::Length;
        while tokens.len() < params.max_tokens {
            let logits1 = logits.squeeze(0).map_err(exec)?;
            let next = if params.json {
                match self.json_choice(&logits1, &text.decoded, &mut sampler)? {
                    Some(t) => t,
                    None => {
                        // the object is complete: the answer ends here
                        finish = FinishReason::Stop;
                        break;
                    }
                }
            } else {
                sampler.sample(&logits1).map_err(exec)?
            };
            if self.stop_ids.contains(&next) {
                finish = FinishReason::Stop;
                break;
            }
            tokens.push(next);
            match text.push(&tokens) {
                Step::Emit(piece) => {
                    if !piece.is_empty() && !on_text(&piece) {
                        finish = FinishReason::Cancelled;
                        break;
                    }
                }
                Step::Stop(piece) => {
                    if !piece.is_empty() {
                        on_text(&piece);
                    }
                    finish = FinishReason::Stop;
                    break;
                }
            }
            if tokens.len() == params.max_tokens {
                break;
            }
            let pos = prompt.len() + tokens.len() - 1;
            logits = self.decode_step(&mut session, next, pos).map_err(exec)?;
        }
        if finish != FinishReason::Stop {
            // what was held back as a possible stop string start is text after all
            let rest = text.flush(&tokens);
            if !rest.is_empty() && finish == FinishReason::Length {
                on_text(&rest);
            }
        }
        Ok(Generated {
            text: text.settled,
            finish_reason: finish,
            prompt_tokens: prompt.len(),
            completion_tokens: tokens.len(),
        })
    }
}

/// Prompts are prefilled in chunks of this many tokens, always aligned to
/// position 0, so a session cached at a chunk boundary continues exactly as
/// a fresh one would: a prefix-cache hit changes no bit of the answer.
pub const PREFILL_CHUNK: usize = 32;

impl LlmModel {
    /// One token: through the batcher for the llama family, so that
    /// concurrent generations share each pass over the weights.
    fn decode_step(
        &self,
        session: &mut Session<'_>,
        token: u32,
        pos: usize,
    ) -> candle_core::Result<Tensor> {
        match (session, &self.weights) {
            (Session::Llama(s), Weights::Llama(w)) => {
                let taken = std::mem::replace(s, llama::LlamaSession::new(w.clone()));
                let (back, out) = self.batcher.step(w, taken, token, pos);
                *s = back;
                let logits = out.map_err(candle_core::Error::msg)?;
                Tensor::from_vec(logits, (1, w.vocab()), &Device::Cpu)
            }
            (s, _) => s.forward(&[token], pos),
        }
    }

    /// Runs the prompt through a session: from the longest cached prefix
    /// (llama family) when there is one. Returns the session and the last
    /// position's logits.
    fn prefill(&self, prompt: &[u32]) -> candle_core::Result<(Session<'_>, Tensor)> {
        let (mut session, mut done) = match self.cached_prefix(prompt) {
            Some((s, n)) => (s, n),
            None => (self.session(), 0),
        };
        let mut logits = None;
        while done < prompt.len() {
            let end = ((done / PREFILL_CHUNK + 1) * PREFILL_CHUNK).min(prompt.len());
            logits = Some(session.forward(&prompt[done..end], done)?);
            done = end;
            if done % PREFILL_CHUNK == 0 && done < prompt.len() {
                self.remember_prefix(&prompt[..done], &session);
            }
        }
        Ok((session, logits.expect("the prompt is not empty")))
    }

    /// The next token in JSON mode: sampled among the likeliest candidates
    /// that keep `so_far` a prefix of one JSON object; `None` once the
    /// object is complete.
    fn json_choice(
        &self,
        logits: &Tensor,
        so_far: &str,
        sampler: &mut LogitsProcessor,
    ) -> Result<Option<u32>> {
        let exec = |e: candle_core::Error| RuntimeError::Execution(e.to_string());
        let mut state = json::JsonState::default();
        if state.feed(so_far) == json::Prefix::Complete {
            return Ok(None);
        }
        let mut v: Vec<f32> = logits.to_vec1().map_err(exec)?;
        let mut order: Vec<u32> = (0..v.len() as u32).collect();
        order.sort_by(|&a, &b| v[b as usize].total_cmp(&v[a as usize]));
        // a valid continuation is nearly always among the first few hundred
        let mut allowed = vec![];
        for &t in order.iter().take(512) {
            if self.stop_ids.contains(&t) {
                continue;
            }
            let piece = self.piece(t);
            if piece.is_empty() || piece.contains('\u{FFFD}') {
                continue;
            }
            if state.clone().feed(piece) != json::Prefix::Invalid {
                allowed.push(t);
                if allowed.len() == 64 {
                    break;
                }
            }
        }
        if allowed.is_empty() {
            return Err(RuntimeError::Execution(
                "JSON mode: no token continues the object".into(),
            ));
        }
        let keep: std::collections::HashSet<u32> = allowed.into_iter().collect();
        for (i, x) in v.iter_mut().enumerate() {
            if !keep.contains(&(i as u32)) {
                *x = f32::NEG_INFINITY;
            }
        }
        let masked = Tensor::new(v, &Device::Cpu).map_err(exec)?;
        sampler.sample(&masked).map(Some).map_err(exec)
    }
}

enum Step {
    Emit(String),
    /// A stop string appeared: the text before it, then stop.
    Stop(String),
}

/// Turns the growing token list into text pieces: decodes only the tail,
/// waits out incomplete UTF-8, and holds back text that could be the start
/// of a stop string.
struct TextStream<'a> {
    model: &'a LlmModel,
    stop: &'a [String],
    /// Decoded text of all tokens so far that is final (valid UTF-8).
    decoded: String,
    /// Index of the first token not yet in `decoded`.
    next_token: usize,
    /// The part of `decoded` handed out.
    settled: String,
}

impl<'a> TextStream<'a> {
    fn new(model: &'a LlmModel, stop: &'a [String]) -> Self {
        TextStream {
            model,
            stop,
            decoded: String::new(),
            next_token: 0,
            settled: String::new(),
        }
    }

    fn push(&mut self, tokens: &[u32]) -> Step {
        // decode with a little context before the new tokens, since a token's
        // text can depend on its neighbour (byte-level merges, prefix spaces)
        let ctx = self.next_token.saturating_sub(4);
        let before = self.model.decode(&tokens[ctx..self.next_token]);
        let now = self.model.decode(&tokens[ctx..]);
        if now.ends_with('\u{FFFD}') || !now.starts_with(&before) {
            return Step::Emit(String::new());
        }
        self.decoded.push_str(&now[before.len()..]);
        self.next_token = tokens.len();
        // a stop string anywhere in the unsettled part (it may straddle pieces)
        let from = floor_char(
            &self.decoded,
            self.settled.len().saturating_sub(self.max_stop()),
        );
        if let Some(at) = self
            .stop
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| self.decoded[from..].find(s.as_str()).map(|i| from + i))
            .min()
        {
            let piece = self.decoded[self.settled.len().min(at)..at].to_string();
            self.settled.push_str(&piece);
            return Step::Stop(piece);
        }
        // settle all but what could still grow into a stop string
        let hold = self
            .stop
            .iter()
            .map(|s| longest_prefix_suffix(&self.decoded, s))
            .max()
            .unwrap_or(0);
        let upto = floor_char(&self.decoded, self.decoded.len() - hold).max(self.settled.len());
        let piece = self.decoded[self.settled.len()..upto].to_string();
        self.settled.push_str(&piece);
        Step::Emit(piece)
    }

    /// Everything decoded and not yet handed out.
    fn flush(&mut self, tokens: &[u32]) -> String {
        let full = self.model.decode(tokens);
        let piece = full.get(self.settled.len()..).unwrap_or("").to_string();
        self.settled = full;
        piece
    }

    fn max_stop(&self) -> usize {
        self.stop.iter().map(String::len).max().unwrap_or(0)
    }
}

/// Length of the longest proper prefix of `stop` that `text` ends with.
fn longest_prefix_suffix(text: &str, stop: &str) -> usize {
    (1..stop.len())
        .rev()
        .find(|&n| stop.is_char_boundary(n) && text.ends_with(&stop[..n]))
        .unwrap_or(0)
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Session<'_> {
    fn forward(&mut self, tokens: &[u32], pos: usize) -> candle_core::Result<Tensor> {
        let x = || Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0);
        match self {
            Session::Llama(m) => m.forward(tokens, pos),
            Session::Phi3(m) => m.forward(&x()?, pos),
            Session::Qwen2(m) => m.forward(&x()?, pos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_of_stop_strings_are_found() {
        assert_eq!(longest_prefix_suffix("hello wo", "world"), 2);
        assert_eq!(longest_prefix_suffix("hello", "world"), 0);
        assert_eq!(longest_prefix_suffix("abc\n\n", "\n\nUser"), 2);
        assert_eq!(longest_prefix_suffix("x é", "éa"), 2);
    }
}
