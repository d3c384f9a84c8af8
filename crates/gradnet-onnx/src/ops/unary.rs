//! Element-wise operators of one input. Activations go through
//! [`Act`], the code fused kernels use too; transcendental functions are
//! gradnet's own ([`math`]); the rest are exact IEEE operations.

use super::{Build, Inputs, Op};
use crate::cx::Cx;
use crate::error::{bail, Result};
use crate::kernels::act::Act;
use crate::kernels::{math, multiversion, Fma};
use crate::tensor::{Data, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Unary {
    Act(Act),
    Exp,
    Log,
    Sqrt,
    Abs,
    Neg,
    Reciprocal,
    Floor,
    Ceil,
    Round,
    Sign,
    Erf,
    Elu(f32),
    Selu(f32, f32),
    Celu(f32),
    Softplus,
    Softsign,
    Gelu { tanh: bool },
    Mish,
    ThresholdedRelu(f32),
    Shrink(f32, f32),
    Not,
    IsNaN,
    IsInf { pos: bool, neg: bool },
}

struct UnaryOp {
    u: Unary,
    /// Clip's bounds when they come as (non-constant) inputs.
    clip_inputs: bool,
}

pub(crate) fn ctor(op: &str) -> Option<super::Ctor> {
    const NAMES: &[&str] = &[
        "Relu",
        "Sigmoid",
        "Tanh",
        "HardSigmoid",
        "HardSwish",
        "LeakyRelu",
        "Clip",
        "Exp",
        "Log",
        "Sqrt",
        "Abs",
        "Neg",
        "Reciprocal",
        "Floor",
        "Ceil",
        "Round",
        "Sign",
        "Erf",
        "Elu",
        "Selu",
        "Celu",
        "Softplus",
        "Softsign",
        "Gelu",
        "Mish",
        "ThresholdedRelu",
        "Shrink",
        "Not",
        "IsNaN",
        "IsInf",
    ];
    NAMES.contains(&op).then_some(build as super::Ctor)
}

/// The element-wise function a node computes (shared with the optimizer,
/// which fuses these into kernels).
pub(crate) fn kind(b: &Build) -> Result<Option<Unary>> {
    let n = b.node;
    Ok(Some(match n.op.as_str() {
        "Relu" => Unary::Act(Act::Relu),
        "Sigmoid" => Unary::Act(Act::Sigmoid),
        "Tanh" => Unary::Act(Act::Tanh),
        "HardSigmoid" => Unary::Act(Act::HardSigmoid(
            n.float_or("alpha", 0.2)?,
            n.float_or("beta", 0.5)?,
        )),
        "HardSwish" => Unary::Act(Act::HardSwish),
        "LeakyRelu" => Unary::Act(Act::LeakyRelu(n.float_or("alpha", 0.01)?)),
        "Clip" => {
            let (lo, hi) = if b.opset < 11 {
                (n.float_or("min", f32::MIN)?, n.float_or("max", f32::MAX)?)
            } else {
                let bound = |i: usize, d: f32| -> Result<Option<f32>> {
                    match (b.node.input(i), b.constant(i)) {
                        (None, _) => Ok(Some(d)),
                        (Some(_), Some(t)) => {
                            Ok(Some(t.to_f64s()?.first().map_or(d, |&v| v as f32)))
                        }
                        (Some(_), None) => Ok(None),
                    }
                };
                match (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?) {
                    (Some(lo), Some(hi)) => (lo, hi),
                    _ => return Ok(None),
                }
            };
            Unary::Act(Act::Clip(lo, hi))
        }
        "Exp" => Unary::Exp,
        "Log" => Unary::Log,
        "Sqrt" => Unary::Sqrt,
        "Abs" => Unary::Abs,
        "Neg" => Unary::Neg,
        "Reciprocal" => Unary::Reciprocal,
        "Floor" => Unary::Floor,
        "Ceil" => Unary::Ceil,
        "Round" => Unary::Round,
        "Sign" => Unary::Sign,
        "Erf" => Unary::Erf,
        "Elu" => Unary::Elu(n.float_or("alpha", 1.0)?),
        "Selu" => Unary::Selu(
            n.float_or("alpha", 1.673_263_2)?,
            n.float_or("gamma", 1.050_701)?,
        ),
        "Celu" => Unary::Celu(n.float_or("alpha", 1.0)?),
        "Softplus" => Unary::Softplus,
        "Softsign" => Unary::Softsign,
        "Gelu" => Unary::Gelu {
            tanh: n.string_or("approximate", "none")? == "tanh",
        },
        "Mish" => Unary::Mish,
        "ThresholdedRelu" => Unary::ThresholdedRelu(n.float_or("alpha", 1.0)?),
        "Shrink" => Unary::Shrink(n.float_or("lambd", 0.5)?, n.float_or("bias", 0.0)?),
        "Not" => Unary::Not,
        "IsNaN" => Unary::IsNaN,
        "IsInf" => Unary::IsInf {
            pos: n.int_or("detect_positive", 1)? != 0,
            neg: n.int_or("detect_negative", 1)? != 0,
        },
        _ => return Ok(None),
    }))
}

fn build(b: &Build) -> Result<Box<dyn Op>> {
    match kind(b)? {
        Some(u) => Ok(Box::new(UnaryOp {
            u,
            clip_inputs: false,
        })),
        // Clip with bounds computed in the graph
        None if b.node.op == "Clip" => Ok(Box::new(UnaryOp {
            u: Unary::Act(Act::Clip(f32::NEG_INFINITY, f32::INFINITY)),
            clip_inputs: true,
        })),
        None => Err(b.unsupported("unknown operator")),
    }
}

multiversion! {
    pub(crate) fn apply_f32(u: Unary, v: &mut [f32]) {
        macro_rules! each {
            ($x:ident => $e:expr) => {
                for x in v.iter_mut() {
                    let $x = *x;
                    *x = $e;
                }
            };
        }
        match u {
            Unary::Act(a) => a.apply_slice::<F>(v),
            Unary::Exp => each!(x => math::exp::<F>(x)),
            Unary::Log => each!(x => math::ln::<F>(x)),
            Unary::Sqrt => each!(x => x.sqrt()),
            Unary::Abs => each!(x => x.abs()),
            Unary::Neg => each!(x => -x),
            Unary::Reciprocal => each!(x => 1.0 / x),
            Unary::Floor => each!(x => x.floor()),
            Unary::Ceil => each!(x => x.ceil()),
            Unary::Round => each!(x => x.round_ties_even()),
            Unary::Sign => each!(x => if x > 0.0 { 1.0 } else if x < 0.0 { -1.0 } else { x * 0.0 }),
            Unary::Erf => each!(x => math::erf::<F>(x)),
            Unary::Elu(a) => each!(x => if x < 0.0 { a * (math::exp::<F>(x) - 1.0) } else { x }),
            Unary::Selu(a, g) => each!(x => g * if x > 0.0 { x } else { F::fma(a, math::exp::<F>(x), -a) }),
            Unary::Celu(a) => each!(x => {
                let neg = a * (math::exp::<F>(x / a) - 1.0);
                (if x > 0.0 { x } else { 0.0 }) + (if neg < 0.0 { neg } else { 0.0 })
            }),
            Unary::Softplus => each!(x => softplus::<F>(x)),
            Unary::Softsign => each!(x => x / (1.0 + x.abs())),
            Unary::Gelu { tanh: false } => each!(x => (0.5 * x) * (1.0 + math::erf::<F>(x * std::f32::consts::FRAC_1_SQRT_2))),
            Unary::Gelu { tanh: true } => each!(x => {
                let inner = 0.797_884_6 * F::fma(0.044_715 * x, x * x, x);
                (0.5 * x) * (1.0 + math::tanh::<F>(inner))
            }),
            Unary::Mish => each!(x => x * math::tanh::<F>(softplus::<F>(x))),
            Unary::ThresholdedRelu(a) => each!(x => if x > a { x } else { 0.0 }),
            Unary::Shrink(l, bias) => each!(x => if x < -l { x + bias } else if x > l { x - bias } else { 0.0 }),
            Unary::Not | Unary::IsNaN | Unary::IsInf { .. } => {}
        }
    }
}

/// ln(1 + e^x) without overflow: max(x, 0) + ln(1 + e^-|x|).
#[inline(always)]
fn softplus<F: Fma>(x: f32) -> f32 {
    (if x > 0.0 { x } else { 0.0 }) + math::ln::<F>(1.0 + math::exp::<F>(-x.abs()))
}

fn apply_f64(u: Unary, v: &mut [f64]) -> Result<()> {
    for x in v.iter_mut() {
        *x = match u {
            Unary::Act(Act::Relu) => {
                if *x > 0.0 {
                    *x
                } else {
                    0.0
                }
            }
            Unary::Act(Act::Clip(lo, hi)) => x.max(lo as f64).min(hi as f64),
            Unary::Sqrt => x.sqrt(),
            Unary::Abs => x.abs(),
            Unary::Neg => -*x,
            Unary::Reciprocal => 1.0 / *x,
            Unary::Floor => x.floor(),
            Unary::Ceil => x.ceil(),
            Unary::Round => x.round_ties_even(),
            Unary::Sign => {
                if *x > 0.0 {
                    1.0
                } else if *x < 0.0 {
                    -1.0
                } else {
                    *x * 0.0
                }
            }
            _ => bail!("{u:?} on float64 is not supported"),
        };
    }
    Ok(())
}

macro_rules! int_unary {
    ($u:expr, $v:expr) => {{
        for x in $v.iter_mut() {
            *x = match $u {
                Unary::Abs => x.wrapping_abs(),
                Unary::Neg => x.wrapping_neg(),
                Unary::Sign => x.signum(),
                Unary::Act(Act::Relu) => (*x).max(0),
                _ => bail!("{:?} on integers is not supported", $u),
            };
        }
    }};
}

impl Op for UnaryOp {
    fn run(&self, cx: &Cx, mut inputs: Inputs) -> Result<Vec<Tensor>> {
        let mut u = self.u;
        if self.clip_inputs {
            let lo = inputs.opt(1).map(|t| t.to_f64s()).transpose()?;
            let hi = inputs.opt(2).map(|t| t.to_f64s()).transpose()?;
            let lo = lo
                .and_then(|v| v.first().copied())
                .map_or(f32::NEG_INFINITY, |v| v as f32);
            let hi = hi
                .and_then(|v| v.first().copied())
                .map_or(f32::INFINITY, |v| v as f32);
            u = Unary::Act(Act::Clip(lo, hi));
        }
        let x = inputs.take(0)?;
        let (shape, data) = x.into_parts();
        let data = match (u, data) {
            (Unary::Not, Data::Bool(mut v)) => {
                v.iter_mut().for_each(|b| *b = !*b);
                Data::Bool(v)
            }
            (Unary::Not, d) => bail!("Not needs bool input, got {}", d.dtype()),
            (Unary::IsNaN, Data::F32(v)) => Data::Bool(v.iter().map(|x| x.is_nan()).collect()),
            (Unary::IsNaN, Data::F64(v)) => Data::Bool(v.iter().map(|x| x.is_nan()).collect()),
            (Unary::IsInf { pos, neg }, Data::F32(v)) => Data::Bool(
                v.iter()
                    .map(|x| (pos && *x == f32::INFINITY) || (neg && *x == f32::NEG_INFINITY))
                    .collect(),
            ),
            (Unary::IsInf { pos, neg }, Data::F64(v)) => Data::Bool(
                v.iter()
                    .map(|x| (pos && *x == f64::INFINITY) || (neg && *x == f64::NEG_INFINITY))
                    .collect(),
            ),
            (Unary::IsNaN | Unary::IsInf { .. }, d) => {
                bail!("{u:?} needs float input, got {}", d.dtype())
            }
            (u, Data::F32(mut v)) => {
                apply_f32(cx.isa, u, &mut v);
                Data::F32(v)
            }
            (u, Data::F64(mut v)) => {
                apply_f64(u, &mut v)?;
                Data::F64(v)
            }
            (Unary::Act(Act::Clip(lo, hi)), Data::I64(mut v)) => {
                let (lo, hi) = (
                    lo.max(i64::MIN as f32) as i64,
                    hi.min(i64::MAX as f32) as i64,
                );
                v.iter_mut().for_each(|x| *x = (*x).max(lo).min(hi));
                Data::I64(v)
            }
            (u, Data::I64(mut v)) => {
                int_unary!(u, v);
                Data::I64(v)
            }
            (u, Data::I32(mut v)) => {
                int_unary!(u, v);
                Data::I32(v)
            }
            (u, Data::I8(mut v)) => {
                int_unary!(u, v);
                Data::I8(v)
            }
            (u, d) => bail!("{u:?} on {} is not supported", d.dtype()),
        };
        Ok(vec![Tensor::new(shape, data)?])
    }
}
