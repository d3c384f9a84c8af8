//! Inputs read straight from a request body in one pass. A binary tensor's
//! base64 text stays borrowed from the body until it is decoded into its
//! values; every other form becomes a JSON tree and goes through
//! [`crate::json::parse_inputs`]' rules, so both paths accept and refuse the
//! same inputs with the same messages (tested against each other).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::TensorError;
use crate::json::{binary_tensor, parse_inputs, parse_plain, JsonInputs, Payload};

/// The `inputs` of a request, as read from its body.
#[derive(Debug)]
pub enum BodyInputs<'a> {
    Tensors(Vec<(String, Field<'a>)>),
    /// Not a JSON object: refused when parsed, with the usual message.
    NotAnObject,
}

#[derive(Debug)]
pub enum Field<'a> {
    /// An object: the binary form's fields (other keys are ignored, as in
    /// the tree path). `b64` is `Some(None)` when present but not a string.
    Binary {
        dtype: Option<Value>,
        shape: Option<Value>,
        b64: Option<Option<Cow<'a, str>>>,
        /// Bytes this tensor takes in the body's binary section.
        binary_data_size: Option<Value>,
    },
    Tree(Value),
}

impl BodyInputs<'_> {
    pub fn parse(self) -> Result<JsonInputs, TensorError> {
        self.parse_with(None)
    }

    /// Parses the inputs of a request that may carry a binary section after
    /// its JSON header: tensors with `binary_data_size` take their bytes from
    /// it, one after another in the order they are named.
    pub fn parse_with(self, binary: Option<&[u8]>) -> Result<JsonInputs, TensorError> {
        let BodyInputs::Tensors(fields) = self else {
            return Err(TensorError::NotAnObject);
        };
        // the fixed-point form has only `numbers` / `strings` at the top
        let fixed_point = !fields.is_empty()
            && fields
                .iter()
                .all(|(k, f)| (k == "numbers" || k == "strings") && matches!(f, Field::Tree(_)));
        if fixed_point {
            let obj = fields
                .into_iter()
                .map(|(k, f)| match f {
                    Field::Tree(v) => (k, v),
                    Field::Binary { .. } => unreachable!("checked above"),
                })
                .collect();
            return parse_inputs(&Value::Object(obj));
        }
        let mut out = JsonInputs::new();
        let mut rest = binary.unwrap_or_default();
        for (name, f) in fields {
            let t = match f {
                Field::Binary {
                    dtype,
                    shape,
                    b64,
                    binary_data_size,
                } => {
                    let payload = match (b64.as_ref(), binary_data_size) {
                        (Some(_), Some(_)) => {
                            return Err(TensorError::malformed(
                                &name,
                                "give either `b64` or `binary_data_size`, not both",
                            ))
                        }
                        (Some(t), None) => Payload::Base64(t.as_deref()),
                        (None, Some(size)) => {
                            if binary.is_none() {
                                return Err(TensorError::malformed(
                                    &name,
                                    "`binary_data_size` needs a binary request body (with the `Inference-Header-Content-Length` header)",
                                ));
                            }
                            let size = size.as_u64().and_then(|s| usize::try_from(s).ok());
                            let Some(size) = size.filter(|&s| s <= rest.len()) else {
                                return Err(TensorError::malformed(
                                    &name,
                                    format!(
                                        "`binary_data_size` must be a byte count within the {} bytes of binary data left",
                                        rest.len()
                                    ),
                                ));
                            };
                            let (mine, tail) = rest.split_at(size);
                            rest = tail;
                            Payload::Raw(mine)
                        }
                        (None, None) => Payload::Missing,
                    };
                    binary_tensor(&name, dtype, shape.as_ref(), payload)?
                }
                Field::Tree(v) => parse_plain(&name, &v)?,
            };
            // as in a JSON tree, the last of repeated names wins
            out.insert(name, t);
        }
        if !rest.is_empty() {
            return Err(TensorError::BinarySection(format!(
                "{} bytes of binary data are not claimed by any input's `binary_data_size`",
                rest.len()
            )));
        }
        Ok(out)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for BodyInputs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = BodyInputs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("named tensors")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    out.push((k, m.next_value::<Field<'a>>()?));
                }
                Ok(BodyInputs::Tensors(out))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<Self::Value, S::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(BodyInputs::NotAnObject)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(BodyInputs::NotAnObject)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(BodyInputs::NotAnObject)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(BodyInputs::NotAnObject)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(BodyInputs::NotAnObject)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(BodyInputs::NotAnObject)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(BodyInputs::NotAnObject)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Field<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tensor")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
                let (mut dtype, mut shape, mut b64, mut size) = (None, None, None, None);
                while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                    match &*k {
                        "dtype" => dtype = Some(m.next_value()?),
                        "shape" => shape = Some(m.next_value()?),
                        "b64" => b64 = Some(m.next_value::<MaybeStr<'a>>()?.0),
                        "binary_data_size" => size = Some(m.next_value()?),
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Field::Binary {
                    dtype,
                    shape,
                    b64,
                    binary_data_size: size,
                })
            }
            fn visit_seq<S: SeqAccess<'de>>(self, s: S) -> Result<Self::Value, S::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(s)).map(Field::Tree)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Field::Tree(Value::String(v.into())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Field::Tree(Value::from(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Field::Tree(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Field::Tree(Value::from(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Field::Tree(Value::Bool(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Field::Tree(Value::Null))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A string (borrowed when it has no escapes), or `None` for any other value.
struct MaybeStr<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for MaybeStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = MaybeStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MaybeStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MaybeStr(Some(Cow::Owned(v.into()))))
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<Self::Value, S::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}
