//! Named tensors and their canonical binary encoding (the bytes that are hashed
//! into request and output hashes).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cid::ContentId;
use crate::error::TensorError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F64,
    I32,
    I64,
    Bool,
    String,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::Bool => "bool",
            DType::String => "string",
        }
    }

    fn code(self) -> u8 {
        match self {
            DType::F32 => 1,
            DType::F64 => 2,
            DType::I32 => 3,
            DType::I64 => 4,
            DType::Bool => 5,
            DType::String => 6,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    String(Vec<String>),
}

impl TensorData {
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::F64(_) => DType::F64,
            TensorData::I32(_) => DType::I32,
            TensorData::I64(_) => DType::I64,
            TensorData::Bool(_) => DType::Bool,
            TensorData::String(_) => DType::String,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::Bool(v) => v.len(),
            TensorData::String(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes its values take (a string: its UTF-8 length).
    pub fn byte_len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len() * 4,
            TensorData::F64(v) => v.len() * 8,
            TensorData::I32(v) => v.len() * 4,
            TensorData::I64(v) => v.len() * 8,
            TensorData::Bool(v) => v.len(),
            TensorData::String(v) => v.iter().map(String::len).sum(),
        }
    }
}

/// A dense tensor in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Self, TensorError> {
        let want = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        match want {
            Some(n) if n == data.len() => Ok(Tensor { shape, data }),
            _ => Err(TensorError::ShapeMismatch {
                shape,
                len: data.len(),
            }),
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn data(&self) -> &TensorData {
        &self.data
    }
    pub fn into_data(self) -> TensorData {
        self.data
    }
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }
    /// Bytes its values take.
    pub fn byte_len(&self) -> usize {
        self.data.byte_len()
    }
}

/// Tensors by name. A `BTreeMap` so that iteration order (and so every encoding
/// and hash) is independent of the order a client sent them in.
pub type NamedTensors = BTreeMap<String, Tensor>;

/// Canonical encoding: count, then per tensor in name order: name, dtype code,
/// rank, dims, values (little-endian; floats by their exact bits; strings
/// length-prefixed). All lengths are u64 little-endian.
pub fn encode_canonical(tensors: &NamedTensors, out: &mut Vec<u8>) {
    write_canonical(tensors, &mut |b| out.extend_from_slice(b));
}

/// [`encode_canonical`] into any sink (a hasher needs no buffer); numeric
/// values go out as one slice per tensor.
pub fn write_canonical(tensors: &NamedTensors, sink: &mut dyn FnMut(&[u8])) {
    sink(&(tensors.len() as u64).to_le_bytes());
    for (name, t) in tensors {
        sink(&(name.len() as u64).to_le_bytes());
        sink(name.as_bytes());
        sink(&[t.dtype().code()]);
        sink(&(t.shape.len() as u64).to_le_bytes());
        for &d in &t.shape {
            sink(&(d as u64).to_le_bytes());
        }
        match crate::le::le_bytes(&t.data) {
            Some(bytes) => sink(&bytes),
            None => {
                if let TensorData::String(v) = &t.data {
                    for s in v {
                        sink(&(s.len() as u64).to_le_bytes());
                        sink(s.as_bytes());
                    }
                }
            }
        }
    }
}

/// BLAKE3 of a domain tag followed by the canonical encoding.
pub fn hash_tensors(domain: &str, tensors: &NamedTensors) -> ContentId {
    let mut h = blake3::Hasher::new();
    h.update(&(domain.len() as u64).to_le_bytes());
    h.update(domain.as_bytes());
    write_canonical(tensors, &mut |b| {
        h.update(b);
    });
    ContentId::from_hash(h.finalize())
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Receipts from every node and version must agree on these bytes.
    #[test]
    fn canonical_hashes_are_pinned() {
        let mut t = NamedTensors::new();
        let mut put = |n: &str, shape: Vec<usize>, d| {
            t.insert(n.into(), Tensor::new(shape, d).unwrap());
        };
        put("b", vec![2], TensorData::F32(vec![1.5, -0.0]));
        put(
            "a",
            vec![1, 2],
            TensorData::String(vec!["x".into(), "yz".into()]),
        );
        put("c", vec![3], TensorData::Bool(vec![true, false, true]));
        put("d", vec![], TensorData::I64(vec![-7]));
        assert_eq!(
            hash_tensors("t", &t).to_string(),
            "b3j5xbxcdcwbzx5s3erlk6g4lflq64qlp42hyzbwznjj3sjvhqfrpa"
        );
        let cid = ContentId::of(b"m");
        assert_eq!(
            crate::request::request_hash(&cid, crate::InferenceMode::Vanilla, &t).to_string(),
            "b3ux2pwpcflbk3covsmi7ch4qxfdxrnar2ahpgcfxnvvigtb3a32aa"
        );
    }

    #[test]
    fn shape_must_match_len() {
        assert!(Tensor::new(vec![2, 2], TensorData::F32(vec![0.0; 4])).is_ok());
        assert!(Tensor::new(vec![2, 3], TensorData::F32(vec![0.0; 4])).is_err());
        assert!(Tensor::new(vec![], TensorData::I64(vec![7])).is_ok());
        assert!(Tensor::new(vec![usize::MAX, 2], TensorData::I64(vec![7])).is_err());
    }

    #[test]
    fn hash_depends_on_bits_not_order_of_insertion() {
        let mut a = NamedTensors::new();
        a.insert(
            "x".into(),
            Tensor::new(vec![1], TensorData::F32(vec![0.0])).unwrap(),
        );
        a.insert(
            "y".into(),
            Tensor::new(vec![1], TensorData::I64(vec![1])).unwrap(),
        );
        let mut b = NamedTensors::new();
        b.insert(
            "y".into(),
            Tensor::new(vec![1], TensorData::I64(vec![1])).unwrap(),
        );
        b.insert(
            "x".into(),
            Tensor::new(vec![1], TensorData::F32(vec![0.0])).unwrap(),
        );
        assert_eq!(hash_tensors("t", &a), hash_tensors("t", &b));
        let mut c = a.clone();
        c.insert(
            "x".into(),
            Tensor::new(vec![1], TensorData::F32(vec![-0.0])).unwrap(),
        );
        assert_ne!(hash_tensors("t", &a), hash_tensors("t", &c));
        assert_ne!(hash_tensors("t", &a), hash_tensors("u", &a));
    }
}
