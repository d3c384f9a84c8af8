//! The attention's dot products, written so every CPU gets the same bits:
//! 8 partial sums (lane `l` adds the products `k ≡ l mod 8` in order),
//! folded in a fixed tree, then the tail in order; no fused multiply-add
//! (Rust never contracts `a * b + c`). The linear layers use the ONNX
//! engine's matrix product, deterministic by its own rule.

const LANES: usize = 8;

#[inline(always)]
fn fold(acc: [f32; LANES]) -> f32 {
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// `x · w` over the shorter length's multiple of 8, then the tail.
#[inline(always)]
pub(crate) fn dot(x: &[f32], w: &[f32]) -> f32 {
    let n = x.len().min(w.len());
    let body = n / LANES * LANES;
    let mut acc = [0f32; LANES];
    for (xc, wc) in x[..body]
        .chunks_exact(LANES)
        .zip(w[..body].chunks_exact(LANES))
    {
        for l in 0..LANES {
            acc[l] += xc[l] * wc[l];
        }
    }
    let mut s = fold(acc);
    for k in body..n {
        s += x[k] * w[k];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_sums_eight_lanes_then_the_tail() {
        let x: Vec<f32> = (0..19).map(|i| i as f32 * 0.37 - 2.0).collect();
        let w: Vec<f32> = (0..19).map(|i| 1.5 - i as f32 * 0.21).collect();
        let mut acc = [0f32; LANES];
        for k in 0..16 {
            acc[k % 8] += x[k] * w[k];
        }
        let mut want = fold(acc);
        for k in 16..19 {
            want += x[k] * w[k];
        }
        assert_eq!(dot(&x, &w).to_bits(), want.to_bits());
    }
}
