//! The compiler on models built in code, the circuit's outputs against
//! float inference, and proofs: valid ones verify; a changed output, input,
//! proof, key or model does not.

use ark_std::rand::SeedableRng;
use gradnet_runtime::generated;
use gradnet_zk::keys::{proof_from_bytes, proof_to_bytes};
use gradnet_zk::{accuracy, onnx, prove, setup, verify, Op, VerifyingKey, ZkError};

fn rng(seed: u64) -> ark_std::rand::rngs::StdRng {
    ark_std::rand::rngs::StdRng::seed_from_u64(seed)
}

fn inputs(n: usize, len: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|s| generated::weights(len, 100 + s as u64, 1.0))
        .collect()
}

#[test]
fn an_mlp_compiles_to_two_linear_maps_with_the_relu_fused() {
    let m = onnx::compile(&generated::mlp(4, 8, 3, 7), 12).unwrap();
    assert_eq!(
        (m.input_shape.clone(), m.output_shape.clone()),
        (vec![1, 4], vec![1, 3])
    );
    let relus: Vec<bool> = m
        .ops
        .iter()
        .map(|op| match op {
            Op::Linear { relu, .. } => *relu,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(relus, [true, false]);
    let r = accuracy::report(&generated::mlp(4, 8, 3, 7), &m, &inputs(200, 4)).unwrap();
    assert!(r.max_abs_error < 0.01, "{r:?}");
    assert!(r.argmax_agreement >= 0.99, "{r:?}");
}

#[test]
fn every_supported_operator_lowers_and_matches_float_inference() {
    let onnx_bytes = generated::conv_chain(3);
    let m = onnx::compile(&onnx_bytes, 12).unwrap();
    assert_eq!(m.output_shape, vec![1, 3]);
    assert!(m.ops.iter().any(|op| matches!(op, Op::MaxPool { .. })));
    let r = accuracy::report(&onnx_bytes, &m, &inputs(100, 64)).unwrap();
    assert!(r.max_abs_error < 0.02, "{r:?}");
    assert!(r.argmax_agreement >= 0.97, "{r:?}");
    // fewer fraction bits, larger error: the scale is what the report shows
    let coarse = onnx::compile(&onnx_bytes, 4).unwrap();
    let rc = accuracy::report(&onnx_bytes, &coarse, &inputs(100, 64)).unwrap();
    assert!(rc.max_abs_error > r.max_abs_error, "{rc:?} vs {r:?}");
}

#[test]
fn unsupported_operators_are_all_named() {
    let e = onnx::compile(&generated::sigmoid_softmax(), 8).unwrap_err();
    assert!(
        matches!(&e, ZkError::Unsupported(ops) if ops == &["Sigmoid", "Softmax"]),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("Sigmoid, Softmax") && msg.contains("supported: Gemm"),
        "{msg}"
    );
    let e = onnx::compile(b"not a model", 8).unwrap_err();
    assert!(e.to_string().contains("not an ONNX model"), "{e}");
    let e = onnx::compile(&generated::two_inputs(), 8).unwrap_err();
    assert!(e.to_string().contains("one input tensor"), "{e}");
}

#[test]
fn a_proof_verifies_and_anything_changed_does_not() {
    let m = onnx::compile(&generated::mlp(4, 8, 3, 7), 10).unwrap();
    let keys = setup(&m, &mut rng(1)).unwrap();
    let x = m.quantize(&[0.5, -1.0, 0.25, 1.2]).unwrap();
    let (y, proof) = prove(&m, &keys.proving, &x).unwrap();
    assert_eq!(y, m.forward(&x).unwrap());
    let vk = &keys.verifying;
    assert!(verify(vk, &x, &y, &proof));

    let mut wrong = y.clone();
    wrong[0] += 1;
    assert!(!verify(vk, &x, &wrong, &proof), "changed output");
    let mut x2 = x.clone();
    x2[3] += 1;
    assert!(!verify(vk, &x2, &y, &proof), "changed input");

    // a tampered proof: either it no longer parses or it does not verify
    let bytes = proof_to_bytes(&proof);
    assert_eq!(bytes.len(), 128);
    for i in [0, 40, 100] {
        let mut t = bytes.clone();
        t[i] ^= 1;
        if let Ok(p) = proof_from_bytes(&t) {
            assert!(!verify(vk, &x, &y, &p), "tampered byte {i}");
        }
    }

    // the key's bytes round-trip; a key whose model hash was edited refuses
    let vk_bytes = vk.to_bytes();
    let back = VerifyingKey::from_bytes(&vk_bytes).unwrap();
    assert!(verify(&back, &x, &y, &proof_from_bytes(&bytes).unwrap()));
    let mut edited = vk_bytes.clone();
    edited[0] ^= 1;
    assert!(!verify(
        &VerifyingKey::from_bytes(&edited).unwrap(),
        &x,
        &y,
        &proof
    ));
    assert!(VerifyingKey::from_bytes(&vk_bytes[..vk_bytes.len() - 1]).is_err());

    // another model (other weights, same shapes) and its key
    let other = onnx::compile(&generated::mlp(4, 8, 3, 8), 10).unwrap();
    let other_keys = setup(&other, &mut rng(1)).unwrap();
    assert!(
        !verify(&other_keys.verifying, &x, &y, &proof),
        "other model's key"
    );
    let (oy, oproof) = prove(&other, &other_keys.proving, &x).unwrap();
    assert!(!verify(vk, &x, &oy, &oproof), "other model's proof");
}

#[test]
fn conv_maxpool_and_batchnorm_circuits_prove() {
    let m = onnx::compile(&generated::conv_chain(5), 10).unwrap();
    let keys = setup(&m, &mut rng(4)).unwrap();
    for s in 0..2 {
        let x = m.quantize(&generated::weights(64, 40 + s, 1.0)).unwrap();
        let (y, proof) = prove(&m, &keys.proving, &x).unwrap();
        assert!(verify(&keys.verifying, &x, &y, &proof));
        let mut wrong = y.clone();
        wrong[2] -= 1;
        assert!(!verify(&keys.verifying, &x, &wrong, &proof));
    }
}

#[test]
fn out_of_range_values_are_refused_not_wrapped() {
    let m = onnx::compile(&generated::mlp(4, 8, 3, 7), 10).unwrap();
    let e = m.quantize(&[1e9, 0.0, 0.0, 0.0]).unwrap_err();
    assert!(matches!(e, ZkError::Range(_)), "{e}");
    let e = m.quantize(&[f32::NAN, 0.0, 0.0, 0.0]).unwrap_err();
    assert!(e.to_string().contains("finite"), "{e}");
    let e = m.forward(&[0, 0, 0]).unwrap_err();
    assert!(e.to_string().contains("3 values, the model takes 4"), "{e}");
}
