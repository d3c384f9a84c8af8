//! The llama-family transformer (llama, SmolLM, Mistral-style GQA) and
//! Gemma 3 (the same skeleton plus embedding scale, QK norms, norms after
//! attention and FFN, GELU, sliding-window layers with their own RoPE base)
//! on plain f32 buffers. Q4_1, Q8_0, Q5_0, Q4_K and Q6_K matrices go to
//! gradnet's kernels (`quant`, via `convert`), other formats to candle's
//! quantized matmul; the rest (norms, RoPE,
//! attention, SwiGLU) is a few loops per token that run on one thread in a
//! fixed order. Several sessions can run in one pass (`forward_many`): the
//! matrices multiply all their rows at once, so the weights are read once
//! for all of them, and each row's result has the same bits as it would
//! alone. The KV cache is an append-only buffer per layer; a session is
//! cheap to clone for the prefix cache.

use std::sync::Arc;

use candle_core::quantized::{gguf_file, QMatMul};
use candle_core::{Device, Module, Result, Tensor};

use super::convert::own_matrix;
use super::quant::{matmul_side_by_side, Q8Rows, QMatrix};

/// A weight matrix `out x in` applied to rows of activations.
enum Linear {
    Own(QMatrix),
    Candle(QMatMul, usize),
}

impl Linear {
    fn load<R: std::io::Read + std::io::Seek>(
        ct: &gguf_file::Content,
        r: &mut R,
        name: &str,
    ) -> Result<Self> {
        let t = ct.tensor(r, name, &Device::Cpu)?;
        if let Some(m) = own_matrix(&t) {
            return Ok(Linear::Own(m?));
        }
        let (n, _) = t.shape().dims2()?;
        Ok(Linear::Candle(QMatMul::from_qtensor(t)?, n))
    }

    fn out_dim(&self) -> usize {
        match self {
            Linear::Own(m) => m.rows(),
            Linear::Candle(_, n) => *n,
        }
    }

    /// Rows of `x` times the transposed weights; `groups` are the row counts
    /// of the sessions in the pass. candle's kernels may round differently
    /// with more rows, so they see each session's rows on their own.
    fn forward(&self, x: &[f32], groups: &[usize]) -> Result<Vec<f32>> {
        let rows: usize = groups.iter().sum();
        match self {
            Linear::Own(m) => Ok(own_forward(m, x, rows)),
            Linear::Candle(m, n) => {
                let k = x.len() / rows;
                let mut out = Vec::with_capacity(rows * n);
                let mut at = 0;
                for g in groups {
                    let t = Tensor::from_slice(&x[at * k..(at + g) * k], (*g, k), &Device::Cpu)?;
                    out.extend(m.forward(&t)?.flatten_all()?.to_vec1::<f32>()?);
                    at += g;
                }
                Ok(out)
            }
        }
    }
}

fn own_forward(m: &QMatrix, x: &[f32], rows: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows * m.rows()];
    m.matmul(&Q8Rows::quantize(x, m.cols()), rows, &mut out);
    out
}

/// Several matrices applied to the same input (q, k, v; gate, up): one pass
/// over the thread pool does them all when gradnet's kernels hold them.
enum Projections {
    Stacked(Vec<QMatrix>),
    Each(Vec<Linear>),
}

impl Projections {
    fn new(parts: Vec<Linear>) -> Self {
        let k = |p: &Linear| match p {
            Linear::Own(m) => Some(m.cols()),
            Linear::Candle(..) => None,
        };
        let first = k(&parts[0]);
        if first.is_none() || parts.iter().any(|p| k(p) != first) {
            return Projections::Each(parts);
        }
        Projections::Stacked(
            parts
                .into_iter()
                .map(|p| match p {
                    Linear::Own(m) => m,
                    Linear::Candle(..) => unreachable!(),
                })
                .collect(),
        )
    }

    /// Each matrix's output for the rows of `x`.
    fn forward(&self, x: &[f32], groups: &[usize]) -> Result<Vec<Vec<f32>>> {
        match self {
            Projections::Each(parts) => parts.iter().map(|p| p.forward(x, groups)).collect(),
            Projections::Stacked(mats) => {
                let rows = groups.iter().sum();
                let width: usize = mats.iter().map(QMatrix::rows).sum();
                let mut all = vec![0f32; rows * width];
                matmul_side_by_side(mats, &Q8Rows::quantize(x, mats[0].cols()), rows, &mut all);
                let mut outs: Vec<Vec<f32>> = mats
                    .iter()
                    .map(|m| Vec::with_capacity(rows * m.rows()))
                    .collect();
                for row in all.chunks_exact(width) {
                    let mut at = 0;
                    for (out, m) in outs.iter_mut().zip(mats) {
                        out.extend_from_slice(&row[at..at + m.rows()]);
                        at += m.rows();
                    }
                }
                Ok(outs)
            }
        }
    }
}

/// Token embeddings: Q4_1 / Q8_0 rows dequantized on lookup, anything else
/// held as f32.
enum Embeddings {
    Own(QMatrix),
    F32(Vec<f32>),
    /// The output layer's own matrix (tied weights): held once.
    Output,
}

struct Layer {
    attn_norm: Vec<f32>,
    /// q, k, v
    qkv: Projections,
    /// Per-head RMS norms of queries and keys (Gemma 3).
    qk_norm: Option<(Vec<f32>, Vec<f32>)>,
    wo: Linear,
    /// Norm of the attention's output before the residual add (Gemma 3).
    post_attn_norm: Option<Vec<f32>>,
    ffn_norm: Vec<f32>,
    /// gate, up
    gate_up: Projections,
    down: Linear,
    post_ffn_norm: Option<Vec<f32>>,
    /// Keys a query sees, itself included, on sliding-window layers.
    window: Option<usize>,
    /// Which RoPE table the layer uses.
    rope: usize,
}

/// What differs between the families the skeleton serves.
struct Flavor {
    /// RoPE rotates `(i, i + half)` (NeoX, Gemma) instead of `(2i, 2i+1)`.
    neox: bool,
    /// Embeddings are scaled by `sqrt(hidden)` (Gemma).
    embed_scale: Option<f32>,
    /// The FFN gate is GELU (tanh form) instead of SiLU (Gemma).
    gelu: bool,
}

pub(super) struct LlamaWeights {
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
    flavor: Flavor,
    /// Per RoPE base, cos and sin of position x frequency, `rope_dim / 2`
    /// per position.
    ropes: Vec<(Vec<f32>, Vec<f32>)>,
    pub context_length: usize,
}

/// One request's state: the shared weights and its own KV cache.
#[derive(Clone)]
pub(super) struct LlamaSession {
    weights: Arc<LlamaWeights>,
    /// Per layer, keys and values by position: `[pos][kv_head][head_dim]`.
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
}

/// One session's part of a pass: `tokens` at positions `pos..`.
pub(super) struct Step<'a> {
    pub session: &'a mut LlamaSession,
    pub tokens: &'a [u32],
    pub pos: usize,
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
    pub(super) fn from_gguf<R: std::io::Read + std::io::Seek>(
        ct: &gguf_file::Content,
        r: &mut R,
        max_context: usize,
    ) -> Result<Self> {
        let arch = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .map_or("llama", String::as_str);
        let gemma = arch == "gemma3";
        let md = |k: &str| {
            let k = format!("{arch}.{k}");
            ct.metadata
                .get(&k)
                .ok_or_else(|| candle_core::Error::msg(format!("cannot find {k} in metadata")))
        };
        let n_head = md("attention.head_count")?.to_u32()? as usize;
        let n_kv_head = md("attention.head_count_kv")?.to_u32()? as usize;
        let blocks = md("block_count")?.to_u32()? as usize;
        let hidden = md("embedding_length")?.to_u32()? as usize;
        let eps = md("attention.layer_norm_rms_epsilon")?.to_f32()?;
        let head_dim = md("attention.key_length")
            .and_then(|v| v.to_u32())
            .map_or(hidden / n_head.max(1), |v| v as usize);
        let rope_dim = md("rope.dimension_count")
            .and_then(|v| v.to_u32())
            .map(|v| v as usize)
            .unwrap_or(head_dim);
        let base = md("rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(if gemma { 1_000_000.0 } else { 10000.0 });
        if md("expert_count").and_then(|v| v.to_u32()).unwrap_or(0) > 1 {
            candle_core::bail!("mixture-of-experts models are not supported");
        }
        if n_kv_head == 0
            || !n_head.is_multiple_of(n_kv_head)
            || rope_dim > head_dim
            || rope_dim % 2 != 0
            || md("attention.value_length")
                .and_then(|v| v.to_u32())
                .is_ok_and(|v| v as usize != head_dim)
        {
            candle_core::bail!("inconsistent attention shape ({n_head} heads, {n_kv_head} kv heads, head {head_dim}, rope {rope_dim})");
        }
        if gemma && md("rope.scaling.type").is_ok() {
            candle_core::bail!("Gemma 3 with RoPE scaling is not supported");
        }
        let context_length = md("context_length")
            .and_then(|v| v.to_u32())
            .map(|v| v as usize)
            .unwrap_or(2048)
            .min(max_context);
        // Gemma 3: five sliding-window layers (local RoPE base) per global one
        let (window, period, local_base) = if gemma {
            let w = md("attention.sliding_window")?.to_u32()? as usize;
            let p = md("attention.sliding_window_type")
                .and_then(|v| v.to_u32())
                .map_or(6, |v| v as usize);
            let b = md("rope.local_freq_base")
                .and_then(|v| v.to_f32())
                .unwrap_or(10000.0);
            (Some(w), p.max(1), b)
        } else {
            (None, 1, base)
        };
        let sliding = |i: usize| window.is_some() && !(i + 1).is_multiple_of(period);
        let ropes = [base, local_base]
            .iter()
            .map(|b| rope_table(*b, rope_dim, context_length))
            .collect();

        let tied = !ct.tensor_infos.contains_key("output.weight");
        let output = Linear::load(
            ct,
            r,
            if tied {
                "token_embd.weight"
            } else {
                "output.weight"
            },
        )?;
        let embeddings = if tied && matches!(output, Linear::Own(_)) {
            Embeddings::Output
        } else {
            let embd = ct.tensor(r, "token_embd.weight", &Device::Cpu)?;
            if let Some(m) = own_matrix(&embd) {
                Embeddings::Own(m?)
            } else {
                Embeddings::F32(embd.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1()?)
            }
        };
        let mut layers = Vec::with_capacity(blocks);
        for i in 0..blocks {
            let name = |s: &str| format!("blk.{i}.{s}.weight");
            let mut optional = |s: &str| -> Result<Option<Vec<f32>>> {
                if gemma {
                    vector(ct, r, &name(s)).map(Some)
                } else {
                    Ok(None)
                }
            };
            let qk_norm = match (optional("attn_q_norm")?, optional("attn_k_norm")?) {
                (Some(q), Some(k)) => Some((q, k)),
                _ => None,
            };
            let post_attn_norm = optional("post_attention_norm")?;
            let post_ffn_norm = optional("post_ffw_norm")?;
            layers.push(Layer {
                attn_norm: vector(ct, r, &name("attn_norm"))?,
                qkv: Projections::new(vec![
                    Linear::load(ct, r, &name("attn_q"))?,
                    Linear::load(ct, r, &name("attn_k"))?,
                    Linear::load(ct, r, &name("attn_v"))?,
                ]),
                qk_norm,
                wo: Linear::load(ct, r, &name("attn_output"))?,
                post_attn_norm,
                ffn_norm: vector(ct, r, &name("ffn_norm"))?,
                gate_up: Projections::new(vec![
                    Linear::load(ct, r, &name("ffn_gate"))?,
                    Linear::load(ct, r, &name("ffn_up"))?,
                ]),
                down: Linear::load(ct, r, &name("ffn_down"))?,
                post_ffn_norm,
                window: window.filter(|_| sliding(i)),
                rope: usize::from(sliding(i)),
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
            flavor: Flavor {
                neox: gemma,
                embed_scale: gemma.then(|| (hidden as f32).sqrt()),
                gelu: gemma,
            },
            ropes,
            context_length,
        })
    }

    /// Runs each step's tokens in one pass and returns each step's
    /// last-position logits. All sessions must use these weights.
    pub(super) fn forward_many(&self, steps: &mut [Step<'_>]) -> Result<Vec<Vec<f32>>> {
        let (kvw, qw) = (self.n_kv_head * self.head_dim, self.n_head * self.head_dim);
        for s in steps.iter_mut() {
            let (t, pos) = (s.tokens.len(), s.pos);
            if !std::ptr::eq(Arc::as_ptr(&s.session.weights), self) {
                candle_core::bail!("a session of another model");
            }
            if t == 0 || pos + t > self.context_length {
                candle_core::bail!(
                    "positions {pos}..{} exceed the context of {}",
                    pos + t,
                    self.context_length
                );
            }
            if pos > s.session.len() {
                candle_core::bail!("position {pos} is past the {} cached", s.session.len());
            }
            s.session.truncate(pos);
        }
        let groups: Vec<usize> = steps.iter().map(|s| s.tokens.len()).collect();
        let tokens: Vec<u32> = steps
            .iter()
            .flat_map(|s| s.tokens.iter().copied())
            .collect();
        let mut x = self.embed(&tokens)?;
        for (l, layer) in self.layers.iter().enumerate() {
            let h = rms_norm(&x, &layer.attn_norm, self.eps);
            let [mut q, mut k, v]: [Vec<f32>; 3] = layer
                .qkv
                .forward(&h, &groups)?
                .try_into()
                .expect("three projections");
            if let Some((qn, kn)) = &layer.qk_norm {
                q = rms_norm(&q, qn, self.eps);
                k = rms_norm(&k, kn, self.eps);
            }
            let mut att = Vec::with_capacity(q.len());
            let mut row = 0;
            for s in steps.iter_mut() {
                let t = s.tokens.len();
                for i in 0..t {
                    self.rope(
                        layer.rope,
                        &mut q[(row + i) * qw..(row + i + 1) * qw],
                        self.n_head,
                        s.pos + i,
                    );
                    self.rope(
                        layer.rope,
                        &mut k[(row + i) * kvw..(row + i + 1) * kvw],
                        self.n_kv_head,
                        s.pos + i,
                    );
                }
                s.session.keys[l].extend_from_slice(&k[row * kvw..(row + t) * kvw]);
                s.session.values[l].extend_from_slice(&v[row * kvw..(row + t) * kvw]);
                s.session.attention(
                    l,
                    layer.window,
                    &q[row * qw..(row + t) * qw],
                    s.pos,
                    t,
                    &mut att,
                );
                row += t;
            }
            let o = layer.wo.forward(&att, &groups)?;
            add_in_place(&mut x, &post_norm(o, &layer.post_attn_norm, self.eps));

            let h = rms_norm(&x, &layer.ffn_norm, self.eps);
            let [mut g, u]: [Vec<f32>; 2] = layer
                .gate_up
                .forward(&h, &groups)?
                .try_into()
                .expect("two projections");
            if self.flavor.gelu {
                for (a, b) in g.iter_mut().zip(&u) {
                    *a = gelu_tanh(*a) * b;
                }
            } else {
                for (a, b) in g.iter_mut().zip(&u) {
                    *a = *a / (1.0 + (-*a).exp()) * b;
                }
            }
            let d = layer.down.forward(&g, &groups)?;
            add_in_place(&mut x, &post_norm(d, &layer.post_ffn_norm, self.eps));
        }
        // each step's last row
        let mut last = Vec::with_capacity(steps.len() * self.hidden);
        let mut row = 0;
        for g in &groups {
            row += g;
            last.extend_from_slice(&x[(row - 1) * self.hidden..row * self.hidden]);
        }
        let last = rms_norm(&last, &self.norm, self.eps);
        let ones = vec![1; steps.len()];
        let logits = self.output.forward(&last, &ones)?;
        Ok(logits
            .chunks_exact(self.vocab)
            .map(<[f32]>::to_vec)
            .collect())
    }

    pub(super) fn vocab(&self) -> usize {
        self.vocab
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
                Embeddings::Own(m) => m.dequantize_row(t, out),
                Embeddings::F32(v) => out.copy_from_slice(&v[t * h..(t + 1) * h]),
                Embeddings::Output => match &self.output {
                    Linear::Own(m) => m.dequantize_row(t, out),
                    Linear::Candle(..) => unreachable!("tied only to gradnet's own matrix"),
                },
            }
            if let Some(scale) = self.flavor.embed_scale {
                out.iter_mut().for_each(|v| *v *= scale);
            }
        }
        Ok(x)
    }

    /// Rotates pairs `(2i, 2i+1)` of each head (llama's interleaved RoPE)
    /// or `(i, i + half)` (NeoX's), with table `table`'s angles.
    fn rope(&self, table: usize, x: &mut [f32], heads: usize, pos: usize) {
        let half = self.rope_dim / 2;
        let (cos, sin) = &self.ropes[table];
        let (cos, sin) = (
            &cos[pos * half..(pos + 1) * half],
            &sin[pos * half..(pos + 1) * half],
        );
        let (stride, offset) = if self.flavor.neox { (1, half) } else { (2, 1) };
        for head in x.chunks_exact_mut(self.head_dim).take(heads) {
            for i in 0..half {
                let (ia, ib) = (stride * i, stride * i + offset);
                let (a, b) = (head[ia], head[ib]);
                head[ia] = a * cos[i] - b * sin[i];
                head[ib] = a * sin[i] + b * cos[i];
            }
        }
    }
}

/// cos and sin of `p * base^(-2i/dim)` for positions below `positions`.
fn rope_table(base: f32, rope_dim: usize, positions: usize) -> (Vec<f32>, Vec<f32>) {
    let half = rope_dim / 2;
    let freqs: Vec<f32> = (0..half)
        .map(|i| 1.0 / base.powf((2 * i) as f32 / rope_dim as f32))
        .collect();
    let (mut cos, mut sin) = (
        Vec::with_capacity(positions * half),
        Vec::with_capacity(positions * half),
    );
    for p in 0..positions {
        for f in &freqs {
            let a = p as f32 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    (cos, sin)
}

/// `x` normalized by `weight` when the layer has that norm.
fn post_norm(x: Vec<f32>, weight: &Option<Vec<f32>>, eps: f32) -> Vec<f32> {
    match weight {
        Some(w) => rms_norm(&x, w, eps),
        None => x,
    }
}

/// GELU's tanh form, as Gemma's `gelu_pytorch_tanh`, with libm's `tanhf`
/// (the same bits on every CPU).
fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + libm::tanhf(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
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
    pub(super) fn new(weights: Arc<LlamaWeights>) -> Self {
        let n = weights.layers.len();
        LlamaSession {
            weights,
            keys: vec![Vec::new(); n],
            values: vec![Vec::new(); n],
        }
    }

    /// Positions in the KV cache.
    pub(super) fn len(&self) -> usize {
        let w = &self.weights;
        self.keys
            .first()
            .map_or(0, |k| k.len() / (w.n_kv_head * w.head_dim))
    }

    /// Runs `tokens` at positions `pos..`; returns the last position's
    /// logits as a `(1, vocab)` tensor.
    pub(super) fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor> {
        let weights = self.weights.clone();
        let mut logits = weights.forward_many(&mut [Step {
            session: self,
            tokens,
            pos,
        }])?;
        let vocab = weights.vocab;
        Tensor::from_vec(logits.remove(0), (1, vocab), &Device::Cpu)
    }

    /// Causal attention of `t` queries at `pos..` over the cache (the last
    /// `window` positions on sliding-window layers), grouped query heads
    /// sharing their kv head.
    fn attention(
        &self,
        l: usize,
        window: Option<usize>,
        q: &[f32],
        pos: usize,
        t: usize,
        out: &mut Vec<f32>,
    ) {
        let w = &self.weights;
        let (hd, group, kvw) = (w.head_dim, w.n_head / w.n_kv_head, w.n_kv_head * w.head_dim);
        let scale = 1.0 / (hd as f32).sqrt();
        let (keys, values) = (&self.keys[l], &self.values[l]);
        let start = out.len();
        out.resize(start + t * w.n_head * hd, 0.0);
        let out = &mut out[start..];
        let mut scores = Vec::with_capacity(pos + t);
        for i in 0..t {
            let span = pos + i + 1;
            let first = window.map_or(0, |w| span.saturating_sub(w));
            for h in 0..w.n_head {
                let qh = &q[(i * w.n_head + h) * hd..][..hd];
                let kv = (h / group) * hd;
                scores.clear();
                scores.extend((first..span).map(|j| dot(qh, &keys[j * kvw + kv..][..hd]) * scale));
                let max = scores.iter().fold(f32::NEG_INFINITY, |a, s| a.max(*s));
                let mut total = 0f32;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    total += *s;
                }
                let o = &mut out[(i * w.n_head + h) * hd..][..hd];
                for (j, s) in (first..).zip(&scores) {
                    let p = s / total;
                    for (a, b) in o.iter_mut().zip(&values[j * kvw + kv..][..hd]) {
                        *a += p * b;
                    }
                }
            }
        }
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
    use candle_core::quantized::GgmlDType;
    use candle_transformers::models::quantized_llama;

    /// The tiny model with every matrix stored as f32, so that this
    /// implementation and candle's reference multiply with the same kernel
    /// and only the rest of the forward pass is compared.
    fn f32_tiny() -> Vec<u8> {
        use candle_core::quantized::QTensor;
        let bytes = crate::llm::sample::tiny_llama(3);
        let mut r = std::io::Cursor::new(&bytes);
        let ct = gguf_file::Content::read(&mut r).unwrap();
        let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
        names.sort();
        let tensors: Vec<(&str, QTensor)> = names
            .iter()
            .map(|n| {
                let t = ct.tensor(&mut r, n, &Device::Cpu).unwrap();
                let f = t.dequantize(&Device::Cpu).unwrap();
                (n.as_str(), QTensor::quantize(&f, GgmlDType::F32).unwrap())
            })
            .collect();
        let mut meta: Vec<(&str, &gguf_file::Value)> =
            ct.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        meta.sort_by_key(|(k, _)| *k);
        let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
        let mut out = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut out, &meta, &refs).unwrap();
        out.into_inner()
    }

    #[test]
    fn logits_match_candles_reference_llama() {
        let bytes = f32_tiny();
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

    #[test]
    fn a_pass_of_several_sessions_gives_each_the_bits_it_gets_alone() {
        let bytes = crate::llm::sample::tiny_llama(5);
        let mut r = std::io::Cursor::new(&bytes);
        let ct = gguf_file::Content::read(&mut r).unwrap();
        let w = Arc::new(LlamaWeights::from_gguf(&ct, &mut r, 4096).unwrap());
        let prompts: [&[u32]; 3] = [&[1, 2, 3, 4, 5], &[9, 8], &[40, 41, 42, 43, 44, 45, 46]];
        let nexts: [&[u32]; 3] = [&[6], &[7, 70, 71], &[47]];
        let mut sessions: Vec<LlamaSession> = prompts
            .iter()
            .map(|p| {
                let mut s = LlamaSession::new(w.clone());
                s.forward(p, 0).unwrap();
                s
            })
            .collect();
        let alone: Vec<Vec<f32>> = sessions
            .iter()
            .zip(prompts.iter().zip(nexts))
            .map(|(s, (p, n))| {
                let mut s = s.clone();
                let t = s.forward(n, p.len()).unwrap();
                t.flatten_all().unwrap().to_vec1().unwrap()
            })
            .collect();
        let mut steps: Vec<Step> = sessions
            .iter_mut()
            .zip(prompts.iter().zip(nexts))
            .map(|(session, (p, tokens))| Step {
                session,
                tokens,
                pos: p.len(),
            })
            .collect();
        let together = w.forward_many(&mut steps).unwrap();
        for (a, b) in alone.iter().zip(&together) {
            let (a, b): (Vec<u32>, Vec<u32>) = (
                a.iter().map(|v| v.to_bits()).collect(),
                b.iter().map(|v| v.to_bits()).collect(),
            );
            assert_eq!(a, b);
        }
        // the caches advanced as they would alone
        assert_eq!(sessions[1].len(), 5);
    }
}
