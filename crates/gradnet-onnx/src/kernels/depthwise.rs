//! Depthwise convolution (one filter per channel), computed directly: each
//! output is `act((((0 + w00·x) + w01·x) + …) + bias)` over the taps in (ky,
//! kx) order with one FMA a step — the same sum a grouped matrix product
//! would make — vectorized across the output row.

use super::conv::Geom;
use super::epilogue::{self, Step};
use super::multiversion;
use crate::cx::{Cx, SharedMut};

thread_local! {
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// `input` is `channels` planes of `g.h x g.w` (`g.c` is 1); `w` holds
/// `channels` filters of `g.kh x g.kw`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise(
    cx: &Cx,
    g: &Geom,
    channels: usize,
    input: &[f32],
    w: &[f32],
    steps: &[Step],
    out: &mut [f32],
) {
    let (oh, ow) = (g.oh(), g.ow());
    let (hw, ohw, taps) = (g.h * g.w, oh * ow, g.kh * g.kw);
    assert_eq!(input.len(), channels * hw);
    assert_eq!(w.len(), channels * taps);
    assert_eq!(out.len(), channels * ohw);
    let dst = SharedMut(out.as_mut_ptr());
    let isa = cx.isa;
    let work = channels * ohw * taps;
    cx.par_for_if(work, 1 << 17, channels, |ch| {
        // SAFETY: each task writes its own channel's plane.
        let o = unsafe { std::slice::from_raw_parts_mut(dst.get().add(ch * ohw), ohw) };
        SCRATCH.with(|p| {
            let (padded, phased) = &mut *p.borrow_mut();
            plane(
                isa,
                g,
                &input[ch * hw..][..hw],
                &w[ch * taps..][..taps],
                ch,
                steps,
                padded,
                phased,
                o,
            );
        });
    });
}

/// Output columns computed together (their sums stay in registers).
const CHUNK: usize = 64;

multiversion! {
    fn plane(g: &Geom, x: &[f32], w: &[f32], ch: usize, steps: &[Step], padded: &mut Vec<f32>, phased: &mut Vec<f32>, out: &mut [f32]) {
        let (oh, ow) = (g.oh(), g.ow());
        let (hp, wp) = (g.h + g.pt + g.pb, g.w + g.pl + g.pr);
        // rows of the zero-padded input, split into `sw` phases (phase p of
        // a row holds its columns p, p + sw, p + 2 sw, ...), so every tap
        // reads contiguous values
        let sw = g.sw;
        let pw = wp.div_ceil(sw);
        // every row written whole (pads included), so nothing is cleared
        // twice; CHUNK values of slack past the last row for the reads of
        // the last chunk
        phased.resize(hp * sw * pw + CHUNK, 0.0);
        padded.resize(wp, 0.0);
        for y in 0..hp {
            let rows = &mut phased[y * sw * pw..(y + 1) * sw * pw];
            if y < g.pt || y >= g.pt + g.h {
                rows.fill(0.0);
                continue;
            }
            let src = &x[(y - g.pt) * g.w..][..g.w];
            let row = if sw == 1 { &mut rows[..] } else { &mut padded[..] };
            row[..g.pl].fill(0.0);
            row[g.pl..g.pl + g.w].copy_from_slice(src);
            row[g.pl + g.w..wp].fill(0.0);
            if sw > 1 {
                for p in 0..sw {
                    let dst = &mut rows[p * pw..(p + 1) * pw];
                    let filled = if p < wp {
                        for (d, &v) in dst.iter_mut().zip(padded[p..].iter().step_by(sw)) {
                            *d = v;
                        }
                        (wp - p).div_ceil(sw)
                    } else {
                        0
                    };
                    dst[filled..].fill(0.0);
                }
            }
        }
        phased[hp * sw * pw..].fill(0.0);
        // each tap: its weight and its offset from an output's first source
        let taps: Vec<(f32, usize)> = (0..g.kh * g.kw)
            .map(|t| {
                let (ky, kx) = (t / g.kw, t % g.kw);
                let o = kx * g.dw;
                (w[t], ky * g.dh * sw * pw + (o % sw) * pw + o / sw)
            })
            .collect();
        let last = taps.iter().map(|t| t.1).max().unwrap_or(0);
        let mut x0 = 0;
        while x0 < ow {
            let n = CHUNK.min(ow - x0);
            for oy in 0..oh {
                let base = oy * g.sh * sw * pw + x0;
                assert!(base + last + CHUNK <= phased.len());
                let mut acc = [0f32; CHUNK];
                for &(wv, off) in &taps {
                    // SAFETY: base + off + CHUNK <= phased.len(), checked above
                    let src = unsafe { &*(phased.as_ptr().add(base + off) as *const [f32; CHUNK]) };
                    for (a, &v) in acc.iter_mut().zip(src) {
                        *a = F::fma(wv, v, *a);
                    }
                }
                let o = &mut out[oy * ow + x0..][..n];
                if n == CHUNK {
                    let o: &mut [f32; CHUNK] = o.try_into().expect("a full chunk");
                    *o = acc;
                } else {
                    o.copy_from_slice(&acc[..n]);
                }
                epilogue::apply::<F>(steps, ch, 0, o);
            }
            x0 += CHUNK;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::act::Act;
    use crate::kernels::epilogue::Operand;
    use crate::kernels::gemm::PackedA;
    use crate::kernels::{conv, Isa};

    #[test]
    fn depthwise_equals_a_convolution_per_channel_on_every_isa() {
        let geoms = [
            Geom {
                c: 1,
                h: 9,
                w: 13,
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
                c: 1,
                h: 10,
                w: 21,
                kh: 5,
                kw: 5,
                sh: 2,
                sw: 2,
                dh: 1,
                dw: 1,
                pt: 2,
                pl: 2,
                pb: 2,
                pr: 2,
            },
            Geom {
                c: 1,
                h: 7,
                w: 40,
                kh: 3,
                kw: 1,
                sh: 1,
                sw: 1,
                dh: 2,
                dw: 1,
                pt: 2,
                pl: 0,
                pb: 2,
                pr: 0,
            },
        ];
        let chans = 5;
        for g in &geoms {
            let x: Vec<f32> = (0..chans * g.h * g.w)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
                .collect();
            let w: Vec<f32> = (0..chans * g.kh * g.kw)
                .map(|i| ((i * 13 % 29) as f32 - 14.0) / 9.0)
                .collect();
            let bias: Vec<f32> = (0..chans).map(|i| i as f32 / 3.0).collect();
            let ohw = g.oh() * g.ow();
            let mut want = vec![0.0; chans * ohw];
            let cx = Cx::new(Isa::Portable, None, u64::MAX);
            for ch in 0..chans {
                let pw = PackedA::new(
                    Isa::Portable,
                    &w[ch * g.kh * g.kw..][..g.kh * g.kw],
                    1,
                    g.kh * g.kw,
                );
                let x = &x[ch * g.h * g.w..][..g.h * g.w];
                let steps = [Step::Add(Operand::Scalar(bias[ch])), Step::Act(Act::Relu)];
                conv::conv2d(&cx, g, x, &pw, &steps, &mut want[ch * ohw..][..ohw]);
            }
            for isa in Isa::available() {
                let cx = Cx::new(isa, None, u64::MAX);
                let mut out = vec![f32::NAN; chans * ohw];
                let steps = [Step::Add(Operand::Row(bias.clone())), Step::Act(Act::Relu)];
                depthwise(&cx, g, chans, &x, &w, &steps, &mut out);
                assert!(
                    out.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{isa:?} {g:?}"
                );
            }
        }
    }
}
