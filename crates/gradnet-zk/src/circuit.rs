//! The R1CS of a [`QuantModel`]. Public inputs, in order: the model hash
//! (as a field element, pinned to a constant, so the verifying key commits
//! to it), the quantized inputs, the quantized outputs. Weights are
//! constants of the circuit; every activation is one variable.
//!
//! Gadgets: a rescale proves acc = q·2^F + r with r in F bits and
//! q + 2^(B-1) in B bits (the top bit is q ≥ 0, which a fused ReLU reuses:
//! y = sign·q); a max proves m − xᵢ ≥ 0 for each xᵢ (B+1 bits) and
//! Π(m − xᵢ) = 0, so m is one of them.

use ark_bn254::Fr;
use ark_ff::PrimeField;
use ark_relations::lc;
use ark_relations::r1cs::{
    ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable,
};

use crate::model::{Op, QuantModel, ACT_BITS};

pub(crate) fn field(v: i128) -> Fr {
    if v < 0 {
        -Fr::from(v.unsigned_abs())
    } else {
        Fr::from(v as u128)
    }
}

/// The model hash as a public input: its first 31 bytes (248 bits), so it
/// is below the field's modulus.
pub(crate) fn hash_field(hash: &[u8; 32]) -> Fr {
    Fr::from_le_bytes_mod_order(&hash[..31])
}

/// Public inputs in the circuit's order.
pub fn public_inputs(model_hash: &[u8; 32], input: &[i64], output: &[i64]) -> Vec<Fr> {
    std::iter::once(hash_field(model_hash))
        .chain(input.iter().chain(output).map(|&v| field(v as i128)))
        .collect()
}

pub(crate) struct Circuit<'a> {
    pub model: &'a QuantModel,
    pub hash: [u8; 32],
    pub input: Vec<i64>,
    pub output: Vec<i64>,
}

type Cs = ConstraintSystemRef<Fr>;

/// `value` (< 2^n) as n boolean witnesses: their weighted sum and the top bit.
fn bits(cs: &Cs, value: u128, n: u32) -> Result<(LinearCombination<Fr>, Variable), SynthesisError> {
    let mut sum = Vec::with_capacity(n as usize);
    let mut top = Variable::One;
    let mut pow = Fr::from(1u64);
    for k in 0..n {
        let bit = (value >> k) & 1 == 1;
        let b = cs.new_witness_variable(|| Ok(Fr::from(bit as u64)))?;
        cs.enforce_constraint(lc!() + b, lc!() + Variable::One - b, lc!())?;
        sum.push((pow, b));
        pow += pow;
        top = b;
    }
    Ok((LinearCombination(sum), top))
}

fn witness(cs: &Cs, v: i128) -> Result<Variable, SynthesisError> {
    cs.new_witness_variable(|| Ok(field(v)))
}

/// `x ≥ 0` has sign 1: x + 2^(B-1) decomposed in B bits, top bit returned.
fn sign_of(cs: &Cs, x: Variable, v: i128) -> Result<Variable, SynthesisError> {
    let half = 1i128 << (ACT_BITS - 1);
    let (u, sign) = bits(cs, (v + half) as u128, ACT_BITS)?;
    cs.enforce_constraint(
        u - (field(half), Variable::One) - x,
        lc!() + Variable::One,
        lc!(),
    )?;
    Ok(sign)
}

fn relu(cs: &Cs, x: Variable, v: i128, sign: Variable) -> Result<(Variable, i128), SynthesisError> {
    let y = witness(cs, v.max(0))?;
    cs.enforce_constraint(lc!() + sign, lc!() + x, lc!() + y)?;
    Ok((y, v.max(0)))
}

impl ConstraintSynthesizer<Fr> for Circuit<'_> {
    fn generate_constraints(self, cs: Cs) -> Result<(), SynthesisError> {
        let f = self.model.frac_bits;
        let h = cs.new_input_variable(|| Ok(hash_field(&self.hash)))?;
        cs.enforce_constraint(
            lc!() + h,
            lc!() + Variable::One,
            lc!() + (hash_field(&self.hash), Variable::One),
        )?;
        let mut acts: Vec<(Variable, i128)> = Vec::with_capacity(self.input.len());
        for &x in &self.input {
            acts.push((cs.new_input_variable(|| Ok(field(x as i128)))?, x as i128));
        }
        let scale = 1i128 << f;
        for op in &self.model.ops {
            let mut next = Vec::new();
            match op {
                Op::Linear {
                    rows,
                    bias,
                    relu: fused,
                } => {
                    for (row, b) in rows.iter().zip(bias) {
                        let mut terms = Vec::with_capacity(row.len() + 1);
                        terms.push((field(*b as i128), Variable::One));
                        let mut acc_v = *b as i128;
                        for &(i, w) in row {
                            let (x, xv) = acts[i as usize];
                            terms.push((field(w as i128), x));
                            acc_v += w as i128 * xv;
                        }
                        let q_v = acc_v.div_euclid(scale);
                        let q = witness(&cs, q_v)?;
                        let (r, _) = bits(&cs, (acc_v - q_v * scale) as u128, f)?;
                        // acc = q·2^F + r
                        cs.enforce_constraint(
                            LinearCombination(terms) - (field(scale), q) - &r,
                            lc!() + Variable::One,
                            lc!(),
                        )?;
                        let sign = sign_of(&cs, q, q_v)?;
                        next.push(if *fused {
                            relu(&cs, q, q_v, sign)?
                        } else {
                            (q, q_v)
                        });
                    }
                }
                Op::Relu => {
                    for &(x, v) in &acts {
                        let sign = sign_of(&cs, x, v)?;
                        next.push(relu(&cs, x, v, sign)?);
                    }
                }
                Op::MaxPool { windows } => {
                    for w in windows {
                        let m_v = w.iter().map(|&i| acts[i as usize].1).max().unwrap_or(0);
                        let m = witness(&cs, m_v)?;
                        // running product of the differences, as a combination and its value
                        let mut product: Option<(LinearCombination<Fr>, Fr)> = None;
                        for &i in w {
                            let (x, xv) = acts[i as usize];
                            let (d, _) = bits(&cs, (m_v - xv) as u128, ACT_BITS + 1)?;
                            cs.enforce_constraint(d - m + x, lc!() + Variable::One, lc!())?;
                            let (diff, dv) = (lc!() + m - x, field(m_v - xv));
                            product = Some(match product {
                                None => (diff, dv),
                                Some((p, pv)) => {
                                    let t = cs.new_witness_variable(|| Ok(pv * dv))?;
                                    cs.enforce_constraint(p, diff, lc!() + t)?;
                                    (lc!() + t, pv * dv)
                                }
                            });
                        }
                        if let Some((p, _)) = product {
                            cs.enforce_constraint(p, lc!() + Variable::One, lc!())?;
                        }
                        next.push((m, m_v));
                    }
                }
            }
            acts = next;
        }
        for (i, (y, _)) in acts.into_iter().enumerate() {
            let out = cs.new_input_variable(|| Ok(field(self.output[i] as i128)))?;
            cs.enforce_constraint(lc!() + y, lc!() + Variable::One, lc!() + out)?;
        }
        Ok(())
    }
}
