//! Fused multiply-add, the one rounding rule every kernel follows.

/// `a * b + c` with one rounding. Implementations differ in speed only.
pub trait Fma: Copy + 'static {
    fn fma(a: f32, b: f32, c: f32) -> f32;
}

/// The CPU's FMA instruction (in code compiled with the feature), or the C
/// library's correctly rounded `fmaf` (in code compiled without it).
#[derive(Clone, Copy)]
pub struct Hard;

impl Fma for Hard {
    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// Exact FMA from double arithmetic, for x86-64 CPUs without FMA.
#[derive(Clone, Copy)]
pub struct Soft;

impl Fma for Soft {
    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        soft_fma(a, b, c)
    }
}

/// `a * b + c` rounded once to f32, using only f64 additions and
/// multiplications (vectorizable with SSE2).
///
/// The product of two f32 is exact in f64. The sum is rounded to f64 *to
/// odd* (round to nearest, then, if that was inexact and the result's last
/// bit is even, step one unit toward the exact value); rounding that to f32
/// gives the correctly rounded result, since f64 has more than 24 + 2 bits
/// (Boldo and Melquiond, "When double rounding is odd", 2005).
#[inline(always)]
pub fn soft_fma(a: f32, b: f32, c: f32) -> f32 {
    let p = a as f64 * b as f64;
    let c = c as f64;
    let s = p + c;
    // the rounding error of s, exactly (Knuth's TwoSum)
    let bv = s - p;
    let err = (p - (s - bv)) + (c - bv);
    let bits = s.to_bits();
    let inexact_even = err != 0.0 && bits & 1 == 0 && s.abs() < f64::INFINITY;
    let toward = if (err > 0.0) == (s > 0.0) {
        bits.wrapping_add(1)
    } else {
        bits.wrapping_sub(1)
    };
    let odd = f64::from_bits(if inexact_even { toward } else { bits });
    odd as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: the C library's fmaf, correctly rounded by contract.
    fn reference(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }

    fn same(x: f32, y: f32) -> bool {
        x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
    }

    #[test]
    fn soft_fma_is_correctly_rounded() {
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let special = [
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            f32::MIN_POSITIVE,
            1e-45,
            -1e-45,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1.0 + f32::EPSILON,
            1.0 - f32::EPSILON / 2.0,
            0.5,
            3.0,
        ];
        for &a in &special {
            for &b in &special {
                for &c in &special {
                    assert!(same(soft_fma(a, b, c), reference(a, b, c)), "{a} {b} {c}");
                }
            }
        }
        for i in 0..2_000_000u32 {
            let r = next();
            let (a, b, c) = match i % 4 {
                // random bit patterns: all exponents, subnormals, NaNs
                0 => (
                    f32::from_bits(r as u32),
                    f32::from_bits((r >> 32) as u32),
                    f32::from_bits(next() as u32),
                ),
                // near-cancellation: c close to -a*b, where rounding bites
                1 => {
                    let a = f32::from_bits((r as u32 & 0x807f_ffff) | 0x3f00_0000);
                    let b = f32::from_bits(((r >> 32) as u32 & 0x807f_ffff) | 0x3f00_0000);
                    let c = -(a * b) * (1.0 + ((next() % 64) as f32 - 32.0) * f32::EPSILON);
                    (a, b, c)
                }
                // products and addends at distant exponents (ties after rounding)
                2 => {
                    let a = f32::from_bits((r as u32 & 0x807f_ffff) | 0x3f80_0000);
                    let b = f32::from_bits(((r >> 32) as u32 & 0x807f_ffff) | 0x3f80_0000);
                    let e = 127 + (next() % 60) as u32 - 30;
                    let c = f32::from_bits(((next() as u32) & 0x807f_ffff) | (e << 23));
                    (a, b, c)
                }
                // ordinary magnitudes, like weights and activations
                _ => {
                    let u = |x: u64| (x % 2_000_001) as f32 / 1_000_000.0 - 1.0;
                    (u(r), u(r >> 21), u(r >> 42) * 4.0)
                }
            };
            assert!(
                same(soft_fma(a, b, c), reference(a, b, c)),
                "{a:e} {b:e} {c:e}: {:e} vs {:e}",
                soft_fma(a, b, c),
                reference(a, b, c)
            );
        }
    }
}
