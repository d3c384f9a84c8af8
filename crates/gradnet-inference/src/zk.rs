//! ZKML in blocks and for contracts.
//!
//! A ZKML call (mode 1) is served by one sampled node that proves its
//! output with the model's Groth16 key (`gradnet-zk`). Its outcome is
//! `0x02 ‖ proof (128 bytes) ‖ output (i64 big-endian each)`, signed like
//! any other. Every validator executing the block checks the proof against
//! the verifying key the registry holds for the model (`registerZkModel`),
//! with the input quantized from the calldata here, by exact integer
//! arithmetic; a proof that does not verify reverts the call and slashes
//! the node that signed it. The result contracts receive is the circuit's
//! output, exact: `y / 2^F` written as `y · 5^F` with `F` decimals.
//!
//! `IZkVerifier` at `0x…F7` lets a contract check a proof made elsewhere
//! (`gradnet zk prove`) against a registered model.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy_primitives::{address, keccak256, Address, Bytes, B256, I256};
use alloy_sol_types::{sol, SolCall};
use gradnet_zk::keys::proof_from_bytes;
use gradnet_zk::VerifyingKey;

use crate::abi::{ModelInput, ModelOutput, MultiDimensionalNumberTensor, Number};
use crate::error::SystemError;
use crate::revert;

/// The ZK verifier contracts call.
pub const VERIFIER_ADDRESS: Address = address!("00000000000000000000000000000000000000F7");
/// A Groth16 check: three pairings and a multi-scalar multiplication over
/// the public inputs, priced like Ethereum's BN254 precompiles (EIP-1108).
pub const VERIFY_BASE_GAS: u64 = 181_000;
/// Gas per public input of a proof check.
pub const VERIFY_GAS_PER_PUBLIC: u64 = 6_000;
const OUTCOME_TAG: u8 = 2;
const PROOF_LEN: usize = 128;

sol! {
    #[derive(Debug, PartialEq)]
    interface IZkVerifier {
        /// Whether `proof` shows that the model registered as `modelCID`
        /// maps `input` to `output` (integers at the model's 2^fracBits scale).
        function verifyInference(string modelCID, int256[] input, int256[] output, bytes proof) external view returns (bool);
    }
}

/// The gas of checking a proof under `vk`.
pub fn verify_gas(vk: &VerifyingKey) -> u64 {
    VERIFY_BASE_GAS + VERIFY_GAS_PER_PUBLIC * (1 + vk.inputs + vk.outputs) as u64
}

/// The input's one number tensor at 2^`frac_bits`: `value · 2^F / 10^decimals`
/// rounded half away from zero, in integers (so every node gets the same).
pub fn quantize_input(input: &ModelInput, frac_bits: u32) -> Result<Vec<i64>, String> {
    let [t] = &input.numbers[..] else {
        return Err(format!(
            "ZKML: the model takes one number tensor, the call has {}",
            input.numbers.len()
        ));
    };
    t.values
        .iter()
        .map(|n| {
            let (v, d) = (n.value, n.decimals);
            if !(0..=36).contains(&d) || v.unsigned_abs() >= 1u128 << 100 {
                return Err(format!(
                    "ZKML: input number {v}e-{d} is outside the supported range (|value| < 2^100, 0 ≤ decimals ≤ 36)"
                ));
            }
            let num = v.unsigned_abs() << frac_bits;
            let den = 10u128.pow(d as u32);
            let q = (num + den / 2) / den;
            let q = i64::try_from(q).map_err(|_| format!("ZKML: input {v}e-{d} too large"))?;
            Ok(if v < 0 { -q } else { q })
        })
        .collect()
}

/// JSON inputs (as `/v1/infer` takes them) as the precompile's
/// `ModelInput`, exactly: integers and fixed-point numbers as they are,
/// floats by their shortest decimal form (the one that reads back as the
/// same float). The circuit takes one number tensor.
pub fn model_input(inputs: &gradnet_types::json::JsonInputs) -> Result<ModelInput, String> {
    use gradnet_types::json::{Num, Values};
    let [(name, t)] = &inputs.iter().collect::<Vec<_>>()[..] else {
        return Err(format!(
            "ZKML: the model takes one number tensor, the request has {}",
            inputs.len()
        ));
    };
    let Values::Numbers(nums) = &t.values else {
        return Err(format!("ZKML: input `{name}` must be numbers"));
    };
    let values =
        nums.iter()
            .map(|n| match *n {
                Num::Int(v) => Ok(Number {
                    value: v,
                    decimals: 0,
                }),
                Num::Fixed { value, decimals } if decimals >= 0 => Ok(Number {
                    value,
                    decimals: decimals as i128,
                }),
                Num::Fixed { value, decimals } => value
                    .checked_mul(10i128.pow(decimals.unsigned_abs().min(38)))
                    .map(|value| Number { value, decimals: 0 })
                    .ok_or_else(|| format!("ZKML: input {value}e{} is too large", -decimals)),
                Num::Float(f) => decimal(f)
                    .ok_or_else(|| format!("ZKML: input {f} is not a finite number in range")),
            })
            .collect::<Result<Vec<_>, String>>()?;
    Ok(ModelInput {
        numbers: vec![MultiDimensionalNumberTensor {
            name: name.to_string(),
            values,
            shape: t.shape.iter().map(|&d| d as u32).collect(),
        }],
        strings: vec![],
    })
}

/// A float's shortest decimal form as value · 10^-decimals.
fn decimal(f: f64) -> Option<Number> {
    if !f.is_finite() {
        return None;
    }
    // Rust prints the shortest form that reads back as `f`, never with an exponent
    let s = format!("{f}");
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let value: i128 = format!("{int}{frac}").parse().ok()?;
    Some(Number {
        value,
        decimals: frac.len() as i128,
    })
}

/// A ZKML outcome: the proof and the output.
pub fn outcome(proof: &[u8], output: &[i64]) -> Bytes {
    let mut o = vec![OUTCOME_TAG];
    o.extend_from_slice(proof);
    for y in output {
        o.extend_from_slice(&y.to_be_bytes());
    }
    o.into()
}

/// A ZKML outcome's proof and output.
pub fn parse_outcome(o: &[u8]) -> Option<(&[u8], Vec<i64>)> {
    let rest = o.strip_prefix(&[OUTCOME_TAG])?;
    if rest.len() < PROOF_LEN || !(rest.len() - PROOF_LEN).is_multiple_of(8) {
        return None;
    }
    let (proof, ys) = rest.split_at(PROOF_LEN);
    Some((
        proof,
        ys.chunks(8)
            .map(|c| i64::from_be_bytes(c.try_into().unwrap()))
            .collect(),
    ))
}

/// The circuit's output as the ABI's `ModelOutput`, exactly.
pub fn model_output(vk: &VerifyingKey, y: &[i64]) -> ModelOutput {
    let five = 5i128.pow(vk.frac_bits);
    ModelOutput {
        numbers: vec![MultiDimensionalNumberTensor {
            name: vk.output_name.clone(),
            values: y
                .iter()
                .map(|&v| Number {
                    value: v as i128 * five,
                    decimals: vk.frac_bits as i128,
                })
                .collect(),
            shape: vk.output_shape.iter().map(|&d| d as u32).collect(),
        }],
        strings: vec![],
        jsons: vec![],
        is_simulation_result: false,
    }
}

/// Parsed verifying keys by the hash of their bytes: parsing checks every
/// point, which is worth doing once per key, not once per call.
pub fn key(bytes: &[u8]) -> Result<Arc<VerifyingKey>, String> {
    static CACHE: Mutex<Option<HashMap<B256, Arc<VerifyingKey>>>> = Mutex::new(None);
    let h = keccak256(bytes);
    if let Some(k) = CACHE.lock().unwrap().get_or_insert_default().get(&h) {
        return Ok(k.clone());
    }
    let k = Arc::new(VerifyingKey::from_bytes(bytes).map_err(|e| e.to_string())?);
    let mut cache = CACHE.lock().unwrap();
    let cache = cache.get_or_insert_default();
    if cache.len() >= 64 {
        cache.clear();
    }
    cache.insert(h, k.clone());
    Ok(k)
}

/// Whether `proof` verifies for `input` → `output` under `vk`; the error
/// names what is wrong.
pub fn check(vk: &VerifyingKey, input: &[i64], output: &[i64], proof: &[u8]) -> Result<(), String> {
    if input.len() != vk.inputs {
        return Err(format!(
            "ZKML: {} input values, the model takes {}",
            input.len(),
            vk.inputs
        ));
    }
    if output.len() != vk.outputs {
        return Err(format!(
            "ZKML: {} output values, the model gives {}",
            output.len(),
            vk.outputs
        ));
    }
    if proof.len() != PROOF_LEN {
        return Err(format!(
            "ZKML: a proof has {PROOF_LEN} bytes, got {}",
            proof.len()
        ));
    }
    let p = proof_from_bytes(proof).map_err(|e| format!("ZKML: {e}"))?;
    if gradnet_zk::verify(vk, input, output, &p) {
        Ok(())
    } else {
        Err("ZKML: the proof does not verify".into())
    }
}

/// `IZkVerifier.verifyInference` against the registry's key bytes for the
/// model (`None`: not registered). Returns the ABI result and its gas.
pub fn verifier_call(
    calldata: &[u8],
    key_bytes: impl FnOnce(&str) -> Result<Option<Vec<u8>>, SystemError>,
) -> Result<(Vec<u8>, u64), SystemError> {
    let c = IZkVerifier::verifyInferenceCall::abi_decode(calldata)
        .map_err(|e| format!("ZK verifier: malformed call: {e}"))?;
    let bytes = key_bytes(&c.modelCID)?.ok_or_else(|| {
        revert!(
            "ZK verifier: no verifying key registered for model {}",
            c.modelCID
        )
    })?;
    let vk = key(&bytes)?;
    let ints = |v: &[I256]| -> Result<Vec<i64>, String> {
        v.iter()
            .map(|x| i64::try_from(*x).map_err(|_| format!("ZK verifier: {x} is outside int64")))
            .collect()
    };
    let ok = check(&vk, &ints(&c.input)?, &ints(&c.output)?, &c.proof).is_ok();
    Ok((
        IZkVerifier::verifyInferenceCall::abi_encode_returns(&ok),
        verify_gas(&vk),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(values: &[(i128, i128)]) -> ModelInput {
        ModelInput {
            numbers: vec![MultiDimensionalNumberTensor {
                name: "x".into(),
                values: values
                    .iter()
                    .map(|&(value, decimals)| Number { value, decimals })
                    .collect(),
                shape: vec![1, values.len() as u32],
            }],
            strings: vec![],
        }
    }

    #[test]
    fn inputs_quantize_exactly_and_round_half_away_from_zero() {
        // 0.5 · 2^4 = 8; 1/32 · 16 = 0.5 → 1; −0.03125 · 16 → −1; 3 → 48
        let x = input(&[(5, 1), (3125, 5), (-3125, 5), (3, 0), (-1, 2)]);
        assert_eq!(quantize_input(&x, 4).unwrap(), [8, 1, -1, 48, 0]);
        assert!(quantize_input(&input(&[(1, 40)]), 4)
            .unwrap_err()
            .contains("outside"));
        assert!(quantize_input(&input(&[(1, -1)]), 4)
            .unwrap_err()
            .contains("outside"));
        let two = ModelInput {
            numbers: vec![input(&[(1, 0)]).numbers[0].clone(); 2],
            strings: vec![],
        };
        assert!(quantize_input(&two, 4)
            .unwrap_err()
            .contains("one number tensor"));
    }

    #[test]
    fn json_inputs_become_the_precompiles_numbers_exactly() {
        let v = serde_json::json!({"x": [[0.5, -1.0, 0.25, 3, 1e-7]]});
        let mi = model_input(&gradnet_types::json::parse_inputs(&v).unwrap()).unwrap();
        let t = &mi.numbers[0];
        assert_eq!((t.name.as_str(), t.shape.clone()), ("x", vec![1, 5]));
        let got: Vec<(i128, i128)> = t.values.iter().map(|n| (n.value, n.decimals)).collect();
        assert_eq!(got, [(5, 1), (-1, 0), (25, 2), (3, 0), (1, 7)]);
        // the same quantization as the calldata's
        assert_eq!(quantize_input(&mi, 4).unwrap(), [8, -16, 4, 48, 0]);
        let two = serde_json::json!({"x": [1], "y": [2]});
        assert!(
            model_input(&gradnet_types::json::parse_inputs(&two).unwrap())
                .unwrap_err()
                .contains("one number tensor")
        );
    }

    #[test]
    fn outcomes_round_trip_and_malformed_ones_do_not_parse() {
        let o = outcome(&[7; PROOF_LEN], &[-3, 5]);
        let (p, y) = parse_outcome(&o).unwrap();
        assert_eq!((p, y), (&[7u8; PROOF_LEN][..], vec![-3, 5]));
        assert!(parse_outcome(&o[..o.len() - 1]).is_none());
        assert!(parse_outcome(&[0, 1, 2]).is_none());
    }
}
