//! The tokenizer, built from the GGUF file's own metadata (vocabulary,
//! merges, token types), never from a download.

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::Tokenizer;

use crate::error::{Result, RuntimeError};

/// GGUF token types (llama.cpp's `llama_token_type`).
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

/// A SentencePiece BPE vocabulary (`tokenizer.ggml.model = "llama"`:
/// Gemma, Llama 2, Mistral): pieces with scores and no merge list. Merging
/// the adjacent pair whose result scores highest, as SentencePiece and
/// llama.cpp do, is BPE with one merge per way of splitting each piece in
/// two, ranked by the piece's score (what transformers' converter writes
/// into tokenizer.json). Spaces are `▁`, unknown characters fall back to
/// `<0xXX>` byte pieces, control and user-defined pieces are matched whole.
fn sentencepiece(ct: &gguf_file::Content) -> Result<Tokenizer> {
    use std::collections::HashMap;
    use tokenizers::decoders::{byte_fallback::ByteFallback, fuse::Fuse, sequence};
    use tokenizers::models::bpe::BPE;
    use tokenizers::normalizers::replace::Replace;
    use tokenizers::AddedToken;

    let bad = |what: &str| RuntimeError::Unloadable(format!("SentencePiece vocabulary: {what}"));
    let array = |k: &str| {
        ct.metadata
            .get(k)
            .and_then(|v| v.to_vec().ok())
            .ok_or_else(|| bad(&format!("no {k}")))
    };
    let tokens: Vec<&String> = array("tokenizer.ggml.tokens")?
        .iter()
        .map(|v| v.to_string())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(&e.to_string()))?;
    let scores: Vec<f32> = array("tokenizer.ggml.scores")?
        .iter()
        .map(|v| v.to_f32())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(&e.to_string()))?;
    let types: Vec<i32> = array("tokenizer.ggml.token_type")?
        .iter()
        .map(|v| v.to_i32())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(&e.to_string()))?;
    if scores.len() != tokens.len() || types.len() != tokens.len() {
        return Err(bad("tokens, scores and types differ in length"));
    }
    let mut vocab: HashMap<String, u32> = HashMap::with_capacity(tokens.len());
    for (id, t) in tokens.iter().enumerate() {
        if vocab.insert((*t).clone(), id as u32).is_some() {
            return Err(bad(&format!("piece {t:?} appears twice")));
        }
    }
    let mut merges: Vec<(f32, u32, u32)> = Vec::new();
    for (id, t) in tokens.iter().enumerate() {
        if types[id] != NORMAL {
            continue;
        }
        for (at, _) in t.char_indices().skip(1) {
            if let (Some(l), Some(r)) = (vocab.get(&t[..at]), vocab.get(&t[at..])) {
                merges.push((scores[id], *l, *r));
            }
        }
    }
    // highest score first; ties by the halves' ids
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let merges = merges
        .into_iter()
        .map(|(_, l, r)| (tokens[l as usize].clone(), tokens[r as usize].clone()))
        .collect();
    let unk = ct
        .metadata
        .get("tokenizer.ggml.unknown_token_id")
        .and_then(|v| v.to_u32().ok())
        .and_then(|id| tokens.get(id as usize))
        .map(|t| (*t).clone());
    let mut bpe = BPE::builder()
        .vocab_and_merges(
            vocab
                .into_iter()
                .collect::<tokenizers::models::bpe::Vocab>(),
            merges,
        )
        .byte_fallback(true);
    if let Some(unk) = unk {
        bpe = bpe.unk_token(unk);
    }
    let mut t = Tokenizer::new(bpe.build().map_err(|e| bad(&e.to_string()))?);
    let replace = |a: &str, b: &str| Replace::new(a, b).expect("a literal pattern");
    t.with_normalizer(Some(replace(" ", "\u{2581}")))
        .map_err(|e| bad(&e.to_string()))?;
    t.with_decoder(Some(sequence::Sequence::new(vec![
        replace("\u{2581}", " ").into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ])));
    let whole = |kind: i32, special: bool| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(&types)
            .filter(|(_, ty)| **ty == kind)
            .map(|(tok, _)| AddedToken::from((*tok).clone(), special).normalized(false))
            .collect()
    };
    t.add_special_tokens(whole(CONTROL, true))
        .map_err(|e| bad(&e.to_string()))?;
    t.add_tokens(whole(USER_DEFINED, false))
        .map_err(|e| bad(&e.to_string()))?;
    Ok(t)
}

pub(crate) fn from_gguf(ct: &gguf_file::Content) -> Result<Tokenizer> {
    let model = ct
        .metadata
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok())
        .map(String::as_str);
    if model == Some("llama") {
        return sentencepiece(ct);
    }
    let mut t = Tokenizer::from_gguf(ct)
        .map_err(|e| RuntimeError::Unloadable(format!("tokenizer from GGUF metadata: {e}")))?;
    let pre = ct
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .map(String::as_str);
    let add_space_prefix = ct
        .metadata
        .get("tokenizer.ggml.add_space_prefix")
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(false);
    // candle's default GPT-2 pipeline adds a prefix space; these
    // pre-tokenizers (as llama.cpp and the models' tokenizer.json define them)
    // do not, and split digits one by one
    if matches!(
        pre,
        Some("smollm") | Some("gpt2") | Some("starcoder") | Some("refact")
    ) {
        let byte_level = ByteLevel::new(add_space_prefix, true, true);
        let pre: PreTokenizerWrapper = if pre == Some("gpt2") {
            byte_level.into()
        } else {
            Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
        };
        t.with_pre_tokenizer(Some(pre));
    }
    Ok(t)
}
