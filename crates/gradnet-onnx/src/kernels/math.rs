//! gradnet's own f32 transcendental functions. Each is a fixed sequence of
//! IEEE additions, multiplications, FMAs, divisions, square roots and bit
//! operations, so it gives the same bits on every CPU (the C library's
//! `expf` and friends do not: their results vary by implementation and by
//! the CPU features they pick at run time). Polynomials are Cephes' (S. L.
//! Moshier), evaluated by Horner's rule with FMA; accuracy is a few ulp,
//! checked against f64 references in the tests.

use super::Fma;

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split into a part exact in few bits and the rest (Cody-Waite).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding and subtracting 1.5 * 2^23 rounds to an integer, ties to even.
const ROUNDER: f32 = 12_582_912.0;

/// `2^n` for an integer-valued `n` in [-126, 127].
#[inline(always)]
fn pow2i(n: f32) -> f32 {
    f32::from_bits((((n as i32) + 127) as u32) << 23)
}

#[inline(always)]
fn horner<F: Fma>(x: f32, c: &[f32]) -> f32 {
    let mut p = c[0];
    for &k in &c[1..] {
        p = F::fma(p, x, k);
    }
    p
}

/// e^x. Overflows to infinity above 88.72, is 0 below -103.97 (subnormals
/// in between), NaN for NaN.
#[inline(always)]
pub fn exp<F: Fma>(x: f32) -> f32 {
    // clamp so the scale stays representable; NaN passes through the
    // comparisons unchanged (both are false)
    let xc = if x > 88.8 {
        88.8
    } else if x < -104.0 {
        -104.0
    } else {
        x
    };
    let n = (xc * LOG2E + ROUNDER) - ROUNDER;
    let r = F::fma(n, -LN2_LO, F::fma(n, -LN2_HI, xc));
    let r2 = r * r;
    let p = horner::<F>(
        r,
        &[
            1.987_569_1e-4,
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            5.000_000_1e-1,
        ],
    );
    let y = F::fma(p, r2, r) + 1.0;
    // scale in two steps so that 2^n below 2^-126 or above 2^127 works
    let n1 = ((n * 0.5) + ROUNDER) - ROUNDER;
    let n1 = if n1 > n * 0.5 { n1 - 1.0 } else { n1 };
    let out = y * pow2i(n1) * pow2i(n - n1);
    if x > 88.8 {
        f32::INFINITY
    } else {
        out
    }
}

/// Natural logarithm: -inf at 0, NaN below 0 and for NaN, inf at inf.
#[inline(always)]
pub fn ln<F: Fma>(x: f32) -> f32 {
    let bits = x.to_bits();
    // subnormals: scale up by 2^23 first
    let sub = x < f32::MIN_POSITIVE;
    let xs = if sub { x * 8_388_608.0 } else { x };
    let bits_s = xs.to_bits();
    let mut e = ((bits_s >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits_s & 0x007f_ffff) | 0x3f00_0000); // [0.5, 1)
    if m < std::f32::consts::FRAC_1_SQRT_2 {
        e -= 1;
        m = m + m - 1.0;
    } else {
        m -= 1.0;
    }
    let ef = e as f32 - if sub { 23.0 } else { 0.0 };
    let z = m * m;
    let p = horner::<F>(
        m,
        &[
            7.037_683_6e-2,
            -1.151_461e-1,
            1.167_699_8e-1,
            -1.242_014_1e-1,
            1.424_932_3e-1,
            -1.666_805_8e-1,
            2.000_071_4e-1,
            -2.499_999_4e-1,
            3.333_333e-1,
        ],
    );
    let y = p * m * z;
    let y = F::fma(ef, LN2_LO, y);
    let y = F::fma(-0.5, z, y);
    let r = F::fma(ef, LN2_HI, m + y);
    if bits == 0 || bits == 0x8000_0000 {
        f32::NEG_INFINITY
    } else if x < 0.0 || x.is_nan() {
        f32::NAN
    } else if x == f32::INFINITY {
        f32::INFINITY
    } else {
        r
    }
}

/// 1 / (1 + e^-x).
#[inline(always)]
pub fn sigmoid<F: Fma>(x: f32) -> f32 {
    1.0 / (1.0 + exp::<F>(-x))
}

/// Hyperbolic tangent: a polynomial near 0, 1 - 2 / (e^2|x| + 1) beyond.
#[inline(always)]
pub fn tanh<F: Fma>(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small = F::fma(
        horner::<F>(
            z,
            &[
                -5.704_988_7e-3,
                2.063_908_5e-2,
                -5.373_971_7e-2,
                1.333_144_3e-1,
                -3.333_328e-1,
            ],
        ) * z,
        x,
        x,
    );
    let big = 1.0 - 2.0 / (exp::<F>(a + a) + 1.0);
    let big = if x < 0.0 { -big } else { big };
    if a < 0.625 {
        small
    } else {
        big
    }
}

/// The error function: Cephes' polynomial below 1, `1 - erfc` above.
#[inline(always)]
pub fn erf<F: Fma>(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small = x * horner::<F>(
        z,
        &[
            7.853_861_4e-5,
            -8.010_193_6e-4,
            5.188_327_7e-3,
            -2.685_381_2e-2,
            1.128_358_5e-1,
            -3.761_262_4e-1,
            1.128_379_2,
        ],
    );
    let big = 1.0 - erfc_tail::<F>(a);
    let big = if x < 0.0 { -big } else { big };
    if a < 1.0 {
        small
    } else if a.is_nan() {
        x
    } else {
        big
    }
}

/// erfc(a) for a >= 1 (Numerical Recipes' erfcc: relative error below 1.2e-7).
#[inline(always)]
fn erfc_tail<F: Fma>(a: f32) -> f32 {
    let a = if a > 10.0 { 10.0 } else { a };
    let t = 1.0 / F::fma(0.5, a, 1.0);
    let p = horner::<F>(
        t,
        &[
            0.170_872_77,
            -0.822_152_23,
            1.488_515_9,
            -1.135_204,
            0.278_868_07,
            -0.186_288_06,
            0.096_784_18,
            0.374_091_96,
            1.000_023_7,
            -1.265_512_2,
        ],
    );
    t * exp::<F>(F::fma(-a, a, p))
}

/// x^y for f32, as ONNX's Pow: exact squares and square roots for the
/// exponents 2 and 0.5, `exp(y ln|x|)` otherwise (sign from an odd integer
/// exponent, NaN for a negative base with a fractional exponent).
#[inline(always)]
pub fn pow<F: Fma>(x: f32, y: f32) -> f32 {
    if y == 2.0 {
        return x * x;
    }
    if y == 1.0 {
        return x;
    }
    if y == 0.0 {
        return 1.0;
    }
    if y == 0.5 && x >= 0.0 {
        return x.sqrt();
    }
    if y == 3.0 {
        return x * x * x;
    }
    if y == -1.0 {
        return 1.0 / x;
    }
    let int = y == ((y + ROUNDER) - ROUNDER) || y.abs() >= 8_388_608.0;
    let odd = int && y.abs() < 16_777_216.0 && (y as i64) & 1 == 1;
    let m = exp::<F>(y * ln::<F>(x.abs()));
    if x < 0.0 {
        if !int {
            f32::NAN
        } else if odd {
            -m
        } else {
            m
        }
    } else if x == 0.0 && y < 0.0 {
        if odd && x.is_sign_negative() {
            f32::NEG_INFINITY
        } else {
            f32::INFINITY
        }
    } else {
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{Hard, Soft};

    fn ulps(a: f32, b: f64) -> f64 {
        let b32 = b as f32;
        if a == b32 || (a.is_nan() && b.is_nan()) {
            return 0.0;
        }
        let ulp = (b32.abs().max(f32::MIN_POSITIVE) * f32::EPSILON) as f64;
        (a as f64 - b).abs() / ulp
    }

    fn sweep(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * (i as f32 / n as f32))
    }

    #[test]
    fn accuracy_against_f64() {
        let mut worst = [0f64; 6];
        for x in sweep(-87.0, 88.0, 200_000) {
            worst[0] = worst[0].max(ulps(exp::<Hard>(x), (x as f64).exp()));
        }
        for x in sweep(1e-6, 1e4, 200_000).chain(sweep(1e-3, 3.0, 100_000)) {
            worst[1] = worst[1].max(ulps(ln::<Hard>(x), (x as f64).ln()));
        }
        for x in sweep(-12.0, 12.0, 200_000) {
            worst[2] = worst[2].max(ulps(tanh::<Hard>(x), (x as f64).tanh()));
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            worst[3] = worst[3].max(ulps(sigmoid::<Hard>(x), s));
        }
        for x in sweep(-6.0, 6.0, 200_000) {
            worst[4] = worst[4].max(ulps(erf::<Hard>(x), erf64(x as f64)));
        }
        for (x, y) in
            sweep(0.01, 50.0, 300).flat_map(|x| sweep(-3.3, 3.7, 300).map(move |y| (x, y)))
        {
            worst[5] = worst[5].max(ulps(pow::<Hard>(x, y), (x as f64).powf(y as f64)));
        }
        let bound = [2.0, 2.0, 3.0, 3.0, 4.0, 64.0];
        for (i, name) in ["exp", "ln", "tanh", "sigmoid", "erf", "pow"]
            .iter()
            .enumerate()
        {
            assert!(worst[i] <= bound[i], "{name}: {} ulp", worst[i]);
        }
    }

    /// erf in f64 from its series / continued fraction (reference only).
    fn erf64(x: f64) -> f64 {
        if x.abs() < 2.5 {
            let (mut sum, mut term, mut n) = (x, x, 0.0);
            while term.abs() > 1e-17 * sum.abs() {
                n += 1.0;
                term *= -x * x / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc by a Lentz continued fraction
            let a = x.abs();
            let mut f = a;
            let (mut c, mut d) = (a, 0.0);
            for k in 1..200 {
                let kk = k as f64 / 2.0;
                d = a + kk * d;
                d = 1.0 / d;
                c = a + kk / c;
                let delta = c * d;
                f *= delta;
                if (delta - 1.0).abs() < 1e-16 {
                    break;
                }
            }
            let erfc = (-a * a).exp() / f / std::f64::consts::PI.sqrt();
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn special_values() {
        assert_eq!(exp::<Hard>(0.0), 1.0);
        assert_eq!(exp::<Hard>(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp::<Hard>(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp::<Hard>(100.0), f32::INFINITY);
        assert!(exp::<Hard>(f32::NAN).is_nan());
        assert!(exp::<Hard>(-100.0) > 0.0, "subnormal results");
        assert_eq!(ln::<Hard>(1.0), 0.0);
        assert_eq!(ln::<Hard>(0.0), f32::NEG_INFINITY);
        assert!(ln::<Hard>(-1.0).is_nan());
        assert_eq!(ln::<Hard>(f32::INFINITY), f32::INFINITY);
        assert!((ln::<Hard>(1e-40) as f64 - (1e-40f64).ln()).abs() < 1e-4);
        assert_eq!(tanh::<Hard>(30.0), 1.0);
        assert_eq!(tanh::<Hard>(-30.0), -1.0);
        assert_eq!(sigmoid::<Hard>(-200.0), 0.0);
        assert_eq!(sigmoid::<Hard>(200.0), 1.0);
        assert_eq!(erf::<Hard>(20.0), 1.0);
        assert!(erf::<Hard>(f32::NAN).is_nan());
        assert_eq!(pow::<Hard>(-2.0, 3.0), -8.0);
        assert_eq!(pow::<Hard>(-2.0, 4.0), 16.0);
        assert!(pow::<Hard>(-2.0, 0.5).is_nan());
        assert_eq!(pow::<Hard>(3.0, 2.0), 9.0);
    }

    #[test]
    fn soft_and_hard_fma_give_the_same_bits() {
        for x in sweep(-110.0, 110.0, 100_000) {
            assert_eq!(
                exp::<Hard>(x).to_bits(),
                exp::<Soft>(x).to_bits(),
                "exp {x}"
            );
            assert_eq!(
                tanh::<Hard>(x).to_bits(),
                tanh::<Soft>(x).to_bits(),
                "tanh {x}"
            );
            assert_eq!(
                erf::<Hard>(x / 10.0).to_bits(),
                erf::<Soft>(x / 10.0).to_bits()
            );
            let p = x.abs() + 1e-3;
            assert_eq!(ln::<Hard>(p).to_bits(), ln::<Soft>(p).to_bits(), "ln {p}");
        }
    }
}
