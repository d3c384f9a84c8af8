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

/// The proving key's file in a model's key directory (`gradnet zk setup`
/// writes it; an inference node proves with it).
pub const PROVING_KEY_FILE: &str = "proving.key";
/// The verifying key's file in the same directory.
pub const VERIFYING_KEY_FILE: &str = "verifying.key";
/// The directory's description: model, scale, and the keys' hashes.
pub const META_FILE: &str = "zk.json";

/// A prepared verifying key with what a verifier needs to know about its
/// model: its hash, scale, and the shape and name of its output.
#[derive(Clone)]
pub struct VerifyingKey {
    /// BLAKE3 of the quantized model (the proof's first public input).
    pub model_hash: [u8; 32],
    /// The scale of inputs and outputs (integers at 2^frac_bits).
    pub frac_bits: u32,
    /// Input values the circuit takes.
    pub inputs: usize,
    /// Output values it gives.
    pub outputs: usize,
    /// The output tensor's shape.
    pub output_shape: Vec<usize>,
    /// The output tensor's name in results.
    pub output_name: String,
    prepared: PreparedVerifyingKey<Bn254>,
}

/// A model's Groth16 proving key.
pub type ProvingKeyBn254 = ProvingKey<Bn254>;

/// A circuit's keys from one setup.
pub struct Keys {
    /// For the prover.
    pub proving: ProvingKey<Bn254>,
    /// For everyone who checks proofs.
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
    let verifying = VerifyingKey::new(
        &pk.vk,
        Header {
            model_hash: hash,
            frac_bits: model.frac_bits,
            inputs: model.inputs(),
            output_shape: model.output_shape.clone(),
            output_name: model.output_name.clone(),
        },
    )?;
    Ok(Keys {
        proving: pk,
        verifying,
    })
}

/// The output for `input` (quantized) and a proof of it (randomized by
/// the OS's generator, which keeps the witness hidden).
pub fn prove(
    model: &QuantModel,
    pk: &ProvingKey<Bn254>,
    input: &[i64],
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
        &mut rand::rngs::OsRng,
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

/// What the key's bytes say about its model before the Groth16 key.
struct Header {
    model_hash: [u8; 32],
    frac_bits: u32,
    inputs: usize,
    output_shape: Vec<usize>,
    output_name: String,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ZkError> {
        if self.0.len() < n {
            return Err(bad_key("cut short".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<usize, ZkError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()) as usize)
    }
}

fn bad_key(why: String) -> ZkError {
    ZkError::Encoding {
        what: "verifying key",
        why,
    }
}

impl VerifyingKey {
    fn new(vk: &ark_groth16::VerifyingKey<Bn254>, h: Header) -> Result<Self, ZkError> {
        let outputs: usize = h.output_shape.iter().product();
        if vk.gamma_abc_g1.len() != 2 + h.inputs + outputs {
            return Err(bad_key(format!(
                "{} public inputs, expected {} (hash, {} inputs, {outputs} outputs)",
                vk.gamma_abc_g1.len().saturating_sub(1),
                1 + h.inputs + outputs,
                h.inputs
            )));
        }
        if !(1..=20).contains(&h.frac_bits) {
            return Err(bad_key(format!("frac_bits {}", h.frac_bits)));
        }
        Ok(Self {
            model_hash: h.model_hash,
            frac_bits: h.frac_bits,
            inputs: h.inputs,
            outputs,
            output_shape: h.output_shape,
            output_name: h.output_name,
            prepared: Groth16::<Bn254>::process_vk(vk).map_err(snark)?,
        })
    }

    /// `model hash ‖ frac_bits ‖ inputs ‖ output rank ‖ output dims ‖
    /// output name length ‖ name ‖ Groth16 key (compressed)`, integers u32 LE.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.model_hash.to_vec();
        let mut u = |v: usize| out.extend_from_slice(&(v as u32).to_le_bytes());
        u(self.frac_bits as usize);
        u(self.inputs);
        u(self.output_shape.len());
        for &d in &self.output_shape {
            u(d);
        }
        u(self.output_name.len());
        out.extend_from_slice(self.output_name.as_bytes());
        self.prepared
            .vk
            .serialize_compressed(&mut out)
            .expect("writing to a Vec");
        out
    }

    /// Parses and validates (points on the curve and in the subgroup).
    pub fn from_bytes(b: &[u8]) -> Result<Self, ZkError> {
        let mut r = Reader(b);
        let model_hash: [u8; 32] = r.take(32)?.try_into().unwrap();
        let frac_bits = r.u32()? as u32;
        let inputs = r.u32()?;
        let rank = r.u32()?;
        if rank > 8 {
            return Err(bad_key(format!("output rank {rank}")));
        }
        let output_shape = (0..rank).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
        let name_len = r.u32()?;
        let output_name = String::from_utf8(r.take(name_len)?.to_vec())
            .map_err(|_| bad_key("output name is not UTF-8".into()))?;
        let mut rest = r.0;
        let vk = ark_groth16::VerifyingKey::<Bn254>::deserialize_compressed(&mut rest)
            .map_err(|e| bad_key(e.to_string()))?;
        // one encoding per key: its id is the hash of these bytes
        if !rest.is_empty() {
            return Err(bad_key(format!("{} bytes after the key", rest.len())));
        }
        Self::new(
            &vk,
            Header {
                model_hash,
                frac_bits,
                inputs,
                output_shape,
                output_name,
            },
        )
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

/// A proving key as written by its uncompressed serialization (the
/// node's own file, so not re-checked).
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

/// A proof from its 128 compressed bytes, exactly (one encoding per proof:
/// bytes after it would give the same proof other bytes).
pub fn proof_from_bytes(b: &[u8]) -> Result<Proof<Bn254>, ZkError> {
    let bad = |why: String| ZkError::Encoding { what: "proof", why };
    let mut rest = b;
    let p = Proof::deserialize_compressed(&mut rest).map_err(|e| bad(e.to_string()))?;
    if !rest.is_empty() {
        return Err(bad(format!("{} bytes after the proof's 128", rest.len())));
    }
    Ok(p)
}
