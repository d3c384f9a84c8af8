//! The arithmetic of the embedding models, written so every CPU gets the
//! same bits: each dot product keeps 8 partial sums (lane `l` adds the
//! products `k ≡ l mod 8` in order), folds them in a fixed tree and adds
//! the tail in order; no fused multiply-add (Rust never contracts `a * b + c`).
//! An AVX2 build of the same code runs where the CPU has it: the same
//! operations in the same order, so the same bits, eight lanes at a time.

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

/// `out[m][n] = x[m] · w[n] + b[n]` for rows `x` (`k` wide) and the rows
/// of `w` (PyTorch's `[out, in]` layout). Four rows of `x` meet two rows of
/// `w` at a time so loads are shared; each entry is still exactly `dot`.
#[inline(always)]
fn linear_body(x: &[f32], w: &[f32], b: &[f32], k: usize, out: &mut [f32]) {
    let n = b.len();
    let m = x.len() / k;
    let body = k / LANES * LANES;
    let mut i = 0;
    while i + 4 <= m {
        let xs: [&[f32]; 4] = std::array::from_fn(|r| &x[(i + r) * k..(i + r + 1) * k]);
        let mut j = 0;
        while j + 2 <= n {
            let ws = [&w[j * k..(j + 1) * k], &w[(j + 1) * k..(j + 2) * k]];
            let mut acc = [[[0f32; LANES]; 2]; 4];
            let mut c = 0;
            while c < body {
                for (r, xr) in xs.iter().enumerate() {
                    for (q, wq) in ws.iter().enumerate() {
                        for l in 0..LANES {
                            acc[r][q][l] += xr[c + l] * wq[c + l];
                        }
                    }
                }
                c += LANES;
            }
            for (r, xr) in xs.iter().enumerate() {
                for (q, wq) in ws.iter().enumerate() {
                    let mut s = fold(acc[r][q]);
                    for t in body..k {
                        s += xr[t] * wq[t];
                    }
                    out[(i + r) * n + j + q] = s + b[j + q];
                }
            }
            j += 2;
        }
        for j in j..n {
            for (r, xr) in xs.iter().enumerate() {
                out[(i + r) * n + j] = dot(xr, &w[j * k..(j + 1) * k]) + b[j];
            }
        }
        i += 4;
    }
    for i in i..m {
        let xr = &x[i * k..(i + 1) * k];
        for j in 0..n {
            out[i * n + j] = dot(xr, &w[j * k..(j + 1) * k]) + b[j];
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn linear_avx2(x: &[f32], w: &[f32], b: &[f32], k: usize, out: &mut [f32]) {
    linear_body(x, w, b, k, out)
}

/// `linear_body` on this thread, in AVX2 where the CPU has it.
fn linear_rows(x: &[f32], w: &[f32], b: &[f32], k: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if !portable() && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2
        return unsafe { linear_avx2(x, w, b, k, out) };
    }
    linear_body(x, w, b, k, out)
}

/// `GRADNET_PORTABLE_KERNELS=1` forces the portable build (tests compare).
fn portable() -> bool {
    static P: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *P.get_or_init(|| std::env::var("GRADNET_PORTABLE_KERNELS").is_ok_and(|v| v == "1"))
}

/// A linear layer over the rows of `x`, split across `threads` by rows
/// (each row's result does not depend on the split).
pub(crate) fn linear(x: &[f32], w: &[f32], b: &[f32], k: usize, threads: usize) -> Vec<f32> {
    let n = b.len();
    let m = x.len() / k;
    let mut out = vec![0f32; m * n];
    let per = m.div_ceil(threads.max(1)).max(4);
    if threads <= 1 || m <= per {
        linear_rows(x, w, b, k, &mut out);
        return out;
    }
    std::thread::scope(|s| {
        for (xc, oc) in x.chunks(per * k).zip(out.chunks_mut(per * n)) {
            s.spawn(move || linear_rows(xc, w, b, k, oc));
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_and_threaded_layers_equal_plain_dots() {
        let (m, k, n) = (11, 37, 5);
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 101) as f32 / 37.0 - 1.3)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 104729) % 97) as f32 / 29.0 - 1.7)
            .collect();
        let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.25).collect();
        let want: Vec<f32> = (0..m * n)
            .map(|e| {
                dot(
                    &x[e / n * k..(e / n + 1) * k],
                    &w[e % n * k..(e % n + 1) * k],
                ) + b[e % n]
            })
            .collect();
        for threads in [1, 2, 3] {
            let got = linear(&x, &w, &b, k, threads);
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
        let mut plain = vec![0f32; m * n];
        linear_body(&x, &w, &b, k, &mut plain);
        assert_eq!(plain, want);
    }
}
