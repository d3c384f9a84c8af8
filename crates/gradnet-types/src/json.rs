//! The two JSON encodings of tensors:
//!
//! * plain: `{"x": [[0.1, 0.2]]}`, a name to a nested array (or a scalar);
//! * fixed-point, as OpenGradient encodes model inputs and outputs:
//!   `{"numbers": [{"name": "x", "values": [{"value": 1, "decimals": 1}], "shape": [1]}],
//!     "strings": [{"name": "s", "values": ["a"]}]}`, a number being
//!   `value * 10^-decimals`.
//!
//! Inputs are parsed into [`JsonTensor`]s that keep numbers exactly as written
//! until the model's declared dtype is known; conversion then rounds decimals
//! to the nearest float (correctly rounded) and refuses integers that do not fit.
//! Floats are written in the shortest form that reads back to the same bits, so
//! both encodings round-trip exactly (but for the sign of zero, which an
//! integer `value` cannot carry).

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::error::TensorError;
use crate::le;
use crate::tensor::{DType, NamedTensors, Tensor, TensorData};

/// A number as the client wrote it.
#[derive(Debug, Clone, PartialEq)]
pub enum Num {
    Int(i128),
    Float(f64),
    /// `value * 10^-decimals`
    Fixed {
        value: i128,
        decimals: i32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Numbers(Vec<Num>),
    Bools(Vec<bool>),
    Strings(Vec<String>),
    /// Values of the dtype the client named, decoded from base64
    /// little-endian bytes.
    Binary(TensorData),
}

/// A tensor parsed from JSON whose dtype is not fixed yet.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonTensor {
    pub shape: Vec<usize>,
    pub values: Values,
}

pub type JsonInputs = BTreeMap<String, JsonTensor>;

/// Which JSON encoding a response uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    #[default]
    Plain,
    FixedPoint,
    /// Each numeric tensor as `{"dtype", "shape", "b64"}` (little-endian
    /// values, base64): no decimal formatting, the fast path for big tensors.
    Base64,
    /// Each numeric tensor as `{"dtype", "shape", "binary_data_size"}`, its
    /// little-endian bytes following the JSON header in the response body
    /// (length in `Inference-Header-Content-Length`), as KServe's binary
    /// tensor extension does.
    Binary,
}

/// Parses either encoding; the fixed-point form is recognised by its top-level
/// `numbers` / `strings` arrays of objects with a `name` (a plain tensor is never
/// an array of objects).
pub fn parse_inputs(v: &Value) -> Result<JsonInputs, TensorError> {
    let obj = v.as_object().ok_or(TensorError::NotAnObject)?;
    if is_fixed_point_form(obj) {
        return parse_fixed_point(obj);
    }
    obj.iter()
        .map(|(name, v)| Ok((name.clone(), parse_plain(name, v)?)))
        .collect()
}

fn is_fixed_point_form(obj: &serde_json::Map<String, Value>) -> bool {
    !obj.is_empty()
        && obj.iter().all(|(k, v)| {
            (k == "numbers" || k == "strings")
                && v.as_array().is_some_and(|a| {
                    a.iter()
                        .all(|e| e.get("name").is_some_and(Value::is_string))
                })
        })
}

pub(crate) fn parse_plain(name: &str, v: &Value) -> Result<JsonTensor, TensorError> {
    if let Some(obj) = v.as_object() {
        return parse_binary(name, obj);
    }
    let mut shape = Vec::new();
    let mut cur = v;
    while let Value::Array(a) = cur {
        shape.push(a.len());
        match a.first() {
            Some(first) => cur = first,
            None => break,
        }
    }
    let mut leaves = Vec::with_capacity(shape.iter().product());
    collect_leaves(name, v, &shape, 0, &mut leaves)?;
    Ok(JsonTensor {
        shape,
        values: leaves_to_values(name, leaves)?,
    })
}

/// `{"dtype": "f32", "shape": [2, 2], "b64": "..."}`: raw little-endian values.
fn parse_binary(
    name: &str,
    obj: &serde_json::Map<String, Value>,
) -> Result<JsonTensor, TensorError> {
    let values = match obj.get("b64") {
        Some(t) => Payload::Base64(t.as_str()),
        None if obj.contains_key("binary_data_size") => {
            return Err(TensorError::malformed(
                name,
                "`binary_data_size` needs a binary request body (with the `Inference-Header-Content-Length` header)",
            ))
        }
        None => Payload::Missing,
    };
    binary_tensor(name, obj.get("dtype").cloned(), obj.get("shape"), values)
}

/// Where a binary tensor's values are.
pub(crate) enum Payload<'a> {
    /// `b64`; `None` when it is not a string.
    Base64(Option<&'a str>),
    /// Raw little-endian bytes from a binary request body.
    Raw(&'a [u8]),
    Missing,
}

/// Builds a binary tensor from its fields.
pub(crate) fn binary_tensor(
    name: &str,
    dtype: Option<Value>,
    shape: Option<&Value>,
    values: Payload<'_>,
) -> Result<JsonTensor, TensorError> {
    let bad = |m: &str| TensorError::malformed(name, m.to_string());
    let dtype: DType = dtype
        .and_then(|d| serde_json::from_value(d).ok())
        .ok_or_else(|| {
            bad("a binary tensor needs `dtype` (f32, f64, i32, i64 or bool), `shape` and `b64`")
        })?;
    let shape = parse_shape(
        name,
        shape.ok_or_else(|| bad("a binary tensor needs `shape`"))?,
    )?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(&format!("shape {shape:?} is too large")))?;
    let data = match values {
        Payload::Base64(Some(text)) => le::from_base64(dtype, count, text.as_bytes()),
        Payload::Raw(bytes) => le::from_le_bytes(dtype, count, bytes),
        Payload::Base64(None) | Payload::Missing => {
            return Err(bad("a binary tensor needs `b64`, a base64 string"))
        }
    }
    .map_err(|e| bad(&format!("{e} (shape {shape:?})")))?;
    Ok(JsonTensor {
        shape,
        values: Values::Binary(data),
    })
}

fn collect_leaves<'a>(
    name: &str,
    v: &'a Value,
    shape: &[usize],
    depth: usize,
    out: &mut Vec<&'a Value>,
) -> Result<(), TensorError> {
    match (v, shape.get(depth)) {
        (Value::Array(a), Some(&n)) => {
            if a.len() != n {
                return Err(TensorError::malformed(
                    name,
                    format!(
                        "ragged array: length {} at depth {depth}, expected {n}",
                        a.len()
                    ),
                ));
            }
            a.iter()
                .try_for_each(|e| collect_leaves(name, e, shape, depth + 1, out))
        }
        (Value::Array(_), None) => Err(TensorError::malformed(
            name,
            format!("ragged array: too deep at depth {depth}"),
        )),
        (_, Some(_)) => Err(TensorError::malformed(
            name,
            format!("ragged array: a scalar at depth {depth}"),
        )),
        (leaf, None) => {
            out.push(leaf);
            Ok(())
        }
    }
}

fn leaves_to_values(name: &str, leaves: Vec<&Value>) -> Result<Values, TensorError> {
    match leaves.first() {
        None | Some(Value::Number(_)) => leaves
            .iter()
            .map(|v| match v {
                Value::Number(n) => Ok(json_number(n)),
                other => Err(mixed(name, other)),
            })
            .collect::<Result<_, _>>()
            .map(Values::Numbers),
        Some(Value::Bool(_)) => leaves
            .iter()
            .map(|v| v.as_bool().ok_or_else(|| mixed(name, v)))
            .collect::<Result<_, _>>()
            .map(Values::Bools),
        Some(Value::String(_)) => leaves
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| mixed(name, v)))
            .collect::<Result<_, _>>()
            .map(Values::Strings),
        Some(other) => Err(TensorError::malformed(
            name,
            format!(
                "values must be numbers, booleans or strings, found {}",
                kind(other)
            ),
        )),
    }
}

fn json_number(n: &serde_json::Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i as i128)
    } else if let Some(u) = n.as_u64() {
        Num::Int(u as i128)
    } else {
        Num::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

fn mixed(name: &str, v: &Value) -> TensorError {
    TensorError::malformed(
        name,
        format!(
            "all values must have one type; found {} among them",
            kind(v)
        ),
    )
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_fixed_point(obj: &serde_json::Map<String, Value>) -> Result<JsonInputs, TensorError> {
    let mut out = JsonInputs::new();
    for t in obj
        .get("numbers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = t["name"].as_str().unwrap_or_default().to_string();
        let vals = t.get("values").and_then(Value::as_array).ok_or_else(|| {
            TensorError::malformed(&name, "fixed-point tensor needs a `values` array")
        })?;
        let nums = vals
            .iter()
            .map(|v| fixed_number(&name, v))
            .collect::<Result<Vec<_>, _>>()?;
        let shape = match t.get("shape") {
            Some(s) => parse_shape(&name, s)?,
            None => vec![nums.len()],
        };
        insert_unique(&mut out, name, shape, Values::Numbers(nums))?;
    }
    for t in obj
        .get("strings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = t["name"].as_str().unwrap_or_default().to_string();
        let vals = t
            .get("values")
            .and_then(Value::as_array)
            .ok_or_else(|| TensorError::malformed(&name, "string tensor needs a `values` array"))?;
        let strs = vals
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| mixed(&name, v)))
            .collect::<Result<Vec<_>, _>>()?;
        let shape = match t.get("shape") {
            Some(s) => parse_shape(&name, s)?,
            None => vec![strs.len()],
        };
        insert_unique(&mut out, name, shape, Values::Strings(strs))?;
    }
    Ok(out)
}

fn insert_unique(
    out: &mut JsonInputs,
    name: String,
    shape: Vec<usize>,
    values: Values,
) -> Result<(), TensorError> {
    let len = match &values {
        Values::Numbers(v) => v.len(),
        Values::Bools(v) => v.len(),
        Values::Strings(v) => v.len(),
        Values::Binary(..) => unreachable!("fixed-point tensors are never binary"),
    };
    if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(len) {
        return Err(TensorError::malformed(
            &name,
            format!("shape {shape:?} does not hold {len} values"),
        ));
    }
    if out
        .insert(name.clone(), JsonTensor { shape, values })
        .is_some()
    {
        return Err(TensorError::malformed(&name, "given more than once"));
    }
    Ok(())
}

fn parse_shape(name: &str, v: &Value) -> Result<Vec<usize>, TensorError> {
    v.as_array()
        .ok_or_else(|| {
            TensorError::malformed(name, "`shape` must be an array of non-negative integers")
        })?
        .iter()
        .map(|d| {
            d.as_u64()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| {
                    TensorError::malformed(
                        name,
                        "`shape` must be an array of non-negative integers",
                    )
                })
        })
        .collect()
}

fn fixed_number(name: &str, v: &Value) -> Result<Num, TensorError> {
    let bad = || {
        TensorError::malformed(
            name,
            format!("expected {{\"value\": int, \"decimals\": int}}, got {v}"),
        )
    };
    let value = match v.get("value").ok_or_else(bad)? {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or(n.as_u64().map(i128::from))
            .ok_or_else(bad)?,
        // values beyond 64 bits travel as strings; OpenGradient's are int128
        Value::String(s) => s.parse::<i128>().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    let decimals = v.get("decimals").and_then(Value::as_i64).ok_or_else(bad)?;
    let decimals = i32::try_from(decimals)
        .ok()
        .filter(|d| d.abs() <= 400)
        .ok_or_else(bad)?;
    Ok(Num::Fixed { value, decimals })
}

impl JsonTensor {
    /// [`JsonTensor::to_tensor`], moving binary values rather than copying.
    pub fn into_tensor(self, name: &str, dtype: DType) -> Result<Tensor, TensorError> {
        match self.values {
            Values::Binary(d) if d.dtype() == dtype => Tensor::new(self.shape, d),
            _ => self.to_tensor(name, dtype),
        }
    }

    /// Converts to `dtype`. Decimal numbers round to the nearest float; numbers
    /// that an integer or boolean dtype cannot hold exactly are refused.
    pub fn to_tensor(&self, name: &str, dtype: DType) -> Result<Tensor, TensorError> {
        let data = match (&self.values, dtype) {
            (Values::Numbers(v), DType::F32) => TensorData::F32(v.iter().map(num_to_f32).collect()),
            (Values::Numbers(v), DType::F64) => {
                TensorData::F64(v.iter().map(num_to_float).collect())
            }
            (Values::Numbers(v), DType::I32) => TensorData::I32(
                v.iter()
                    .map(|n| {
                        num_to_int(n)
                            .and_then(|i| i32::try_from(i).ok())
                            .ok_or_else(|| unrep(name, n, dtype))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (Values::Numbers(v), DType::I64) => TensorData::I64(
                v.iter()
                    .map(|n| {
                        num_to_int(n)
                            .and_then(|i| i64::try_from(i).ok())
                            .ok_or_else(|| unrep(name, n, dtype))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (Values::Numbers(v), DType::Bool) => TensorData::Bool(
                v.iter()
                    .map(|n| match num_to_int(n) {
                        Some(0) => Ok(false),
                        Some(1) => Ok(true),
                        _ => Err(unrep(name, n, dtype)),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (Values::Binary(d), _) if d.dtype() == dtype => d.clone(),
            (Values::Binary(d), _) => {
                return Err(TensorError::malformed(
                    name,
                    format!("expected {dtype} values, got binary {}", d.dtype()),
                ))
            }
            (Values::Bools(v), DType::Bool) => TensorData::Bool(v.clone()),
            (Values::Strings(v), DType::String) => TensorData::String(v.clone()),
            (Values::Strings(v), DType::F32 | DType::F64)
                if v.iter().all(|s| non_finite(s).is_some()) =>
            {
                let f: Vec<f64> = v.iter().filter_map(|s| non_finite(s)).collect();
                if dtype == DType::F32 {
                    TensorData::F32(f.into_iter().map(|x| x as f32).collect())
                } else {
                    TensorData::F64(f)
                }
            }
            (Values::Numbers(v), DType::String) if v.is_empty() => TensorData::String(vec![]),
            (given, _) => {
                let given = match given {
                    Values::Numbers(_) => "numbers",
                    Values::Bools(_) => "booleans",
                    Values::Strings(_) => "strings",
                    Values::Binary(..) => unreachable!("matched above"),
                };
                return Err(TensorError::malformed(
                    name,
                    format!("expected {dtype} values, got {given}"),
                ));
            }
        };
        Tensor::new(self.shape.clone(), data)
    }
}

fn unrep(name: &str, n: &Num, dtype: DType) -> TensorError {
    let value = match n {
        Num::Int(i) => i.to_string(),
        Num::Float(f) => f.to_string(),
        Num::Fixed { value, decimals } => format!("{value}e{}", -decimals),
    };
    TensorError::NotRepresentable {
        name: name.to_string(),
        value,
        dtype,
    }
}

fn non_finite(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Correctly rounded: the decimal text is parsed once, never through a float.
fn num_to_float(n: &Num) -> f64 {
    match *n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
        Num::Fixed { value, decimals } => format!("{value}e{}", -(decimals as i64))
            .parse()
            .unwrap_or(f64::NAN),
    }
}

/// As [`num_to_float`], rounding straight from the decimal to f32 (no double rounding).
fn num_to_f32(n: &Num) -> f32 {
    match *n {
        Num::Int(i) => i.to_string().parse().unwrap_or(f32::NAN),
        Num::Float(f) => f as f32,
        Num::Fixed { value, decimals } => format!("{value}e{}", -(decimals as i64))
            .parse()
            .unwrap_or(f32::NAN),
    }
}

fn num_to_int(n: &Num) -> Option<i128> {
    match *n {
        Num::Int(i) => Some(i),
        Num::Float(f) if f.fract() == 0.0 && f.abs() < 1.7e38 => Some(f as i128),
        Num::Float(_) => None,
        Num::Fixed { value, decimals } if decimals <= 0 => {
            value.checked_mul(10i128.checked_pow(decimals.unsigned_abs())?)
        }
        Num::Fixed { value, decimals } => {
            let p = 10i128.checked_pow(decimals as u32)?;
            (value % p == 0).then_some(value / p)
        }
    }
}

/// Shortest decimal that reads back to the same float, as (value, decimals)
/// with trailing zeros folded into `decimals` (so 100.0 is (1, -2)).
pub fn float_to_fixed(x: f64, shortest: &str) -> Option<(i128, i32)> {
    if !x.is_finite() {
        return None;
    }
    // `shortest` is Rust's `{:e}` form: "-1.2345e-7"
    let (mantissa, exp) = shortest.split_once('e')?;
    let exp: i32 = exp.parse().ok()?;
    let (neg, mantissa) = mantissa
        .strip_prefix('-')
        .map_or((false, mantissa), |m| (true, m));
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits = format!("{int}{frac}");
    let mut decimals = frac.len() as i32 - exp;
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
        decimals -= 1;
    }
    let mut value: i128 = digits.parse().ok()?;
    if value == 0 {
        decimals = 0;
    }
    if neg {
        value = -value;
    }
    Some((value, decimals))
}

fn f32_fixed(x: f32) -> Option<(i128, i32)> {
    float_to_fixed(x as f64, &format!("{x:e}"))
}

fn f64_fixed(x: f64) -> Option<(i128, i32)> {
    float_to_fixed(x, &format!("{x:e}"))
}

/// Serializes tensors in the plain encoding.
pub struct Plain<'a>(pub &'a NamedTensors);

/// Serializes tensors in the fixed-point encoding.
pub struct FixedPoint<'a>(pub &'a NamedTensors);

/// Serializes tensors in the chosen encoding.
pub struct Encoded<'a>(pub &'a NamedTensors, pub OutputFormat);

impl Serialize for Encoded<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.1 {
            OutputFormat::Plain => Plain(self.0).serialize(s),
            OutputFormat::FixedPoint => FixedPoint(self.0).serialize(s),
            // a serializer has nowhere to put raw bytes
            OutputFormat::Base64 | OutputFormat::Binary => Base64(self.0).serialize(s),
        }
    }
}

impl Encoded<'_> {
    /// Appends the tensors as JSON. Base64 text needs no escaping, so it is
    /// encoded straight into `out` rather than through a serializer that
    /// would scan every byte of it again.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        // JSON has nowhere to put raw bytes: binary falls back to base64 here
        if !matches!(self.1, OutputFormat::Base64 | OutputFormat::Binary) {
            return serde_json::to_writer(out, self);
        }
        self.write_numeric(out, |out, bytes| {
            out.extend_from_slice(b",\"b64\":\"");
            let start = out.len();
            out.resize(start + base64_simd::STANDARD.encoded_length(bytes.len()), 0);
            let _ = base64_simd::STANDARD
                .encode(bytes, base64_simd::Out::from_slice(&mut out[start..]));
            out.push(b'"');
        })
    }

    /// The binary form: JSON into `header` (numeric tensors as `{"dtype",
    /// "shape", "binary_data_size"}`, strings plain), their bytes into `data`
    /// in the same order.
    pub fn write_binary(&self, header: &mut Vec<u8>, data: &mut Vec<u8>) -> serde_json::Result<()> {
        self.write_numeric(header, |out, bytes| {
            out.extend_from_slice(format!(",\"binary_data_size\":{}", bytes.len()).as_bytes());
            data.extend_from_slice(bytes);
        })
    }

    /// Writes `{name: tensor, …}` with each numeric tensor as `{"dtype",
    /// "shape", …}`, where `values` appends the rest of its fields from its
    /// little-endian bytes; string tensors stay plain nested arrays.
    fn write_numeric(
        &self,
        out: &mut Vec<u8>,
        mut values: impl FnMut(&mut Vec<u8>, &[u8]),
    ) -> serde_json::Result<()> {
        out.push(b'{');
        for (i, (name, t)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, name)?;
            out.push(b':');
            let Some(bytes) = le::le_bytes(t.data()) else {
                serde_json::to_writer(&mut *out, &nested(t))?;
                continue;
            };
            out.extend_from_slice(b"{\"dtype\":");
            serde_json::to_writer(&mut *out, &t.dtype())?;
            out.extend_from_slice(b",\"shape\":");
            serde_json::to_writer(&mut *out, t.shape())?;
            values(out, &bytes);
            out.push(b'}');
        }
        out.push(b'}');
        Ok(())
    }
}

fn nested(t: &Tensor) -> Nested<'_> {
    Nested {
        shape: t.shape(),
        data: t.data(),
        offset: 0,
    }
}

/// Serializes numeric tensors as `{"dtype", "shape", "b64"}` (strings stay plain).
pub struct Base64<'a>(pub &'a NamedTensors);

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, t) in self.0 {
            match le::to_base64(t.data()) {
                Some(b64) => m.serialize_entry(
                    name,
                    &serde_json::json!({"dtype": t.dtype(), "shape": t.shape(), "b64": b64}),
                )?,
                None => m.serialize_entry(name, &nested(t))?,
            }
        }
        m.end()
    }
}

impl Serialize for Plain<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, t) in self.0 {
            m.serialize_entry(
                name,
                &Nested {
                    shape: t.shape(),
                    data: t.data(),
                    offset: 0,
                },
            )?;
        }
        m.end()
    }
}

struct Nested<'a> {
    shape: &'a [usize],
    data: &'a TensorData,
    offset: usize,
}

impl Serialize for Nested<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some((&n, rest)) = self.shape.split_first() else {
            return scalar(self.data, self.offset, s);
        };
        let stride: usize = rest.iter().product();
        let mut seq = s.serialize_seq(Some(n))?;
        for i in 0..n {
            seq.serialize_element(&Nested {
                shape: rest,
                data: self.data,
                offset: self.offset + i * stride,
            })?;
        }
        seq.end()
    }
}

fn scalar<S: Serializer>(d: &TensorData, i: usize, s: S) -> Result<S::Ok, S::Error> {
    match d {
        TensorData::F32(v) if v[i].is_finite() => s.serialize_f32(v[i]),
        TensorData::F64(v) if v[i].is_finite() => s.serialize_f64(v[i]),
        TensorData::F32(v) => s.serialize_str(non_finite_name(v[i] as f64)),
        TensorData::F64(v) => s.serialize_str(non_finite_name(v[i])),
        TensorData::I32(v) => s.serialize_i32(v[i]),
        TensorData::I64(v) => s.serialize_i64(v[i]),
        TensorData::Bool(v) => s.serialize_bool(v[i]),
        TensorData::String(v) => s.serialize_str(&v[i]),
    }
}

fn non_finite_name(x: f64) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

impl Serialize for FixedPoint<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (strings, numbers): (Vec<_>, Vec<_>) =
            self.0.iter().partition(|(_, t)| t.dtype() == DType::String);
        let mut st = s.serialize_struct("ModelOutput", 2)?;
        st.serialize_field(
            "numbers",
            &numbers
                .iter()
                .map(|(n, t)| FixedTensor(n, t))
                .collect::<Vec<_>>(),
        )?;
        st.serialize_field(
            "strings",
            &strings
                .iter()
                .map(|(n, t)| StringTensor(n, t))
                .collect::<Vec<_>>(),
        )?;
        st.end()
    }
}

struct FixedTensor<'a>(&'a str, &'a Tensor);
struct StringTensor<'a>(&'a str, &'a Tensor);

impl Serialize for FixedTensor<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.1;
        let fixed: Vec<Fixed> = match t.data() {
            TensorData::F32(v) => v
                .iter()
                .map(|&x| Fixed::from_float(f32_fixed(x), x as f64))
                .collect(),
            TensorData::F64(v) => v
                .iter()
                .map(|&x| Fixed::from_float(f64_fixed(x), x))
                .collect(),
            TensorData::I32(v) => v.iter().map(|&x| Fixed::Exact(x as i128, 0)).collect(),
            TensorData::I64(v) => v.iter().map(|&x| Fixed::Exact(x as i128, 0)).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| Fixed::Exact(x as i128, 0)).collect(),
            TensorData::String(_) => unreachable!("strings are partitioned out"),
        };
        let mut st = s.serialize_struct("NumberTensor", 3)?;
        st.serialize_field("name", self.0)?;
        st.serialize_field("values", &fixed)?;
        st.serialize_field("shape", t.shape())?;
        st.end()
    }
}

impl Serialize for StringTensor<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let TensorData::String(v) = self.1.data() else {
            unreachable!("only string tensors")
        };
        let mut st = s.serialize_struct("StringTensor", 3)?;
        st.serialize_field("name", self.0)?;
        st.serialize_field("values", v)?;
        if self.1.shape().len() != 1 {
            st.serialize_field("shape", self.1.shape())?;
        }
        st.end()
    }
}

enum Fixed {
    Exact(i128, i32),
    NonFinite(&'static str),
}

impl Fixed {
    fn from_float(f: Option<(i128, i32)>, x: f64) -> Self {
        match f {
            Some((v, d)) => Fixed::Exact(v, d),
            None => Fixed::NonFinite(non_finite_name(x)),
        }
    }
}

impl Serialize for Fixed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Number", 2)?;
        match *self {
            Fixed::Exact(v, d) => {
                match i64::try_from(v) {
                    Ok(v) => st.serialize_field("value", &v)?,
                    Err(_) => st.serialize_field("value", &v.to_string())?,
                }
                st.serialize_field("decimals", &d)?;
            }
            Fixed::NonFinite(name) => {
                st.serialize_field("value", name)?;
                st.serialize_field("decimals", &0)?;
            }
        }
        st.end()
    }
}

/// Converts parsed JSON tensors to typed ones, taking each tensor's dtype from
/// what the values look like (numbers with a fraction or any fixed-point value:
/// f32; integers: i64). Used where no model declares the dtypes.
pub fn infer_dtypes(inputs: &JsonInputs) -> Result<NamedTensors, TensorError> {
    inputs
        .iter()
        .map(|(name, t)| {
            let dtype = match &t.values {
                Values::Numbers(v) if v.iter().all(|n| matches!(n, Num::Int(_))) => DType::I64,
                Values::Numbers(_) => DType::F32,
                Values::Bools(_) => DType::Bool,
                Values::Strings(_) => DType::String,
                Values::Binary(d) => d.dtype(),
            };
            Ok((name.clone(), t.to_tensor(name, dtype)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every test input goes through both parsers, which must agree on the
    /// result and on the error.
    fn parse_inputs(v: &Value) -> Result<JsonInputs, TensorError> {
        let tree = super::parse_inputs(v);
        let text = serde_json::to_string(v).unwrap();
        let fast = serde_json::from_str::<crate::json_body::BodyInputs>(&text)
            .unwrap()
            .parse();
        assert_eq!(format!("{tree:?}"), format!("{fast:?}"), "{text}");
        tree
    }

    fn typed(v: Value, dtypes: &[(&str, DType)]) -> Result<NamedTensors, TensorError> {
        let parsed = parse_inputs(&v)?;
        dtypes
            .iter()
            .map(|(n, d)| Ok((n.to_string(), parsed[*n].to_tensor(n, *d)?)))
            .collect()
    }

    #[test]
    fn plain_nested_arrays() {
        let t = typed(json!({"x": [[0.1, 0.2], [0.3, 0.4]]}), &[("x", DType::F32)]).unwrap();
        assert_eq!(t["x"].shape(), &[2, 2]);
        assert_eq!(t["x"].data(), &TensorData::F32(vec![0.1, 0.2, 0.3, 0.4]));
        let s = typed(json!({"s": 3}), &[("s", DType::I64)]).unwrap();
        assert_eq!(s["s"].shape(), &[] as &[usize]);
        let e = typed(json!({"e": [[], []]}), &[("e", DType::F32)]).unwrap();
        assert_eq!(e["e"].shape(), &[2, 0]);
    }

    #[test]
    fn ragged_mixed_and_bad_values_are_refused() {
        assert!(parse_inputs(&json!({"x": [[1, 2], [3]]}))
            .unwrap_err()
            .to_string()
            .contains("ragged"));
        assert!(parse_inputs(&json!({"x": [[1, 2], 3]}))
            .unwrap_err()
            .to_string()
            .contains("ragged"));
        assert!(parse_inputs(&json!({"x": [1, "a"]}))
            .unwrap_err()
            .to_string()
            .contains("one type"));
        assert!(parse_inputs(&json!({"x": [null]}))
            .unwrap_err()
            .to_string()
            .contains("null"));
        assert_eq!(
            parse_inputs(&json!([1, 2])).unwrap_err(),
            TensorError::NotAnObject
        );
        let e = typed(json!({"x": [1.5]}), &[("x", DType::I64)]).unwrap_err();
        assert!(matches!(e, TensorError::NotRepresentable { .. }), "{e}");
        let e = typed(json!({"x": [3000000000i64]}), &[("x", DType::I32)]).unwrap_err();
        assert!(matches!(e, TensorError::NotRepresentable { .. }), "{e}");
        let e = typed(json!({"x": ["a"]}), &[("x", DType::F32)]).unwrap_err();
        assert!(
            e.to_string().contains("expected f32 values, got strings"),
            "{e}"
        );
    }

    #[test]
    fn fixed_point_input_is_exact() {
        let v = json!({"numbers": [{"name": "x", "values": [
            {"value": 1, "decimals": 1}, {"value": -25, "decimals": 0}, {"value": 3, "decimals": -2}
        ], "shape": [3]}], "strings": [{"name": "s", "values": ["a", "b"]}]});
        let t = typed(v.clone(), &[("x", DType::F32), ("s", DType::String)]).unwrap();
        assert_eq!(t["x"].data(), &TensorData::F32(vec![0.1, -25.0, 300.0]));
        assert_eq!(t["s"].shape(), &[2]);
        let i = typed(v, &[("x", DType::I64)]).unwrap_err();
        assert!(matches!(i, TensorError::NotRepresentable { .. }));
        let ints = json!({"numbers": [{"name": "x", "values": [{"value": 1200, "decimals": 2}, {"value": 3, "decimals": -2}]}]});
        assert_eq!(
            typed(ints, &[("x", DType::I64)]).unwrap()["x"].data(),
            &TensorData::I64(vec![12, 300])
        );
        let bad = json!({"numbers": [{"name": "x", "values": [1.5]}]});
        assert!(parse_inputs(&bad)
            .unwrap_err()
            .to_string()
            .contains("decimals"));
        let bad_shape = json!({"numbers": [{"name": "x", "values": [{"value": 1, "decimals": 0}], "shape": [2]}]});
        assert!(parse_inputs(&bad_shape)
            .unwrap_err()
            .to_string()
            .contains("shape"));
    }

    #[test]
    fn float_to_fixed_is_shortest_and_normalised() {
        assert_eq!(f32_fixed(0.1), Some((1, 1)));
        assert_eq!(f32_fixed(100.0), Some((1, -2)));
        assert_eq!(f32_fixed(-1.25), Some((-125, 2)));
        assert_eq!(f32_fixed(0.0), Some((0, 0)));
        assert_eq!(f32_fixed(f32::NAN), None);
        assert_eq!(f64_fixed(1e-300), Some((1, 300)));
    }

    /// Every encoding reads back to the same bits, for many awkward floats.
    #[test]
    fn both_encodings_round_trip_bit_exactly() {
        let mut vals = vec![
            0.1f32,
            -0.0,
            1.0,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-45,
            3.4028235e38,
            16777217.0,
            -7.5e-12,
        ];
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let f = f32::from_bits(x);
            if f.is_finite() {
                vals.push(f);
            }
        }
        let n = vals.len();
        let mut tensors = NamedTensors::new();
        tensors.insert(
            "x".into(),
            Tensor::new(vec![n], TensorData::F32(vals.clone())).unwrap(),
        );
        tensors.insert(
            "i".into(),
            Tensor::new(vec![2], TensorData::I64(vec![i64::MIN, i64::MAX])).unwrap(),
        );
        for fmt in [
            OutputFormat::Plain,
            OutputFormat::FixedPoint,
            OutputFormat::Base64,
        ] {
            let text = serde_json::to_string(&Encoded(&tensors, fmt)).unwrap();
            let mut written = vec![];
            Encoded(&tensors, fmt).write_json(&mut written).unwrap();
            assert_eq!(
                serde_json::from_slice::<Value>(&written).unwrap(),
                serde_json::from_str::<Value>(&text).unwrap(),
                "{fmt:?}: the direct writer and the serializer agree"
            );
            let back = parse_inputs(&serde_json::from_str(&text).unwrap()).unwrap();
            let x = back["x"].to_tensor("x", DType::F32).unwrap();
            let TensorData::F32(got) = x.data() else {
                panic!()
            };
            for (a, b) in vals.iter().zip(got) {
                // an integer value has no sign of zero: -0.0 comes back as 0.0
                let a = if fmt == OutputFormat::FixedPoint && *a == 0.0 {
                    0.0
                } else {
                    *a
                };
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{fmt:?}: {a:e} came back as {b:e}"
                );
            }
            assert_eq!(back["i"].to_tensor("i", DType::I64).unwrap(), tensors["i"]);
        }
    }

    #[test]
    fn binary_tensors_are_checked() {
        let ok = json!({"x": {"dtype": "i32", "shape": [2], "b64": data_encoding::BASE64.encode(&[1, 0, 0, 0, 255, 255, 255, 255])}});
        let t = typed(ok, &[("x", DType::I32)]).unwrap();
        assert_eq!(t["x"].data(), &TensorData::I32(vec![1, -1]));
        let short = json!({"x": {"dtype": "f32", "shape": [2], "b64": "AAAAAA=="}});
        assert!(parse_inputs(&short)
            .unwrap_err()
            .to_string()
            .contains("holds 4 bytes"));
        let wrong = json!({"x": {"dtype": "f64", "shape": [1], "b64": "AAAAAAAAAAA="}});
        assert!(typed(wrong, &[("x", DType::F32)])
            .unwrap_err()
            .to_string()
            .contains("got binary f64"));
        let junk = json!({"x": {"dtype": "f32", "shape": [1], "b64": "!!"}});
        assert!(parse_inputs(&junk)
            .unwrap_err()
            .to_string()
            .contains("base64"));
        let strings = json!({"x": {"dtype": "string", "shape": [1], "b64": ""}});
        assert!(parse_inputs(&strings)
            .unwrap_err()
            .to_string()
            .contains("string"));
    }

    /// Odd shapes of input, each through both parsers (which must agree).
    #[test]
    fn body_parser_agrees_on_odd_inputs() {
        for v in [
            json!([1, 2]),
            json!("x"),
            json!(null),
            json!({}),
            json!({"x": {"dtype": "f32", "shape": [1], "b64": 5}}),
            json!({"x": {"dtype": "f32", "shape": [1], "b64": "AACAPw==", "note": [1, {"a": 2}]}}),
            json!({"x": {"shape": [1], "b64": "AACAPw=="}}),
            json!({"x": {"dtype": "f32", "b64": "AACAPw=="}}),
            json!({"x": {"dtype": "f32", "shape": "1", "b64": "AACAPw=="}}),
            json!({"x": {"dtype": "f32", "shape": [1], "b64": "AAC/Pw=="}}),
            json!({"numbers": [{"name": "a", "values": [{"value": 1, "decimals": 0}], "shape": [1]}]}),
            json!({"numbers": [{"name": "a", "values": [], "shape": [0]}], "strings": {"dtype": "f32", "shape": [0], "b64": ""}}),
            json!({"numbers": [[1.5]]}),
            json!({"x": true, "y": null, "z": [[true], [false]]}),
        ] {
            let _ = parse_inputs(&v);
        }
        // a `/` may be escaped in JSON text: the body parser then copies
        let text = r#"{"x": {"dtype": "f32", "shape": [1], "b64": "AAC\/Pw=="}}"#;
        let fast = serde_json::from_str::<crate::json_body::BodyInputs>(text)
            .unwrap()
            .parse();
        let tree = super::parse_inputs(&serde_json::from_str(text).unwrap());
        assert_eq!(format!("{fast:?}"), format!("{tree:?}"));
        assert!(fast.is_ok());
    }

    #[test]
    fn base64_output_keeps_strings_plain() {
        let mut t = NamedTensors::new();
        let mut put = |n: &str, d| {
            t.insert(n.into(), Tensor::new(vec![2], d).unwrap());
        };
        put("a\"b", TensorData::String(vec!["x".into(), "\"y\"".into()]));
        put("n", TensorData::Bool(vec![true, false]));
        let mut out = vec![];
        Encoded(&t, OutputFormat::Base64)
            .write_json(&mut out)
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"a\"b": ["x", "\"y\""], "n": {"dtype": "bool", "shape": [2], "b64": "AQA="}})
        );
    }

    #[test]
    fn non_finite_values_travel_as_names() {
        let mut t = NamedTensors::new();
        t.insert(
            "x".into(),
            Tensor::new(
                vec![3],
                TensorData::F32(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY]),
            )
            .unwrap(),
        );
        let text = serde_json::to_string(&Plain(&t)).unwrap();
        assert_eq!(text, r#"{"x":["NaN","Infinity","-Infinity"]}"#);
        let back = parse_inputs(&serde_json::from_str(&text).unwrap()).unwrap();
        let TensorData::F32(v) = back["x"].to_tensor("x", DType::F32).unwrap().into_data() else {
            panic!()
        };
        assert!(v[0].is_nan() && v[1] == f32::INFINITY && v[2] == f32::NEG_INFINITY);
    }
}
