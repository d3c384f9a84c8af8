//! ZKML: a fixed-point MLP (dense layers, ReLU) as a Groth16 circuit over
//! BN254. Weights and biases are constants of the circuit, so the
//! verifying key itself commits to the model; inputs and outputs are the
//! public inputs.
//!
//! Arithmetic: values are integers at scale 2^F (`frac_bits`). A layer
//! computes acc = Σ w·x + b (w at 2^F, so acc at 2^2F; b given at 2^2F),
//! then q = floor(acc / 2^F), proved by acc = q·2^F + r with 0 ≤ r < 2^F
//! (bit decomposition) and q in a signed `ACT_BITS` range (bit
//! decomposition, whose top bit is q's sign, which ReLU reuses).

use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey};
use ark_relations::lc;
use ark_relations::r1cs::{
    ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable,
};
use ark_snark::SNARK;

/// Bits of an activation's signed range.
pub const ACT_BITS: u32 = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// `out × in`, at scale 2^F.
    pub weights: Vec<Vec<i64>>,
    /// At scale 2^2F.
    pub bias: Vec<i64>,
    pub relu: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantMlp {
    pub frac_bits: u32,
    pub layers: Vec<Layer>,
}

#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error("input has {got} values, the model takes {want}")]
    InputLen { got: usize, want: usize },
    #[error("activation {0} leaves the circuit's {ACT_BITS}-bit range")]
    Range(i128),
    #[error("proving system: {0}")]
    Snark(String),
}

fn field(v: i128) -> Fr {
    if v < 0 {
        -Fr::from(v.unsigned_abs())
    } else {
        Fr::from(v as u128)
    }
}

impl QuantMlp {
    pub fn inputs(&self) -> usize {
        self.layers
            .first()
            .map_or(0, |l| l.weights.first().map_or(0, Vec::len))
    }

    /// The circuit's arithmetic, run plainly: the output a proof attests.
    pub fn forward(&self, x: &[i64]) -> Result<Vec<i64>, ZkError> {
        if x.len() != self.inputs() {
            return Err(ZkError::InputLen {
                got: x.len(),
                want: self.inputs(),
            });
        }
        let mut a: Vec<i128> = x.iter().map(|&v| v as i128).collect();
        let limit = 1i128 << (ACT_BITS - 1);
        for l in &self.layers {
            let mut next = Vec::with_capacity(l.weights.len());
            for (row, b) in l.weights.iter().zip(&l.bias) {
                let acc: i128 = row
                    .iter()
                    .zip(&a)
                    .map(|(w, x)| *w as i128 * x)
                    .sum::<i128>()
                    + *b as i128;
                let q = acc.div_euclid(1 << self.frac_bits);
                if !(-limit..limit).contains(&q) {
                    return Err(ZkError::Range(q));
                }
                next.push(if l.relu { q.max(0) } else { q });
            }
            a = next;
        }
        Ok(a.into_iter().map(|v| v as i64).collect())
    }
}

struct Circuit<'a> {
    model: &'a QuantMlp,
    input: Vec<i64>,
    output: Vec<i64>,
}

impl ConstraintSynthesizer<Fr> for Circuit<'_> {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let f = self.model.frac_bits;
        let mut acts: Vec<(LinearCombination<Fr>, i128)> = Vec::new();
        for &x in &self.input {
            let v = cs.new_input_variable(|| Ok(field(x as i128)))?;
            acts.push((lc!() + v, x as i128));
        }
        let bits = |cs: &ConstraintSystemRef<Fr>,
                    value: u128,
                    n: u32|
         -> Result<(LinearCombination<Fr>, Variable), SynthesisError> {
            // value as n boolean witnesses; their weighted sum, and the top bit
            let mut sum = lc!();
            let mut top = Variable::One;
            for k in 0..n {
                let bit = (value >> k) & 1 == 1;
                let b = cs.new_witness_variable(|| Ok(Fr::from(bit as u64)))?;
                cs.enforce_constraint(lc!() + b, lc!() + Variable::One - b, lc!())?;
                sum += (Fr::from(2u64).pow([k as u64]), b);
                top = b;
            }
            Ok((sum, top))
        };
        use ark_ff::Field;
        let half = 1i128 << (ACT_BITS - 1);
        for l in &self.model.layers {
            let mut next = Vec::with_capacity(l.weights.len());
            for (row, b) in l.weights.iter().zip(&l.bias) {
                let mut acc = lc!() + (field(*b as i128), Variable::One);
                let mut acc_v = *b as i128;
                for (w, (x, xv)) in row.iter().zip(&acts) {
                    acc = acc + &(x.clone() * field(*w as i128));
                    acc_v += *w as i128 * xv;
                }
                let q = acc_v.div_euclid(1 << f);
                let r = acc_v - q * (1 << f);
                let (r_lc, _) = bits(&cs, r as u128, f)?;
                let (u_lc, sign) = bits(&cs, (q + half) as u128, ACT_BITS)?;
                let q_lc = u_lc - (field(half), Variable::One);
                // acc = q·2^F + r
                cs.enforce_constraint(
                    acc - &(q_lc.clone() * field(1 << f)) - &r_lc,
                    lc!() + Variable::One,
                    lc!(),
                )?;
                if l.relu {
                    // the top bit of q + 2^(B-1) is 1 exactly when q ≥ 0
                    let y_v = q.max(0);
                    let y = cs.new_witness_variable(|| Ok(field(y_v)))?;
                    cs.enforce_constraint(lc!() + sign, q_lc, lc!() + y)?;
                    next.push((lc!() + y, y_v));
                } else {
                    next.push((q_lc, q));
                }
            }
            acts = next;
        }
        for (i, (y, _)) in acts.into_iter().enumerate() {
            let out = cs.new_input_variable(|| Ok(field(self.output[i] as i128)))?;
            cs.enforce_constraint(y, lc!() + Variable::One, lc!() + out)?;
        }
        Ok(())
    }
}

pub struct Keys {
    pub proving: ProvingKey<Bn254>,
    pub verifying: PreparedVerifyingKey<Bn254>,
}

/// Keys for `model` (once per model version).
pub fn setup(model: &QuantMlp, seed: u64) -> Result<Keys, ZkError> {
    use ark_std::rand::SeedableRng;
    let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(seed);
    let zeros = vec![0; model.inputs()];
    let output = model.forward(&zeros)?;
    let (pk, vk) = Groth16::<Bn254>::circuit_specific_setup(
        Circuit {
            model,
            input: zeros,
            output,
        },
        &mut rng,
    )
    .map_err(|e| ZkError::Snark(e.to_string()))?;
    let verifying = Groth16::<Bn254>::process_vk(&vk).map_err(|e| ZkError::Snark(e.to_string()))?;
    Ok(Keys {
        proving: pk,
        verifying,
    })
}

/// The output for `input` and a proof of it.
pub fn prove(
    model: &QuantMlp,
    keys: &Keys,
    input: &[i64],
) -> Result<(Vec<i64>, Proof<Bn254>), ZkError> {
    let output = model.forward(input)?;
    let mut rng = rand::rngs::OsRng;
    let proof = Groth16::<Bn254>::prove(
        &keys.proving,
        Circuit {
            model,
            input: input.to_vec(),
            output: output.clone(),
        },
        &mut rng,
    )
    .map_err(|e| ZkError::Snark(e.to_string()))?;
    Ok((output, proof))
}

/// Whether `proof` shows that `model` (its verifying key) maps `input` to `output`.
pub fn verify(
    vk: &PreparedVerifyingKey<Bn254>,
    input: &[i64],
    output: &[i64],
    proof: &Proof<Bn254>,
) -> bool {
    let public: Vec<Fr> = input
        .iter()
        .chain(output)
        .map(|&v| field(v as i128))
        .collect();
    Groth16::<Bn254>::verify_with_processed_vk(vk, &public, proof).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(seed: i64) -> QuantMlp {
        let w = |o: usize, i: usize, s: i64| -> Vec<Vec<i64>> {
            (0..o)
                .map(|a| {
                    (0..i)
                        .map(|b| ((a as i64 * 7 + b as i64 * 13 + s) % 97) - 48)
                        .collect()
                })
                .collect()
        };
        QuantMlp {
            frac_bits: 8,
            layers: vec![
                Layer {
                    weights: w(8, 4, seed),
                    bias: vec![1 << 10; 8],
                    relu: true,
                },
                Layer {
                    weights: w(3, 8, seed + 1),
                    bias: vec![-(1 << 9); 3],
                    relu: false,
                },
            ],
        }
    }

    #[test]
    fn a_proof_verifies_and_a_changed_output_or_model_does_not() {
        let m = model(3);
        let keys = setup(&m, 1).unwrap();
        let x = [128, -256, 64, 300];
        let (y, proof) = prove(&m, &keys, &x).unwrap();
        assert!(verify(&keys.verifying, &x, &y, &proof));
        let mut wrong = y.clone();
        wrong[0] += 1;
        assert!(!verify(&keys.verifying, &x, &wrong, &proof));
        assert!(!verify(&keys.verifying, &[128, -256, 64, 301], &y, &proof));
        // another model's key refuses this model's proof
        let other = setup(&model(5), 1).unwrap();
        assert!(!verify(&other.verifying, &x, &y, &proof));
    }
}
