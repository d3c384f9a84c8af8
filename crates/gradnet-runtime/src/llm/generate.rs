//! The decoding loop: prefill, then one token at a time, with seeded
//! sampling, stop tokens, stop strings (text that might begin one is held
//! back until it cannot), and text streamed out as it becomes valid UTF-8.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use serde::{Deserialize, Serialize};

use super::grammar::{Grammar, GrammarState};
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
    /// Constrain the answer to a grammar (a JSON Schema, a tool call).
    pub grammar: Option<Arc<Grammar>>,
    /// Added to a token's logit before sampling (OpenAI's `logit_bias`).
    pub logit_bias: Vec<(u32, f32)>,
    /// Record each token's log-probability and this many likeliest
    /// alternatives (OpenAI's `logprobs` / `top_logprobs`).
    pub logprobs: Option<usize>,
}

impl PartialEq for Grammar {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// A token's log-probability under the model (before `logit_bias`,
/// temperature and constraints) and the likeliest tokens at its step.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    /// The token's id.
    pub token: u32,
    /// The token's text alone.
    pub text: String,
    /// Natural log of its probability.
    pub logprob: f32,
    /// The likeliest tokens, most likely first (ties: lower id first).
    pub top: Vec<(u32, String, f32)>,
}

/// A piece of settled text, and the log-probabilities of the tokens
/// generated since the last piece (when asked for).
pub struct Piece<'a> {
    /// The text.
    pub text: &'a str,
    /// Log-probabilities of the tokens since the last piece.
    pub logprobs: &'a [TokenLogprob],
}

impl std::ops::Deref for Piece<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.text
    }
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
            grammar: None,
            logit_bias: vec![],
            logprobs: None,
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
    /// Each generated token's log-probability, when asked for.
    pub logprobs: Vec<TokenLogprob>,
}

impl LlmModel {
    /// Generates from `prompt` (token ids). `on_text` receives each piece of
    /// text as it is settled and returns false to stop early.
    pub fn generate(
        &self,
        prompt: &[u32],
        params: &SamplingParams,
        mut on_text: impl FnMut(&Piece<'_>) -> bool,
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
        let mut checker = match (&params.grammar, params.json) {
            (Some(g), _) => Some(Checker::Schema(g, g.start())),
            (None, true) => Some(Checker::Json(json::JsonState::default())),
            (None, false) => None,
        };
        // how much of the decoded text the checker has read
        let mut checked = 0;
        let mut logprobs: Vec<TokenLogprob> = vec![];
        let mut sent_logprobs = 0;
        let mut tokens: Vec<u32> = Vec::new();
        let mut finish = FinishReason::Length;
        while tokens.len() < params.max_tokens {
            let logits1 = logits.squeeze(0).map_err(exec)?;
            let plain = checker.is_none() && params.logit_bias.is_empty();
            let mut v: Vec<f32> = if plain && params.logprobs.is_none() {
                vec![]
            } else {
                logits1.to_vec1().map_err(exec)?
            };
            let step_logprobs = params.logprobs.map(|k| log_probs(&v, k));
            for &(t, b) in &params.logit_bias {
                if let Some(x) = v.get_mut(t as usize) {
                    *x += b;
                }
            }
            let next = if let Some(c) = checker.as_mut() {
                c.feed(&text.decoded[checked..]);
                checked = text.decoded.len();
                match c.status() {
                    json::Prefix::Complete => {
                        // the value is complete: the answer ends here
                        finish = FinishReason::Stop;
                        break;
                    }
                    json::Prefix::Invalid => {
                        return Err(RuntimeError::Execution(
                            "constrained decoding: the text left the grammar".into(),
                        ))
                    }
                    json::Prefix::Partial => {}
                }
                self.constrained_choice(&mut v, c, &mut sampler, temperature.is_none())?
            } else if plain {
                sampler.sample(&logits1).map_err(exec)?
            } else {
                let n = v.len();
                sampler
                    .sample(&Tensor::from_vec(v, n, &Device::Cpu).map_err(exec)?)
                    .map_err(exec)?
            };
            if self.stop_ids.contains(&next) {
                finish = FinishReason::Stop;
                break;
            }
            if let Some((lse, top)) = step_logprobs {
                let x = logits1
                    .get(next as usize)
                    .and_then(|x| x.to_scalar::<f32>())
                    .map_err(exec)?;
                logprobs.push(TokenLogprob {
                    token: next,
                    text: self.piece(next).to_string(),
                    logprob: (x as f64 - lse) as f32,
                    top: top
                        .into_iter()
                        .map(|(t, lp)| (t, self.piece(t).to_string(), lp))
                        .collect(),
                });
            }
            tokens.push(next);
            match text.push(&tokens) {
                Step::Emit(piece) => {
                    if !piece.is_empty() {
                        let p = Piece {
                            text: &piece,
                            logprobs: &logprobs[sent_logprobs..],
                        };
                        sent_logprobs = logprobs.len();
                        if !on_text(&p) {
                            finish = FinishReason::Cancelled;
                            break;
                        }
                    }
                }
                Step::Stop(piece) => {
                    if !piece.is_empty() {
                        on_text(&Piece {
                            text: &piece,
                            logprobs: &logprobs[sent_logprobs..],
                        });
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
                on_text(&Piece {
                    text: &rest,
                    logprobs: &logprobs[sent_logprobs..],
                });
            }
        }
        Ok(Generated {
            text: text.settled,
            finish_reason: finish,
            prompt_tokens: prompt.len(),
            completion_tokens: tokens.len(),
            logprobs,
        })
    }
}

/// A reader of the answer so far, for constrained decoding.
#[derive(Clone)]
enum Checker<'g> {
    Json(json::JsonState),
    Schema(&'g Grammar, GrammarState),
}

impl Checker<'_> {
    fn feed(&mut self, s: &str) -> json::Prefix {
        match self {
            Checker::Json(j) => j.feed(s),
            Checker::Schema(g, st) => st.feed(g, s),
        }
    }

    fn status(&self) -> json::Prefix {
        match self {
            Checker::Json(j) => j.status(),
            Checker::Schema(_, st) => st.status(),
        }
    }

    fn accepts(&self, s: &str) -> bool {
        self.clone().feed(s) != json::Prefix::Invalid
    }
}

/// The log-sum-exp of `v` and its `k` likeliest entries with their
/// log-probabilities. Summed in f64 in index order with a portable `exp`,
/// so every CPU gets the same bits.
fn log_probs(v: &[f32], k: usize) -> (f64, Vec<(u32, f32)>) {
    let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = v.iter().map(|&x| libm::exp(x as f64 - m)).sum();
    let lse = m + libm::log(sum);
    let top = likeliest(v, k)
        .into_iter()
        .map(|t| (t, (v[t as usize] as f64 - lse) as f32))
        .collect();
    (lse, top)
}

/// The `k` highest entries of `v`, highest first, ties to the lower index.
fn likeliest(v: &[f32], k: usize) -> Vec<u32> {
    let k = k.min(v.len());
    if k == 0 {
        return vec![];
    }
    let better = |a: &u32, b: &u32| v[*b as usize].total_cmp(&v[*a as usize]).then(a.cmp(b));
    if k == 1 {
        // one pass; the first of equal maxima wins, as the sort below would
        let best = (1..v.len() as u32).fold(
            0u32,
            |best, i| {
                if better(&i, &best).is_lt() {
                    i
                } else {
                    best
                }
            },
        );
        return vec![best];
    }
    let mut idx: Vec<u32> = (0..v.len() as u32).collect();
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, better);
        idx.truncate(k);
    }
    idx.sort_by(better);
    idx
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

    /// The next token under a constraint: sampled among the likeliest
    /// candidates that keep the text a valid prefix. Greedy decoding takes
    /// the top token when it is valid, which is the same choice at a
    /// fraction of the cost.
    fn constrained_choice(
        &self,
        v: &mut [f32],
        checker: &Checker<'_>,
        sampler: &mut LogitsProcessor,
        greedy: bool,
    ) -> Result<u32> {
        let exec = |e: candle_core::Error| RuntimeError::Execution(e.to_string());
        let valid = |t: u32| {
            if self.stop_ids.contains(&t) {
                return false;
            }
            let piece = self.piece(t);
            !piece.is_empty() && !piece.contains('\u{FFFD}') && checker.accepts(piece)
        };
        if greedy {
            if let Some(&t) = likeliest(v, 1).first() {
                if valid(t) {
                    return Ok(t);
                }
            }
        } else {
            // rejection sampling: a draw from the model's distribution that
            // the grammar accepts is a draw from that distribution limited to
            // valid tokens, at the cost of one check; a refused token is
            // masked and the draw repeated a few times before the search below
            for _ in 0..REDRAWS {
                let t = sampler
                    .sample(&Tensor::new(&*v, &Device::Cpu).map_err(exec)?)
                    .map_err(exec)?;
                if valid(t) {
                    return Ok(t);
                }
                v[t as usize] = f32::NEG_INFINITY;
            }
        }
        // a valid continuation is nearly always among the first few hundred;
        // when the model wants none of them (it was not asked for JSON), the
        // whole vocabulary is searched in the same order
        let mut allowed = vec![];
        for n in [512, v.len()] {
            for t in likeliest(v, n) {
                if valid(t) {
                    allowed.push(t);
                    if allowed.len() == 64 {
                        break;
                    }
                }
            }
            if !allowed.is_empty() {
                break;
            }
        }
        if allowed.is_empty() {
            return Err(RuntimeError::Execution(
                "constrained decoding: no likely token continues the answer".into(),
            ));
        }
        if greedy {
            return Ok(allowed[0]);
        }
        let keep: std::collections::HashSet<u32> = allowed.into_iter().collect();
        for (i, x) in v.iter_mut().enumerate() {
            if !keep.contains(&(i as u32)) {
                *x = f32::NEG_INFINITY;
            }
        }
        let masked = Tensor::new(&*v, &Device::Cpu).map_err(exec)?;
        sampler.sample(&masked).map_err(exec)
    }
}

/// Draws per sampled constrained step before valid tokens are searched.
const REDRAWS: usize = 4;

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
    fn the_likeliest_token_is_the_first_of_the_sorted_ones() {
        let v = [0.5f32, 2.0, -1.0, 2.0, f32::NEG_INFINITY, 1.5];
        assert_eq!(likeliest(&v, 1), [1]);
        assert_eq!(likeliest(&v, 3), [1, 3, 5]);
        assert_eq!(likeliest(&[f32::NEG_INFINITY; 3], 1), [0]);
    }

    #[test]
    fn prefixes_of_stop_strings_are_found() {
        assert_eq!(longest_prefix_suffix("hello wo", "world"), 2);
        assert_eq!(longest_prefix_suffix("hello", "world"), 0);
        assert_eq!(longest_prefix_suffix("abc\n\n", "\n\nUser"), 2);
        assert_eq!(longest_prefix_suffix("x é", "éa"), 2);
    }
}
