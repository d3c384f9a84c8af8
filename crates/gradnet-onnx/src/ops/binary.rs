//! Element-wise operators of two or more inputs, with broadcasting:
//! arithmetic, comparisons, logic, `Where`, `PRelu`, variadic `Max`/`Min`/
//! `Sum`/`Mean`. Each float result is one IEEE operation (or gradnet's own
//! `pow`), so it is the same on every CPU.

use super::broadcast::zip2;
use super::{Build, Inputs, Op};
use crate::cx::Cx;
use crate::error::{bail, Error, Result};
use crate::kernels::{math, multiversion};
use crate::tensor::{Data, Tensor};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Mod { fmod: bool },
    Max,
    Min,
    Sum,
    Mean,
    Equal,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
    And,
    Or,
    Xor,
    Where,
    PRelu,
    BitShift { left: bool },
}

struct Binary(Kind);

pub(crate) fn binary(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let k = match n.op.as_str() {
        "Add" => Kind::Add,
        "Sub" => Kind::Sub,
        "Mul" => Kind::Mul,
        "Div" => Kind::Div,
        "Pow" => Kind::Pow,
        "Mod" => Kind::Mod {
            fmod: n.int_or("fmod", 0)? != 0,
        },
        "Max" => Kind::Max,
        "Min" => Kind::Min,
        "Sum" => Kind::Sum,
        "Mean" => Kind::Mean,
        "Equal" => Kind::Equal,
        "Less" => Kind::Less,
        "Greater" => Kind::Greater,
        "LessOrEqual" => Kind::LessOrEqual,
        "GreaterOrEqual" => Kind::GreaterOrEqual,
        "And" => Kind::And,
        "Or" => Kind::Or,
        "Xor" => Kind::Xor,
        "Where" => Kind::Where,
        "PRelu" => Kind::PRelu,
        "BitShift" => Kind::BitShift {
            left: n.need("direction", n.string("direction"))? == "LEFT",
        },
        _ => return Err(b.unsupported("unknown element-wise operator")),
    };
    if b.opset < 7
        && matches!(k, Kind::Add | Kind::Sub | Kind::Mul | Kind::Div)
        && n.int("broadcast")?.is_some()
    {
        return Err(b.unsupported("opset < 7 broadcast attribute"));
    }
    Ok(Box::new(Binary(k)))
}

multiversion! {
    /// `pow` compiled per instruction set (for its FMAs).
    fn pow_f32(cx: &Cx, a: &[f32], sa: &[usize], b: &[f32], sb: &[usize]) -> Result<(Vec<usize>, Vec<f32>)> {
        zip2(cx, a, sa, b, sb, |x, y| math::pow::<F>(x, y))
    }
}

/// `max` / `min` as ONNX defines them for floats: NaN if either is NaN.
fn fmax<T: PartialOrd + Copy>(x: T, y: T) -> T {
    #[allow(clippy::eq_op)]
    if x != x {
        x
    } else if y != y || y > x {
        y
    } else {
        x
    }
}

fn fmin<T: PartialOrd + Copy>(x: T, y: T) -> T {
    #[allow(clippy::eq_op)]
    if x != x {
        x
    } else if y != y || y < x {
        y
    } else {
        x
    }
}

macro_rules! arith {
    ($cx:expr, $k:expr, $a:expr, $sa:expr, $b:expr, $sb:expr, float) => {
        match $k {
            Kind::Add | Kind::Sum => zip2($cx, $a, $sa, $b, $sb, |x, y| x + y),
            Kind::Sub => zip2($cx, $a, $sa, $b, $sb, |x, y| x - y),
            Kind::Mul => zip2($cx, $a, $sa, $b, $sb, |x, y| x * y),
            Kind::Div => zip2($cx, $a, $sa, $b, $sb, |x, y| x / y),
            Kind::Max => zip2($cx, $a, $sa, $b, $sb, fmax),
            Kind::Min => zip2($cx, $a, $sa, $b, $sb, fmin),
            Kind::Mod { .. } => zip2($cx, $a, $sa, $b, $sb, |x, y| x % y),
            Kind::PRelu => zip2($cx, $a, $sa, $b, $sb, |x, s| {
                if x < Default::default() {
                    s * x
                } else {
                    x
                }
            }),
            _ => unreachable!(),
        }
    };
    ($cx:expr, $k:expr, $a:expr, $sa:expr, $b:expr, $sb:expr, int $t:ty) => {{
        let zero = <$t>::default();
        if matches!($k, Kind::Div | Kind::Mod { .. }) && $b.iter().any(|&y| y == zero) {
            bail!("integer division by zero");
        }
        match $k {
            Kind::Add | Kind::Sum => zip2($cx, $a, $sa, $b, $sb, |x, y| x.wrapping_add(y)),
            Kind::Sub => zip2($cx, $a, $sa, $b, $sb, |x, y| x.wrapping_sub(y)),
            Kind::Mul => zip2($cx, $a, $sa, $b, $sb, |x, y| x.wrapping_mul(y)),
            Kind::Div => zip2($cx, $a, $sa, $b, $sb, |x, y| x.wrapping_div(y)),
            Kind::Max => zip2($cx, $a, $sa, $b, $sb, |x, y| if y > x { y } else { x }),
            Kind::Min => zip2($cx, $a, $sa, $b, $sb, |x, y| if y < x { y } else { x }),
            Kind::Mod { fmod: true } => zip2($cx, $a, $sa, $b, $sb, |x, y| x.wrapping_rem(y)),
            // the sign of the divisor, as Python's %
            Kind::Mod { fmod: false } => zip2($cx, $a, $sa, $b, $sb, |x, y| {
                let r = x.wrapping_rem(y);
                if r != zero && ((r < zero) != (y < zero)) {
                    r.wrapping_add(y)
                } else {
                    r
                }
            }),
            Kind::PRelu => zip2($cx, $a, $sa, $b, $sb, |x, s| {
                if x < zero {
                    s.wrapping_mul(x)
                } else {
                    x
                }
            }),
            _ => unreachable!(),
        }
    }};
}

macro_rules! compare {
    ($cx:expr, $k:expr, $a:expr, $sa:expr, $b:expr, $sb:expr) => {
        match $k {
            Kind::Equal => zip2($cx, $a, $sa, $b, $sb, |x, y| x == y),
            Kind::Less => zip2($cx, $a, $sa, $b, $sb, |x, y| x < y),
            Kind::Greater => zip2($cx, $a, $sa, $b, $sb, |x, y| x > y),
            Kind::LessOrEqual => zip2($cx, $a, $sa, $b, $sb, |x, y| x <= y),
            Kind::GreaterOrEqual => zip2($cx, $a, $sa, $b, $sb, |x, y| x >= y),
            _ => unreachable!(),
        }
    };
}

fn is_compare(k: Kind) -> bool {
    matches!(
        k,
        Kind::Equal | Kind::Less | Kind::Greater | Kind::LessOrEqual | Kind::GreaterOrEqual
    )
}

fn pair(cx: &Cx, k: Kind, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (sa, sb) = (a.shape(), b.shape());
    let mismatch = || {
        Error::Run(format!(
            "{k:?} needs inputs of one type, got {} and {}",
            a.dtype(),
            b.dtype()
        ))
    };
    if k == Kind::Pow {
        return pow(cx, a, b);
    }
    if let Kind::BitShift { left } = k {
        return shift(cx, left, a, b);
    }
    if is_compare(k) {
        let (shape, v) = match (a.data(), b.data()) {
            (Data::F32(x), Data::F32(y)) => compare!(cx, k, x, sa, y, sb)?,
            (Data::F64(x), Data::F64(y)) => compare!(cx, k, x, sa, y, sb)?,
            (Data::I64(x), Data::I64(y)) => compare!(cx, k, x, sa, y, sb)?,
            (Data::I32(x), Data::I32(y)) => compare!(cx, k, x, sa, y, sb)?,
            (Data::I16(x), Data::I16(y)) => compare!(cx, k, x, sa, y, sb)?,
            (Data::I8(x), Data::I8(y)) => compare!(cx, k, x, sa, y, sb)?,
            (Data::U8(x), Data::U8(y)) => compare!(cx, k, x, sa, y, sb)?,
            (Data::U16(x), Data::U16(y)) => compare!(cx, k, x, sa, y, sb)?,
            (Data::U32(x), Data::U32(y)) => compare!(cx, k, x, sa, y, sb)?,
            (Data::U64(x), Data::U64(y)) => compare!(cx, k, x, sa, y, sb)?,
            (Data::Bool(x), Data::Bool(y)) if k == Kind::Equal => {
                zip2(cx, x, sa, y, sb, |x, y| x == y)?
            }
            (Data::Str(x), Data::Str(y)) if k == Kind::Equal => {
                let xi: Vec<usize> = (0..x.len()).collect();
                let yi: Vec<usize> = (0..y.len()).collect();
                zip2(cx, &xi, sa, &yi, sb, |i, j| x[i] == y[j])?
            }
            _ => return Err(mismatch()),
        };
        return Tensor::from_vec(shape, v);
    }
    if matches!(k, Kind::And | Kind::Or | Kind::Xor) {
        let (Data::Bool(x), Data::Bool(y)) = (a.data(), b.data()) else {
            bail!(
                "{k:?} needs bool inputs, got {} and {}",
                a.dtype(),
                b.dtype()
            );
        };
        let (shape, v) = match k {
            Kind::And => zip2(cx, x, sa, y, sb, |x, y| x & y)?,
            Kind::Or => zip2(cx, x, sa, y, sb, |x, y| x | y)?,
            _ => zip2(cx, x, sa, y, sb, |x, y| x ^ y)?,
        };
        return Tensor::from_vec(shape, v);
    }
    let (shape, data) = match (a.data(), b.data()) {
        (Data::F32(x), Data::F32(y)) => {
            if matches!(k, Kind::Mod { fmod: false }) {
                bail!("Mod on floats needs fmod = 1");
            }
            let (s, v) = arith!(cx, k, x, sa, y, sb, float)?;
            (s, Data::F32(v))
        }
        (Data::F64(x), Data::F64(y)) => {
            if matches!(k, Kind::Mod { fmod: false }) {
                bail!("Mod on floats needs fmod = 1");
            }
            let (s, v) = arith!(cx, k, x, sa, y, sb, float)?;
            (s, Data::F64(v))
        }
        (Data::I64(x), Data::I64(y)) => {
            let (s, v) = arith!(cx, k, x, sa, y, sb, int i64)?;
            (s, Data::I64(v))
        }
        (Data::I32(x), Data::I32(y)) => {
            let (s, v) = arith!(cx, k, x, sa, y, sb, int i32)?;
            (s, Data::I32(v))
        }
        (Data::I16(x), Data::I16(y)) => {
            let (s, v) = arith!(cx, k, x, sa, y, sb, int i16)?;
            (s, Data::I16(v))
        }
        (Data::I8(x), Data::I8(y)) => {
            let (s, v) = arith!(cx, k, x, sa, y, sb, int i8)?;
            (s, Data::I8(v))
        }
        (Data::U8(x), Data::U8(y)) => {
            let (s, v) = arith!(cx, k, x, sa, y, sb, int u8)?;
            (s, Data::U8(v))
        }
        (Data::U16(x), Data::U16(y)) => {
            let (s, v) = arith!(cx, k, x, sa, y, sb, int u16)?;
            (s, Data::U16(v))
        }
        (Data::U32(x), Data::U32(y)) => {
            let (s, v) = arith!(cx, k, x, sa, y, sb, int u32)?;
            (s, Data::U32(v))
        }
        (Data::U64(x), Data::U64(y)) => {
            let (s, v) = arith!(cx, k, x, sa, y, sb, int u64)?;
            (s, Data::U64(v))
        }
        _ => return Err(mismatch()),
    };
    Tensor::new(shape, data)
}

fn pow(cx: &Cx, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (sa, sb) = (a.shape(), b.shape());
    match a.data() {
        Data::F32(x) => {
            let y: Vec<f32> = match b.data() {
                Data::F32(y) => y.clone(),
                Data::F64(y) => y.iter().map(|&v| v as f32).collect(),
                _ => b.to_i64s()?.into_iter().map(|v| v as f32).collect(),
            };
            let (s, v) = pow_f32(cx.isa, cx, x, sa, &y, sb)?;
            Tensor::from_vec(s, v)
        }
        _ if matches!(
            b.dtype(),
            crate::tensor::DType::F32 | crate::tensor::DType::F64
        ) =>
        {
            bail!(
                "Pow of a {} base with a float exponent is not supported",
                a.dtype()
            )
        }
        Data::I64(x) => {
            let y = b.to_i64s()?;
            let (s, v) = zip2(cx, x, sa, &y, sb, ipow)?;
            Tensor::from_vec(s, v)
        }
        Data::I32(x) => {
            let x: Vec<i64> = x.iter().map(|&v| v as i64).collect();
            let y = b.to_i64s()?;
            let (s, v) = zip2(cx, &x, sa, &y, sb, ipow)?;
            Tensor::from_vec(s, v.into_iter().map(|v| v as i32).collect::<Vec<_>>())
        }
        _ => bail!("Pow of a {} base is not supported", a.dtype()),
    }
}

fn ipow(x: i64, y: i64) -> i64 {
    if y < 0 {
        return match x {
            1 => 1,
            -1 => {
                if y % 2 == 0 {
                    1
                } else {
                    -1
                }
            }
            _ => 0,
        };
    }
    x.wrapping_pow(y.min(u32::MAX as i64) as u32)
}

fn shift(cx: &Cx, left: bool, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    macro_rules! sh {
        ($x:expr, $y:expr, $t:ty, $w:expr) => {{
            let (s, v) = zip2(cx, $x, a.shape(), $y, b.shape(), |x: $t, y: $t| {
                let y = y as u64;
                if y >= $w {
                    0
                } else if left {
                    x << y
                } else {
                    x >> y
                }
            })?;
            Tensor::from_vec(s, v)
        }};
    }
    match (a.data(), b.data()) {
        (Data::U8(x), Data::U8(y)) => sh!(x, y, u8, 8),
        (Data::U16(x), Data::U16(y)) => sh!(x, y, u16, 16),
        (Data::U32(x), Data::U32(y)) => sh!(x, y, u32, 32),
        (Data::U64(x), Data::U64(y)) => sh!(x, y, u64, 64),
        _ => bail!("BitShift needs unsigned inputs of one type"),
    }
}

/// `Where(cond, x, y)` with three-way broadcasting.
fn where_(cx: &Cx, c: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let Data::Bool(cv) = c.data() else {
        bail!("Where's condition must be bool, got {}", c.dtype());
    };
    if x.dtype() != y.dtype() {
        bail!(
            "Where needs x and y of one type, got {} and {}",
            x.dtype(),
            y.dtype()
        );
    }
    use super::broadcast::{runs, shape, strides};
    let out = shape(&[c.shape(), x.shape(), y.shape()])?;
    let n = cx.check_size(&out, std::mem::size_of::<usize>() + x.dtype().size())?;
    let (tc, tx, ty) = (
        strides(c.shape(), &out),
        strides(x.shape(), &out),
        strides(y.shape(), &out),
    );
    let mut idx = Vec::with_capacity(n);
    // indexes into x (< x.len()) or into y (offset by x.len())
    let xl = x.len();
    runs(
        &out,
        [&tc, &tx, &ty],
        |_, [oc, ox, oy], [dc, dx, dy], len| {
            for i in 0..len {
                idx.push(if cv[oc + i * dc] {
                    ox + i * dx
                } else {
                    xl + oy + i * dy
                });
            }
        },
    );
    let data = Data::select2(x.data(), y.data(), &idx).expect("same dtype");
    Tensor::new(out, data)
}

impl Op for Binary {
    fn run(&self, cx: &Cx, mut inputs: Inputs) -> Result<Vec<Tensor>> {
        let k = self.0;
        if k == Kind::Where {
            return Ok(vec![where_(
                cx,
                inputs.get(0)?,
                inputs.get(1)?,
                inputs.get(2)?,
            )?]);
        }
        let n = inputs.len();
        if matches!(k, Kind::Max | Kind::Min | Kind::Sum | Kind::Mean) && n == 1 {
            return Ok(vec![inputs.take(0)?]);
        }
        let mut acc = pair(cx, k, inputs.get(0)?, inputs.get(1)?)?;
        for i in 2..n {
            if !matches!(k, Kind::Max | Kind::Min | Kind::Sum | Kind::Mean) {
                break;
            }
            acc = pair(cx, k, &acc, inputs.get(i)?)?;
        }
        if k == Kind::Mean {
            let d = n as f64;
            acc = match acc.into_parts() {
                (s, Data::F32(v)) => {
                    Tensor::from_vec(s, v.into_iter().map(|x| x / d as f32).collect())?
                }
                (s, Data::F64(v)) => Tensor::from_vec(s, v.into_iter().map(|x| x / d).collect())?,
                _ => bail!("Mean needs float inputs"),
            };
        }
        Ok(vec![acc])
    }
}
