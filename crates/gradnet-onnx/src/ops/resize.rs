//! `Resize` and `Upsample`: nearest and (multi-)linear interpolation with
//! ONNX's coordinate transformations. Source coordinates are computed in f32
//! as the specification writes them; linear interpolation runs one axis at a
//! time, last axis first, each output `fma(w1, x1, w0 * x0)`.

use super::{Build, Inputs, Op};
use crate::cx::Cx;
use crate::error::{bail, invalid, Result};
use crate::tensor::{numel, Data, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Coord {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
    HalfPixelSymmetric,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Nearest {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    /// Upsample's rule: truncate when enlarging, ceiling when shrinking.
    Simple,
}

struct Resize {
    linear: bool,
    coord: Coord,
    nearest: Nearest,
    /// Upsample before opset 9: scales as an attribute.
    attr_scales: Option<Vec<f32>>,
    /// Input holding scales (1 for Upsample 9 and Resize 10, 2 after).
    scales_input: usize,
}

pub(crate) fn resize(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let upsample = n.op == "Upsample";
    let mode = n.string_or("mode", "nearest")?;
    let linear = match mode.as_str() {
        "nearest" => false,
        "linear" | "bilinear" => true,
        other => return Err(b.unsupported(&format!("mode `{other}`"))),
    };
    if n.int_or("antialias", 0)? != 0 {
        return Err(b.unsupported("antialias"));
    }
    if n.string_or("keep_aspect_ratio_policy", "stretch")? != "stretch" {
        return Err(b.unsupported("keep_aspect_ratio_policy"));
    }
    let default_coord = if upsample || b.opset < 11 {
        "asymmetric"
    } else {
        "half_pixel"
    };
    let coord = match n
        .string_or("coordinate_transformation_mode", default_coord)?
        .as_str()
    {
        "half_pixel" => Coord::HalfPixel,
        "pytorch_half_pixel" => Coord::PytorchHalfPixel,
        "align_corners" => Coord::AlignCorners,
        "asymmetric" => Coord::Asymmetric,
        "tf_half_pixel_for_nn" => Coord::TfHalfPixelForNn,
        "half_pixel_symmetric" => Coord::HalfPixelSymmetric,
        other => return Err(b.unsupported(&format!("coordinate_transformation_mode `{other}`"))),
    };
    let nearest = if upsample || b.opset < 11 {
        Nearest::Simple
    } else {
        match n.string_or("nearest_mode", "round_prefer_floor")?.as_str() {
            "round_prefer_floor" => Nearest::RoundPreferFloor,
            "round_prefer_ceil" => Nearest::RoundPreferCeil,
            "floor" => Nearest::Floor,
            "ceil" => Nearest::Ceil,
            other => return Err(invalid!("{}: nearest_mode `{other}`", n.label())),
        }
    };
    if n.ints("axes")?.is_some() {
        return Err(b.unsupported("the axes attribute"));
    }
    Ok(Box::new(Resize {
        linear,
        coord,
        nearest,
        attr_scales: if upsample && b.opset < 9 {
            n.floats("scales")?
        } else {
            None
        },
        scales_input: if upsample || b.opset < 11 { 1 } else { 2 },
    }))
}

impl Resize {
    fn source(&self, x: usize, scale: f32, len_in: usize, len_out: usize) -> f32 {
        let x = x as f32;
        match self.coord {
            Coord::HalfPixel => (x + 0.5) / scale - 0.5,
            Coord::PytorchHalfPixel => {
                if len_out > 1 {
                    (x + 0.5) / scale - 0.5
                } else {
                    0.0
                }
            }
            Coord::AlignCorners => {
                if len_out == 1 {
                    0.0
                } else {
                    x * (len_in as f32 - 1.0) / (len_out as f32 - 1.0)
                }
            }
            Coord::Asymmetric => x / scale,
            Coord::TfHalfPixelForNn => (x + 0.5) / scale,
            Coord::HalfPixelSymmetric => {
                let adj = len_out as f32 / (scale * len_in as f32);
                let center = len_in as f32 / 2.0;
                center * (1.0 - adj) + (x + 0.5) / scale - 0.5
            }
        }
    }

    fn nearest_index(&self, s: f32, len: usize, shrinking: bool) -> usize {
        let i = match self.nearest {
            Nearest::RoundPreferFloor => {
                if s - s.floor() == 0.5 {
                    s.floor()
                } else {
                    s.round()
                }
            }
            Nearest::RoundPreferCeil => {
                if s - s.floor() == 0.5 {
                    s.ceil()
                } else {
                    s.round()
                }
            }
            Nearest::Floor => s.floor(),
            Nearest::Ceil => s.ceil(),
            Nearest::Simple => {
                if shrinking {
                    s.ceil()
                } else {
                    s.trunc()
                }
            }
        };
        (i.max(0.0) as usize).min(len - 1)
    }
}

impl Op for Resize {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let r = x.rank();
        let shape_in = x.shape().to_vec();
        let scales: Option<Vec<f32>> = match &self.attr_scales {
            Some(s) => Some(s.clone()),
            None => inputs
                .opt(self.scales_input)
                .filter(|t| !t.is_empty())
                .map(|t| {
                    t.to_f64s()
                        .map(|v| v.into_iter().map(|s| s as f32).collect())
                })
                .transpose()?,
        };
        let sizes = inputs
            .opt(self.scales_input + 1)
            .filter(|t| !t.is_empty())
            .map(|t| t.to_i64s())
            .transpose()?;
        let (scales, out): (Vec<f32>, Vec<usize>) = match (scales, sizes) {
            (_, Some(sz)) => {
                if sz.len() != r || sz.iter().any(|&d| d < 0) {
                    bail!("Resize: sizes {sz:?} do not fit rank {r}");
                }
                let out: Vec<usize> = sz.iter().map(|&d| d as usize).collect();
                let sc = out
                    .iter()
                    .zip(&shape_in)
                    .map(|(&o, &i)| o as f32 / i.max(1) as f32)
                    .collect();
                (sc, out)
            }
            (Some(sc), None) => {
                if sc.len() != r || sc.iter().any(|&s| !(s > 0.0)) {
                    bail!("Resize: scales {sc:?} do not fit rank {r}");
                }
                let out = shape_in
                    .iter()
                    .zip(&sc)
                    .map(|(&i, &s)| (i as f32 * s).floor() as usize)
                    .collect();
                (sc, out)
            }
            (None, None) => bail!("Resize needs scales or sizes"),
        };
        cx.check_size(&out, x.dtype().size())?;
        if numel(&out)? == 0 {
            return Ok(vec![Tensor::new(out, Data::zeros(x.dtype(), 0))?]);
        }
        if !self.linear {
            // one gather: each output takes its nearest source per axis
            let per_axis: Vec<Vec<usize>> = (0..r)
                .map(|a| {
                    (0..out[a])
                        .map(|o| {
                            let s = self.source(o, scales[a], shape_in[a], out[a]);
                            self.nearest_index(s, shape_in[a], scales[a] < 1.0)
                        })
                        .collect()
                })
                .collect();
            return Ok(vec![gather_nearest(cx, x, &out, &per_axis)?]);
        }
        let mut cur = x.f32s()?.to_vec();
        let mut shape = shape_in.clone();
        for a in (0..r).rev() {
            if out[a] == shape[a] && scales[a] == 1.0 && self.coord != Coord::AlignCorners {
                continue;
            }
            cur = self.linear_axis(cx, &cur, &mut shape, a, out[a], scales[a]);
        }
        Ok(vec![Tensor::from_vec(shape, cur)?])
    }
}

/// Output rows (all axes but the last) each take one source row through the
/// last axis' table; a row whose source equals the previous row's is copied.
fn gather_nearest(cx: &Cx, x: &Tensor, out: &[usize], per_axis: &[Vec<usize>]) -> Result<Tensor> {
    let r = out.len();
    let st = super::shape::strides(x.shape());
    let last = &per_axis[r - 1];
    let rows: usize = out[..r - 1].iter().product();
    let mut pos = vec![0usize; r - 1];
    let mut src_rows = Vec::with_capacity(rows);
    for _ in 0..rows {
        src_rows.push(
            (0..r - 1)
                .map(|a| per_axis[a][pos[a]] * st[a])
                .sum::<usize>(),
        );
        for a in (0..r - 1).rev() {
            pos[a] += 1;
            if pos[a] < out[a] {
                break;
            }
            pos[a] = 0;
        }
    }
    // every element written by fill_rows
    let n = rows * last.len();
    let data = match x.data() {
        Data::F32(v) => Data::F32(fill_rows(cx, v, &src_rows, last, cx.buffer(n))),
        Data::F64(v) => Data::F64(fill_rows(
            cx,
            v,
            &src_rows,
            last,
            vec![Default::default(); n],
        )),
        Data::I64(v) => Data::I64(fill_rows(
            cx,
            v,
            &src_rows,
            last,
            vec![Default::default(); n],
        )),
        Data::I32(v) => Data::I32(fill_rows(
            cx,
            v,
            &src_rows,
            last,
            vec![Default::default(); n],
        )),
        Data::U8(v) => Data::U8(fill_rows(
            cx,
            v,
            &src_rows,
            last,
            vec![Default::default(); n],
        )),
        Data::Bool(v) => Data::Bool(fill_rows(
            cx,
            v,
            &src_rows,
            last,
            vec![Default::default(); n],
        )),
        other => {
            let idx: Vec<usize> = src_rows
                .iter()
                .flat_map(|&s| last.iter().map(move |&j| s + j))
                .collect();
            other.gather(idx.into_iter())
        }
    };
    Tensor::new(out.to_vec(), data)
}

/// Output row `i` is `v[src_rows[i] + j]` for `j` in `last`; rows split
/// over the threads, and a row whose source equals the previous row's is
/// copied.
fn fill_rows<T: Clone + Send + Sync>(
    cx: &Cx,
    v: &[T],
    src_rows: &[usize],
    last: &[usize],
    mut o: Vec<T>,
) -> Vec<T> {
    let row = last.len();
    assert_eq!(o.len(), src_rows.len() * row);
    let rows = cx.rows_per_task(src_rows.len());
    cx.par_chunks(&mut o, rows * row, 1 << 16, |t, dst| {
        for i in 0..dst.len() / row {
            let r = t * rows + i;
            let (done, d) = dst.split_at_mut(i * row);
            if i > 0 && src_rows[r - 1] == src_rows[r] {
                d[..row].clone_from_slice(&done[(i - 1) * row..]);
            } else {
                for (d, &j) in d[..row].iter_mut().zip(last) {
                    *d = v[src_rows[r] + j].clone();
                }
            }
        }
    });
    o
}

impl Resize {
    /// Linear interpolation along axis `a` to `len_out`.
    fn linear_axis(
        &self,
        cx: &Cx,
        v: &[f32],
        shape: &mut [usize],
        a: usize,
        len_out: usize,
        scale: f32,
    ) -> Vec<f32> {
        let len_in = shape[a];
        let inner: usize = shape[a + 1..].iter().product();
        let outer: usize = shape[..a].iter().product();
        let taps: Vec<(usize, usize, f32, f32)> = (0..len_out)
            .map(|o| {
                let s = self
                    .source(o, scale, len_in, len_out)
                    .max(0.0)
                    .min((len_in - 1) as f32);
                let i0 = s.floor() as usize;
                let i1 = (i0 + 1).min(len_in - 1);
                let w1 = s - i0 as f32;
                (i0, i1, 1.0 - w1, w1)
            })
            .collect();
        let mut out = cx.buffer(outer * len_out * inner);
        for o in 0..outer {
            let src = &v[o * len_in * inner..][..len_in * inner];
            let dst = &mut out[o * len_out * inner..][..len_out * inner];
            for (j, &(i0, i1, w0, w1)) in taps.iter().enumerate() {
                let (r0, r1) = (&src[i0 * inner..][..inner], &src[i1 * inner..][..inner]);
                for ((d, &x0), &x1) in dst[j * inner..][..inner].iter_mut().zip(r0).zip(r1) {
                    *d = w1.mul_add(x1, w0 * x0);
                }
            }
        }
        shape[a] = len_out;
        out
    }
}
