//! Moving tensors between gradnet's types and tract's.

use gradnet_types::{DType, Tensor, TensorData};
use tract_onnx::prelude::{DatumType, TDim, Tensor as TTensor, TractResult};

pub(crate) fn to_tract(t: &Tensor) -> TractResult<TTensor> {
    let s = t.shape();
    match t.data() {
        TensorData::F32(v) => TTensor::from_shape(s, v),
        TensorData::F64(v) => TTensor::from_shape(s, v),
        TensorData::I32(v) => TTensor::from_shape(s, v),
        TensorData::I64(v) => TTensor::from_shape(s, v),
        TensorData::Bool(v) => TTensor::from_shape(s, v),
        TensorData::String(v) => {
            Ok(tract_onnx::prelude::tract_ndarray::ArrayD::from_shape_vec(s, v.clone())?.into())
        }
    }
}

fn collect<T: tract_onnx::prelude::Datum + Clone>(t: &TTensor) -> TractResult<Vec<T>> {
    Ok(t.to_plain_array_view::<T>()?.iter().cloned().collect())
}

pub(crate) fn datum_type(d: DType) -> DatumType {
    match d {
        DType::F32 => DatumType::F32,
        DType::F64 => DatumType::F64,
        DType::I32 => DatumType::I32,
        DType::I64 => DatumType::I64,
        DType::Bool => DatumType::Bool,
        DType::String => DatumType::String,
    }
}

/// Outputs come back in one of gradnet's six dtypes: narrow integers widen,
/// f16 widens to f32, symbolic dims (TDim) become i64.
pub(crate) fn from_tract(t: &TTensor) -> TractResult<Tensor> {
    use DatumType as D;
    let data = match t.datum_type() {
        D::F32 => TensorData::F32(collect(t)?),
        D::F64 => TensorData::F64(collect(t)?),
        D::I32 => TensorData::I32(collect(t)?),
        D::I64 => TensorData::I64(collect(t)?),
        D::Bool => TensorData::Bool(collect(t)?),
        D::String => TensorData::String(collect(t)?),
        D::F16 => TensorData::F32(collect(&*t.cast_to::<f32>()?)?),
        D::I8 | D::U8 | D::I16 | D::U16 => TensorData::I32(collect(&*t.cast_to::<i32>()?)?),
        D::U32 => TensorData::I64(collect::<u32>(t)?.into_iter().map(i64::from).collect()),
        D::U64 => TensorData::I64(
            collect::<u64>(t)?
                .into_iter()
                .map(|v| {
                    i64::try_from(v).map_err(|_| {
                        tract_onnx::tract_hir::internal::format_err!("u64 output {v} exceeds i64")
                    })
                })
                .collect::<TractResult<_>>()?,
        ),
        D::TDim => TensorData::I64(
            collect::<TDim>(t)?
                .iter()
                .map(|d| {
                    d.to_i64().map_err(|e| {
                        tract_onnx::tract_hir::internal::format_err!(
                            "symbolic output dim {d}: {e:?}"
                        )
                    })
                })
                .collect::<TractResult<_>>()?,
        ),
        other => {
            tract_onnx::tract_hir::internal::bail!("output of type {other:?} is not supported")
        }
    };
    Ok(Tensor::new(t.shape().to_vec(), data)?)
}
