//! Sums in one fixed order: a contiguous run is summed as eight interleaved
//! partial sums (element i goes to lane i mod 8, each lane in ascending
//! order) combined as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)). Eight lanes are
//! part of the definition, not of the CPU, so every instruction set gives
//! the same bits (the compiler maps the lanes onto whatever registers exist).

use super::Fma;

#[inline(always)]
fn combine(l: [f32; 8]) -> f32 {
    ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

/// Σ x
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut l = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            l[i] += c[i];
        }
    }
    for (i, &v) in rest.iter().enumerate() {
        l[i] += v;
    }
    combine(l)
}

/// Σ x·y, one FMA a step per lane.
#[inline(always)]
pub fn dot<F: Fma>(x: &[f32], y: &[f32]) -> f32 {
    assert_eq!(x.len(), y.len());
    let mut l = [0f32; 8];
    let (cx, cy) = (x.chunks_exact(8), y.chunks_exact(8));
    let (rx, ry) = (cx.remainder(), cy.remainder());
    for (a, b) in cx.zip(cy) {
        for i in 0..8 {
            l[i] = F::fma(a[i], b[i], l[i]);
        }
    }
    for i in 0..rx.len() {
        l[i] = F::fma(rx[i], ry[i], l[i]);
    }
    combine(l)
}

/// Σ (x - mean)², one FMA a step per lane.
#[inline(always)]
pub fn sum_sq_dev<F: Fma>(x: &[f32], mean: f32) -> f32 {
    let mut l = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            let d = c[i] - mean;
            l[i] = F::fma(d, d, l[i]);
        }
    }
    for (i, &v) in rest.iter().enumerate() {
        let d = v - mean;
        l[i] = F::fma(d, d, l[i]);
    }
    combine(l)
}

/// The largest element (NaN-free inputs; a NaN lane loses to any number,
/// as in [`super::act::max`]); -inf for an empty run.
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut l = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            l[i] = super::act::max(c[i], l[i]);
        }
    }
    for (i, &v) in rest.iter().enumerate() {
        l[i] = super::act::max(v, l[i]);
    }
    let m = |a: f32, b: f32| super::act::max(a, b);
    m(
        m(m(l[0], l[1]), m(l[2], l[3])),
        m(m(l[4], l[5]), m(l[6], l[7])),
    )
}
