//! Small ONNX models built in code, with deterministic weights: an MLP, a CNN
//! and a two-input model with mixed dtypes. Tests, the demo fallback and the
//! benchmarks use them; nothing here is downloaded.

use crate::proto as pb;
use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::dimension::Value as DimValue;
use prost::Message;

/// A dimension in a declared shape.
pub enum D {
    N(i64),
    Sym(&'static str),
}

fn value_info(name: &str, dt: DataType, dims: &[D]) -> pb::ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| pb::tensor_shape_proto::Dimension {
            value: Some(match d {
                D::N(n) => DimValue::DimValue(*n),
                D::Sym(s) => DimValue::DimParam(s.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: dt as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn floats(name: &str, dims: &[i64], data: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        float_data: data,
        ..Default::default()
    }
}

fn ints(name: &str, dims: &[i64], data: Vec<i64>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Int64 as i32,
        int64_data: data,
        ..Default::default()
    }
}

fn node(
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: outputs[0].into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

fn attr_float(name: &str, v: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Float as i32,
        f: v,
        ..Default::default()
    }
}

fn model(
    nodes: Vec<pb::NodeProto>,
    init: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
) -> Vec<u8> {
    pb::ModelProto {
        ir_version: 8,
        producer_name: "gradnet-samples".into(),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            name: "sample".into(),
            node: nodes,
            initializer: init,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Deterministic weights in [-scale, scale).
pub fn weights(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// `x: f32[N, inputs]` → Gemm → Relu → Gemm → `y: f32[N, outputs]`.
pub fn mlp(inputs: usize, hidden: usize, outputs: usize, seed: u64) -> Vec<u8> {
    let (i, h, o) = (inputs as i64, hidden as i64, outputs as i64);
    model(
        vec![
            node(
                "Gemm",
                &["x", "w1", "b1"],
                &["h"],
                vec![attr_int("transB", 1)],
            ),
            node("Relu", &["h"], &["hr"], vec![]),
            node(
                "Gemm",
                &["hr", "w2", "b2"],
                &["y"],
                vec![attr_int("transB", 1)],
            ),
        ],
        vec![
            floats(
                "w1",
                &[h, i],
                weights(hidden * inputs, seed, (1.0 / inputs as f32).sqrt()),
            ),
            floats("b1", &[h], weights(hidden, seed + 1, 0.1)),
            floats(
                "w2",
                &[o, h],
                weights(outputs * hidden, seed + 2, (1.0 / hidden as f32).sqrt()),
            ),
            floats("b2", &[o], weights(outputs, seed + 3, 0.1)),
        ],
        vec![value_info("x", DataType::Float, &[D::Sym("N"), D::N(i)])],
        vec![value_info("y", DataType::Float, &[D::Sym("N"), D::N(o)])],
    )
}

/// A model that keeps a worker busy for a while, for tests of queues and
/// limits: `x: f32[1, 4]` → MatMul → Expand to `rows` rows → `layers` x
/// (MatMul 512x512 → Tanh) → ReduceMean over the rows → `y: f32[512]`;
/// about `rows * layers * 262144` multiply-adds.
pub fn busy(rows: usize, layers: usize, seed: u64) -> Vec<u8> {
    const W: usize = 512;
    let mut nodes = vec![
        node("MatMul", &["x", "w0"], &["h0"], vec![]),
        node("Expand", &["h0", "rows"], &["e0"], vec![]),
    ];
    let names: Vec<(String, String)> = (0..layers)
        .map(|l| (format!("m{l}"), format!("e{}", l + 1)))
        .collect();
    for (l, (m, e)) in names.iter().enumerate() {
        let prev = if l == 0 {
            "e0".to_string()
        } else {
            names[l - 1].1.clone()
        };
        nodes.push(node("MatMul", &[&prev, "w"], &[m], vec![]));
        nodes.push(node("Tanh", &[m], &[e], vec![]));
    }
    let last = names.last().map_or("e0".to_string(), |n| n.1.clone());
    nodes.push(node(
        "ReduceMean",
        &[&last],
        &["y"],
        vec![attr_ints("axes", &[0]), attr_int("keepdims", 0)],
    ));
    model(
        nodes,
        vec![
            floats("w0", &[4, W as i64], weights(4 * W, seed, 0.5)),
            ints("rows", &[2], vec![rows as i64, W as i64]),
            floats(
                "w",
                &[W as i64, W as i64],
                weights(W * W, seed + 1, (3.0 / W as f32).sqrt()),
            ),
        ],
        vec![value_info("x", DataType::Float, &[D::N(1), D::N(4)])],
        vec![value_info("y", DataType::Float, &[D::N(W as i64)])],
    )
}

/// `image: f32[N, 1, 28, 28]` → Conv 3x3 (8) → Relu → MaxPool 2x2 → Flatten →
/// Gemm → `logits: f32[N, 10]`.
pub fn cnn(seed: u64) -> Vec<u8> {
    let flat = 8 * 13 * 13;
    model(
        vec![
            node(
                "Conv",
                &["image", "k", "kb"],
                &["c"],
                // explicit strides: some ONNX consumers (EZKL) require them
                vec![
                    attr_ints("kernel_shape", &[3, 3]),
                    attr_ints("strides", &[1, 1]),
                ],
            ),
            node("Relu", &["c"], &["cr"], vec![]),
            node(
                "MaxPool",
                &["cr"],
                &["p"],
                vec![
                    attr_ints("kernel_shape", &[2, 2]),
                    attr_ints("strides", &[2, 2]),
                ],
            ),
            node("Flatten", &["p"], &["f"], vec![attr_int("axis", 1)]),
            node(
                "Gemm",
                &["f", "w", "b"],
                &["logits"],
                vec![attr_int("transB", 1)],
            ),
        ],
        vec![
            floats("k", &[8, 1, 3, 3], weights(72, seed, 0.33)),
            floats("kb", &[8], weights(8, seed + 1, 0.1)),
            floats(
                "w",
                &[10, flat],
                weights(10 * flat as usize, seed + 2, (1.0 / flat as f32).sqrt()),
            ),
            floats("b", &[10], weights(10, seed + 3, 0.1)),
        ],
        vec![value_info(
            "image",
            DataType::Float,
            &[D::Sym("N"), D::N(1), D::N(28), D::N(28)],
        )],
        vec![value_info(
            "logits",
            DataType::Float,
            &[D::Sym("N"), D::N(10)],
        )],
    )
}

/// Every operator the ZK compiler lowers, in one small chain:
/// `image: f32[N, 1, 8, 8]` → Conv 3x3 pad 1 (2) → BatchNormalization →
/// Relu → MaxPool 3x3 stride 2 pad 1 → Reshape [0, -1] → MatMul → Add →
/// Relu → Gemm (alpha, beta) → Mul → Sub → `y: f32[N, 3]`.
pub fn conv_chain(seed: u64) -> Vec<u8> {
    let ints_const = |name: &str, v: &[i64]| ints(name, &[v.len() as i64], v.to_vec());
    model(
        vec![
            node(
                "Conv",
                &["image", "k", "kb"],
                &["c"],
                vec![
                    attr_ints("kernel_shape", &[3, 3]),
                    attr_ints("pads", &[1, 1, 1, 1]),
                ],
            ),
            node(
                "BatchNormalization",
                &["c", "g", "beta", "mean", "var"],
                &["bn"],
                vec![],
            ),
            node("Relu", &["bn"], &["r"], vec![]),
            node(
                "MaxPool",
                &["r"],
                &["p"],
                vec![
                    attr_ints("kernel_shape", &[3, 3]),
                    attr_ints("strides", &[2, 2]),
                    attr_ints("pads", &[1, 1, 1, 1]),
                ],
            ),
            node("Reshape", &["p", "shape"], &["f"], vec![]),
            node("MatMul", &["f", "w1"], &["m"], vec![]),
            node("Add", &["m", "b1"], &["a"], vec![]),
            node("Relu", &["a"], &["ar"], vec![]),
            node(
                "Gemm",
                &["ar", "w2", "b2"],
                &["g2"],
                vec![attr_float("alpha", 0.5), attr_float("beta", 2.0)],
            ),
            node("Mul", &["g2", "half"], &["h"], vec![]),
            node("Sub", &["h", "one"], &["y"], vec![]),
        ],
        vec![
            floats("k", &[2, 1, 3, 3], weights(18, seed, 0.5)),
            floats("kb", &[2], weights(2, seed + 1, 0.1)),
            floats("g", &[2], vec![1.5, 0.75]),
            floats("beta", &[2], vec![0.1, -0.2]),
            floats("mean", &[2], vec![0.05, -0.1]),
            floats("var", &[2], vec![0.8, 1.2]),
            ints_const("shape", &[0, -1]),
            floats("w1", &[32, 6], weights(192, seed + 2, 0.4)),
            floats("b1", &[6], weights(6, seed + 3, 0.1)),
            floats("w2", &[6, 3], weights(18, seed + 4, 0.6)),
            floats("b2", &[1, 3], weights(3, seed + 5, 0.1)),
            floats("half", &[], vec![0.5]),
            floats("one", &[3], vec![1.0, 1.0, 1.0]),
        ],
        vec![value_info(
            "image",
            DataType::Float,
            &[D::Sym("N"), D::N(1), D::N(8), D::N(8)],
        )],
        vec![value_info("y", DataType::Float, &[D::Sym("N"), D::N(3)])],
    )
}

/// An MLP with operators a circuit cannot express (Sigmoid, Softmax).
pub fn sigmoid_softmax() -> Vec<u8> {
    model(
        vec![
            node(
                "Gemm",
                &["x", "w", "b"],
                &["h"],
                vec![attr_int("transB", 1)],
            ),
            node("Sigmoid", &["h"], &["s"], vec![]),
            node("Softmax", &["s"], &["y"], vec![]),
        ],
        vec![
            floats("w", &[2, 4], weights(8, 1, 0.5)),
            floats("b", &[2], weights(2, 2, 0.1)),
        ],
        vec![value_info("x", DataType::Float, &[D::Sym("N"), D::N(4)])],
        vec![value_info("y", DataType::Float, &[D::Sym("N"), D::N(2)])],
    )
}

/// Two inputs of different dtypes sharing the dim `N`:
/// `x: f32[N, 2]`, `k: i64[N]` → `y = 2x: f32[N, 2]`, `k1 = k + 1: i64[N]`.
pub fn two_inputs() -> Vec<u8> {
    model(
        vec![
            node("Mul", &["x", "two"], &["y"], vec![]),
            node("Add", &["k", "one"], &["k1"], vec![]),
        ],
        vec![floats("two", &[], vec![2.0]), ints("one", &[], vec![1])],
        vec![
            value_info("x", DataType::Float, &[D::Sym("N"), D::N(2)]),
            value_info("k", DataType::Int64, &[D::Sym("N")]),
        ],
        vec![
            value_info("y", DataType::Float, &[D::Sym("N"), D::N(2)]),
            value_info("k1", DataType::Int64, &[D::Sym("N")]),
        ],
    )
}

/// A valid ONNX model no engine here runs: `y = Relu(FancyOp(x))` with
/// `FancyOp` from an unknown domain (`com.example`), `x: f32[N, 4]`.
pub fn with_unknown_op() -> Vec<u8> {
    let mut fancy = node("FancyOp", &["x"], &["f"], vec![]);
    fancy.domain = "com.example".into();
    let bytes = model(
        vec![fancy, node("Relu", &["f"], &["y"], vec![])],
        vec![],
        vec![value_info("x", DataType::Float, &[D::Sym("N"), D::N(4)])],
        vec![value_info("y", DataType::Float, &[D::Sym("N"), D::N(4)])],
    );
    let mut m = pb::ModelProto::decode(&bytes[..]).expect("just encoded");
    m.opset_import.push(pb::OperatorSetIdProto {
        domain: "com.example".into(),
        version: 1,
    });
    m.encode_to_vec()
}

/// A text-like image `[1, 3, h, w]` that Python builds bit-identically (see
/// scripts/make-fixtures): integer pixels, then (p/255 - 0.5)/0.5 in f32.
pub fn pattern_image(h: usize, w: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(3 * h * w);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let ink = (14..34).contains(&(y % 48)) && x % 16 < 9 && (x * 3 + y * 5) % 11 != 0;
                let p = if ink {
                    20 + (x * y + c * 7) % 40
                } else {
                    235 + (x + y + c) % 20
                };
                v.push((p as f32 / 255.0 - 0.5) / 0.5);
            }
        }
    }
    v
}

/// Row-major values as the nested JSON arrays of the plain encoding.
pub fn nest(data: &[f32], shape: &[usize]) -> serde_json::Value {
    if shape.is_empty() {
        return serde_json::json!(data[0]);
    }
    let stride: usize = shape[1..].iter().product();
    serde_json::Value::Array(
        (0..shape[0])
            .map(|i| nest(&data[i * stride..(i + 1) * stride], &shape[1..]))
            .collect(),
    )
}

/// A memory bomb for budget tests: `x: f32[1]` → `Expand` to `dims` → `e`,
/// and its negation `n`; both are outputs, so a run holds both at once.
pub fn expand_bomb(dims: &[i64]) -> Vec<u8> {
    model(
        vec![
            node("Expand", &["x", "shape"], &["e"], vec![]),
            node("Neg", &["e"], &["n"], vec![]),
        ],
        vec![ints("shape", &[dims.len() as i64], dims.to_vec())],
        vec![value_info("x", DataType::Float, &[D::N(1)])],
        vec![
            value_info("e", DataType::Float, &[]),
            value_info("n", DataType::Float, &[]),
        ],
    )
}

/// A memory bomb the loader meets: a constant `Expand`ed to `dims` (folded
/// when the model loads), added to `x: f32[1]` → `y`.
pub fn folded_bomb(dims: &[i64]) -> Vec<u8> {
    model(
        vec![
            node("Expand", &["c", "shape"], &["e"], vec![]),
            node("Add", &["e", "x"], &["y"], vec![]),
        ],
        vec![
            floats("c", &[1], vec![1.0]),
            ints("shape", &[dims.len() as i64], dims.to_vec()),
        ],
        vec![value_info("x", DataType::Float, &[D::N(1)])],
        vec![value_info("y", DataType::Float, &[])],
    )
}
