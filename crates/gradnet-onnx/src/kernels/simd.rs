//! Vector registers for the matrix kernels: AVX-512 and AVX2 registers on
//! x86-64, and plain arrays of four lanes elsewhere (SSE2 with the exact FMA
//! emulation; NEON through the compiler on aarch64). Every operation is
//! lane-wise, so a lane's result never depends on the register width.

use std::marker::PhantomData;

use super::Fma;

pub trait Simd: Copy {
    const LANES: usize;
    /// # Safety
    /// `p` must be valid for `LANES` reads; the CPU must have the features.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p` must be valid for `LANES` writes; the CPU must have the features.
    unsafe fn store(self, p: *mut f32);
    /// # Safety
    /// The CPU must have the features.
    unsafe fn splat(x: f32) -> Self;
    /// `a * b + c`, rounded once.
    /// # Safety
    /// The CPU must have the features.
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
}

/// Four lanes as an array; the compiler vectorizes what it can.
#[derive(Clone, Copy)]
pub struct Lanes4<F: Fma>([f32; 4], PhantomData<F>);

impl<F: Fma> Simd for Lanes4<F> {
    const LANES: usize = 4;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        Lanes4(std::ptr::read_unaligned(p as *const [f32; 4]), PhantomData)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        std::ptr::write_unaligned(p as *mut [f32; 4], self.0)
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Lanes4([x; 4], PhantomData)
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        Lanes4(
            std::array::from_fn(|i| F::fma(a.0[i], b.0[i], c.0[i])),
            PhantomData,
        )
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Simd;

    #[derive(Clone, Copy)]
    pub struct Avx512(__m512);

    impl Simd for Avx512 {
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Avx512(_mm512_loadu_ps(p))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            _mm512_storeu_ps(p, self.0)
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            Avx512(_mm512_set1_ps(x))
        }
        #[inline(always)]
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
            Avx512(_mm512_fmadd_ps(a.0, b.0, c.0))
        }
    }

    #[derive(Clone, Copy)]
    pub struct Avx2(__m256);

    impl Simd for Avx2 {
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Avx2(_mm256_loadu_ps(p))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            _mm256_storeu_ps(p, self.0)
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            Avx2(_mm256_set1_ps(x))
        }
        #[inline(always)]
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
            Avx2(_mm256_fmadd_ps(a.0, b.0, c.0))
        }
    }
}
