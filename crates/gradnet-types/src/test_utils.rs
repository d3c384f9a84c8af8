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
