//! GGML block formats rewritten, value for value, into the 32-element block
//! formats `quant` has kernels for: Q4_K into Q4F, Q6_K into Q8H (Q4_1,
//! Q5_0 and Q8_0 have kernels as they are). Every weight keeps its exact
//! value (the products of an f16 scale and a 6- or 8-bit integer are exact
//! in f32), so a converted matrix dequantizes to the same bits as the
//! file's and the kernels' integer dot products need one code path per
//! layout, not per file format.

use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;

use super::quant::{Format, QMatrix, QK};

/// Values per k-quant super-block.
const QK_K: usize = 256;

/// GGML blocks to kernel blocks.
type Rewrite = fn(&[u8]) -> Vec<u8>;

/// The tensor as a kernel matrix, if its format has one.
pub(super) fn own_matrix(t: &QTensor) -> Option<candle_core::Result<QMatrix>> {
    let (format, convert): (Format, Rewrite) = match t.dtype() {
        GgmlDType::Q4_1 => (Format::Q4_1, |b| b.to_vec()),
        GgmlDType::Q5_0 => (Format::Q5_0, |b| b.to_vec()),
        GgmlDType::Q8_0 => (Format::Q8_0, |b| b.to_vec()),
        GgmlDType::Q4K => (Format::Q4F, q4_k_to_q4f),
        GgmlDType::Q6K => (Format::Q8H, q6_k_to_q8h),
        _ => return None,
    };
    Some((|| {
        let (n, k) = t.shape().dims2()?;
        let data = convert(&t.data()?);
        QMatrix::new(format, n, k, data).map_err(candle_core::Error::msg)
    })())
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// A Q4_K sub-block's 6-bit scale and minimum (llama.cpp's packing).
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// Q4_K (super-blocks of 256: f16 `d` and `dmin`, twelve bytes of 6-bit
/// scales and minimums, 128 bytes of nibbles; sub-block `s` is
/// `d * sc_s * q - dmin * m_s`) as eight Q4F blocks.
fn q4_k_to_q4f(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / 144 * 8 * 24);
    for b in src.chunks_exact(144) {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let (sc, qs) = (&b[4..16], &b[16..144]);
        for s in 0..QK_K / QK {
            let (scale, min) = scale_min_k4(s, sc);
            out.extend_from_slice(&(d * scale as f32).to_le_bytes());
            out.extend_from_slice(&(-(dmin * min as f32)).to_le_bytes());
            // sub-blocks 2c and 2c+1 are the low and high nibbles of the
            // same 32 bytes
            let bytes = &qs[s / 2 * 32..][..32];
            let nib = |j: usize| {
                if s % 2 == 0 {
                    bytes[j] & 0x0f
                } else {
                    bytes[j] >> 4
                }
            };
            out.extend((0..16).map(|j| nib(j) | (nib(j + 16) << 4)));
        }
    }
    out
}

/// Q6_K (super-blocks of 256: 128 bytes of low nibbles, 64 of high bit
/// pairs, sixteen i8 scales, f16 `d`; element `e` is
/// `d * sc[e / 16] * (q - 32)`) as eight Q8H blocks.
fn q6_k_to_q8h(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / 210 * 8 * 40);
    for b in src.chunks_exact(210) {
        let (ql, qh, sc, d) = (&b[..128], &b[128..192], &b[192..208], f16_at(b, 208));
        let mut q = [0i8; QK_K];
        for (half, q) in q.chunks_exact_mut(128).enumerate() {
            let (ql, qh) = (&ql[half * 64..], &qh[half * 32..]);
            for l in 0..32 {
                q[l] = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i8 - 32;
                q[l + 32] = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                q[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                q[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
            }
        }
        for (blk, q) in q.chunks_exact(QK).enumerate() {
            for g in 0..2 {
                let s = sc[blk * 2 + g] as i8;
                out.extend_from_slice(&(d * s as f32).to_le_bytes());
            }
            out.extend(q.iter().map(|v| *v as u8));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// Every converted format dequantizes to candle's values bit for bit.
    #[test]
    fn conversions_keep_every_value() {
        let (n, k) = (6, 512);
        let values: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7919 % 1013) as f32 / 300.0 - 1.7) * if i % 7 == 0 { 3.0 } else { 1.0 })
            .collect();
        let x = Tensor::from_vec(values, (n, k), &Device::Cpu).unwrap();
        for dtype in [
            GgmlDType::Q5_0,
            GgmlDType::Q4K,
            GgmlDType::Q6K,
            GgmlDType::Q4_1,
            GgmlDType::Q8_0,
        ] {
            let t = QTensor::quantize(&x, dtype).unwrap();
            let theirs: Vec<f32> = t
                .dequantize(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let m = own_matrix(&t).unwrap().unwrap();
            let mut row = vec![0f32; k];
            for i in 0..n {
                m.dequantize_row(i, &mut row);
                for (j, (a, b)) in row.iter().zip(&theirs[i * k..]).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{dtype:?} [{i}, {j}]: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn formats_without_kernels_are_left_to_candle() {
        let x = Tensor::zeros((2, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
        let t = QTensor::quantize(&x, GgmlDType::F32).unwrap();
        assert!(own_matrix(&t).is_none());
    }
}
