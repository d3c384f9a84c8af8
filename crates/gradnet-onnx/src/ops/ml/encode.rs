//! `OneHotEncoder`, `LabelEncoder` and `CategoryMapper`: categories to
//! columns, values to values, strings to integers and back.

use std::collections::HashMap;

use crate::cx::Cx;
use crate::error::{bail, invalid, Result};
use crate::ops::{Build, Inputs, Op};
use crate::tensor::{DType, Data, Tensor};

/// A category key: an integer (floats and ints compare as ONNX-ML's
/// encoders do, through int64) or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Int(i64),
    Str(String),
}

fn keys(x: &Tensor) -> Result<Vec<Key>> {
    Ok(match x.data() {
        Data::Str(v) => v.iter().map(|s| Key::Str(s.clone())).collect(),
        Data::F32(v) => v.iter().map(|&f| Key::Int(f as i64)).collect(),
        Data::F64(v) => v.iter().map(|&f| Key::Int(f as i64)).collect(),
        _ => x.to_i64s()?.into_iter().map(Key::Int).collect(),
    })
}

struct OneHot {
    cats: HashMap<Key, usize>,
    count: usize,
    zeros: bool,
}

pub(crate) fn one_hot_encoder(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let cats: Vec<Key> = match (n.ints("cats_int64s")?, n.strings("cats_strings")?) {
        (Some(i), _) if !i.is_empty() => i.into_iter().map(Key::Int).collect(),
        (_, Some(s)) if !s.is_empty() => s.into_iter().map(Key::Str).collect(),
        _ => return Err(invalid!("{}: no categories", n.label())),
    };
    Ok(Box::new(OneHot {
        count: cats.len(),
        cats: cats.into_iter().enumerate().map(|(i, k)| (k, i)).collect(),
        zeros: n.int_or("zeros", 1)? != 0,
    }))
}

impl Op for OneHot {
    fn run(&self, cx: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let mut shape = x.shape().to_vec();
        shape.push(self.count);
        cx.check_size(&shape, 4)?;
        let mut out = vec![0f32; x.len() * self.count];
        for (i, k) in keys(x)?.into_iter().enumerate() {
            match self.cats.get(&k) {
                Some(&c) => out[i * self.count + c] = 1.0,
                None if self.zeros => {}
                None => bail!("OneHotEncoder: unknown category {k:?}"),
            }
        }
        Ok(vec![Tensor::from_vec(shape, out)?])
    }
}

/// A value of a label encoder's output type.
#[derive(Debug, Clone)]
enum Val {
    Int(i64),
    Float(f32),
    Str(String),
}

struct LabelEncoder {
    map: HashMap<Key, Val>,
    /// Float keys, compared exactly (by bits, with all NaNs one key).
    fmap: Vec<(f32, Val)>,
    default: Val,
    out: DType,
}

fn float_key(f: f32) -> u32 {
    if f.is_nan() {
        0x7fc0_0000
    } else if f == 0.0 {
        0
    } else {
        f.to_bits()
    }
}

pub(crate) fn label_encoder(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let bad = |m: &str| invalid!("{}: {m}", n.label());
    // opset 1: classes_strings with default_int64 / default_string
    if b.opset < 2 {
        let classes = n.strings("classes_strings")?.unwrap_or_default();
        let default_int = n.int_or("default_int64", -1)?;
        let default_str = n.string_or("default_string", "_Unused")?;
        let mut map = HashMap::new();
        for (i, c) in classes.iter().enumerate() {
            map.insert(Key::Str(c.clone()), Val::Int(i as i64));
            map.insert(Key::Int(i as i64), Val::Str(c.clone()));
        }
        return Ok(Box::new(LabelEncoderV1 {
            map,
            default_int,
            default_str,
        }));
    }
    let tensor = |name: &str| n.tensor(name);
    let (keys, fkeys): (Vec<Key>, Vec<f32>) = if let Some(v) = n.strings("keys_strings")? {
        (v.into_iter().map(Key::Str).collect(), vec![])
    } else if let Some(v) = n.ints("keys_int64s")? {
        (v.into_iter().map(Key::Int).collect(), vec![])
    } else if let Some(v) = n.floats("keys_floats")? {
        (vec![], v)
    } else if let Some(t) = tensor("keys_tensor")? {
        match t.data() {
            Data::Str(v) => (v.iter().cloned().map(Key::Str).collect(), vec![]),
            Data::F32(v) => (vec![], v.clone()),
            Data::F64(v) => (vec![], v.iter().map(|&x| x as f32).collect()),
            _ => (t.to_i64s()?.into_iter().map(Key::Int).collect(), vec![]),
        }
    } else {
        return Err(bad("no keys"));
    };
    let (vals, out): (Vec<Val>, DType) = if let Some(v) = n.strings("values_strings")? {
        (v.into_iter().map(Val::Str).collect(), DType::Str)
    } else if let Some(v) = n.ints("values_int64s")? {
        (v.into_iter().map(Val::Int).collect(), DType::I64)
    } else if let Some(v) = n.floats("values_floats")? {
        (v.into_iter().map(Val::Float).collect(), DType::F32)
    } else if let Some(t) = tensor("values_tensor")? {
        match t.data() {
            Data::Str(v) => (v.iter().cloned().map(Val::Str).collect(), DType::Str),
            Data::F32(v) => (v.iter().map(|&x| Val::Float(x)).collect(), DType::F32),
            _ => (t.to_i64s()?.into_iter().map(Val::Int).collect(), DType::I64),
        }
    } else {
        return Err(bad("no values"));
    };
    if vals.len() != keys.len() + fkeys.len() {
        return Err(bad("keys and values differ in length"));
    }
    let default = match out {
        DType::Str => Val::Str(match tensor("default_tensor")? {
            Some(t) => match t.data() {
                Data::Str(v) => v.first().cloned().unwrap_or_default(),
                _ => "_Unused".into(),
            },
            None => n.string_or("default_string", "_Unused")?,
        }),
        DType::F32 => Val::Float(match tensor("default_tensor")? {
            Some(t) => t.to_f64s()?.first().copied().unwrap_or(-0.0) as f32,
            None => n.float_or("default_float", -0.0)?,
        }),
        _ => Val::Int(match tensor("default_tensor")? {
            Some(t) => t.to_i64s()?.first().copied().unwrap_or(-1),
            None => n.int_or("default_int64", -1)?,
        }),
    };
    let mut vi = vals.into_iter();
    let map = keys.into_iter().zip(vi.by_ref()).collect();
    let fmap = fkeys.into_iter().zip(vi).collect();
    Ok(Box::new(LabelEncoder {
        map,
        fmap,
        default,
        out,
    }))
}

impl Op for LabelEncoder {
    fn run(&self, _: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let vals: Vec<&Val> = match x.data() {
            Data::F32(v) if !self.fmap.is_empty() => v
                .iter()
                .map(|&f| {
                    self.fmap
                        .iter()
                        .find(|(k, _)| float_key(*k) == float_key(f))
                        .map_or(&self.default, |(_, v)| v)
                })
                .collect(),
            Data::F64(v) if !self.fmap.is_empty() => v
                .iter()
                .map(|&f| {
                    self.fmap
                        .iter()
                        .find(|(k, _)| float_key(*k) == float_key(f as f32))
                        .map_or(&self.default, |(_, v)| v)
                })
                .collect(),
            _ => keys(x)?
                .iter()
                .map(|k| self.map.get(k).unwrap_or(&self.default))
                .collect(),
        };
        let data = match self.out {
            DType::Str => Data::Str(
                vals.iter()
                    .map(|v| match v {
                        Val::Str(s) => s.clone(),
                        Val::Int(i) => i.to_string(),
                        Val::Float(f) => f.to_string(),
                    })
                    .collect(),
            ),
            DType::F32 => Data::F32(
                vals.iter()
                    .map(|v| match v {
                        Val::Float(f) => *f,
                        Val::Int(i) => *i as f32,
                        Val::Str(_) => 0.0,
                    })
                    .collect(),
            ),
            _ => Data::I64(
                vals.iter()
                    .map(|v| match v {
                        Val::Int(i) => *i,
                        Val::Float(f) => *f as i64,
                        Val::Str(_) => 0,
                    })
                    .collect(),
            ),
        };
        Ok(vec![Tensor::new(x.shape().to_vec(), data)?])
    }
}

struct LabelEncoderV1 {
    map: HashMap<Key, Val>,
    default_int: i64,
    default_str: String,
}

impl Op for LabelEncoderV1 {
    fn run(&self, _: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let data = match x.data() {
            Data::Str(v) => Data::I64(
                v.iter()
                    .map(|s| match self.map.get(&Key::Str(s.clone())) {
                        Some(Val::Int(i)) => *i,
                        _ => self.default_int,
                    })
                    .collect(),
            ),
            _ => Data::Str(
                x.to_i64s()?
                    .into_iter()
                    .map(|i| match self.map.get(&Key::Int(i)) {
                        Some(Val::Str(s)) => s.clone(),
                        _ => self.default_str.clone(),
                    })
                    .collect(),
            ),
        };
        Ok(vec![Tensor::new(x.shape().to_vec(), data)?])
    }
}

struct CategoryMapper {
    to_int: HashMap<String, i64>,
    to_str: HashMap<i64, String>,
    default_int: i64,
    default_str: String,
}

pub(crate) fn category_mapper(b: &Build) -> Result<Box<dyn Op>> {
    let n = b.node;
    let s = n.strings("cats_strings")?.unwrap_or_default();
    let i = n.ints("cats_int64s")?.unwrap_or_default();
    if s.len() != i.len() {
        return Err(invalid!(
            "{}: cats_strings and cats_int64s differ in length",
            n.label()
        ));
    }
    Ok(Box::new(CategoryMapper {
        to_int: s.iter().cloned().zip(i.iter().copied()).collect(),
        to_str: i.into_iter().zip(s).collect(),
        default_int: n.int_or("default_int64", -1)?,
        default_str: n.string_or("default_string", "_Unused")?,
    }))
}

impl Op for CategoryMapper {
    fn run(&self, _: &Cx, inputs: Inputs) -> Result<Vec<Tensor>> {
        let x = inputs.get(0)?;
        let data = match x.data() {
            Data::Str(v) => Data::I64(
                v.iter()
                    .map(|s| *self.to_int.get(s).unwrap_or(&self.default_int))
                    .collect(),
            ),
            Data::I64(v) => Data::Str(
                v.iter()
                    .map(|i| self.to_str.get(i).unwrap_or(&self.default_str).clone())
                    .collect(),
            ),
            d => bail!("CategoryMapper takes strings or int64, got {}", d.dtype()),
        };
        Ok(vec![Tensor::new(x.shape().to_vec(), data)?])
    }
}
