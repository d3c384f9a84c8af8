//! A BERT encoder (the family of MiniLM, BGE, E5, GTE) on the kernels of
//! `kernels`. Sequences are never padded: the linear layers run over every
//! token of a batch at once and attention runs per sequence, so a text's
//! vector does not depend on what it was batched with.

use safetensors::SafeTensors;

use gradnet_onnx::cx::Cx;
use gradnet_onnx::kernels::epilogue::{Operand, Step};
use gradnet_onnx::kernels::gemm::{gemm, AOp, BOp, Epilogue, PackedB};
use gradnet_onnx::kernels::{math, Fma, Hard, Soft};
use gradnet_onnx::Isa;

use super::kernels::dot;

/// A thread pool of `threads` workers, made once per count (none for one).
fn pool(threads: usize) -> Option<std::sync::Arc<rayon::ThreadPool>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    static POOLS: Mutex<Option<HashMap<usize, Arc<rayon::ThreadPool>>>> = Mutex::new(None);
    if threads <= 1 {
        return None;
    }
    let mut pools = POOLS.lock().unwrap_or_else(|p| p.into_inner());
    let pools = pools.get_or_insert_with(HashMap::new);
    if let Some(p) = pools.get(&threads) {
        return Some(p.clone());
    }
    let p = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("gradnet-embed-{i}"))
            .build()
            .ok()?,
    );
    pools.insert(threads, p.clone());
    Some(p)
}
use crate::error::{Result, RuntimeError};

/// Shape settings from the model's `config.json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Config {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub hidden_act: Option<String>,
}

fn default_eps() -> f64 {
    1e-12
}

/// A linear layer: its weights packed once for the engine's matrix
/// product, its bias added in the product's epilogue.
struct Linear {
    packed: PackedB,
    bias: [Step; 1],
    n: usize,
    k: usize,
}

impl Linear {
    fn new(w: &[f32], b: Vec<f32>, k: usize) -> Linear {
        let n = b.len();
        Linear {
            // B[kk][j] = W[j][kk]: the transposed weights
            packed: PackedB::new(Isa::current(), w, k, n, 1, k),
            bias: [Step::Add(Operand::Col(b))],
            n,
            k,
        }
    }

    /// `x W^T + b` for the rows of `x`: each output one FMA chain in
    /// ascending k, then the bias, whatever the rows, threads or CPU.
    fn apply(&self, cx: &Cx, x: &[f32]) -> Vec<f32> {
        let m = x.len() / self.k;
        let mut out = vec![0f32; m * self.n];
        gemm(
            cx,
            m,
            self.n,
            self.k,
            AOp::Rows { a: x, lda: self.k },
            BOp::Packed(&self.packed),
            &mut out,
            self.n,
            Epilogue { steps: &self.bias },
        );
        out
    }
}

struct Norm {
    g: Vec<f32>,
    b: Vec<f32>,
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    norm1: Norm,
    up: Linear,
    down: Linear,
    norm2: Norm,
}

pub(crate) struct Bert {
    pub cfg: Config,
    words: Vec<f32>,
    positions: Vec<f32>,
    types: Vec<f32>,
    norm: Norm,
    layers: Vec<Layer>,
    eps: f32,
}

fn tensor(st: &SafeTensors, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = st
        .tensor(name)
        .map_err(|e| RuntimeError::Unloadable(format!("`{name}`: {e}")))?;
    if t.dtype() != safetensors::Dtype::F32 || t.shape() != shape {
        return Err(RuntimeError::Unloadable(format!(
            "`{name}` is {:?} {:?}; expected F32 {shape:?}",
            t.dtype(),
            t.shape()
        )));
    }
    Ok(t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

impl Bert {
    pub(crate) fn load(st: &SafeTensors, cfg: Config, vocab: usize) -> Result<Bert> {
        if cfg.hidden_act.as_deref().is_some_and(|a| a != "gelu") {
            return Err(RuntimeError::Unloadable(format!(
                "hidden_act `{}` is not supported (gelu is)",
                cfg.hidden_act.as_deref().unwrap_or_default()
            )));
        }
        let h = cfg.hidden_size;
        if cfg.num_attention_heads == 0 || !h.is_multiple_of(cfg.num_attention_heads) {
            return Err(RuntimeError::Unloadable(
                "hidden_size is not a multiple of num_attention_heads".into(),
            ));
        }
        // the weights may be stored with or without the `bert.` prefix
        let prefix = if st.tensor("bert.embeddings.word_embeddings.weight").is_ok() {
            "bert."
        } else {
            ""
        };
        let t = |n: &str, shape: &[usize]| tensor(st, &format!("{prefix}{n}"), shape);
        let lin = |n: &str, out: usize, inp: usize| -> Result<Linear> {
            Ok(Linear::new(
                &t(&format!("{n}.weight"), &[out, inp])?,
                t(&format!("{n}.bias"), &[out])?,
                inp,
            ))
        };
        let norm = |n: &str| -> Result<Norm> {
            Ok(Norm {
                g: t(&format!("{n}.weight"), &[h])?,
                b: t(&format!("{n}.bias"), &[h])?,
            })
        };
        let ff = cfg.intermediate_size;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                Ok(Layer {
                    q: lin(&format!("{p}.attention.self.query"), h, h)?,
                    k: lin(&format!("{p}.attention.self.key"), h, h)?,
                    v: lin(&format!("{p}.attention.self.value"), h, h)?,
                    o: lin(&format!("{p}.attention.output.dense"), h, h)?,
                    norm1: norm(&format!("{p}.attention.output.LayerNorm"))?,
                    up: lin(&format!("{p}.intermediate.dense"), ff, h)?,
                    down: lin(&format!("{p}.output.dense"), h, ff)?,
                    norm2: norm(&format!("{p}.output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Bert {
            words: t("embeddings.word_embeddings.weight", &[vocab, h])?,
            positions: t(
                "embeddings.position_embeddings.weight",
                &[cfg.max_position_embeddings, h],
            )?,
            types: t("embeddings.token_type_embeddings.weight", &[2, h])
                .or_else(|_| t("embeddings.token_type_embeddings.weight", &[1, h]))?,
            norm: norm("embeddings.LayerNorm")?,
            layers,
            eps: cfg.layer_norm_eps as f32,
            cfg,
        })
    }

    /// The last hidden state of each sequence (`[len, hidden]` each).
    pub(crate) fn forward(&self, seqs: &[Vec<u32>], threads: usize) -> Vec<Vec<f32>> {
        let pool = pool(threads);
        let cx = Cx::new(Isa::current(), pool.as_deref(), u64::MAX);
        let h = self.cfg.hidden_size;
        let mut x: Vec<f32> = Vec::with_capacity(seqs.iter().map(Vec::len).sum::<usize>() * h);
        for s in seqs {
            for (pos, &id) in s.iter().enumerate() {
                let w = &self.words[id as usize * h..][..h];
                let p = &self.positions[pos * h..][..h];
                x.extend((0..h).map(|d| w[d] + p[d] + self.types[d]));
            }
        }
        self.layer_norm(&mut x, &self.norm);
        for l in &self.layers {
            let lin = |x: &[f32], l: &Linear| l.apply(&cx, x);
            let (q, k, v) = (lin(&x, &l.q), lin(&x, &l.k), lin(&x, &l.v));
            let ctx = self.attention(pool.as_deref(), seqs, &q, &k, &v);
            let mut a = lin(&ctx, &l.o);
            a.iter_mut().zip(&x).for_each(|(a, x)| *a += x);
            self.layer_norm(&mut a, &l.norm1);
            let mut up = lin(&a, &l.up);
            // element-wise, so split across the pool like the products
            let gelu_all = |c: &mut [f32]| each(c, gelu::<Hard>, gelu::<Soft>);
            match &pool {
                Some(p) => p.install(|| {
                    use rayon::prelude::*;
                    up.par_chunks_mut(4096).for_each(gelu_all)
                }),
                None => gelu_all(&mut up),
            }
            let mut down = lin(&up, &l.down);
            down.iter_mut().zip(&a).for_each(|(d, a)| *d += a);
            self.layer_norm(&mut down, &l.norm2);
            x = down;
        }
        let mut out = vec![];
        let mut at = 0;
        for s in seqs {
            out.push(x[at * h..(at + s.len()) * h].to_vec());
            at += s.len();
        }
        out
    }

    /// Multi-head self-attention of each sequence over itself.
    /// Self-attention of each text over itself (texts are never padded):
    /// texts run in parallel on `pool`, each output row written by one.
    fn attention(
        &self,
        pool: Option<&rayon::ThreadPool>,
        seqs: &[Vec<u32>],
        q: &[f32],
        k: &[f32],
        v: &[f32],
    ) -> Vec<f32> {
        let h = self.cfg.hidden_size;
        let mut out = vec![0f32; q.len()];
        // each text's rows of q, k, v and out
        let mut parts = vec![];
        let (mut rest, mut at) = (&mut out[..], 0);
        for s in seqs {
            let rows = s.len() * h;
            let (mine, tail) = rest.split_at_mut(rows);
            parts.push((
                &q[at..at + rows],
                &k[at..at + rows],
                &v[at..at + rows],
                mine,
            ));
            rest = tail;
            at += rows;
        }
        let one = |(q, k, v, out): (&[f32], &[f32], &[f32], &mut [f32])| self.attend(q, k, v, out);
        match pool {
            Some(p) => p.install(|| {
                use rayon::prelude::*;
                parts.into_par_iter().for_each(one)
            }),
            None => parts.into_iter().for_each(one),
        }
        out
    }

    /// One text's attention: `q`, `k`, `v` and `out` are its `[n, hidden]`.
    fn attend(&self, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) {
        let h = self.cfg.hidden_size;
        let heads = self.cfg.num_attention_heads;
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let n = q.len() / h;
        let mut p = vec![];
        for head in 0..heads {
            let col = |t: usize| t * h + head * d;
            for i in 0..n {
                let qi = &q[col(i)..col(i) + d];
                p.clear();
                p.extend((0..n).map(|j| dot(qi, &k[col(j)..col(j) + d]) * scale));
                let m = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                p.iter_mut().for_each(|e| *e -= m);
                each(&mut p, math::exp::<Hard>, math::exp::<Soft>);
                let sum = p.iter().sum::<f32>();
                let o = &mut out[col(i)..col(i) + d];
                for (j, e) in p.iter().enumerate() {
                    let w = e / sum;
                    let vj = &v[col(j)..col(j) + d];
                    o.iter_mut().zip(vj).for_each(|(o, v)| *o += w * v);
                }
            }
        }
    }

    fn layer_norm(&self, x: &mut [f32], n: &Norm) {
        let h = self.cfg.hidden_size;
        for row in x.chunks_exact_mut(h) {
            let mean = row.iter().sum::<f32>() / h as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for (i, v) in row.iter_mut().enumerate() {
                *v = (*v - mean) * inv * n.g[i] + n.b[i];
            }
        }
    }
}

/// BERT's exact GELU, with the ONNX engine's `erf` (Cephes' polynomial).
#[inline(always)]
fn gelu<F: Fma>(x: f32) -> f32 {
    0.5 * x * (1.0 + math::erf::<F>(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `f` applied to each value: built with hardware FMA where the CPU has it,
/// else with the exact emulation (`soft`), which gives the same bits.
#[inline(always)]
fn each(xs: &mut [f32], hard: impl Fn(f32) -> f32, soft: impl Fn(f32) -> f32) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("fma") {
        // `hard` is inlined here, so its multiply-adds compile to FMA
        #[target_feature(enable = "fma")]
        unsafe fn with_fma(xs: &mut [f32], f: impl Fn(f32) -> f32) {
            xs.iter_mut().for_each(|x| *x = f(*x));
        }
        // SAFETY: the CPU has FMA
        unsafe { with_fma(xs, hard) };
        return;
    }
    let _ = hard;
    xs.iter_mut().for_each(|x| *x = soft(*x));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The FMA build and the emulation give the same bits.
    #[test]
    fn gelu_and_exp_are_the_same_with_and_without_fma() {
        let xs: Vec<f32> = (-4000..4000).map(|i| i as f32 * 0.00173).collect();
        let (mut a, mut b) = (xs.clone(), xs.clone());
        each(&mut a, gelu::<Hard>, gelu::<Soft>);
        b.iter_mut().for_each(|x| *x = gelu::<Soft>(*x));
        assert_eq!(a, b);
        let (mut a, mut b) = (xs.clone(), xs);
        each(&mut a, math::exp::<Hard>, math::exp::<Soft>);
        b.iter_mut().for_each(|x| *x = math::exp::<Soft>(*x));
        assert_eq!(a, b);
    }
}
