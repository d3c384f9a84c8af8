//! `Cast` and `CastLike`: conversions between element types, with Rust's
//! defined rules (floats to integers truncate toward zero and saturate, NaN
//! becomes 0; to float rounds to nearest even).

use super::{Build, Inputs, Op};
use crate::cx::Cx;
use crate::error::{bail, Error, Result};
use crate::tensor::{DType, Data, Tensor};

struct Cast(Option<DType>);

pub(crate) fn cast(b: &Build) -> Result<Box<dyn Op>> {
    let to = b.node.need("to", b.node.int("to"))?;
    match DType::from_onnx(to as i32) {
        Some(d) => Ok(Box::new(Cast(Some(d)))),
        None => Err(b.unsupported(&format!("cast to element type {to}"))),
    }
}

pub(crate) fn cast_like(_: &Build) -> Result<Box<dyn Op>> {
    Ok(Box::new(Cast(None)))
}

/// Converts every element of `d` to `to`.
pub(crate) fn convert(d: &Data, to: DType) -> Result<Data> {
    if d.dtype() == to {
        return Ok(d.clone());
    }
    macro_rules! from {
        ($v:expr) => {{
            let v = $v;
            match to {
                DType::F32 => Data::F32(v.iter().map(|&x| x as f32).collect()),
                DType::F64 => Data::F64(v.iter().map(|&x| x as f64).collect()),
                DType::I8 => Data::I8(v.iter().map(|&x| x as i8).collect()),
                DType::U8 => Data::U8(v.iter().map(|&x| x as u8).collect()),
                DType::I16 => Data::I16(v.iter().map(|&x| x as i16).collect()),
                DType::U16 => Data::U16(v.iter().map(|&x| x as u16).collect()),
                DType::I32 => Data::I32(v.iter().map(|&x| x as i32).collect()),
                DType::U32 => Data::U32(v.iter().map(|&x| x as u32).collect()),
                DType::I64 => Data::I64(v.iter().map(|&x| x as i64).collect()),
                DType::U64 => Data::U64(v.iter().map(|&x| x as u64).collect()),
                DType::Bool => Data::Bool(v.iter().map(|&x| x as f64 != 0.0).collect()),
                DType::Str => Data::Str(v.iter().map(|&x| x.to_string()).collect()),
            }
        }};
    }
    Ok(match d {
        Data::F32(v) => from!(v),
        Data::F64(v) => from!(v),
        Data::I8(v) => from!(v),
        Data::U8(v) => from!(v),
        Data::I16(v) => from!(v),
        Data::U16(v) => from!(v),
        Data::I32(v) => from!(v),
        Data::U32(v) => from!(v),
        Data::I64(v) => from!(v),
        Data::U64(v) => from!(v),
        Data::Bool(v) => from!(v.iter().map(|&b| b as u8).collect::<Vec<u8>>()),
        Data::Str(v) => {
            let parsed: Vec<f64> = v
                .iter()
                .map(|s| {
                    s.trim()
                        .parse::<f64>()
                        .map_err(|_| Error::Run(format!("cannot cast the string {s:?} to {to}")))
                })
                .collect::<Result<_>>()?;
            if to == DType::Bool {
                bail!("cannot cast strings to bool");
            }
            from!(parsed)
        }
    })
}

impl Op for Cast {
    fn run(&self, _: &Cx, mut inputs: Inputs) -> Result<Vec<Tensor>> {
        let to = match self.0 {
            Some(d) => d,
            None => inputs.get(1)?.dtype(),
        };
        let x = inputs.take(0)?;
        if x.dtype() == to {
            return Ok(vec![x]);
        }
        if matches!(x.data(), Data::F32(_) | Data::F64(_)) && to == DType::Str {
            bail!("casting floats to strings is not supported");
        }
        let data = convert(x.data(), to)?;
        Ok(vec![Tensor::new(x.shape().to_vec(), data)?])
    }
}
