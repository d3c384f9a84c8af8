//! GGUF files as strangers upload them: arbitrary bytes, and a valid small
//! model with its header, metadata and tensor table mutated (counts,
//! lengths, offsets, types): loading fails with an error or succeeds,
//! never a panic, never an allocation the file's size does not justify.

use gradnet_runtime::llm::sample::tiny_llama;
use gradnet_runtime::llm::LlmModel;
use gradnet_types::cid::ContentId;
use gradnet_types::test_utils::mutate;
use proptest::prelude::*;

fn model() -> &'static Vec<u8> {
    static M: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    M.get_or_init(|| tiny_llama(3))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..1024), magic in any::<bool>()) {
        if magic && bytes.len() >= 8 {
            // past the magic and version, into the counts
            bytes[..4].copy_from_slice(b"GGUF");
            bytes[4..8].copy_from_slice(&3u32.to_le_bytes());
        }
        let _ = LlmModel::load(ContentId::of(&bytes), &bytes);
    }

    // the header, metadata and tensor table sit in the first few KiB
    #[test]
    fn mutated_headers_never_panic(e in prop::collection::vec((0usize..8192, any::<u8>(), 0u8..3), 1..6)) {
        let m = mutate(model(), &e);
        let _ = LlmModel::load(ContentId::of(&m), &m);
    }

    #[test]
    fn mutated_anywhere_never_panic(e in prop::collection::vec((0usize..1 << 22, any::<u8>(), 0u8..3), 1..4)) {
        let m = mutate(model(), &e);
        if let Ok(l) = LlmModel::load(ContentId::of(&m), &m) {
            let _ = l;
        }
    }
}
