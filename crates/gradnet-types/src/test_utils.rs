//! What tests and benchmarks share (the `test-utils` feature): where
//! `scripts/fetch-models` put the real models.

use std::path::PathBuf;

/// The real models' directory: `GRADNET_MODELS_DIR`, or the repository's
/// `models/`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("GRADNET_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models")))
}

/// A real model's file; a clear failure if it is missing.
pub fn real_model(name: &str) -> PathBuf {
    let p = models_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-models (scripts/test does)",
        p.display()
    );
    p
}

/// `base` with `edits` applied in order, each (position, byte, op): op 0
/// sets the byte there, 1 inserts it there, 2 cuts the bytes from there on
/// (positions past the end are clamped). Property tests of decoders feed
/// valid input mutated this way.
pub fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut b = base.to_vec();
    for &(at, byte, op) in edits {
        let at = at.min(b.len());
        match op % 3 {
            0 if at < b.len() => b[at] = byte,
            0 => {}
            1 => b.insert(at, byte),
            _ => b.truncate(at),
        }
    }
    b
}
