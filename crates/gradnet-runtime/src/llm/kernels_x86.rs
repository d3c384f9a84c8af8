//! The x86-64 kernels of `quant`, built twice: for AVX2 (+FMA, F16C) and
//! for AVX-VNNI, where one `vpdpbusd` forms each lane's four products and
//! their sum instead of `vpmaddubsw` + `vpmaddwd`. The lane sums are exact
//! integers either way (no pair reaches i16 saturation), and everything
//! after them is the same instructions in the same order, so both builds
//! and the portable reference give the same bits.

use super::quant::{Format, Q8Rows, QK};

macro_rules! kernels {
    ($name:ident, $features:literal, $sums:item) => {
        pub(super) mod $name {
            use super::*;
            use std::arch::x86_64::*;

            /// Per 32-bit lane, the sum of the four products of unsigned
            /// bytes `u` and signed bytes `s`.
            #[inline]
            #[target_feature(enable = $features)]
            $sums

        #[target_feature(enable = $features)]
        unsafe fn hsum(acc: std::arch::x86_64::__m256) -> f32 {
                let h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
            let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            let h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
            _mm_cvtss_f32(h)
        }

        /// Q8_0 (`HALVES` false) or Q8H.
        #[target_feature(enable = $features)]
        pub(in crate::llm) unsafe fn dots_q8_avx2<const N: usize, const HALVES: bool>(
            w: &[u8],
            x: &Q8Rows,
            r: usize,
        ) -> [f32; N] {
                let format = if HALVES { Format::Q8H } else { Format::Q8_0 };
            let nb = x.blocks;
            let mut acc = [_mm256_setzero_ps(); N];
            for (b, blk) in w.chunks_exact(format.block_bytes()).enumerate() {
                let (d0, d1) = if HALVES {
                    (
                        f32::from_le_bytes([blk[0], blk[1], blk[2], blk[3]]),
                        f32::from_le_bytes([blk[4], blk[5], blk[6], blk[7]]),
                    )
                } else {
                    let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
                        u16::from_le_bytes([blk[0], blk[1]]) as i32,
                    )));
                    (d, d)
                };
                let wq = _mm256_loadu_si256(blk.as_ptr().add(format.quants_at()) as *const __m256i);
                let wabs = _mm256_abs_epi8(wq);
                for (j, acc) in acc.iter_mut().enumerate() {
                    let row = (r + j) * nb + b;
                    let xq = _mm256_loadu_si256(x.q.as_ptr().add(row * QK) as *const __m256i);
                    // |w| * (x with w's sign) = w * x
                    let sums = lane_sums(wabs, _mm256_sign_epi8(xq, wq));
                    let xd = *x.d.get_unchecked(row);
                    let scale = if HALVES {
                        _mm256_set_m128(_mm_set1_ps(d1 * xd), _mm_set1_ps(d0 * xd))
                    } else {
                        _mm256_set1_ps(d0 * xd)
                    };
                    *acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sums), *acc);
                }
            }
            std::array::from_fn(|j| hsum(acc[j]))
        }

        /// Q5_0: each block's values unpacked to signed bytes (llama.cpp's trick:
        /// the nibbles, with 0xF0 or'ed in where the high bit is clear, are
        /// `q - 16`), then as Q8_0.
        #[target_feature(enable = $features)]
        pub(in crate::llm) unsafe fn dots_q5_0_avx2<const N: usize>(w: &[u8], x: &Q8Rows, r: usize) -> [f32; N] {
                let low = _mm256_set1_epi8(0x0f);
            // byte j of the spread high bits is byte j / 8 of `qh`
            let spread = _mm256_set_epi64x(
                0x0303030303030303,
                0x0202020202020202,
                0x0101010101010101,
                0,
            );
            // all bits but bit j % 8: or'ed with the byte, all ones iff bit j is set
            let others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
            let high = _mm256_set1_epi8(0xF0u8 as i8);
            let nb = x.blocks;
            let mut acc = [_mm256_setzero_ps(); N];
            for (b, blk) in w.chunks_exact(Format::Q5_0.block_bytes()).enumerate() {
                let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
                    u16::from_le_bytes([blk[0], blk[1]]) as i32,
                )));
                let qh = i32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
                let set = _mm256_cmpeq_epi8(
                    _mm256_or_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(qh), spread), others),
                    _mm256_set1_epi64x(-1),
                );
                let packed = _mm_loadu_si128(blk.as_ptr().add(6) as *const __m128i);
                let nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), low);
                let wq = _mm256_or_si256(nibbles, _mm256_andnot_si256(set, high));
                let wabs = _mm256_abs_epi8(wq);
                for (j, acc) in acc.iter_mut().enumerate() {
                    let row = (r + j) * nb + b;
                    let xq = _mm256_loadu_si256(x.q.as_ptr().add(row * QK) as *const __m256i);
                    let sums = lane_sums(wabs, _mm256_sign_epi8(xq, wq));
                    let scale = _mm256_set1_ps(d * *x.d.get_unchecked(row));
                    *acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sums), *acc);
                }
            }
            std::array::from_fn(|j| hsum(acc[j]))
        }

        /// Q4_1 (`F32` false) or Q4F.
        #[target_feature(enable = $features)]
        pub(in crate::llm) unsafe fn dots_q4_avx2<const N: usize, const F32: bool>(
            w: &[u8],
            x: &Q8Rows,
            r: usize,
        ) -> [f32; N] {
                let format = if F32 { Format::Q4F } else { Format::Q4_1 };
            let low = _mm256_set1_epi8(0x0f);
            let nb = x.blocks;
            let mut acc = [_mm256_setzero_ps(); N];
            let mut mins = [0f32; N];
            for (b, blk) in w.chunks_exact(format.block_bytes()).enumerate() {
                let (d, m) = if F32 {
                    (
                        f32::from_le_bytes([blk[0], blk[1], blk[2], blk[3]]),
                        f32::from_le_bytes([blk[4], blk[5], blk[6], blk[7]]),
                    )
                } else {
                    let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(i32::from_le_bytes([
                        blk[0], blk[1], blk[2], blk[3],
                    ])));
                    (_mm_cvtss_f32(dm), _mm_cvtss_f32(_mm_movehdup_ps(dm)))
                };
                let packed = _mm_loadu_si128(blk.as_ptr().add(format.quants_at()) as *const __m128i);
                // low nibbles are elements 0..16, high nibbles 16..32
                let nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), low);
                for j in 0..N {
                    let row = (r + j) * nb + b;
                    let xq = _mm256_loadu_si256(x.q.as_ptr().add(row * QK) as *const __m256i);
                    let sums = lane_sums(nibbles, xq);
                    let scale = _mm256_set1_ps(d * *x.d.get_unchecked(row));
                    acc[j] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sums), acc[j]);
                    mins[j] = m.mul_add(*x.s.get_unchecked(row), mins[j]);
                }
            }
            std::array::from_fn(|j| hsum(acc[j]) + mins[j])
        }
        }
    };
}

kernels!(
    avx2,
    "avx2,fma,f16c",
    unsafe fn lane_sums(u: __m256i, s: __m256i) -> __m256i {
        // u <= 255 (at most 128 or 15 here) times |s| <= 127, two per i16:
        // no saturation
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
    }
);

kernels!(
    vnni,
    "avx2,fma,f16c,avxvnni",
    unsafe fn lane_sums(u: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s)
    }
);
