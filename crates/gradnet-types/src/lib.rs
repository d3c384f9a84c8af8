//! gradnet's shared vocabulary: content ids, tensors and their JSON encodings,
//! inference modes, requests, receipts and node keys.

// The workspace lint `missing_docs` is off here until this crate's public
// items are documented (164 were not when the lint came in).
#![allow(missing_docs)]

pub mod certificate;
pub mod cid;
pub mod crash;
pub mod error;
pub mod json;
pub mod json_body;
pub mod keys;
pub mod le;
pub mod mode;
pub mod openai;
pub mod payments;
pub mod receipt;
pub mod request;
pub mod tensor;
#[cfg(feature = "test-utils")]
pub mod test_utils;
pub mod version;

pub use cid::ContentId;
pub use error::TensorError;
pub use json::{JsonInputs, OutputFormat};
pub use keys::NodeKey;
pub use mode::InferenceMode;
pub use receipt::{Receipt, ReceiptBody, RuntimeId, DETERMINISTIC_PROFILE, NATIVE_PROFILE};
pub use request::{InferRequest, ModelRef};
pub use tensor::{DType, NamedTensors, Tensor, TensorData};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
