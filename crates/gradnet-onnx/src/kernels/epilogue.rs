//! Element-wise steps applied to a kernel's output while it is still in the
//! cache: the operators that follow a convolution or matrix product (bias,
//! batch normalization, scale and shift, activations, gates such as
//! `x * sigmoid(x)`). Each step computes exactly what its standalone
//! operator computes, so fusing never changes a bit (tested).

use super::act::Act;
use super::Fma;

/// A constant operand: one value, one per row of the output (a
/// convolution's channels) or one per column (a matrix product's outputs).
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Scalar(f32),
    Row(Vec<f32>),
    Col(Vec<f32>),
}

impl Operand {
    /// The operand's values for row `r`, columns `c0..c0+n`: one value
    /// (`Ok`) or a slice (`Err`).
    #[inline(always)]
    fn at(&self, r: usize, c0: usize, n: usize) -> Result<f32, &[f32]> {
        match self {
            Operand::Scalar(v) => Ok(*v),
            Operand::Row(v) => Ok(v[r]),
            Operand::Col(v) => Err(&v[c0..c0 + n]),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// x + c
    Add(Operand),
    /// x - c, or c - x when reversed
    Sub(Operand, bool),
    /// x * c
    Mul(Operand),
    /// x / c, or c / x when reversed
    Div(Operand, bool),
    /// fma(x, a, b): batch normalization with precomputed coefficients
    Fma(Operand, Operand),
    Act(Act),
    /// x * f(x), with f the inner steps
    Gate(Vec<Step>),
}

macro_rules! binop {
    ($row:ident, $op:expr, $r:expr, $c0:expr, |$x:ident, $c:ident| $e:expr) => {
        match $op.at($r, $c0, $row.len()) {
            Ok($c) => {
                for $x in $row.iter_mut() {
                    *$x = $e;
                }
            }
            Err(cs) => {
                for ($x, &$c) in $row.iter_mut().zip(cs) {
                    *$x = $e;
                }
            }
        }
    };
}

/// Applies `steps` to `row`: row `r` of the output, columns from `c0`.
#[inline(always)]
pub fn apply<F: Fma>(steps: &[Step], r: usize, c0: usize, row: &mut [f32]) {
    for s in steps {
        match s {
            Step::Gate(inner) => {
                let mut buf = [0f32; 64];
                let (mut i, len) = (0, row.len());
                while i < len {
                    let chunk = &mut row[i..(i + 64).min(len)];
                    let g = &mut buf[..chunk.len()];
                    g.copy_from_slice(chunk);
                    for s in inner {
                        one::<F>(s, r, c0 + i, g);
                    }
                    for (x, &y) in chunk.iter_mut().zip(g.iter()) {
                        *x *= y;
                    }
                    i += 64;
                }
            }
            s => one::<F>(s, r, c0, row),
        }
    }
}

/// One step that is not a gate (gates do not nest).
#[inline(always)]
fn one<F: Fma>(s: &Step, r: usize, c0: usize, row: &mut [f32]) {
    match s {
        Step::Add(op) => binop!(row, op, r, c0, |x, c| *x + c),
        Step::Sub(op, false) => binop!(row, op, r, c0, |x, c| *x - c),
        Step::Sub(op, true) => binop!(row, op, r, c0, |x, c| c - *x),
        Step::Mul(op) => binop!(row, op, r, c0, |x, c| *x * c),
        Step::Div(op, false) => binop!(row, op, r, c0, |x, c| *x / c),
        Step::Div(op, true) => binop!(row, op, r, c0, |x, c| c / *x),
        Step::Fma(a, b) => match (a.at(r, c0, row.len()), b.at(r, c0, row.len())) {
            (Ok(a), Ok(b)) => {
                for x in row.iter_mut() {
                    *x = F::fma(*x, a, b);
                }
            }
            (a, b) => {
                for (i, x) in row.iter_mut().enumerate() {
                    let a = match a {
                        Ok(v) => v,
                        Err(v) => v[i],
                    };
                    let b = match b {
                        Ok(v) => v,
                        Err(v) => v[i],
                    };
                    *x = F::fma(*x, a, b);
                }
            }
        },
        Step::Act(a) => a.apply_slice::<F>(row),
        Step::Gate(_) => unreachable!("gates do not nest"),
    }
}
