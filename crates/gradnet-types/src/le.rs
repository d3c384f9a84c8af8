//! Tensor values as little-endian bytes: the layout of the canonical encoding
//! (hashed into receipts) and of base64 tensors on the wire. On little-endian
//! machines numeric data is viewed in place, without a per-element loop.

use std::borrow::Cow;

use bytemuck::Pod;

use crate::tensor::{DType, TensorData};

/// The values' little-endian bytes; `None` for strings, which have no fixed width.
pub fn le_bytes(d: &TensorData) -> Option<Cow<'_, [u8]>> {
    Some(match d {
        TensorData::F32(v) => view(v),
        TensorData::F64(v) => view(v),
        TensorData::I32(v) => view(v),
        TensorData::I64(v) => view(v),
        TensorData::Bool(v) => Cow::Owned(v.iter().map(|&b| b as u8).collect()),
        TensorData::String(_) => return None,
    })
}

fn view<T: Pod + ToLe>(v: &[T]) -> Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        Cow::Borrowed(bytemuck::cast_slice(v))
    } else {
        Cow::Owned(v.iter().flat_map(|x| x.to_le().into_bytes()).collect())
    }
}

/// Bytes per value of a fixed-width dtype.
pub fn width(d: DType) -> Option<usize> {
    match d {
        DType::F32 | DType::I32 => Some(4),
        DType::F64 | DType::I64 => Some(8),
        DType::Bool => Some(1),
        DType::String => None,
    }
}

/// Decodes base64 text straight into `count` values of `dtype` (no
/// intermediate byte buffer on little-endian machines). The error says what
/// is wrong: bad base64, or a byte count that does not fit.
pub fn from_base64(dtype: DType, count: usize, text: &[u8]) -> Result<TensorData, String> {
    let w = width(dtype).ok_or("string tensors cannot be sent in binary form")?;
    let decoded = base64_simd::STANDARD
        .decoded_length(text)
        .map_err(|_| base64_error(text))?;
    if count.checked_mul(w) != Some(decoded) {
        return Err(format!(
            "`b64` holds {decoded} bytes, but {count} {dtype} values take {}",
            count.saturating_mul(w)
        ));
    }
    Ok(match dtype {
        DType::F32 => TensorData::F32(decode(text, count)?),
        DType::F64 => TensorData::F64(decode(text, count)?),
        DType::I32 => TensorData::I32(decode(text, count)?),
        DType::I64 => TensorData::I64(decode(text, count)?),
        DType::Bool => {
            let bytes: Vec<u8> = decode(text, count)?;
            if let Some(x) = bytes.iter().find(|&&x| x > 1) {
                return Err(format!("bool bytes must be 0 or 1, found {x}"));
            }
            TensorData::Bool(bytes.into_iter().map(|x| x == 1).collect())
        }
        DType::String => unreachable!("no width"),
    })
}

/// `count` values of `dtype` from raw little-endian bytes.
pub fn from_le_bytes(dtype: DType, count: usize, bytes: &[u8]) -> Result<TensorData, String> {
    let w = width(dtype).ok_or("string tensors cannot be sent in binary form")?;
    if count.checked_mul(w) != Some(bytes.len()) {
        return Err(format!(
            "`binary_data_size` is {} bytes, but {count} {dtype} values take {}",
            bytes.len(),
            count.saturating_mul(w)
        ));
    }
    fn copy<T: Pod + ToLe>(bytes: &[u8], count: usize) -> Vec<T> {
        let mut v = vec![T::zeroed(); count];
        bytemuck::cast_slice_mut(&mut v).copy_from_slice(bytes);
        if cfg!(target_endian = "big") {
            v.iter_mut().for_each(|x| *x = x.to_le());
        }
        v
    }
    Ok(match dtype {
        DType::F32 => TensorData::F32(copy(bytes, count)),
        DType::F64 => TensorData::F64(copy(bytes, count)),
        DType::I32 => TensorData::I32(copy(bytes, count)),
        DType::I64 => TensorData::I64(copy(bytes, count)),
        DType::Bool => {
            if let Some(x) = bytes.iter().find(|&&x| x > 1) {
                return Err(format!("bool bytes must be 0 or 1, found {x}"));
            }
            TensorData::Bool(bytes.iter().map(|&x| x == 1).collect())
        }
        DType::String => unreachable!("no width"),
    })
}

fn decode<T: Pod + ToLe>(text: &[u8], count: usize) -> Result<Vec<T>, String> {
    let mut v = vec![T::zeroed(); count];
    base64_simd::STANDARD
        .decode(
            text,
            base64_simd::Out::from_slice(bytemuck::cast_slice_mut(&mut v)),
        )
        .map_err(|_| base64_error(text))?;
    if cfg!(target_endian = "big") {
        v.iter_mut().for_each(|x| *x = x.to_le());
    }
    Ok(v)
}

/// The fast decoder only says "invalid"; this one says where.
fn base64_error(text: &[u8]) -> String {
    match data_encoding::BASE64.decode(text) {
        Err(e) => format!("`b64` is not valid base64: {e}"),
        Ok(_) => "`b64` is not valid base64".into(),
    }
}

/// Base64 of the values' little-endian bytes; `None` for strings.
pub fn to_base64(d: &TensorData) -> Option<String> {
    le_bytes(d).map(|b| base64_simd::STANDARD.encode_to_string(&b))
}

/// Byte order fix-ups for big-endian machines (no-ops on little-endian).
trait ToLe: Sized {
    /// Swaps to (or, being its own inverse, from) little-endian order.
    fn to_le(self) -> Self;
    fn into_bytes(self) -> Vec<u8>;
}

macro_rules! to_le {
    ($($t:ty => $bits:ty),*) => {$(
        impl ToLe for $t {
            fn to_le(self) -> Self {
                <$t>::from_ne_bytes(<$bits>::from_ne_bytes(self.to_ne_bytes()).to_le().to_ne_bytes())
            }
            fn into_bytes(self) -> Vec<u8> {
                self.to_ne_bytes().to_vec()
            }
        }
    )*};
}
to_le!(f32 => u32, f64 => u64, i32 => i32, i64 => i64, u8 => u8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_fixed_width_dtype() {
        for d in [
            TensorData::F32(vec![1.5, -0.0, f32::NAN, f32::MIN_POSITIVE]),
            TensorData::F64(vec![1e300, -2.5]),
            TensorData::I32(vec![i32::MIN, 7]),
            TensorData::I64(vec![i64::MAX, -1]),
            TensorData::Bool(vec![true, false, true]),
        ] {
            let text = to_base64(&d).unwrap();
            let back = from_base64(d.dtype(), d.len(), text.as_bytes()).unwrap();
            assert_eq!(le_bytes(&back), le_bytes(&d));
        }
        assert_eq!(
            to_base64(&TensorData::I32(vec![1, -1])).unwrap(),
            data_encoding::BASE64.encode(&[1, 0, 0, 0, 255, 255, 255, 255])
        );
    }

    #[test]
    fn bad_base64_and_wrong_sizes_say_what_is_wrong() {
        let e = from_base64(DType::F32, 1, b"AAA*AA==").unwrap_err();
        assert!(
            e.contains("not valid base64") && e.contains("invalid symbol"),
            "{e}"
        );
        let e = from_base64(DType::F32, 2, b"AAAAAA==").unwrap_err();
        assert!(
            e.contains("holds 4 bytes") && e.contains("2 f32 values take 8"),
            "{e}"
        );
        let e = from_base64(DType::Bool, 1, b"Ag==").unwrap_err();
        assert!(e.contains("0 or 1, found 2"), "{e}");
    }
}
