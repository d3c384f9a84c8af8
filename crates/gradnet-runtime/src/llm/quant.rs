//! Quantized weights (Q4_1, Q8_0, and the 32-value forms `convert` gives
//! Q5_0, Q4_K and Q6_K) times activations quantized to 8 bits per 32-value
//! block, the scheme llama.cpp uses, with the weights kept as 4 or 8 bits:
//! decoding streams every weight once per token, so reading 4-bit weights as
//! 4 bits is what makes it fast. The AVX2 kernels
//! and the portable ones do the same arithmetic in the same order (exact
//! integer dot products per 4 lanes, fused multiply-adds, a fixed reduction
//! tree), so a result has the same bits on any x86-64 CPU, any thread count
//! and any number of rows multiplied at once.

use half::f16;

/// Weights and activations per block.
pub(super) const QK: usize = 32;

/// Block formats with kernels here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// Scale `d` and minimum `m` (f16), 16 bytes of nibbles: element `j` is
    /// `d * q_j + m`, `q_j` the low nibble of byte `j` for `j < 16`, the high
    /// nibble of byte `j - 16` otherwise.
    Q4_1,
    /// Scale `d` (f16), 32 signed bytes: element `j` is `d * q_j`.
    Q8_0,
    /// Q4_1 with f32 scale and minimum (24 bytes): a Q4_K sub-block, whose
    /// `d * scale` and `dmin * min` are exact in f32 but not in f16.
    Q4F,
    /// Two f32 scales, for elements 0..16 and 16..32, then 32 signed bytes
    /// (40 bytes): two Q6_K groups of 16.
    Q8H,
    /// Scale `d` (f16), 32 high bits, 16 bytes of nibbles laid out as
    /// Q4_1's: element `j` is `d * (q_j - 16)`, `q_j` its nibble plus bit
    /// `j` of the high bits times 16.
    Q5_0,
}

impl Format {
    pub(super) fn block_bytes(self) -> usize {
        match self {
            Format::Q4_1 => 20,
            Format::Q8_0 => 34,
            Format::Q4F => 24,
            Format::Q8H => 40,
            Format::Q5_0 => 22,
        }
    }

    /// Where the nibbles or signed bytes start in a block.
    pub(super) fn quants_at(self) -> usize {
        match self {
            Format::Q4_1 => 4,
            Format::Q8_0 => 2,
            Format::Q4F | Format::Q8H => 8,
            Format::Q5_0 => 6,
        }
    }
}

/// A row-major `n x k` matrix of blocks as GGUF stores it.
pub(super) struct QMatrix {
    format: Format,
    n: usize,
    k: usize,
    data: Vec<u8>,
}

/// Rows of activations quantized per block: `x_j ~ d * q_j`, `s = d * sum(q)`.
pub(super) struct Q8Rows {
    pub(super) blocks: usize,
    pub(super) q: Vec<i8>,
    pub(super) d: Vec<f32>,
    pub(super) s: Vec<f32>,
}

impl QMatrix {
    pub(super) fn new(format: Format, n: usize, k: usize, data: Vec<u8>) -> Result<Self, String> {
        if !k.is_multiple_of(QK) || data.len() != n * k / QK * format.block_bytes() {
            return Err(format!(
                "{format:?} matrix {n}x{k}: {} bytes do not make whole blocks",
                data.len()
            ));
        }
        Ok(QMatrix { format, n, k, data })
    }

    pub(super) fn rows(&self) -> usize {
        self.n
    }

    pub(super) fn cols(&self) -> usize {
        self.k
    }

    fn row(&self, i: usize) -> &[u8] {
        let len = self.k / QK * self.format.block_bytes();
        &self.data[i * len..(i + 1) * len]
    }

    /// Row `i` as f32 (embedding lookups).
    pub(super) fn dequantize_row(&self, i: usize, out: &mut [f32]) {
        let (bytes, at) = (self.format.block_bytes(), self.format.quants_at());
        for (b, o) in self
            .row(i)
            .chunks_exact(bytes)
            .zip(out.chunks_exact_mut(QK))
        {
            let (d, m) = scales(self.format, b);
            let q = &b[at..];
            match self.format {
                Format::Q4_1 | Format::Q4F => {
                    for j in 0..16 {
                        o[j] = d * (q[j] & 0x0f) as f32 + m;
                        o[j + 16] = d * (q[j] >> 4) as f32 + m;
                    }
                }
                Format::Q8_0 => {
                    for j in 0..QK {
                        o[j] = d * q[j] as i8 as f32;
                    }
                }
                Format::Q8H => {
                    for j in 0..QK {
                        o[j] = if j < 16 { d } else { m } * q[j] as i8 as f32;
                    }
                }
                Format::Q5_0 => {
                    for (j, o) in o.iter_mut().enumerate() {
                        *o = d * q5_value(b, j) as f32;
                    }
                }
            }
        }
    }

    /// `out[r * n + i] = dot(x row r, weight row i)` for `rows` activation
    /// rows.
    pub(super) fn matmul(&self, x: &Q8Rows, rows: usize, out: &mut [f32]) {
        matmul_side_by_side(std::slice::from_ref(self), x, rows, out);
    }
}

/// Several matrices of the same width applied to the same rows in one pass
/// over candle's thread pool, their outputs side by side in each row of
/// `out` (q, k and v; gate and up). Weight rows are split across the pool,
/// each output computed whole by one thread.
pub(super) fn matmul_side_by_side(parts: &[QMatrix], x: &Q8Rows, rows: usize, out: &mut [f32]) {
    const GROUP: usize = 16;
    let width: usize = parts.iter().map(|p| p.n).sum();
    assert_eq!(out.len(), rows * width);
    // (part, its first output column, its first group)
    let mut starts = Vec::with_capacity(parts.len());
    let (mut col, mut groups) = (0, 0);
    for p in parts {
        assert_eq!(x.blocks, p.k / QK);
        starts.push((col, groups));
        col += p.n;
        groups += p.n.div_ceil(GROUP);
    }
    let isa = isa();
    let out_ptr = out.as_mut_ptr() as usize;
    candle_core::utils::barrier_pool().execute_chunked(groups, |range| {
        for g in range {
            let at = starts.partition_point(|s| s.1 <= g) - 1;
            let (m, (col, first)) = (&parts[at], starts[at]);
            let g = g - first;
            for i in g * GROUP..((g + 1) * GROUP).min(m.n) {
                let w = m.row(i);
                let mut r = 0;
                while r < rows {
                    let n = (rows - r).min(4);
                    let v = dots(isa, m.format, w, x, r, n);
                    for (j, v) in v[..n].iter().enumerate() {
                        // SAFETY: each (r, column) is written by exactly one work item.
                        unsafe { *(out_ptr as *mut f32).add((r + j) * width + col + i) = *v };
                    }
                    r += n;
                }
            }
        }
    });
}

impl Q8Rows {
    /// Quantizes `rows` rows of `k` values each.
    pub(super) fn quantize(x: &[f32], k: usize) -> Self {
        assert_eq!(k % QK, 0);
        let nb = x.len() / QK;
        let mut q = vec![0i8; x.len()];
        let (mut d, mut s) = (Vec::with_capacity(nb), Vec::with_capacity(nb));
        for (xb, qb) in x.chunks_exact(QK).zip(q.chunks_exact_mut(QK)) {
            let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
            let scale = amax / 127.0;
            let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
            let mut sum = 0i32;
            for (v, o) in xb.iter().zip(qb.iter_mut()) {
                let r = round_small(v * inv) as i32;
                *o = r as i8;
                sum += r;
            }
            d.push(scale);
            s.push(scale * sum as f32);
        }
        Q8Rows {
            blocks: k / QK,
            q,
            d,
            s,
        }
    }
}

/// Round half to even for |y| <= 2^22, without a libm call: adding and
/// removing 1.5 * 2^23 leaves no fraction bits, and IEEE addition rounds to
/// nearest even.
fn round_small(y: f32) -> f32 {
    const MAGIC: f32 = 12582912.0;
    (y + MAGIC) - MAGIC
}

impl Q8Rows {
    /// Row `r`'s quants, scales and scaled sums.
    fn row(&self, r: usize) -> (&[i8], &[f32], &[f32]) {
        let nb = self.blocks;
        (
            &self.q[r * nb * QK..(r + 1) * nb * QK],
            &self.d[r * nb..(r + 1) * nb],
            &self.s[r * nb..(r + 1) * nb],
        )
    }
}

/// A block's two scales: `d` and `m` (Q4_1, Q4F), `d` (Q8_0, second
/// unused), the two halves' scales (Q8H).
fn scales(format: Format, b: &[u8]) -> (f32, f32) {
    match format {
        Format::Q4_1 | Format::Q8_0 | Format::Q5_0 => (
            f16::from_le_bytes([b[0], b[1]]).to_f32(),
            f16::from_le_bytes([b[2], b[3]]).to_f32(),
        ),
        Format::Q4F | Format::Q8H => (
            f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            f32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        ),
    }
}

/// Which build of the kernels this CPU runs; all give the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isa {
    Portable,
    Avx2,
    AvxVnni,
}

/// The fastest kernels this CPU has (`GRADNET_PORTABLE_KERNELS=1` forces
/// the portable ones).
pub(super) fn isa() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let portable = std::env::var("GRADNET_PORTABLE_KERNELS").is_ok_and(|v| v == "1");
            let avx2 = is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c");
            if portable || !avx2 {
                Isa::Portable
            } else if is_x86_feature_detected!("avxvnni") {
                Isa::AvxVnni
            } else {
                Isa::Avx2
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Portable
    })
}

#[cfg(test)]
fn dot(isa: Isa, format: Format, w: &[u8], x: &Q8Rows, r: usize) -> f32 {
    dots(isa, format, w, x, r, 1)[0]
}

/// One weight row against `n` (1 to 4) activation rows from `r`: the
/// weights are unpacked once for all of them, and each row goes through
/// the same operations in the same order as it would alone.
fn dots(isa: Isa, format: Format, w: &[u8], x: &Q8Rows, r: usize, n: usize) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable {
        use super::kernels_x86::{avx2, vnni};
        macro_rules! by_rows {
            ($m:ident :: $f:ident) => {
                match n {
                    1 => pad($m::$f::<1>(w, x, r)),
                    2 => pad($m::$f::<2>(w, x, r)),
                    3 => pad($m::$f::<3>(w, x, r)),
                    _ => $m::$f::<4>(w, x, r),
                }
            };
            ($m:ident :: $f:ident :: <$($c:tt),*>) => {
                match n {
                    1 => pad($m::$f::<1, $($c),*>(w, x, r)),
                    2 => pad($m::$f::<2, $($c),*>(w, x, r)),
                    3 => pad($m::$f::<3, $($c),*>(w, x, r)),
                    _ => $m::$f::<4, $($c),*>(w, x, r),
                }
            };
            (all $m:ident) => {
                match format {
                    Format::Q4_1 => by_rows!($m::dots_q4_avx2::<false>),
                    Format::Q4F => by_rows!($m::dots_q4_avx2::<true>),
                    Format::Q8_0 => by_rows!($m::dots_q8_avx2::<false>),
                    Format::Q8H => by_rows!($m::dots_q8_avx2::<true>),
                    Format::Q5_0 => by_rows!($m::dots_q5_0_avx2),
                }
            };
        }
        // SAFETY: `isa` found the features each build needs.
        unsafe {
            return if isa == Isa::AvxVnni {
                by_rows!(all vnni)
            } else {
                by_rows!(all avx2)
            };
        }
    }
    let mut out = [0f32; 4];
    for (j, o) in out.iter_mut().enumerate().take(n) {
        let (q, d, s) = x.row(r + j);
        *o = match format {
            Format::Q4_1 | Format::Q4F => dot_q4_portable(format, w, q, d, s),
            Format::Q8_0 | Format::Q8H | Format::Q5_0 => dot_q8_portable(format, w, q, d),
        };
    }
    out
}

#[cfg(target_arch = "x86_64")]
fn pad<const N: usize>(v: [f32; N]) -> [f32; 4] {
    let mut out = [0f32; 4];
    out[..N].copy_from_slice(&v);
    out
}

/// The same sum of eight lanes as `_mm256` adds them: halves, then pairs.
fn reduce(acc: [f32; 8]) -> f32 {
    let h: [f32; 4] = std::array::from_fn(|i| acc[i] + acc[i + 4]);
    let (a, b) = (h[0] + h[2], h[1] + h[3]);
    a + b
}

/// The reference: eight lanes of four products each per block, as the AVX2
/// kernel groups them, then the same reduction tree. Q8H's lanes 0-3 hold
/// the first half's elements, 4-7 the second's; Q5_0's values are
/// unpacked to the same signed bytes.
fn dot_q8_portable(format: Format, w: &[u8], q: &[i8], xd: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let at = format.quants_at();
    for (b, blk) in w.chunks_exact(format.block_bytes()).enumerate() {
        let (d0, d1) = scales(format, blk);
        let qx = &q[b * QK..(b + 1) * QK];
        let (s0, s1) = (d0 * xd[b], d1 * xd[b]);
        for (lane, a) in acc.iter_mut().enumerate() {
            let w = |j: usize| match format {
                Format::Q5_0 => q5_value(blk, j),
                _ => blk[at + j] as i8,
            };
            let sum: i32 = (lane * 4..lane * 4 + 4)
                .map(|j| w(j) as i32 * qx[j] as i32)
                .sum();
            let scale = if format == Format::Q8H && lane >= 4 {
                s1
            } else {
                s0
            };
            *a = scale.mul_add(sum as f32, *a);
        }
    }
    reduce(acc)
}

fn dot_q4_portable(format: Format, w: &[u8], q: &[i8], xd: &[f32], xs: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut mins = 0f32;
    let at = format.quants_at();
    for (b, blk) in w.chunks_exact(format.block_bytes()).enumerate() {
        let (d, m) = scales(format, blk);
        let qx = &q[b * QK..(b + 1) * QK];
        let scale = d * xd[b];
        for (lane, a) in acc.iter_mut().enumerate() {
            let mut sum = 0i32;
            for j in lane * 4..lane * 4 + 4 {
                let nib = if j < 16 {
                    blk[at + j] & 0x0f
                } else {
                    blk[at + j - 16] >> 4
                };
                sum += nib as i32 * qx[j] as i32;
            }
            *a = scale.mul_add(sum as f32, *a);
        }
        mins = m.mul_add(xs[b], mins);
    }
    reduce(acc) + mins
}

/// Element `j` of a Q5_0 block, `q_j - 16`.
fn q5_value(b: &[u8], j: usize) -> i8 {
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let low = if j < 16 {
        b[6 + j] & 0x0f
    } else {
        b[6 + j - 16] >> 4
    };
    (low | ((((qh >> j) & 1) as u8) << 4)) as i8 - 16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random matrix with every nibble value and
    /// scales of both signs.
    pub(crate) fn sample(format: Format, n: usize, k: usize, seed: u64) -> QMatrix {
        let mut state = seed;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let mut data = Vec::new();
        for _ in 0..n * k / QK {
            let d = (next() % 1000) as f32 / 20000.0;
            let m = -((next() % 1000) as f32) / 8000.0;
            match format {
                Format::Q4_1 | Format::Q8_0 | Format::Q5_0 => {
                    data.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                    if format == Format::Q4_1 {
                        data.extend_from_slice(&f16::from_f32(m).to_le_bytes());
                    }
                    if format == Format::Q5_0 {
                        data.extend((0..4).map(|_| next() as u8));
                    }
                }
                Format::Q4F | Format::Q8H => {
                    data.extend_from_slice(&d.to_le_bytes());
                    data.extend_from_slice(&m.to_le_bytes());
                }
            }
            match format {
                Format::Q4_1 | Format::Q4F | Format::Q5_0 => {
                    data.extend((0..16).map(|_| next() as u8))
                }
                // every i8 value, -128 included
                Format::Q8_0 | Format::Q8H => data.extend((0..32).map(|_| next() as u8)),
            }
        }
        QMatrix::new(format, n, k, data).unwrap()
    }

    /// The kernel builds this CPU can run.
    fn available() -> Vec<Isa> {
        let mut v = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                v.push(Isa::Avx2);
                if is_x86_feature_detected!("avxvnni") {
                    v.push(Isa::AvxVnni);
                }
            }
        }
        v
    }

    const ALL: [Format; 5] = [
        Format::Q4_1,
        Format::Q8_0,
        Format::Q4F,
        Format::Q8H,
        Format::Q5_0,
    ];

    fn activations(len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919) % 613) as f32 / 97.0 - 3.0)
            .collect()
    }

    #[test]
    fn simd_and_portable_kernels_agree_bit_for_bit() {
        let (n, k, rows) = (37, 576, 3);
        for format in ALL {
            let w = sample(format, n, k, 1);
            let x = Q8Rows::quantize(&activations(rows * k), k);
            for r in 0..rows {
                for i in 0..n {
                    let b = dot(Isa::Portable, format, w.row(i), &x, r);
                    for isa in available() {
                        let a = dot(isa, format, w.row(i), &x, r);
                        assert_eq!(
                            a.to_bits(),
                            b.to_bits(),
                            "{isa:?} {format:?} row {r} col {i}"
                        );
                    }
                }
            }
        }
    }

    /// However the pool splits the rows, each output is the serial dot product.
    #[test]
    fn matmul_equals_serial_dot_products() {
        let (n, k) = (203, 576);
        for (format, rows) in ALL
            .into_iter()
            .flat_map(|f| [1, 2, 3, 5, 7].map(|r| (f, r)))
        {
            let w = sample(format, n, k, 3);
            let x = Q8Rows::quantize(&activations(rows * k), k);
            let mut out = vec![0f32; rows * n];
            w.matmul(&x, rows, &mut out);
            for r in 0..rows {
                for i in 0..n {
                    let one = dot(isa(), format, w.row(i), &x, r);
                    assert_eq!(out[r * n + i].to_bits(), one.to_bits());
                }
            }
        }
    }

    /// Matrices of several formats side by side: each output as alone.
    #[test]
    fn side_by_side_equals_each_alone() {
        let (k, rows) = (256, 3);
        let parts: Vec<QMatrix> = ALL
            .iter()
            .enumerate()
            .map(|(i, f)| sample(*f, 17 + 9 * i, k, i as u64))
            .collect();
        let x = Q8Rows::quantize(&activations(rows * k), k);
        let width: usize = parts.iter().map(|p| p.n).sum();
        let mut all = vec![0f32; rows * width];
        matmul_side_by_side(&parts, &x, rows, &mut all);
        let mut col = 0;
        for p in &parts {
            let mut one = vec![0f32; rows * p.n];
            p.matmul(&x, rows, &mut one);
            for r in 0..rows {
                assert_eq!(&all[r * width + col..][..p.n], &one[r * p.n..][..p.n]);
            }
            col += p.n;
        }
    }

    #[test]
    fn matmul_matches_the_dequantized_product() {
        let (n, k, rows) = (50, 1536, 2);
        for format in ALL {
            let w = sample(format, n, k, 2);
            let xs = activations(rows * k);
            let mut out = vec![0f32; rows * n];
            w.matmul(&Q8Rows::quantize(&xs, k), rows, &mut out);
            let mut wrow = vec![0f32; k];
            for i in 0..n {
                w.dequantize_row(i, &mut wrow);
                for r in 0..rows {
                    let exact: f64 = wrow
                        .iter()
                        .zip(&xs[r * k..(r + 1) * k])
                        .map(|(a, b)| *a as f64 * *b as f64)
                        .sum();
                    let norm: f64 = wrow.iter().map(|a| (*a as f64).abs()).sum::<f64>() * 3.0;
                    let got = out[r * n + i] as f64;
                    // 8-bit activations: error within a fraction of a percent of |w|.|x|
                    assert!(
                        (got - exact).abs() <= norm * 0.01,
                        "{format:?}: {got} vs {exact}"
                    );
                }
            }
        }
    }

    #[test]
    fn rounding_is_half_to_even() {
        for y in [
            0.5f32, 1.5, 2.5, -0.5, -1.5, 126.5, -127.0, 3.4999998, 0.49999997, -2.7,
        ] {
            assert_eq!(round_small(y), y.round_ties_even(), "{y}");
        }
    }

    #[test]
    fn quantization_keeps_zero_blocks_zero() {
        let x = Q8Rows::quantize(&[0f32; 64], 64);
        assert!(x.q.iter().all(|q| *q == 0) && x.d == [0.0, 0.0] && x.s == [0.0, 0.0]);
    }

    #[test]
    fn ragged_data_is_refused() {
        assert!(QMatrix::new(Format::Q4_1, 2, 64, vec![0; 79]).is_err());
        assert!(QMatrix::new(Format::Q4_1, 2, 48, vec![0; 60]).is_err());
        assert!(QMatrix::new(Format::Q8_0, 2, 64, vec![0; 80]).is_err());
    }
}
