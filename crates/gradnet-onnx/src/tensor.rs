//! The engine's tensors: a shape and a flat row-major buffer of one of ONNX's
//! element types, read from the model's initializers and handed between nodes.

use std::fmt;

use crate::error::{invalid, Error, Result};
use crate::proto::tensor_proto::DataType as PbType;
use crate::proto::TensorProto;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    Bool,
    Str,
}

impl DType {
    /// From ONNX's `TensorProto.DataType` code.
    pub fn from_onnx(code: i32) -> Option<DType> {
        Some(match PbType::try_from(code).ok()? {
            PbType::Float => DType::F32,
            PbType::Double => DType::F64,
            PbType::Int8 => DType::I8,
            PbType::Uint8 => DType::U8,
            PbType::Int16 => DType::I16,
            PbType::Uint16 => DType::U16,
            PbType::Int32 => DType::I32,
            PbType::Uint32 => DType::U32,
            PbType::Int64 => DType::I64,
            PbType::Uint64 => DType::U64,
            PbType::Bool => DType::Bool,
            PbType::String => DType::Str,
            _ => return None,
        })
    }

    pub fn onnx_code(self) -> i32 {
        (match self {
            DType::F32 => PbType::Float,
            DType::F64 => PbType::Double,
            DType::I8 => PbType::Int8,
            DType::U8 => PbType::Uint8,
            DType::I16 => PbType::Int16,
            DType::U16 => PbType::Uint16,
            DType::I32 => PbType::Int32,
            DType::U32 => PbType::Uint32,
            DType::I64 => PbType::Int64,
            DType::U64 => PbType::Uint64,
            DType::Bool => PbType::Bool,
            DType::Str => PbType::String,
        }) as i32
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Bytes per element (strings count as one pointer-sized cell).
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
            DType::Str => 24,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::I16 => "int16",
            DType::U16 => "uint16",
            DType::I32 => "int32",
            DType::U32 => "uint32",
            DType::I64 => "int64",
            DType::U64 => "uint64",
            DType::Bool => "bool",
            DType::Str => "string",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
}

/// Runs `$body` with `$v` bound to the vector inside any `Data` variant.
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            $crate::tensor::Data::F32($v) => $body,
            $crate::tensor::Data::F64($v) => $body,
            $crate::tensor::Data::I8($v) => $body,
            $crate::tensor::Data::U8($v) => $body,
            $crate::tensor::Data::I16($v) => $body,
            $crate::tensor::Data::U16($v) => $body,
            $crate::tensor::Data::I32($v) => $body,
            $crate::tensor::Data::U32($v) => $body,
            $crate::tensor::Data::I64($v) => $body,
            $crate::tensor::Data::U64($v) => $body,
            $crate::tensor::Data::Bool($v) => $body,
            $crate::tensor::Data::Str($v) => $body,
        }
    };
}

/// An element type a tensor can hold.
pub trait Elem: Clone + Default + Send + Sync + fmt::Debug + 'static {
    const DTYPE: DType;
    fn slice(d: &Data) -> Option<&[Self]>;
    fn vec_mut(d: &mut Data) -> Option<&mut Vec<Self>>;
    fn into_vec(d: Data) -> std::result::Result<Vec<Self>, Data>;
    fn wrap(v: Vec<Self>) -> Data;
}

macro_rules! elem {
    ($t:ty, $var:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$var;
            fn slice(d: &Data) -> Option<&[Self]> {
                match d {
                    Data::$var(v) => Some(v),
                    _ => None,
                }
            }
            fn vec_mut(d: &mut Data) -> Option<&mut Vec<Self>> {
                match d {
                    Data::$var(v) => Some(v),
                    _ => None,
                }
            }
            fn into_vec(d: Data) -> std::result::Result<Vec<Self>, Data> {
                match d {
                    Data::$var(v) => Ok(v),
                    other => Err(other),
                }
            }
            fn wrap(v: Vec<Self>) -> Data {
                Data::$var(v)
            }
        }
    };
}
elem!(f32, F32);
elem!(f64, F64);
elem!(i8, I8);
elem!(u8, U8);
elem!(i16, I16);
elem!(u16, U16);
elem!(i32, I32);
elem!(u32, U32);
elem!(i64, I64);
elem!(u64, U64);
elem!(bool, Bool);
elem!(String, Str);

impl Data {
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I8(_) => DType::I8,
            Data::U8(_) => DType::U8,
            Data::I16(_) => DType::I16,
            Data::U16(_) => DType::U16,
            Data::I32(_) => DType::I32,
            Data::U32(_) => DType::U32,
            Data::I64(_) => DType::I64,
            Data::U64(_) => DType::U64,
            Data::Bool(_) => DType::Bool,
            Data::Str(_) => DType::Str,
        }
    }

    pub fn len(&self) -> usize {
        with_data!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` default values (zeros, false, empty strings) of a type.
    pub fn zeros(dtype: DType, n: usize) -> Data {
        match dtype {
            DType::F32 => Data::F32(vec![0.0; n]),
            DType::F64 => Data::F64(vec![0.0; n]),
            DType::I8 => Data::I8(vec![0; n]),
            DType::U8 => Data::U8(vec![0; n]),
            DType::I16 => Data::I16(vec![0; n]),
            DType::U16 => Data::U16(vec![0; n]),
            DType::I32 => Data::I32(vec![0; n]),
            DType::U32 => Data::U32(vec![0; n]),
            DType::I64 => Data::I64(vec![0; n]),
            DType::U64 => Data::U64(vec![0; n]),
            DType::Bool => Data::Bool(vec![false; n]),
            DType::Str => Data::Str(vec![String::new(); n]),
        }
    }

    /// Elements picked from two buffers of one type: index `i` below
    /// `a.len()` is `a[i]`, above it `b[i - a.len()]`.
    pub fn select2(a: &Data, b: &Data, idx: &[usize]) -> Option<Data> {
        macro_rules! pick {
            ($($v:ident),*) => {
                match (a, b) {
                    $((Data::$v(x), Data::$v(y)) => {
                        let l = x.len();
                        Data::$v(idx.iter().map(|&i| if i < l { x[i].clone() } else { y[i - l].clone() }).collect())
                    })*
                    _ => return None,
                }
            };
        }
        Some(pick!(
            F32, F64, I8, U8, I16, U16, I32, U32, I64, U64, Bool, Str
        ))
    }

    /// The elements at `idx`, in that order.
    #[allow(clippy::clone_on_copy)] // one body for every element type, strings too
    pub fn gather(&self, idx: impl Iterator<Item = usize> + Clone) -> Data {
        with_data!(self, v => Elem::wrap(idx.map(|i| v[i].clone()).collect()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Data,
}

/// Elements in a shape, or an error if the count overflows.
pub fn numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::Limit(format!("a tensor of shape {shape:?} has too many elements")))
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Tensor> {
        let n = numel(&shape)?;
        if n != data.len() {
            return Err(Error::Run(format!(
                "shape {shape:?} needs {n} elements, got {}",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// A tensor whose shape is known to match its data (checked in debug builds).
    pub(crate) fn from_parts(shape: Vec<usize>, data: Data) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len(), "{shape:?}");
        Tensor { shape, data }
    }

    pub fn from_vec<T: Elem>(shape: Vec<usize>, v: Vec<T>) -> Result<Tensor> {
        Tensor::new(shape, T::wrap(v))
    }

    pub fn scalar<T: Elem>(v: T) -> Tensor {
        Tensor::from_parts(vec![], T::wrap(vec![v]))
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    pub fn data(&self) -> &Data {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut Data {
        &mut self.data
    }

    pub fn into_data(self) -> Data {
        self.data
    }

    pub fn into_parts(self) -> (Vec<usize>, Data) {
        (self.shape, self.data)
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The same data under another shape with as many elements.
    pub fn reshaped(self, shape: Vec<usize>) -> Result<Tensor> {
        Tensor::new(shape, self.data)
    }

    pub fn as_slice<T: Elem>(&self) -> Result<&[T]> {
        T::slice(&self.data).ok_or_else(|| {
            Error::Run(format!(
                "expected a {} tensor, got {}",
                T::DTYPE,
                self.dtype()
            ))
        })
    }

    pub fn as_mut_vec<T: Elem>(&mut self) -> Result<&mut Vec<T>> {
        let got = self.dtype();
        T::vec_mut(&mut self.data)
            .ok_or_else(|| Error::Run(format!("expected a {} tensor, got {got}", T::DTYPE)))
    }

    pub fn into_vec<T: Elem>(self) -> Result<Vec<T>> {
        T::into_vec(self.data)
            .map_err(|d| Error::Run(format!("expected a {} tensor, got {}", T::DTYPE, d.dtype())))
    }

    pub fn f32s(&self) -> Result<&[f32]> {
        self.as_slice()
    }

    /// Integer elements as i64 (shapes, axes, indices), whatever their width.
    pub fn to_i64s(&self) -> Result<Vec<i64>> {
        Ok(match &self.data {
            Data::I64(v) => v.clone(),
            Data::I32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I16(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U16(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U64(v) => v.iter().map(|&x| x as i64).collect(),
            Data::Bool(v) => v.iter().map(|&x| x as i64).collect(),
            other => {
                return Err(Error::Run(format!(
                    "expected integers, got a {} tensor",
                    other.dtype()
                )))
            }
        })
    }

    /// Elements as f64 (scalars such as clip bounds or fill values).
    pub fn to_f64s(&self) -> Result<Vec<f64>> {
        Ok(match &self.data {
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
            Data::Str(_) => return Err(Error::Run("expected numbers, got strings".into())),
            _ => self.to_i64s()?.into_iter().map(|x| x as f64).collect(),
        })
    }

    /// Reads an initializer or a `Constant` node's tensor.
    pub fn from_proto(t: &TensorProto) -> Result<Tensor> {
        let bad = |m: &str| invalid!("tensor `{}`: {m}", t.name);
        if !t.external_data.is_empty() || t.data_location == 1 {
            return Err(bad(
                "its data is stored outside the model file, which is not supported",
            ));
        }
        let shape = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| bad("negative dimension")))
            .collect::<Result<Vec<_>>>()?;
        let n = numel(&shape)?;
        let raw = &t.raw_data;
        let dtype = match DType::from_onnx(t.data_type) {
            Some(d) => d,
            None if t.data_type == PbType::Float16 as i32 => return f16_tensor(t, shape, n),
            None => {
                return Err(Error::Unsupported(vec![format!(
                    "tensors of element type {} (`{}`)",
                    PbType::try_from(t.data_type)
                        .map(|d| format!("{d:?}"))
                        .unwrap_or_else(|_| t.data_type.to_string()),
                    t.name
                )]))
            }
        };
        fn le<T, const W: usize>(raw: &[u8], f: fn([u8; W]) -> T) -> Vec<T> {
            raw.chunks_exact(W)
                .map(|c| f(c.try_into().expect("chunk width")))
                .collect()
        }
        let data = if dtype == DType::Str {
            Data::Str(
                t.string_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            )
        } else if !raw.is_empty() {
            if raw.len() != n * dtype.size() {
                return Err(bad(&format!(
                    "raw data has {} bytes, shape {shape:?} of {dtype} needs {}",
                    raw.len(),
                    n * dtype.size()
                )));
            }
            match dtype {
                DType::F32 => Data::F32(le(raw, f32::from_le_bytes)),
                DType::F64 => Data::F64(le(raw, f64::from_le_bytes)),
                DType::I8 => Data::I8(raw.iter().map(|&b| b as i8).collect()),
                DType::U8 => Data::U8(raw.clone()),
                DType::I16 => Data::I16(le(raw, i16::from_le_bytes)),
                DType::U16 => Data::U16(le(raw, u16::from_le_bytes)),
                DType::I32 => Data::I32(le(raw, i32::from_le_bytes)),
                DType::U32 => Data::U32(le(raw, u32::from_le_bytes)),
                DType::I64 => Data::I64(le(raw, i64::from_le_bytes)),
                DType::U64 => Data::U64(le(raw, u64::from_le_bytes)),
                DType::Bool => Data::Bool(raw.iter().map(|&b| b != 0).collect()),
                DType::Str => unreachable!(),
            }
        } else {
            let i32s = &t.int32_data;
            match dtype {
                DType::F32 => Data::F32(t.float_data.clone()),
                DType::F64 => Data::F64(t.double_data.clone()),
                DType::I64 => Data::I64(t.int64_data.clone()),
                DType::U64 => Data::U64(t.uint64_data.clone()),
                DType::U32 => Data::U32(t.uint64_data.iter().map(|&x| x as u32).collect()),
                DType::I32 => Data::I32(i32s.clone()),
                DType::I16 => Data::I16(i32s.iter().map(|&x| x as i16).collect()),
                DType::U16 => Data::U16(i32s.iter().map(|&x| x as u16).collect()),
                DType::I8 => Data::I8(i32s.iter().map(|&x| x as i8).collect()),
                DType::U8 => Data::U8(i32s.iter().map(|&x| x as u8).collect()),
                DType::Bool => Data::Bool(i32s.iter().map(|&x| x != 0).collect()),
                DType::Str => unreachable!(),
            }
        };
        if data.len() != n {
            return Err(bad(&format!(
                "has {} values, its shape {shape:?} needs {n}",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// Writes the tensor as an ONNX initializer (raw little-endian data).
    pub fn to_proto(&self, name: &str) -> TensorProto {
        let mut t = TensorProto {
            name: name.into(),
            dims: self.shape.iter().map(|&d| d as i64).collect(),
            data_type: self.dtype().onnx_code(),
            ..Default::default()
        };
        macro_rules! raw {
            ($v:expr) => {
                $v.iter().flat_map(|x| x.to_le_bytes()).collect()
            };
        }
        t.raw_data = match &self.data {
            Data::F32(v) => raw!(v),
            Data::F64(v) => raw!(v),
            Data::I8(v) => raw!(v),
            Data::U8(v) => v.clone(),
            Data::I16(v) => raw!(v),
            Data::U16(v) => raw!(v),
            Data::I32(v) => raw!(v),
            Data::U32(v) => raw!(v),
            Data::I64(v) => raw!(v),
            Data::U64(v) => raw!(v),
            Data::Bool(v) => v.iter().map(|&b| b as u8).collect(),
            Data::Str(v) => {
                t.string_data = v.iter().map(|s| s.as_bytes().to_vec()).collect();
                vec![]
            }
        };
        t
    }
}

/// float16 initializers are widened to float32 when read: every op then
/// computes in float32 (a `Cast` to float16 is not supported).
fn f16_tensor(t: &TensorProto, shape: Vec<usize>, n: usize) -> Result<Tensor> {
    let bits: Vec<u16> = if !t.raw_data.is_empty() {
        t.raw_data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    } else {
        t.int32_data.iter().map(|&x| x as u16).collect()
    };
    if bits.len() != n {
        return Err(invalid!(
            "tensor `{}` has {} float16 values, needs {n}",
            t.name,
            bits.len()
        ));
    }
    let v = bits
        .into_iter()
        .map(|b| half::f16::from_bits(b).to_f32())
        .collect();
    Ok(Tensor::from_parts(shape, Data::F32(v)))
}
