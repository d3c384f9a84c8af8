//! Moving tensors between gradnet's wire types and the engine's: inputs come
//! in as one of gradnet's six element types; outputs go out the same way
//! (narrow integers widen to int32 or int64, never losing a value).

use gradnet_types::{Tensor as GTensor, TensorData};

use crate::error::{Error, Result};
use crate::tensor::{Data, Tensor};

pub fn from_gradnet(t: &GTensor) -> Tensor {
    let data = match t.data() {
        TensorData::F32(v) => Data::F32(v.clone()),
        TensorData::F64(v) => Data::F64(v.clone()),
        TensorData::I32(v) => Data::I32(v.clone()),
        TensorData::I64(v) => Data::I64(v.clone()),
        TensorData::Bool(v) => Data::Bool(v.clone()),
        TensorData::String(v) => Data::Str(v.clone()),
    };
    Tensor::new(t.shape().to_vec(), data).expect("gradnet tensors are consistent")
}

/// As [`from_gradnet`], moving the values.
pub fn from_gradnet_owned(t: GTensor) -> Tensor {
    let shape = t.shape().to_vec();
    let data = match t.into_data() {
        TensorData::F32(v) => Data::F32(v),
        TensorData::F64(v) => Data::F64(v),
        TensorData::I32(v) => Data::I32(v),
        TensorData::I64(v) => Data::I64(v),
        TensorData::Bool(v) => Data::Bool(v),
        TensorData::String(v) => Data::Str(v),
    };
    Tensor::new(shape, data).expect("gradnet tensors are consistent")
}

pub fn to_gradnet(t: Tensor) -> Result<GTensor> {
    let (shape, data) = t.into_parts();
    let widen = |v: Vec<i64>| TensorData::I64(v);
    let data = match data {
        Data::F32(v) => TensorData::F32(v),
        Data::F64(v) => TensorData::F64(v),
        Data::I32(v) => TensorData::I32(v),
        Data::I64(v) => TensorData::I64(v),
        Data::Bool(v) => TensorData::Bool(v),
        Data::Str(v) => TensorData::String(v),
        Data::I8(v) => TensorData::I32(v.into_iter().map(i32::from).collect()),
        Data::U8(v) => TensorData::I32(v.into_iter().map(i32::from).collect()),
        Data::I16(v) => TensorData::I32(v.into_iter().map(i32::from).collect()),
        Data::U16(v) => TensorData::I32(v.into_iter().map(i32::from).collect()),
        Data::U32(v) => widen(v.into_iter().map(i64::from).collect()),
        Data::U64(v) => widen(
            v.into_iter()
                .map(|x| {
                    i64::try_from(x)
                        .map_err(|_| Error::Run(format!("uint64 output {x} exceeds int64")))
                })
                .collect::<Result<_>>()?,
        ),
    };
    GTensor::new(shape, data).map_err(|e| Error::Run(e.to_string()))
}
