//! ZK bytes that arrive from strangers — verifying keys (registered on
//! chain, carried in certificates), proofs (in sidecars, from nodes) and
//! ONNX files compiled to circuits — fed arbitrary and mutated input:
//! never a panic, and a mutated proof never verifies.

use ark_std::rand::SeedableRng;
use gradnet_runtime::generated;
use gradnet_types::test_utils::mutate;
use gradnet_zk::keys::{proof_from_bytes, proof_to_bytes};
use gradnet_zk::{onnx, prove, setup, verify, VerifyingKey};
use proptest::prelude::*;

struct Fixture {
    vk: Vec<u8>,
    proof: Vec<u8>,
    input: Vec<i64>,
    output: Vec<i64>,
    onnx: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let onnx = generated::mlp(4, 8, 3, 7);
        let m = onnx::compile(&onnx, 12).unwrap();
        let keys = setup(&m, &mut ark_std::rand::rngs::StdRng::seed_from_u64(1)).unwrap();
        let input = vec![100, -4096, 1024, 12288];
        let (output, proof) = prove(&m, &keys.proving, &input).unwrap();
        Fixture {
            vk: keys.verifying.to_bytes(),
            proof: proof_to_bytes(&proof),
            input,
            output,
            onnx,
        }
    })
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((0usize..4096, any::<u8>(), 0u8..3), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn verifying_keys_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024), e in edits()) {
        let _ = VerifyingKey::from_bytes(&bytes);
        let f = fixture();
        if let Ok(vk) = VerifyingKey::from_bytes(&mutate(&f.vk, &e)) {
            let proof = proof_from_bytes(&f.proof).unwrap();
            // another key (or the same, where the edit changed nothing)
            let _ = verify(&vk, &f.input, &f.output, &proof);
        }
    }

    #[test]
    fn proofs_never_panic_and_mutated_ones_never_verify(bytes in prop::collection::vec(any::<u8>(), 0..512), e in edits()) {
        let _ = proof_from_bytes(&bytes);
        let f = fixture();
        let vk = VerifyingKey::from_bytes(&f.vk).unwrap();
        let m = mutate(&f.proof, &e);
        if let Ok(p) = proof_from_bytes(&m) {
            let ok = verify(&vk, &f.input, &f.output, &p);
            prop_assert!(!ok || m == f.proof, "a mutated proof verified");
        }
    }

    #[test]
    fn onnx_files_compile_or_fail_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), e in edits()) {
        let _ = onnx::compile(&bytes, 12);
        let _ = onnx::compile(&mutate(&fixture().onnx, &e), 12);
    }
}
