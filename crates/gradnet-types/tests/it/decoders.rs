//! Every decoder that takes bytes from users or the network, fed arbitrary
//! and mutated input: never a panic (an error that names the problem, or a
//! value). Bounded: proptest's default 256 cases each.

use gradnet_types::certificate::Certificate;
use gradnet_types::json::parse_inputs;
use gradnet_types::request::InferRequestRef;
use gradnet_types::{ModelRef, Receipt};
use proptest::prelude::*;
use serde_json::Value;

/// Arbitrary JSON, nested a few levels, numbers of every kind.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid request body, then bytes flipped, cut or inserted.
fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = base.len();
    prop::collection::vec((0..n.max(1), any::<u8>(), 0u8..3), 0..8)
        .prop_map(move |edits| gradnet_types::test_utils::mutate(&base, &edits))
}

proptest! {
    #[test]
    fn tensor_json_never_panics(v in json()) {
        let _ = parse_inputs(&v);
        let _ = parse_inputs(&serde_json::json!({"x": v}));
    }

    #[test]
    fn request_bodies_never_panic(body in mutated(br#"{"model":"demo/m.onnx","inputs":{"x":{"dtype":"f32","shape":[1,2],"data":"AACAPwAAAEA="}},"mode":"QUORUM","output_format":"base64"}"#.to_vec()),
                                  binary in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(r) = serde_json::from_slice::<InferRequestRef<'_>>(&body) {
            let _ = r.inputs.parse_with(Some(&binary));
            let _ = r.model.parse::<ModelRef>();
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(r) = serde_json::from_slice::<InferRequestRef<'_>>(&bytes) {
            let _ = r.inputs.parse();
        }
        if let Ok(c) = serde_json::from_slice::<Certificate>(&bytes) {
            let _ = c.check();
        }
        if let Ok(r) = serde_json::from_slice::<Receipt>(&bytes) {
            let _ = r.verify();
        }
        let _ = String::from_utf8_lossy(&bytes).parse::<ModelRef>();
    }

    #[test]
    fn certificates_mutated_never_panic(v in json(), quorum in any::<u32>(), seed in any::<u64>()) {
        let c = serde_json::json!({
            "version": 1, "mode": "QUORUM", "chain_id": 1,
            "seed": {"block": seed, "hash": format!("0x{}", "ab".repeat(32))},
            "quorum": quorum, "asked": [], "answers": [{"operator": format!("0x{}", "11".repeat(20)), "receipt": v}],
        });
        if let Ok(c) = serde_json::from_value::<Certificate>(c) {
            let _ = c.check();
        }
    }
}
