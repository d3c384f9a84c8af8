//! A tiny llama-architecture GGUF with random weights, built in code, so
//! tests exercise the real loading path (metadata, tokenizer, template,
//! quantized weights) without a download. Its answers are noise.

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// Width of the tiny model; small enough to load in milliseconds.
const EMBD: usize = 64;
const FF: usize = 128;
const HEADS: u32 = 4;
const KV_HEADS: u32 = 2;
const BLOCKS: usize = 2;
/// Its context window, in tokens.
pub const TINY_CONTEXT: u32 = 256;

/// GPT-2's byte-to-character map: printable bytes stand for themselves,
/// the rest move to U+0100 onwards.
fn byte_chars() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut extra = 0;
    (0..256u32)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap()
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap()
            }
        })
        .collect()
}

fn weights(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// A GGUF file of a 2-block llama with a byte-level BPE vocabulary (256
/// bytes, two merges, `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`) and a
/// ChatML template.
pub fn tiny_llama(seed: u64) -> Vec<u8> {
    tiny("llama", seed)
}

/// The same in the qwen2 architecture (attention biases, its own keys).
pub fn tiny_qwen2(seed: u64) -> Vec<u8> {
    tiny("qwen2", seed)
}

/// The same in the phi3 architecture (fused q/k/v and gate/up matrices).
pub fn tiny_phi3(seed: u64) -> Vec<u8> {
    tiny("phi3", seed)
}

fn tiny(arch: &str, seed: u64) -> Vec<u8> {
    use gguf_file::Value as V;
    let mut tokens: Vec<String> = byte_chars().into_iter().map(String::from).collect();
    let mut types = vec![1i32; 256];
    for special in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] {
        tokens.push(special.into());
        types.push(3);
    }
    tokens.extend(["he".to_string(), "ll".to_string()]);
    types.extend([1, 1]);
    let vocab = tokens.len();
    let template = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    let s = |v: &str| V::String(v.to_string());
    let k = |key: &str| format!("{arch}.{key}");
    let arch_meta: Vec<(String, V)> = vec![
        (k("block_count"), V::U32(BLOCKS as u32)),
        (k("context_length"), V::U32(TINY_CONTEXT)),
        (k("embedding_length"), V::U32(EMBD as u32)),
        (k("feed_forward_length"), V::U32(FF as u32)),
        (k("attention.head_count"), V::U32(HEADS)),
        (k("attention.head_count_kv"), V::U32(KV_HEADS)),
        (k("rope.dimension_count"), V::U32(EMBD as u32 / HEADS)),
        (k("rope.freq_base"), V::F32(10000.0)),
        (k("attention.layer_norm_rms_epsilon"), V::F32(1e-5)),
    ];
    let mut meta: Vec<(&str, V)> = vec![
        ("general.architecture", s(arch)),
        ("general.name", s(&format!("tiny-random-{arch}"))),
        ("tokenizer.ggml.model", s("gpt2")),
        ("tokenizer.ggml.pre", s("smollm")),
        (
            "tokenizer.ggml.tokens",
            V::Array(tokens.iter().map(|t| s(t)).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            V::Array(types.into_iter().map(V::I32).collect()),
        ),
        ("tokenizer.ggml.merges", V::Array(vec![s("h e"), s("l l")])),
        ("tokenizer.ggml.bos_token_id", V::U32(256)),
        ("tokenizer.ggml.eos_token_id", V::U32(256)),
        ("tokenizer.chat_template", s(template)),
    ];
    meta.extend(arch_meta.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let q = |rows: usize, cols: usize, k: u64, dt: GgmlDType| {
        let w = weights(
            rows * cols,
            seed.wrapping_add(k),
            (1.0 / cols as f32).sqrt() * 2.0,
        );
        let t = Tensor::from_vec(w, (rows, cols), &Device::Cpu).expect("shape");
        QTensor::quantize(&t, dt).expect("quantize")
    };
    let ones = |n: usize| {
        QTensor::quantize(
            &Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).expect("ones"),
            GgmlDType::F32,
        )
        .expect("f32")
    };
    let kv = EMBD / HEADS as usize * KV_HEADS as usize;
    let mut tensors: Vec<(String, QTensor)> = vec![
        (
            "token_embd.weight".into(),
            q(vocab, EMBD, 1, GgmlDType::Q8_0),
        ),
        ("output_norm.weight".into(), ones(EMBD)),
    ];
    if arch == "phi3" {
        // phi3 fuses q/k/v and gate/up, and has its own output matrix
        tensors.push(("output.weight".into(), q(vocab, EMBD, 2, GgmlDType::Q8_0)));
        for b in 0..BLOCKS {
            let k = 100 * (b as u64 + 1);
            let p = |n: &str| format!("blk.{b}.{n}.weight");
            tensors.extend([
                (
                    p("attn_qkv"),
                    q(EMBD + 2 * kv, EMBD, k + 1, GgmlDType::Q4_1),
                ),
                (p("attn_output"), q(EMBD, EMBD, k + 4, GgmlDType::Q4_1)),
                (p("ffn_up"), q(2 * FF, EMBD, k + 6, GgmlDType::Q4_1)),
                (p("ffn_down"), q(EMBD, FF, k + 7, GgmlDType::Q4_1)),
                (p("attn_norm"), ones(EMBD)),
                (p("ffn_norm"), ones(EMBD)),
            ]);
        }
    }
    for b in (0..BLOCKS).filter(|_| arch != "phi3") {
        let k = 100 * (b as u64 + 1);
        let p = |n: &str| format!("blk.{b}.{n}.weight");
        tensors.extend([
            (p("attn_q"), q(EMBD, EMBD, k + 1, GgmlDType::Q4_1)),
            (p("attn_k"), q(kv, EMBD, k + 2, GgmlDType::Q4_1)),
            (p("attn_v"), q(kv, EMBD, k + 3, GgmlDType::Q4_1)),
            (p("attn_output"), q(EMBD, EMBD, k + 4, GgmlDType::Q4_1)),
            (p("ffn_gate"), q(FF, EMBD, k + 5, GgmlDType::Q4_1)),
            (p("ffn_up"), q(FF, EMBD, k + 6, GgmlDType::Q4_1)),
            (p("ffn_down"), q(EMBD, FF, k + 7, GgmlDType::Q4_1)),
            (p("attn_norm"), ones(EMBD)),
            (p("ffn_norm"), ones(EMBD)),
        ]);
        if arch == "qwen2" {
            let bias = |n: usize, k: u64| {
                let t = Tensor::from_vec(weights(n, seed.wrapping_add(k), 0.1), n, &Device::Cpu)
                    .expect("shape");
                QTensor::quantize(&t, GgmlDType::F32).expect("f32")
            };
            let b_ = |n: &str| format!("blk.{b}.{n}.bias");
            tensors.extend([
                (b_("attn_q"), bias(EMBD, k + 8)),
                (b_("attn_k"), bias(kv, k + 9)),
                (b_("attn_v"), bias(kv, k + 10)),
            ]);
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    let meta_refs: Vec<(&str, &V)> = meta.iter().map(|(k, v)| (*k, v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    gguf_file::write(&mut out, &meta_refs, &tensor_refs).expect("write GGUF");
    out.into_inner()
}
