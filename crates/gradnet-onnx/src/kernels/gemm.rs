//! Matrix products `C = act(A·B + bias)`, the core of convolutions and
//! fully connected layers.
//!
//! The rule that makes them deterministic: every element of C is
//! `act(((0 + a0·b0) + a1·b1) + … + bias)`, one FMA per step in ascending k,
//! whatever the instruction set, tile size, thread count or batch. Vector
//! lanes hold different columns of C (never parts of one sum); K is cut into
//! blocks only by storing the running sum in C and continuing from it, which
//! changes nothing. Tiles differ per instruction set (MR rows by NR columns:
//! 8x32 on AVX-512, 6x16 on AVX2, 4x8 elsewhere) and only in speed.

use super::epilogue::{self, Step};
use super::simd::{Lanes4, Simd};
#[cfg(target_arch = "x86_64")]
use super::Soft;
use super::{Fma, Hard, Isa};
use crate::cx::{Cx, SharedMut};

/// Rows of A and columns of B per micro-kernel call, per instruction set.
pub fn tile(isa: Isa) -> (usize, usize) {
    match isa {
        Isa::Avx512 => (8, 32),
        Isa::Avx2 => (6, 16),
        Isa::Sse2 => (4, 8),
        Isa::Portable => (4, 16),
    }
}

/// K per block: a block of packed B (KC x NR) stays in the L1 cache while
/// every row panel of A goes over it.
const KC: usize = 256;

/// Multiply-adds below which a product runs on the calling thread.
const PARALLEL_MIN: usize = 1 << 18;

/// Column tiles per epilogue pass.
const GROUP: usize = 4;

/// A matrix (weights) packed once into panels of MR rows: panel p holds, for
/// each k, the MR values A[p*MR + r][k] (zeros past the last row).
#[derive(Debug, Clone)]
pub struct PackedA {
    isa: Isa,
    pub m: usize,
    pub k: usize,
    mr: usize,
    data: Vec<f32>,
}

impl PackedA {
    /// Packs the row-major `m x k` matrix `a`.
    pub fn new(isa: Isa, a: &[f32], m: usize, k: usize) -> PackedA {
        assert_eq!(a.len(), m * k);
        let (mr, _) = tile(isa);
        let panels = m.div_ceil(mr);
        let mut data = vec![0.0; panels * k * mr];
        for p in 0..panels {
            for r in 0..mr.min(m - p * mr) {
                let row = &a[(p * mr + r) * k..][..k];
                for (kk, &v) in row.iter().enumerate() {
                    data[(p * k + kk) * mr + r] = v;
                }
            }
        }
        PackedA {
            isa,
            m,
            k,
            mr,
            data,
        }
    }
}

/// A matrix (weights of a fully connected layer) packed once into panels of
/// NR columns: panel q holds, for each k, B[k][q*NR .. q*NR + NR].
#[derive(Debug, Clone)]
pub struct PackedB {
    isa: Isa,
    pub k: usize,
    pub n: usize,
    nr: usize,
    data: Vec<f32>,
}

impl PackedB {
    /// Packs `k x n` B from `b`, where B[k][j] is `b[k * ks + j * js]`
    /// (row-major: `ks = n, js = 1`; transposed: `ks = 1, js = k`).
    pub fn new(isa: Isa, b: &[f32], k: usize, n: usize, ks: usize, js: usize) -> PackedB {
        let (_, nr) = tile(isa);
        let panels = n.div_ceil(nr);
        let mut data = vec![0.0; panels * k * nr];
        for q in 0..panels {
            let cols = nr.min(n - q * nr);
            for kk in 0..k {
                let dst = &mut data[(q * k + kk) * nr..][..cols];
                for (c, d) in dst.iter_mut().enumerate() {
                    *d = b[kk * ks + (q * nr + c) * js];
                }
            }
        }
        PackedB {
            isa,
            k,
            n,
            nr,
            data,
        }
    }
}

/// Something that writes a block of B: rows `k0..k1`, columns `n0..n0+cols`,
/// as `(k1 - k0)` rows of `nr` values (zeros past `cols`).
pub trait PackB: Sync {
    fn pack(&self, k0: usize, k1: usize, n0: usize, cols: usize, nr: usize, out: &mut [f32]);

    /// Where B's rows from `k0` start in memory (row k at `base +
    /// offsets[k - k0]`, columns from `n0`), if a full tile can be read
    /// in place: the kernel then reads it without packing.
    fn direct(&self, _k0: usize, _n0: usize) -> Option<(*const f32, &[usize])> {
        None
    }
}

/// Copies `src` (at least `cols` values) into a panel row of `nr`, zeros past
/// `cols`; full rows of the usual widths as fixed-size copies (no memcpy
/// call per row).
#[inline(always)]
pub fn panel_row(src: &[f32], cols: usize, dst: &mut [f32]) {
    macro_rules! fixed {
        ($n:literal) => {{
            let s: &[f32; $n] = src[..$n].try_into().expect("width");
            let d: &mut [f32; $n] = (&mut dst[..$n]).try_into().expect("width");
            *d = *s;
        }};
    }
    match (cols, dst.len()) {
        (32, 32) => fixed!(32),
        (16, 16) => fixed!(16),
        (8, 8) => fixed!(8),
        _ => {
            dst[..cols].copy_from_slice(&src[..cols]);
            dst[cols..].fill(0.0);
        }
    }
}

/// B stored row-major with row stride `ld` (e.g. a 1x1 convolution's input).
pub struct RowsB<'a> {
    data: &'a [f32],
    ld: usize,
    offsets: Vec<usize>,
}

impl<'a> RowsB<'a> {
    /// `k` rows of `data`, `ld` apart.
    pub fn new(data: &'a [f32], ld: usize, k: usize) -> RowsB<'a> {
        RowsB {
            data,
            ld,
            offsets: (0..k).map(|r| r * ld).collect(),
        }
    }
}

impl PackB for RowsB<'_> {
    fn pack(&self, k0: usize, k1: usize, n0: usize, cols: usize, nr: usize, out: &mut [f32]) {
        for (kk, dst) in (k0..k1).zip(out.chunks_exact_mut(nr)) {
            panel_row(&self.data[kk * self.ld + n0..], cols, dst);
        }
    }

    fn direct(&self, k0: usize, n0: usize) -> Option<(*const f32, &[usize])> {
        Some((self.data[n0..].as_ptr(), &self.offsets[k0..]))
    }
}

pub enum AOp<'a> {
    Packed(&'a PackedA),
    /// Row-major rows with stride `lda` (activations).
    Rows {
        a: &'a [f32],
        lda: usize,
    },
}

pub enum BOp<'a> {
    Packed(&'a PackedB),
    Packer(&'a dyn PackB),
}

/// What happens to C after the sums: the fused element-wise steps.
#[derive(Clone, Copy)]
pub struct Epilogue<'a> {
    pub steps: &'a [Step],
}

impl Epilogue<'_> {
    pub const NONE: Epilogue<'static> = Epilogue { steps: &[] };
}

struct Job<'a> {
    m: usize,
    n: usize,
    k: usize,
    a: AOp<'a>,
    b: BOp<'a>,
    c: SharedMut,
    ldc: usize,
    epi: Epilogue<'a>,
}

/// `C[m x n] (row stride ldc) = act(A·B + bias)`, split over the threads by
/// tiles of C.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    cx: &Cx,
    m: usize,
    n: usize,
    k: usize,
    a: AOp,
    b: BOp,
    c: &mut [f32],
    ldc: usize,
    epi: Epilogue,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (m - 1) * ldc + n, "C is too small");
    let isa = cx.isa;
    let (mr, nr) = tile(isa);
    match &a {
        AOp::Packed(p) => assert!(p.isa == isa && p.m == m && p.k == k && p.mr == mr),
        AOp::Rows { a, lda } => assert!(a.len() >= (m - 1) * lda + k),
    }
    if let BOp::Packed(p) = &b {
        assert!(p.isa == isa && p.k == k && p.n == n && p.nr == nr);
    }
    if k == 0 {
        for row in c.chunks_mut(ldc).take(m) {
            row[..n].fill(0.0);
        }
        let job = Job {
            m,
            n,
            k,
            a,
            b,
            c: SharedMut(c.as_mut_ptr()),
            ldc,
            epi,
        };
        return run(isa, &job, 0..n.div_ceil(nr), 0..m.div_ceil(mr), true);
    }
    let job = Job {
        m,
        n,
        k,
        a,
        b,
        c: SharedMut(c.as_mut_ptr()),
        ldc,
        epi,
    };
    let (n_tiles, m_panels) = (n.div_ceil(nr), m.div_ceil(mr));
    // threads only for products big enough to pay for waking them
    let threads = if m * n * k >= PARALLEL_MIN {
        cx.threads()
    } else {
        1
    };
    // enough tasks to balance, none so small that packing B dominates
    let target = if threads > 1 {
        threads
            * std::env::var("TMUL")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(4)
    } else {
        1
    };
    let n_chunk = n_tiles.div_ceil(target).max(1);
    let n_tasks = n_tiles.div_ceil(n_chunk);
    let m_split = if n_tasks >= target {
        1
    } else {
        (target / n_tasks).clamp(1, m_panels)
    };
    let m_chunk = m_panels.div_ceil(m_split);
    let m_tasks = m_panels.div_ceil(m_chunk);
    cx.par_for(n_tasks * m_tasks, |t| {
        let (tn, tm) = (t / m_tasks, t % m_tasks);
        let nt = tn * n_chunk..((tn + 1) * n_chunk).min(n_tiles);
        let mp = tm * m_chunk..((tm + 1) * m_chunk).min(m_panels);
        run(isa, &job, nt, mp, false);
    });
}

fn run(
    isa: Isa,
    job: &Job,
    nt: std::ops::Range<usize>,
    mp: std::ops::Range<usize>,
    epi_only: bool,
) {
    SCRATCH.with(|s| {
        let scratch = &mut *s.borrow_mut();
        // SAFETY: Isa::Avx512 / Avx2 are only constructed on CPUs with those
        // features; tiles of C are disjoint between tasks.
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => run_avx512(job, nt, mp, epi_only, scratch),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => run_avx2(job, nt, mp, epi_only, scratch),
                #[cfg(target_arch = "x86_64")]
                Isa::Sse2 => tiles::<Lanes4<Soft>, Soft, 4, 2>(job, nt, mp, epi_only, scratch),
                _ => tiles::<Lanes4<Hard>, Hard, 4, 4>(job, nt, mp, epi_only, scratch),
            }
        }
    })
}

#[cfg(target_arch = "x86_64")]
type Tiles = std::ops::Range<usize>;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn run_avx512(job: &Job, nt: Tiles, mp: Tiles, e: bool, s: &mut Vec<f32>) {
    tiles::<super::simd::Avx512, Hard, 8, 2>(job, nt, mp, e, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(job: &Job, nt: Tiles, mp: Tiles, e: bool, s: &mut Vec<f32>) {
    tiles::<super::simd::Avx2, Hard, 6, 2>(job, nt, mp, e, s)
}

thread_local! {
    /// Per-thread block of packed B, reused across calls.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Computes the tiles of C in column tiles `nt` and row panels `mp`.
#[inline(always)]
unsafe fn tiles<V: Simd, F: Fma, const MR: usize, const NV: usize>(
    job: &Job,
    nt: std::ops::Range<usize>,
    mp: std::ops::Range<usize>,
    epi_only: bool,
    scratch: &mut Vec<f32>,
) {
    let nr = NV * V::LANES;
    let (m, n, k, ldc) = (job.m, job.n, job.k, job.ldc);
    let c = job.c.get();
    let mut edge = [0f32; 16 * 32];
    {
        if let BOp::Packer(_) = job.b {
            if scratch.len() < KC * nr {
                scratch.resize(KC * nr, 0.0);
            }
        }
        // tiles in groups, the epilogue over a group while it is in cache
        let mut q0 = nt.start;
        while q0 < nt.end {
            let q1 = (q0 + GROUP).min(nt.end);
            for q in q0..q1 {
                let n0 = q * nr;
                let cols = nr.min(n - n0);
                let mut k0 = 0;
                while k0 < k && !epi_only {
                    let k1 = (k0 + KC).min(k);
                    let kb = k1 - k0;
                    // B's block: read in place where it can be, else packed
                    let src = match job.b {
                        BOp::Packed(p) => {
                            Src::Packed(Strided(p.data.as_ptr().add((q * k + k0) * nr), nr))
                        }
                        BOp::Packer(pk) => match pk.direct(k0, n0).filter(|_| cols == nr) {
                            Some((base, offs)) => Src::Direct(Offsets(base, offs.as_ptr())),
                            None => {
                                pk.pack(k0, k1, n0, cols, nr, &mut scratch[..kb * nr]);
                                Src::Packed(Strided(scratch.as_ptr(), nr))
                            }
                        },
                    };
                    for p in mp.clone() {
                        let m0 = p * MR;
                        let rows = MR.min(m - m0);
                        let full = rows == MR && cols == nr;
                        let (cp, cld) = if full {
                            (c.add(m0 * ldc + n0), ldc)
                        } else {
                            if k0 > 0 {
                                for r in 0..rows {
                                    std::ptr::copy_nonoverlapping(
                                        c.add((m0 + r) * ldc + n0),
                                        edge.as_mut_ptr().add(r * nr),
                                        cols,
                                    );
                                }
                            }
                            (edge.as_mut_ptr(), nr)
                        };
                        macro_rules! call {
                            ($b:expr) => {
                                match job.a {
                                    AOp::Packed(pa) => {
                                        let ap = pa.data.as_ptr().add((p * k + k0) * MR);
                                        kernel::<V, MR, NV, _>(kb, ap, 1, MR, $b, cp, cld, k0 > 0);
                                    }
                                    AOp::Rows { a, lda } => {
                                        let ap = a.as_ptr().add(m0 * lda + k0);
                                        rows_kernel::<V, MR, NV, _>(
                                            rows,
                                            kb,
                                            ap,
                                            lda,
                                            $b,
                                            cp,
                                            cld,
                                            k0 > 0,
                                        );
                                    }
                                }
                            };
                        }
                        match src {
                            Src::Packed(b) => call!(b),
                            Src::Direct(b) => call!(b),
                        }
                        if !full {
                            for r in 0..rows {
                                std::ptr::copy_nonoverlapping(
                                    edge.as_ptr().add(r * nr),
                                    c.add((m0 + r) * ldc + n0),
                                    cols,
                                );
                            }
                        }
                    }
                    k0 = k1;
                }
            }
            if !job.epi.steps.is_empty() {
                let (c0, c1) = (q0 * nr, (q1 * nr).min(n));
                for p in mp.clone() {
                    for r in p * MR..((p + 1) * MR).min(m) {
                        let row = std::slice::from_raw_parts_mut(c.add(r * ldc + c0), c1 - c0);
                        epilogue::apply::<F>(job.epi.steps, r, c0, row);
                    }
                }
            }
            q0 = q1;
        }
    }
}

/// Where the kernel finds row k of B's block.
trait BRows: Copy {
    /// # Safety
    /// `k` is within the block.
    unsafe fn row(self, k: usize) -> *const f32;
}

/// Packed rows, `self.1` apart.
#[derive(Clone, Copy)]
struct Strided(*const f32, usize);

impl BRows for Strided {
    #[inline(always)]
    unsafe fn row(self, k: usize) -> *const f32 {
        self.0.add(k * self.1)
    }
}

/// Rows in place: row k at `base + offsets[k]`.
#[derive(Clone, Copy)]
struct Offsets(*const f32, *const usize);

impl BRows for Offsets {
    #[inline(always)]
    unsafe fn row(self, k: usize) -> *const f32 {
        self.0.add(*self.1.add(k))
    }
}

enum Src {
    Packed(Strided),
    Direct(Offsets),
}

/// A kernel for `rows` (< MR at the bottom edge) rows of unpacked A.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_kernel<V: Simd, const MR: usize, const NV: usize, B: BRows>(
    rows: usize,
    kb: usize,
    ap: *const f32,
    lda: usize,
    bp: B,
    cp: *mut f32,
    cld: usize,
    acc: bool,
) {
    match rows.min(MR) {
        1 => kernel::<V, 1, NV, B>(kb, ap, lda, 1, bp, cp, cld, acc),
        2 => kernel::<V, 2, NV, B>(kb, ap, lda, 1, bp, cp, cld, acc),
        3 => kernel::<V, 3, NV, B>(kb, ap, lda, 1, bp, cp, cld, acc),
        4 => kernel::<V, 4, NV, B>(kb, ap, lda, 1, bp, cp, cld, acc),
        5 => kernel::<V, 5, NV, B>(kb, ap, lda, 1, bp, cp, cld, acc),
        6 => kernel::<V, 6, NV, B>(kb, ap, lda, 1, bp, cp, cld, acc),
        7 => kernel::<V, 7, NV, B>(kb, ap, lda, 1, bp, cp, cld, acc),
        _ => kernel::<V, MR, NV, B>(kb, ap, lda, 1, bp, cp, cld, acc),
    }
}

/// The micro-kernel: an `R x (NV * LANES)` tile of C, over `kb` steps of k.
/// A's element (r, k) is at `a + r * a_rs + k * a_ks`; B's row k (NV *
/// LANES values) at `b.row(k)`. With `accumulate`, the sums continue from C.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel<V: Simd, const R: usize, const NV: usize, B: BRows>(
    kb: usize,
    a: *const f32,
    a_rs: usize,
    a_ks: usize,
    b: B,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    let mut acc = [[V::splat(0.0); NV]; R];
    if accumulate {
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = V::load(c.add(r * ldc + v * V::LANES));
            }
        }
    }
    let mut ap = a;
    for kk in 0..kb {
        let bp = b.row(kk);
        let mut bv = [V::splat(0.0); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            *x = V::load(bp.add(v * V::LANES));
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let av = V::splat(*ap.add(r * a_rs));
            for (x, &bb) in row.iter_mut().zip(&bv) {
                *x = V::fma(av, bb, *x);
            }
        }
        ap = ap.add(a_ks);
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, x) in row.iter().enumerate() {
            x.store(c.add(r * ldc + v * V::LANES));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::act::Act;
    use crate::kernels::epilogue::Operand;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 20001) as f32 / 10000.0 - 1.0
            })
            .collect()
    }

    /// The definition, element by element.
    fn reference(a: &[f32], b: &[f32], m: usize, n: usize, k: usize, bias: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f32;
                for kk in 0..k {
                    s = a[i * k + kk].mul_add(b[kk * n + j], s);
                }
                c[i * n + j] = crate::kernels::act::max(s + bias[i], 0.0);
            }
        }
        c
    }

    #[test]
    fn every_isa_and_thread_count_gives_the_definition_bit_for_bit() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for &(m, n, k) in &[
            (1, 1, 1),
            (5, 7, 3),
            (8, 32, 256),
            (13, 70, 300),
            (24, 100, 600),
            (3, 200, 0),
        ] {
            let a = data(m * k, 1);
            let b = data(k * n, 2);
            let bias = data(m, 3);
            let want = reference(&a, &b, m, n, k, &bias);
            for isa in Isa::available() {
                for pool in [None, Some(&pool)] {
                    let cx = Cx::new(isa, pool, u64::MAX);
                    let steps = [Step::Add(Operand::Row(bias.clone())), Step::Act(Act::Relu)];
                    let epi = Epilogue { steps: &steps };
                    // packed weights as A, B through a packer
                    let pa = PackedA::new(isa, &a, m, k);
                    let mut c = vec![f32::NAN; m * n];
                    gemm(
                        &cx,
                        m,
                        n,
                        k,
                        AOp::Packed(&pa),
                        BOp::Packer(&RowsB::new(&b, n, k)),
                        &mut c,
                        n,
                        epi,
                    );
                    assert_eq!(bits(&c), bits(&want), "{isa:?} {m}x{n}x{k}");
                    // activations as A, packed weights as B
                    let pb = PackedB::new(isa, &b, k, n, n, 1);
                    let mut c = vec![f32::NAN; m * n];
                    gemm(
                        &cx,
                        m,
                        n,
                        k,
                        AOp::Rows { a: &a, lda: k },
                        BOp::Packed(&pb),
                        &mut c,
                        n,
                        epi,
                    );
                    assert_eq!(bits(&c), bits(&want), "{isa:?} {m}x{n}x{k} rows");
                }
            }
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }
}
