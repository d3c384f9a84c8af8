//! Numpy-style broadcasting: the output shape of several inputs, and a walk
//! over the output in contiguous runs, with each input's offset and stride
//! (0 where it is broadcast) per run.

use crate::cx::Cx;
use crate::error::{Error, Result};

pub(super) fn shape(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[rank - s.len() + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(Error::Run(format!(
                    "shapes {} cannot be broadcast together",
                    shapes
                        .iter()
                        .map(|s| format!("{s:?}"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                )));
            }
        }
    }
    Ok(out)
}

/// Strides of `shape`, aligned right to `out`, 0 where broadcast.
pub(super) fn strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let mut st = vec![0usize; out.len()];
    let mut acc = 1;
    for i in (0..shape.len()).rev() {
        let o = out.len() - shape.len() + i;
        st[o] = if shape[i] == 1 { 0 } else { acc };
        acc *= shape[i];
    }
    st
}

/// Calls `f(out_offset, offsets, steps, len)` for each contiguous run of the
/// output (row-major), after merging dimensions that every input walks
/// alike. Strides may be negative, as wrapped `usize`s.
#[inline(always)]
pub(super) fn runs<const N: usize>(
    out: &[usize],
    st: [&[usize]; N],
    mut f: impl FnMut(usize, [usize; N], [usize; N], usize),
) {
    // merge and drop dimensions
    let mut dims: Vec<usize> = vec![];
    let mut strides: Vec<[usize; N]> = vec![];
    for (d, &n) in out.iter().enumerate() {
        if n == 1 {
            continue;
        }
        let s: [usize; N] = std::array::from_fn(|j| st[j][d]);
        if let (Some(ld), Some(ls)) = (dims.last_mut(), strides.last_mut()) {
            if (0..N).all(|j| ls[j] == s[j].wrapping_mul(n)) {
                *ld *= n;
                *ls = s;
                continue;
            }
        }
        dims.push(n);
        strides.push(s);
    }
    if out.contains(&0) {
        return;
    }
    let (len, step) = match (dims.pop(), strides.pop()) {
        (Some(l), Some(s)) => (l, s),
        _ => (1, [0; N]),
    };
    let mut idx = vec![0usize; dims.len()];
    let mut offs = [0usize; N];
    let mut o = 0;
    loop {
        f(o, offs, step, len);
        o += len;
        // increment the outer index
        let mut d = dims.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            for j in 0..N {
                offs[j] = offs[j].wrapping_add(strides[d][j]);
            }
            if idx[d] < dims[d] {
                break;
            }
            for j in 0..N {
                offs[j] = offs[j].wrapping_sub(strides[d][j].wrapping_mul(dims[d]));
            }
            idx[d] = 0;
        }
    }
}

/// Outputs below this many elements are computed on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

/// `f` element-wise over two broadcast inputs. Large outputs are split over
/// the threads along their first axis longer than 1; every element is
/// computed alone, so the split never changes a bit.
pub(super) fn zip2<A: Copy + Sync, B: Copy + Sync, O: Default + Clone + Send>(
    cx: &Cx,
    a: &[A],
    sa: &[usize],
    b: &[B],
    sb: &[usize],
    f: impl Fn(A, B) -> O + Sync + Send,
) -> Result<(Vec<usize>, Vec<O>)> {
    let out = shape(&[sa, sb])?;
    // broadcasting [n, 1] with [1, n] asks for n² elements: checked first
    let n = cx.check_size(&out, std::mem::size_of::<O>())?;
    let mut v = vec![O::default(); n];
    let (ta, tb) = (strides(sa, &out), strides(sb, &out));
    let Some(axis) = out.iter().position(|&d| d > 1) else {
        fill2(&mut v, &out, a, 0, &ta, b, 0, &tb, &f);
        return Ok((out, v));
    };
    // the axes before `axis` are 1 in the output, so one index of `axis`
    // is a contiguous block of each input that is not broadcast along it
    let inner = n / out[axis];
    let rows = cx.rows_per_task(out[axis]);
    cx.par_chunks(&mut v, rows * inner, PARALLEL_MIN, |i, dst| {
        let r0 = i * rows;
        let mut sub = out.clone();
        sub[axis] = dst.len() / inner;
        fill2(dst, &sub, a, r0 * ta[axis], &ta, b, r0 * tb[axis], &tb, &f);
    });
    Ok((out, v))
}

/// `dst` (of shape `out`) = `f(a, b)` with the inputs walked from `oa0`
/// and `ob0` by their strides.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn fill2<A: Copy, B: Copy, O>(
    v: &mut [O],
    out: &[usize],
    a: &[A],
    oa0: usize,
    ta: &[usize],
    b: &[B],
    ob0: usize,
    tb: &[usize],
    f: &impl Fn(A, B) -> O,
) {
    runs(out, [ta, tb], |o, [oa, ob], [da, db], len| {
        let (oa, ob) = (oa0.wrapping_add(oa), ob0.wrapping_add(ob));
        let dst = &mut v[o..o + len];
        match (da, db) {
            (1, 1) => {
                for ((d, &x), &y) in dst.iter_mut().zip(&a[oa..oa + len]).zip(&b[ob..ob + len]) {
                    *d = f(x, y);
                }
            }
            (1, 0) => {
                let y = b[ob];
                for (d, &x) in dst.iter_mut().zip(&a[oa..oa + len]) {
                    *d = f(x, y);
                }
            }
            (0, 1) => {
                let x = a[oa];
                for (d, &y) in dst.iter_mut().zip(&b[ob..ob + len]) {
                    *d = f(x, y);
                }
            }
            _ => {
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = f(a[oa + i * da], b[ob + i * db]);
                }
            }
        }
    });
}
