//! What a prover hands over and a verifier checks, as JSON: the quantized
//! input and output (the public inputs besides the model hash) and the
//! 128-byte proof, with the scale so the output reads back as floats.

use serde::{Deserialize, Serialize};

use crate::keys::{proof_from_bytes, proof_to_bytes};
use crate::{verify, VerifyingKey, ZkError};

/// A proof with everything a verifier needs besides the key, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofBundle {
    /// BLAKE3 of the quantized model (hex): the proof's first public input.
    pub model_hash: String,
    /// Inputs and outputs are integers at 2^frac_bits.
    pub frac_bits: u32,
    /// The quantized input (public).
    pub input: Vec<i64>,
    /// The circuit's output (public).
    pub output: Vec<i64>,
    /// Groth16 proof over BN254, compressed (hex).
    pub proof: String,
}

fn hex_err(what: &'static str) -> impl Fn(hex::FromHexError) -> ZkError {
    move |e| ZkError::Encoding {
        what,
        why: e.to_string(),
    }
}

impl ProofBundle {
    /// A bundle of this proof for `model_hash`'s circuit.
    pub fn new(
        model_hash: [u8; 32],
        frac_bits: u32,
        input: Vec<i64>,
        output: Vec<i64>,
        proof: &ark_groth16::Proof<ark_bn254::Bn254>,
    ) -> Self {
        Self {
            model_hash: hex::encode(model_hash),
            frac_bits,
            input,
            output,
            proof: hex::encode(proof_to_bytes(proof)),
        }
    }

    /// The output as floats (exact: y / 2^F).
    pub fn output_f32(&self) -> Vec<f32> {
        let s = (1u64 << self.frac_bits) as f64;
        self.output.iter().map(|&v| (v as f64 / s) as f32).collect()
    }

    /// The compressed proof's bytes.
    pub fn proof_bytes(&self) -> Result<Vec<u8>, ZkError> {
        hex::decode(&self.proof).map_err(hex_err("proof"))
    }

    /// Checks the proof against `vk`, naming what does not match.
    pub fn verify(&self, vk: &VerifyingKey) -> Result<(), ZkError> {
        let hash = hex::decode(&self.model_hash).map_err(hex_err("model hash"))?;
        if hash != vk.model_hash {
            return Err(ZkError::Rejected(format!(
                "the proof is for model {}, the key for model {}",
                self.model_hash,
                hex::encode(vk.model_hash)
            )));
        }
        let bytes = self.proof_bytes()?;
        if bytes.len() != 128 {
            return Err(ZkError::Encoding {
                what: "proof",
                why: format!("{} bytes, a proof has 128", bytes.len()),
            });
        }
        let proof = proof_from_bytes(&bytes)?;
        if verify(vk, &self.input, &self.output, &proof) {
            Ok(())
        } else {
            Err(ZkError::Rejected(
                "the proof does not verify for this input and output".into(),
            ))
        }
    }
}
