//! 2-D convolution as matrix products: output channels are the rows of C,
//! output positions its columns, and (input channel, ky, kx) the sum's index
//! k in that order. Three ways to feed B, chosen by the shape alone (never
//! by the CPU): a 1x1 stride-1 convolution reads its input as B directly;
//! any other stride-1 convolution reads shifted rows of a zero-padded copy
//! of its input (columns then run over the padded width, and the extra
//! columns are dropped); the rest gather B column by column (im2col).

use super::epilogue::Step;
use super::gemm::{self, panel_row, AOp, BOp, Epilogue, PackB, PackedA, RowsB};
use crate::cx::Cx;

/// The shape of one convolution over one image and one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geom {
    /// Input channels (of this group).
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    /// Padding: top, left, bottom, right.
    pub pt: usize,
    pub pl: usize,
    pub pb: usize,
    pub pr: usize,
}

impl Geom {
    pub fn oh(&self) -> usize {
        (self.h + self.pt + self.pb).saturating_sub(self.dh * (self.kh - 1) + 1) / self.sh + 1
    }

    pub fn ow(&self) -> usize {
        (self.w + self.pl + self.pr).saturating_sub(self.dw * (self.kw - 1) + 1) / self.sw + 1
    }

    /// K of the matrix product.
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.pt + self.pl + self.pb + self.pr == 0
    }
}

/// B over a zero-padded input: row k = (ci, ky, kx) is the padded plane of
/// `ci` shifted by (ky*dh, kx*dw); column j is padded position j.
struct ShiftedB<'a> {
    padded: &'a [f32],
    /// Row k's start in `padded`.
    offsets: Vec<usize>,
}

impl PackB for ShiftedB<'_> {
    fn pack(&self, k0: usize, k1: usize, n0: usize, cols: usize, nr: usize, out: &mut [f32]) {
        for (kk, dst) in (k0..k1).zip(out.chunks_exact_mut(nr)) {
            panel_row(&self.padded[self.offsets[kk] + n0..], cols, dst);
        }
    }

    fn direct(&self, k0: usize, n0: usize) -> Option<(*const f32, &[usize])> {
        Some((self.padded[n0..].as_ptr(), &self.offsets[k0..]))
    }
}

/// B gathered from the input: column j is output position (oy, ox).
struct Im2colB<'a> {
    input: &'a [f32],
    g: Geom,
    ow: usize,
}

impl PackB for Im2colB<'_> {
    fn pack(&self, k0: usize, k1: usize, n0: usize, cols: usize, nr: usize, out: &mut [f32]) {
        let g = &self.g;
        let taps = g.kh * g.kw;
        for (kk, dst) in (k0..k1).zip(out.chunks_exact_mut(nr)) {
            let (ci, t) = (kk / taps, kk % taps);
            let (ky, kx) = (t / g.kw, t % g.kw);
            let plane = &self.input[ci * g.h * g.w..][..g.h * g.w];
            let (mut oy, mut ox) = (n0 / self.ow, n0 % self.ow);
            for d in dst[..cols].iter_mut() {
                let y = (oy * g.sh + ky * g.dh) as isize - g.pt as isize;
                let x = (ox * g.sw + kx * g.dw) as isize - g.pl as isize;
                *d = if y >= 0 && x >= 0 && (y as usize) < g.h && (x as usize) < g.w {
                    plane[y as usize * g.w + x as usize]
                } else {
                    0.0
                };
                ox += 1;
                if ox == self.ow {
                    ox = 0;
                    oy += 1;
                }
            }
            dst[cols..].fill(0.0);
        }
    }
}

thread_local! {
    /// The zero-padded input, reused across calls on one thread.
    static PADDED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Copies below this many elements run on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

/// One image, one group: `out[m][oh*ow] = steps(W·B)`, with `input` the
/// group's `c x h x w` planes and `w` its packed `m x k` weights.
pub fn conv2d(cx: &Cx, g: &Geom, input: &[f32], w: &PackedA, steps: &[Step], out: &mut [f32]) {
    let (m, oh, ow) = (w.m, g.oh(), g.ow());
    assert_eq!(w.k, g.k());
    assert_eq!(input.len(), g.c * g.h * g.w);
    assert_eq!(out.len(), m * oh * ow);
    let epi = Epilogue { steps };
    let a = AOp::Packed(w);
    if g.is_pointwise() {
        let b = RowsB::new(input, g.h * g.w, g.k());
        gemm::gemm(cx, m, oh * ow, g.k(), a, BOp::Packer(&b), out, oh * ow, epi);
    } else if g.sh == 1 && g.sw == 1 {
        let (hp, wp) = (g.h + g.pt + g.pb, g.w + g.pl + g.pr);
        let plane = hp * wp;
        // slack so the last shifted rows may run past the last plane
        let len = g.c * plane + g.dw * (g.kw - 1) + wp;
        PADDED.with(|p| {
            let mut padded = p.borrow_mut();
            // every element is written below: borders zeroed, interiors copied
            padded.resize(len, 0.0);
            let (planes, slack) = padded.split_at_mut(g.c * plane);
            slack.fill(0.0);
            cx.par_chunks(planes, plane, PARALLEL_MIN, |ci, p| {
                p[..g.pt * wp].fill(0.0);
                for y in 0..g.h {
                    let row = &mut p[(y + g.pt) * wp..][..wp];
                    row[..g.pl].fill(0.0);
                    row[g.pl..g.pl + g.w].copy_from_slice(&input[(ci * g.h + y) * g.w..][..g.w]);
                    row[g.pl + g.w..].fill(0.0);
                }
                p[(g.pt + g.h) * wp..].fill(0.0);
            });
            let taps = g.kh * g.kw;
            let offsets = (0..g.k())
                .map(|kk| {
                    let (ci, t) = (kk / taps, kk % taps);
                    ci * plane + (t / g.kw) * g.dh * wp + (t % g.kw) * g.dw
                })
                .collect();
            let b = ShiftedB {
                padded: &padded,
                offsets,
            };
            if wp == ow {
                gemm::gemm(cx, m, oh * ow, g.k(), a, BOp::Packer(&b), out, oh * ow, epi);
            } else {
                // columns over the padded width; keep the first ow of each row
                let mut wide = cx.buffer(m * oh * wp);
                gemm::gemm(
                    cx,
                    m,
                    oh * wp,
                    g.k(),
                    a,
                    BOp::Packer(&b),
                    &mut wide,
                    oh * wp,
                    epi,
                );
                let rows = cx.rows_per_task(m * oh);
                cx.par_chunks(out, rows * ow, PARALLEL_MIN, |t, out| {
                    let wide = &wide[t * rows * wp..];
                    for (dst, src) in out.chunks_exact_mut(ow).zip(wide.chunks_exact(wp)) {
                        dst.copy_from_slice(&src[..ow]);
                    }
                });
            }
        });
    } else {
        let b = Im2colB { input, g: *g, ow };
        gemm::gemm(cx, m, oh * ow, g.k(), a, BOp::Packer(&b), out, oh * ow, epi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::epilogue::Operand;
    use crate::kernels::Isa;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(7);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// The definition: zero padding, k in (ci, ky, kx) order, one FMA a step.
    fn reference(g: &Geom, x: &[f32], w: &[f32], m: usize, bias: &[f32]) -> Vec<f32> {
        let (oh, ow) = (g.oh(), g.ow());
        let mut out = vec![0.0; m * oh * ow];
        for co in 0..m {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = 0.0f32;
                    for ci in 0..g.c {
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let y = (oy * g.sh + ky * g.dh) as isize - g.pt as isize;
                                let xx = (ox * g.sw + kx * g.dw) as isize - g.pl as isize;
                                let v = if y >= 0
                                    && xx >= 0
                                    && (y as usize) < g.h
                                    && (xx as usize) < g.w
                                {
                                    x[(ci * g.h + y as usize) * g.w + xx as usize]
                                } else {
                                    0.0
                                };
                                s = w[((co * g.c + ci) * g.kh + ky) * g.kw + kx].mul_add(v, s);
                            }
                        }
                    }
                    out[(co * oh + oy) * ow + ox] = s + bias[co];
                }
            }
        }
        out
    }

    #[test]
    fn all_three_strategies_match_the_definition_on_every_isa() {
        let geoms = [
            // pointwise
            Geom {
                c: 5,
                h: 7,
                w: 9,
                kh: 1,
                kw: 1,
                sh: 1,
                sw: 1,
                dh: 1,
                dw: 1,
                pt: 0,
                pl: 0,
                pb: 0,
                pr: 0,
            },
            // stride 1 with padding and dilation
            Geom {
                c: 3,
                h: 10,
                w: 11,
                kh: 3,
                kw: 3,
                sh: 1,
                sw: 1,
                dh: 1,
                dw: 1,
                pt: 1,
                pl: 1,
                pb: 1,
                pr: 1,
            },
            Geom {
                c: 2,
                h: 9,
                w: 12,
                kh: 3,
                kw: 2,
                sh: 1,
                sw: 1,
                dh: 2,
                dw: 1,
                pt: 2,
                pl: 0,
                pb: 1,
                pr: 3,
            },
            // strided: im2col
            Geom {
                c: 3,
                h: 11,
                w: 13,
                kh: 3,
                kw: 3,
                sh: 2,
                sw: 2,
                dh: 1,
                dw: 1,
                pt: 1,
                pl: 1,
                pb: 1,
                pr: 1,
            },
            Geom {
                c: 4,
                h: 8,
                w: 8,
                kh: 1,
                kw: 1,
                sh: 2,
                sw: 2,
                dh: 1,
                dw: 1,
                pt: 0,
                pl: 0,
                pb: 0,
                pr: 0,
            },
        ];
        for g in &geoms {
            let m = 11;
            let x = data(g.c * g.h * g.w, 1);
            let w = data(m * g.k(), 2);
            let bias = data(m, 3);
            let want = reference(g, &x, &w, m, &bias);
            for isa in Isa::available() {
                let cx = Cx::new(isa, None, u64::MAX);
                let pw = PackedA::new(isa, &w, m, g.k());
                let mut out = vec![f32::NAN; m * g.oh() * g.ow()];
                conv2d(
                    &cx,
                    g,
                    &x,
                    &pw,
                    &[Step::Add(Operand::Row(bias.clone()))],
                    &mut out,
                );
                let same = out
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{isa:?} {g:?}");
            }
        }
    }
}
