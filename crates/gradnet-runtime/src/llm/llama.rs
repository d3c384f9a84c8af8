//! The llama-family transformer (llama, SmolLM, Mistral-style GQA) on plain
//! f32 buffers. Matrix products go to the Q4_1 kernel when the weights are
//! Q4_1 and to candle's quantized matmul otherwise; the rest (norms, RoPE,
//! attention, SwiGLU) is a few loops per token that run on one thread in a
//! fixed order, so outputs do not depend on the thread count. The KV cache is
//! an append-only buffer per layer; a session is cheap to clone for the
//! prefix cache.

use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul};
use candle_core::{Device, Module, Result, Tensor};

use super::q4_1::{Q41Matrix, Q8Rows};

/// A weight matrix `out x in` applied to rows of activations.
enum Linear {
    Q41(Q41Matrix),
    Candle(QMatMul, usize),
}

impl Linear {
    fn load<R: std::io::Read + std::io::Seek>(
        ct: &gguf_file::Content,
        r: &mut R,
        name: &str,
    ) -> Result<Self> {
        let t = ct.tensor(r, name, &Device::Cpu)?;
        let (n, k) = t.shape().dims2()?;
        if t.dtype() == GgmlDType::Q4_1 {
            let data = t.data()?.into_owned();
            return Q41Matrix::new(n, k, data)
                .map(Linear::Q41)
                .map_err(candle_core::Error::msg);
        }
        Ok(Linear::Candle(QMatMul::from_qtensor(t)?, n))
    }

    fn out_dim(&self) -> usize {
        match self {
            Linear::Q41(m) => m.rows(),
            Linear::Candle(_, n) => *n,
        }
    }

    /// `rows` rows of `x` times the transposed weights.
    fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        match self {
            Linear::Q41(m) => {
                let mut out = vec![0f32; rows * m.rows()];
                m.matmul(&Q8Rows::quantize(x, m.cols()), rows, &mut out);
                Ok(out)
            }
            Linear::Candle(m, _) => {
                let t = Tensor::from_slice(x, (rows, x.len() / rows), &Device::Cpu)?;
                m.forward(&t)?.flatten_all()?.to_vec1()
            }
        }
    }
}

/// Several matrices applied to the same input (q, k, v; gate, up): stacked
/// into one when all are Q4_1, so one pass over the thread pool does them all.
enum Projections {
    Stacked(Q41Matrix, Vec<usize>),
    Each(Vec<Linear>),
}

impl Projections {
    fn new(parts: Vec<Linear>) -> Self {
        if !parts.iter().all(|p| matches!(p, Linear::Q41(_))) {
            return Projections::Each(parts);
        }
        let mats: Vec<Q41Matrix> = parts
            .into_iter()
            .map(|p| match p {
                Linear::Q41(m) => m,
                Linear::Candle(..) => unreachable!(),
            })
            .collect();
        let widths = mats.iter().map(Q41Matrix::rows).collect();
        match Q41Matrix::stack(mats) {
            Ok(m) => Projections::Stacked(m, widths),
            Err(mats) => Projections::Each(mats.into_iter().map(Linear::Q41).collect()),
        }
    }

    /// Each matrix's output for `rows` rows of `x`.
    fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<Vec<f32>>> {
        match self {
            Projections::Each(parts) => parts.iter().map(|p| p.forward(x, rows)).collect(),
            Projections::Stacked(m, widths) => {
                let mut all = vec![0f32; rows * m.rows()];
                m.matmul(&Q8Rows::quantize(x, m.cols()), rows, &mut all);
                let mut outs: Vec<Vec<f32>> = widths
                    .iter()
                    .map(|w| Vec::with_capacity(rows * w))
                    .collect();
                for row in all.chunks_exact(m.rows()) {
                    let mut at = 0;
                    for (out, w) in outs.iter_mut().zip(widths) {
                        out.extend_from_slice(&row[at..at + w]);
                        at += w;
                    }
                }
                Ok(outs)
            }
        }
    }
}

/// Token embeddings: Q4_1 rows dequantized on lookup, anything else held as f32.
enum Embeddings {
    Q41(Q41Matrix),
    F32(Vec<f32>),
}

struct Layer {
    attn_norm: Vec<f32>,
    /// q, k, v
    qkv: Projections,
    wo: Linear,
    ffn_norm: Vec<f32>,
    /// gate, up
    gate_up: Projections,
    down: Linear,
}

pub struct LlamaWeights {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    output: Linear,
    hidden: usize,
    vocab: usize,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    rope_dim: usize,
    eps: f32,
    /// cos and sin of position x frequency, `rope_dim / 2` per position.
    cos: Vec<f32>,
    sin: Vec<f32>,
    pub context_length: usize,
}

/// One request's state: the shared weights and its own KV cache.
#[derive(Clone)]
pub struct LlamaSession {
    weights: Arc<LlamaWeights>,
    /// Per layer, keys and values by position: `[pos][kv_head][head_dim]`.
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
}

fn vector<R: std::io::Read + std::io::Seek>(
    ct: &gguf_file::Content,
    r: &mut R,
    name: &str,
) -> Result<Vec<f32>> {
    ct.tensor(r, name, &Device::Cpu)?
        .dequantize(&Device::Cpu)?
        .flatten_all()?
        .to_vec1()
}

impl LlamaWeights {
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        ct: &gguf_file::Content,
        r: &mut R,
        max_context: usize,
    ) -> Result<Self> {
        let md = |k: &str| {
            ct.metadata
                .get(k)
                .ok_or_else(|| candle_core::Error::msg(format!("cannot find {k} in metadata")))
        };
        let n_head = md("llama.attention.head_count")?.to_u32()? as usize;
        let n_kv_head = md("llama.attention.head_count_kv")?.to_u32()? as usize;
        let blocks = md("llama.block_count")?.to_u32()? as usize;
        let hidden = md("llama.embedding_length")?.to_u32()? as usize;
        let eps = md("llama.attention.layer_norm_rms_epsilon")?.to_f32()?;
        let head_dim = hidden / n_head;
        let rope_dim = md("llama.rope.dimension_count")
            .and_then(|v| v.to_u32())
            .map(|v| v as usize)
            .unwrap_or(head_dim);
        let base = md("llama.rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(10000.0);
        if md("llama.expert_count")
            .and_then(|v| v.to_u32())
            .unwrap_or(0)
            > 1
        {
            candle_core::bail!("mixture-of-experts llama models are not supported");
        }
        if n_kv_head == 0 || n_head % n_kv_head != 0 || rope_dim > head_dim || rope_dim % 2 != 0 {
            candle_core::bail!("inconsistent llama attention shape ({n_head} heads, {n_kv_head} kv heads, rope {rope_dim})");
        }
        let context_length = md("llama.context_length")
            .and_then(|v| v.to_u32())
            .map(|v| v as usize)
            .unwrap_or(2048)
            .min(max_context);

        let half = rope_dim / 2;
        let freqs: Vec<f32> = (0..half)
            .map(|i| 1.0 / base.powf((2 * i) as f32 / rope_dim as f32))
            .collect();
        let (mut cos, mut sin) = (
            Vec::with_capacity(context_length * half),
            Vec::with_capacity(context_length * half),
        );
        for p in 0..context_length {
            for f in &freqs {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }

        let embd = ct.tensor(r, "token_embd.weight", &Device::Cpu)?;
        let (vocab, _) = embd.shape().dims2()?;
        let embeddings = if embd.dtype() == GgmlDType::Q4_1 {
            Embeddings::Q41(
                Q41Matrix::new(vocab, hidden, embd.data()?.into_owned())
                    .map_err(candle_core::Error::msg)?,
            )
        } else {
            Embeddings::F32(embd.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1()?)
        };
        let output = if ct.tensor_infos.contains_key("output.weight") {
            Linear::load(ct, r, "output.weight")?
        } else {
            Linear::load(ct, r, "token_embd.weight")?
        };
        let mut layers = Vec::with_capacity(blocks);
        for i in 0..blocks {
            let name = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(Layer {
                attn_norm: vector(ct, r, &name("attn_norm"))?,
                qkv: Projections::new(vec![
                    Linear::load(ct, r, &name("attn_q"))?,
                    Linear::load(ct, r, &name("attn_k"))?,
                    Linear::load(ct, r, &name("attn_v"))?,
                ]),
                wo: Linear::load(ct, r, &name("attn_output"))?,
                ffn_norm: vector(ct, r, &name("ffn_norm"))?,
                gate_up: Projections::new(vec![
                    Linear::load(ct, r, &name("ffn_gate"))?,
                    Linear::load(ct, r, &name("ffn_up"))?,
                ]),
                down: Linear::load(ct, r, &name("ffn_down"))?,
            });
        }
        Ok(LlamaWeights {
            embeddings,
            layers,
            norm: vector(ct, r, "output_norm.weight")?,
            vocab: output.out_dim(),
            output,
            hidden,
            n_head,
            n_kv_head,
            head_dim,
            rope_dim,
            eps,
            cos,
            sin,
            context_length,
        })
    }

    fn embed(&self, tokens: &[u32]) -> Result<Vec<f32>> {
        let h = self.hidden;
        let mut x = vec![0f32; tokens.len() * h];
        for (t, out) in tokens.iter().zip(x.chunks_exact_mut(h)) {
            let t = *t as usize;
            if t >= self.vocab {
                candle_core::bail!("token {t} is outside the vocabulary");
            }
            match &self.embeddings {
                Embeddings::Q41(m) => m.dequantize_row(t, out),
                Embeddings::F32(v) => out.copy_from_slice(&v[t * h..(t + 1) * h]),
            }
        }
        Ok(x)
    }

    /// Rotates pairs `(2i, 2i+1)` of each head (llama's interleaved RoPE).
    fn rope(&self, x: &mut [f32], heads: usize, pos: usize) {
        let half = self.rope_dim / 2;
        let (cos, sin) = (
            &self.cos[pos * half..(pos + 1) * half],
            &self.sin[pos * half..(pos + 1) * half],
        );
        for head in x.chunks_exact_mut(self.head_dim).take(heads) {
            for i in 0..half {
                let (a, b) = (head[2 * i], head[2 * i + 1]);
                head[2 * i] = a * cos[i] - b * sin[i];
                head[2 * i + 1] = a * sin[i] + b * cos[i];
            }
        }
    }
}

fn rms_norm(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(weight.len()) {
        let mean = sum_lanes(row.iter().map(|v| v * v)) / row.len() as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        out.extend(row.iter().zip(weight).map(|(v, w)| v * scale * w));
    }
    out
}

/// A sum in eight interleaved lanes, then a fixed tree: vectorizes without
/// reassociating, so the bits do not depend on the compiler's choices.
fn sum_lanes(it: impl Iterator<Item = f32>) -> f32 {
    let mut lanes = [0f32; 8];
    for (i, v) in it.enumerate() {
        lanes[i % 8] += v;
    }
    ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6]))
        + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    sum_lanes(lanes.into_iter()) + tail
}

fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

impl LlamaSession {
    pub fn new(weights: Arc<LlamaWeights>) -> Self {
        let n = weights.layers.len();
        LlamaSession {
            weights,
            keys: vec![Vec::new(); n],
            values: vec![Vec::new(); n],
        }
    }

    /// Positions in the KV cache.
    pub fn len(&self) -> usize {
        let w = &self.weights;
        self.keys
            .first()
            .map_or(0, |k| k.len() / (w.n_kv_head * w.head_dim))
    }

    /// Runs `tokens` at positions `pos..`; returns the last position's
    /// logits as a `(1, vocab)` tensor.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor> {
        let w = self.weights.clone();
        let t = tokens.len();
        if t == 0 || pos + t > w.context_length {
            candle_core::bail!(
                "positions {pos}..{} exceed the context of {}",
                pos + t,
                w.context_length
            );
        }
        if pos > self.len() {
            candle_core::bail!("position {pos} is past the {} cached", self.len());
        }
        self.truncate(pos);
        let (hd, kvw) = (w.head_dim, w.n_kv_head * w.head_dim);
        let mut x = w.embed(tokens)?;
        for (l, layer) in w.layers.iter().enumerate() {
            let h = rms_norm(&x, &layer.attn_norm, w.eps);
            let [mut q, mut k, v]: [Vec<f32>; 3] = layer
                .qkv
                .forward(&h, t)?
                .try_into()
                .expect("three projections");
            for i in 0..t {
                w.rope(
                    &mut q[i * w.n_head * hd..(i + 1) * w.n_head * hd],
                    w.n_head,
                    pos + i,
                );
                w.rope(&mut k[i * kvw..(i + 1) * kvw], w.n_kv_head, pos + i);
            }
            self.keys[l].extend_from_slice(&k);
            self.values[l].extend_from_slice(&v);
            let att = self.attention(l, &q, pos, t);
            add_in_place(&mut x, &layer.wo.forward(&att, t)?);

            let h = rms_norm(&x, &layer.ffn_norm, w.eps);
            let [mut g, u]: [Vec<f32>; 2] = layer
                .gate_up
                .forward(&h, t)?
                .try_into()
                .expect("two projections");
            for (a, b) in g.iter_mut().zip(&u) {
                *a = *a / (1.0 + (-*a).exp()) * b;
            }
            add_in_place(&mut x, &layer.down.forward(&g, t)?);
        }
        let last = rms_norm(&x[(t - 1) * w.hidden..], &w.norm, w.eps);
        let logits = w.output.forward(&last, 1)?;
        Tensor::from_vec(logits, (1, w.vocab), &Device::Cpu)
    }

    /// Causal attention of `t` queries at `pos..` over the cache, grouped
    /// query heads sharing their kv head.
    fn attention(&self, l: usize, q: &[f32], pos: usize, t: usize) -> Vec<f32> {
        let w = &self.weights;
        let (hd, group, kvw) = (w.head_dim, w.n_head / w.n_kv_head, w.n_kv_head * w.head_dim);
        let scale = 1.0 / (hd as f32).sqrt();
        let (keys, values) = (&self.keys[l], &self.values[l]);
        let mut out = vec![0f32; t * w.n_head * hd];
        let mut scores = Vec::with_capacity(pos + t);
        for i in 0..t {
            let span = pos + i + 1;
            for h in 0..w.n_head {
                let qh = &q[(i * w.n_head + h) * hd..][..hd];
                let kv = (h / group) * hd;
                scores.clear();
                scores.extend((0..span).map(|j| dot(qh, &keys[j * kvw + kv..][..hd]) * scale));
                let max = scores.iter().fold(f32::NEG_INFINITY, |a, s| a.max(*s));
                let mut total = 0f32;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    total += *s;
                }
                let o = &mut out[(i * w.n_head + h) * hd..][..hd];
                for (j, s) in scores.iter().enumerate() {
                    let p = s / total;
                    for (a, b) in o.iter_mut().zip(&values[j * kvw + kv..][..hd]) {
                        *a += p * b;
                    }
                }
            }
        }
        out
    }

    fn truncate(&mut self, pos: usize) {
        let kvw = self.weights.n_kv_head * self.weights.head_dim;
        for c in self.keys.iter_mut().chain(self.values.iter_mut()) {
            c.truncate(pos * kvw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_transformers::models::quantized_llama;

    /// The tiny model with every Q4_1 matrix widened to Q8_0, so that this
    /// implementation and candle's reference multiply with the same kernel.
    fn widened_tiny() -> Vec<u8> {
        let bytes = crate::llm::sample::tiny_llama(3);
        let mut r = std::io::Cursor::new(&bytes);
        let ct = gguf_file::Content::read(&mut r).unwrap();
        crate::llm::widen(&ct, &mut r, false).unwrap().0.unwrap()
    }

    #[test]
    fn logits_match_candles_reference_llama() {
        let bytes = widened_tiny();
        let mut r = std::io::Cursor::new(&bytes);
        let ct = gguf_file::Content::read(&mut r).unwrap();
        let ours = Arc::new(LlamaWeights::from_gguf(&ct, &mut r, 4096).unwrap());
        let mut theirs =
            quantized_llama::ModelWeights::from_gguf(ct, &mut r, &Device::Cpu).unwrap();
        let mut session = LlamaSession::new(ours);
        let prompt: Vec<u32> = (0..40).map(|i| (i * 37 + 5) % 200).collect();
        // a 32-token chunk, an 8-token chunk, then single tokens
        let mut pos = 0;
        for chunk in [&prompt[..32], &prompt[32..], &[7], &[11], &[13]] {
            let a = session.forward(chunk, pos).unwrap().flatten_all().unwrap();
            let x = Tensor::new(chunk, &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let b = theirs.forward(&x, pos).unwrap().flatten_all().unwrap();
            let (a, b): (Vec<f32>, Vec<f32>) = (a.to_vec1().unwrap(), b.to_vec1().unwrap());
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() <= scale * 1e-4,
                    "pos {pos} logit {i}: {x} vs {y}"
                );
            }
            pos += chunk.len();
        }
        assert_eq!(session.len(), pos);
    }

    #[test]
    fn a_session_rewinds_and_refuses_gaps() {
        let bytes = crate::llm::sample::tiny_llama(4);
        let mut r = std::io::Cursor::new(&bytes);
        let ct = gguf_file::Content::read(&mut r).unwrap();
        let w = Arc::new(LlamaWeights::from_gguf(&ct, &mut r, 4096).unwrap());
        let mut s = LlamaSession::new(w.clone());
        let first = s
            .forward(&[1, 2, 3], 0)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        s.forward(&[4, 5], 3).unwrap();
        // rewinding to position 0 gives the first answer again, bit for bit
        let again = s
            .forward(&[1, 2, 3], 0)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(first, again);
        assert!(s.forward(&[1], 10).is_err());
        assert!(s.forward(&[1], w.context_length).is_err());
        assert!(s.forward(&[u32::MAX], 0).is_err());
    }
}
