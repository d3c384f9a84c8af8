//! Attestation documents as strangers send them (CBOR, COSE, X.509 inside):
//! arbitrary bytes and real and dev-enclave documents mutated, through the
//! verifier: never a panic, and a mutated document never verifies with
//! the same attestation as the original unless the edit changed nothing.

use std::collections::BTreeMap;

use gradnet_tee::dev::DevEnclave;
use gradnet_tee::{aws_nitro_root, verify};
use gradnet_types::test_utils::mutate;
use proptest::prelude::*;

const T1: u64 = 1_725_911_400; // inside nitro-1's leaf validity

fn real() -> Vec<u8> {
    data_encoding::BASE64
        .decode(include_str!("data/nitro-1.b64").trim().as_bytes())
        .unwrap()
}

fn dev() -> &'static (Vec<u8>, Vec<u8>, u64) {
    static D: std::sync::OnceLock<(Vec<u8>, Vec<u8>, u64)> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        let e = DevEnclave::from_seed(b"decoders").unwrap();
        let pcrs: BTreeMap<u64, Vec<u8>> = gradnet_tee::dev::dev_pcrs();
        let now = 1_800_000_000;
        let doc = e.attest(&pcrs, b"user data", None, now).unwrap();
        (doc, e.root_der().to_vec(), now + 1)
    })
}

fn edits(len: usize) -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((0..len, any::<u8>(), 0u8..3), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = verify(&bytes, &[aws_nitro_root()], T1);
    }

    #[test]
    fn mutated_real_documents_never_panic(e in edits(6000)) {
        let doc = real();
        let m = mutate(&doc, &e);
        if m != doc {
            if let (Ok(a), Ok(b)) = (verify(&m, &[aws_nitro_root()], T1), verify(&doc, &[aws_nitro_root()], T1)) {
                // only bytes the signature does not cover may change
                prop_assert_eq!(a.measurement().ok(), b.measurement().ok());
            }
        }
    }

    #[test]
    fn mutated_dev_documents_never_panic(e in edits(4000)) {
        let (doc, root, now) = dev();
        let m = mutate(doc, &e);
        let _ = verify(&m, std::slice::from_ref(root), *now);
    }
}
