//! Groth16 keys, proofs and their byte forms.
//!
//! Setup draws its randomness from the caller: anyone who knows it can
//! forge proofs, so real keys come from the OS's generator and only tests
//! pass a seeded one.

use ark_bn254::Bn254;
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use ark_snark::SNARK;
use ark_std::rand::{CryptoRng, RngCore};

use crate::circuit::{public_inputs, Circuit};
use crate::{QuantModel, ZkError};

fn snark(e: impl std::fmt::Display) -> ZkError {
    ZkError::Snark(e.to_string())
}

/// A prepared verifying key with the hash of the model it verifies.
#[derive(Clone)]
pub struct VerifyingKey {
    pub model_hash: [u8; 32],
    pub inputs: usize,
    pub outputs: usize,
    prepared: PreparedVerifyingKey<Bn254>,
}

pub struct Keys {
    pub proving: ProvingKey<Bn254>,
    pub verifying: VerifyingKey,
}

/// Keys for `model` (once per model version).
pub fn setup<R: RngCore + CryptoRng>(model: &QuantModel, rng: &mut R) -> Result<Keys, ZkError> {
    let input = vec![0; model.inputs()];
    let output = model.forward(&input)?;
    let hash = model.hash();
    let (pk, _) = Groth16::<Bn254>::circuit_specific_setup(
        Circuit {
            model,
            hash,
            input,
            output,
        },
        rng,
    )
    .map_err(snark)?;
    let verifying = VerifyingKey::new(&pk.vk, hash, model.inputs(), model.outputs())?;
    Ok(Keys {
        proving: pk,
        verifying,
    })
}

/// The output for `input` (quantized) and a proof of it.
pub fn prove<R: RngCore + CryptoRng>(
    model: &QuantModel,
    pk: &ProvingKey<Bn254>,
    input: &[i64],
    rng: &mut R,
) -> Result<(Vec<i64>, Proof<Bn254>), ZkError> {
    let output = model.forward(input)?;
    let proof = Groth16::<Bn254>::prove(
        pk,
        Circuit {
            model,
            hash: model.hash(),
            input: input.to_vec(),
            output: output.clone(),
        },
        rng,
    )
    .map_err(snark)?;
    Ok((output, proof))
}

/// Whether `proof` shows that the key's model maps `input` to `output`.
pub fn verify(vk: &VerifyingKey, input: &[i64], output: &[i64], proof: &Proof<Bn254>) -> bool {
    input.len() == vk.inputs
        && output.len() == vk.outputs
        && Groth16::<Bn254>::verify_with_processed_vk(
            &vk.prepared,
            &public_inputs(&vk.model_hash, input, output),
            proof,
        )
        .unwrap_or(false)
}

impl VerifyingKey {
    fn new(
        vk: &ark_groth16::VerifyingKey<Bn254>,
        model_hash: [u8; 32],
        inputs: usize,
        outputs: usize,
    ) -> Result<Self, ZkError> {
        if vk.gamma_abc_g1.len() != 2 + inputs + outputs {
            return Err(ZkError::Encoding {
                what: "verifying key",
                why: format!(
                    "{} public inputs, expected {} (hash, {inputs} inputs, {outputs} outputs)",
                    vk.gamma_abc_g1.len().saturating_sub(1),
                    1 + inputs + outputs
                ),
            });
        }
        Ok(Self {
            model_hash,
            inputs,
            outputs,
            prepared: Groth16::<Bn254>::process_vk(vk).map_err(snark)?,
        })
    }

    /// `model hash ‖ inputs u32 ‖ outputs u32 ‖ Groth16 key (compressed)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.model_hash.to_vec();
        out.extend_from_slice(&(self.inputs as u32).to_le_bytes());
        out.extend_from_slice(&(self.outputs as u32).to_le_bytes());
        self.prepared
            .vk
            .serialize_compressed(&mut out)
            .expect("writing to a Vec");
        out
    }

    /// Parses and validates (points on the curve and in the subgroup).
    pub fn from_bytes(b: &[u8]) -> Result<Self, ZkError> {
        let bad = |why: String| ZkError::Encoding {
            what: "verifying key",
            why,
        };
        if b.len() < 40 {
            return Err(bad(format!("{} bytes", b.len())));
        }
        let hash: [u8; 32] = b[..32].try_into().unwrap();
        let n = |r: &[u8]| u32::from_le_bytes(r.try_into().unwrap()) as usize;
        let vk = ark_groth16::VerifyingKey::<Bn254>::deserialize_compressed(&b[40..])
            .map_err(|e| bad(e.to_string()))?;
        Self::new(&vk, hash, n(&b[32..36]), n(&b[36..40]))
    }

    /// Content id of the key's bytes: how the hub stores it and the chain names it.
    pub fn id(&self) -> gradnet_types::ContentId {
        gradnet_types::ContentId::of(&self.to_bytes())
    }
}

/// Proving keys are large and come from the hub by content id: written
/// uncompressed, read without the subgroup checks (a bad key only makes
/// its holder's proofs fail).
pub fn proving_key_to_bytes(pk: &ProvingKey<Bn254>) -> Vec<u8> {
    let mut out = Vec::with_capacity(pk.uncompressed_size());
    pk.serialize_uncompressed(&mut out)
        .expect("writing to a Vec");
    out
}

pub fn proving_key_from_bytes(b: &[u8]) -> Result<ProvingKey<Bn254>, ZkError> {
    ProvingKey::deserialize_uncompressed_unchecked(b).map_err(|e| ZkError::Encoding {
        what: "proving key",
        why: e.to_string(),
    })
}

/// A proof is 128 bytes (two G1 points and one G2 point, compressed).
pub fn proof_to_bytes(p: &Proof<Bn254>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    p.serialize_compressed(&mut out).expect("writing to a Vec");
    out
}

pub fn proof_from_bytes(b: &[u8]) -> Result<Proof<Bn254>, ZkError> {
    Proof::deserialize_compressed(b).map_err(|e| ZkError::Encoding {
        what: "proof",
        why: e.to_string(),
    })
}
