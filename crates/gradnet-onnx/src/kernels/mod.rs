//! Numeric kernels and the rules that make their results the same on every
//! CPU:
//!
//! - every product that is added to something is one fused multiply-add
//!   (one rounding), on every instruction set: hardware FMA where the CPU
//!   has it, an exact emulation ([`soft_fma`]) where it does not;
//! - every sum runs in one fixed order that does not depend on the vector
//!   width, the thread count or the batch: vector lanes hold independent
//!   outputs, never parts of one sum;
//! - transcendental functions are gradnet's own ([`math`]), built from
//!   additions, multiplications, FMAs and bit operations only (never libm,
//!   whose results differ between implementations and CPU features).
//!
//! Each kernel is written once, generic over the FMA it uses, and compiled
//! for several instruction sets ([`multiversion`]); the variants differ in
//! speed only, which tests check bit for bit.

pub mod act;
pub mod conv;
pub mod depthwise;
pub mod epilogue;
pub mod fma;
pub mod gemm;
pub mod math;
pub mod reduce;
pub mod simd;

use std::sync::OnceLock;

pub use fma::{Fma, Hard, Soft};

/// The instruction set the kernels run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain Rust; FMA through `f32::mul_add` (hardware on aarch64).
    Portable,
    /// x86-64 without FMA (SSE2 to AVX): FMA emulated exactly.
    Sse2,
    /// AVX2 and FMA (Haswell and later).
    Avx2,
    /// AVX-512F and BW on top of AVX2 and FMA.
    Avx512,
}

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Sse2 => "sse2",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The best instruction set this CPU has.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            if fma && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
                Isa::Avx512
            } else if fma {
                Isa::Avx2
            } else {
                Isa::Sse2
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Isa::Portable
        }
    }

    /// The instruction sets this CPU can run, slowest first.
    pub fn available() -> Vec<Isa> {
        let best = Isa::detect();
        [Isa::Portable, Isa::Sse2, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|&i| i <= best && (i != Isa::Sse2 || cfg!(target_arch = "x86_64")))
            .collect()
    }

    /// What the engine uses: the best available, unless `GRADNET_ONNX_ISA`
    /// names a lower one this CPU can run (tests compare them).
    pub fn current() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            let best = Isa::detect();
            match std::env::var("GRADNET_ONNX_ISA") {
                Ok(name) => Isa::available()
                    .into_iter()
                    .find(|i| i.name() == name)
                    .unwrap_or(best),
                Err(_) => best,
            }
        })
    }
}

/// Defines `fn $name(isa: Isa, args..)` that runs `$body` compiled for the
/// given instruction set, with `F` the FMA to use. The body is compiled once
/// per instruction set; the results are the same bits on each.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident$(<$($lt:lifetime),*>)?($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name$(<$($lt),*>)?(isa: $crate::kernels::Isa, $($a: $t),*) $(-> $r)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn generic<$($($lt,)*)? F: $crate::kernels::Fma>($($a: $t),*) $(-> $r)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512$(<$($lt),*>)?($($a: $t),*) $(-> $r)? {
                generic::<$crate::kernels::Hard>($($a),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2$(<$($lt),*>)?($($a: $t),*) $(-> $r)? {
                generic::<$crate::kernels::Hard>($($a),*)
            }
            match isa {
                // SAFETY: an `Isa` above Sse2 is only made after the CPU
                // reported these features (Isa::detect / Isa::available).
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::Isa::Avx512 => unsafe { avx512($($a),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::Isa::Avx2 => unsafe { avx2($($a),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::Isa::Sse2 => generic::<$crate::kernels::Soft>($($a),*),
                _ => generic::<$crate::kernels::Hard>($($a),*),
            }
        }
    };
}
pub(crate) use multiversion;
