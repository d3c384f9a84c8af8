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

pub(crate) fn from_gguf(ct: &gguf_file::Content) -> Result<Tokenizer> {
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
