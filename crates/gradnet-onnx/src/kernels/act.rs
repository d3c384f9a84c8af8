//! Element-wise activations, shared by the standalone operators and the
//! epilogues of fused convolutions and matrix products, so that fusing an
//! activation into a kernel never changes a bit.

use super::{math, Fma};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    Identity,
    Relu,
    /// min(max(x, lo), hi)
    Clip(f32, f32),
    LeakyRelu(f32),
    /// max(0, min(1, alpha * x + beta))
    HardSigmoid(f32, f32),
    /// x * HardSigmoid(x) with alpha 1/6, beta 1/2.
    HardSwish,
    Sigmoid,
    /// x * sigmoid(x)
    Swish,
    Tanh,
}

/// `max(x, lo)` that returns `lo` for NaN (as x86's `maxps` does), written
/// once so that every path agrees.
#[inline(always)]
pub fn max(x: f32, lo: f32) -> f32 {
    if x > lo {
        x
    } else {
        lo
    }
}

#[inline(always)]
pub fn min(x: f32, hi: f32) -> f32 {
    if x < hi {
        x
    } else {
        hi
    }
}

impl Act {
    #[inline(always)]
    pub fn apply<F: Fma>(self, x: f32) -> f32 {
        match self {
            Act::Identity => x,
            Act::Relu => max(x, 0.0),
            Act::Clip(lo, hi) => min(max(x, lo), hi),
            Act::LeakyRelu(a) => {
                if x < 0.0 {
                    a * x
                } else {
                    x
                }
            }
            Act::HardSigmoid(a, b) => min(max(F::fma(a, x, b), 0.0), 1.0),
            Act::HardSwish => x * min(max(F::fma(1.0 / 6.0, x, 0.5), 0.0), 1.0),
            Act::Sigmoid => math::sigmoid::<F>(x),
            Act::Swish => x * math::sigmoid::<F>(x),
            Act::Tanh => math::tanh::<F>(x),
        }
    }

    /// Applies the activation to every element: each arm its own loop (the
    /// same expressions as [`Act::apply`]) so that each vectorizes.
    #[inline(always)]
    pub fn apply_slice<F: Fma>(self, v: &mut [f32]) {
        macro_rules! each {
            ($x:ident => $e:expr) => {
                for $x in v.iter_mut() {
                    *$x = $e;
                }
            };
        }
        match self {
            Act::Identity => {}
            Act::Relu => each!(x => max(*x, 0.0)),
            Act::Clip(lo, hi) => each!(x => min(max(*x, lo), hi)),
            Act::LeakyRelu(a) => each!(x => if *x < 0.0 { a * *x } else { *x }),
            Act::HardSigmoid(a, b) => each!(x => min(max(F::fma(a, *x, b), 0.0), 1.0)),
            Act::HardSwish => each!(x => *x * min(max(F::fma(1.0 / 6.0, *x, 0.5), 0.0), 1.0)),
            Act::Sigmoid => each!(x => math::sigmoid::<F>(*x)),
            Act::Swish => each!(x => *x * math::sigmoid::<F>(*x)),
            Act::Tanh => each!(x => math::tanh::<F>(*x)),
        }
    }
}
