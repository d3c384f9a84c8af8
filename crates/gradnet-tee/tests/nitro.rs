//! The Nitro verifier on real documents (time pinned inside their
//! validity), and the dev-enclave signer's documents through the same
//! verifier: each way a document can fail is refused with its reason.

use std::collections::BTreeMap;

use gradnet_tee::dev::{DevEnclave, LEAF_SECS};
use gradnet_tee::{aws_nitro_root, binding, verify, TeeError};

/// A real document (base64), compiled in: the test reads no files at run time.
fn sample(name: &str) -> Vec<u8> {
    let text = match name {
        "nitro-1.b64" => include_str!("data/nitro-1.b64"),
        "nitro-2.b64" => include_str!("data/nitro-2.b64"),
        _ => panic!("no sample {name}"),
    };
    data_encoding::BASE64
        .decode(text.trim().as_bytes())
        .unwrap()
}

/// `doc` with its CA bundle's first certificate replaced (signature left as is).
fn swap_root(doc: &[u8], root: &[u8]) -> Vec<u8> {
    use ciborium::Value;
    let Value::Array(mut parts) = ciborium::from_reader::<Value, _>(doc).unwrap() else {
        panic!()
    };
    let Value::Bytes(payload) = &parts[2] else {
        panic!()
    };
    let Value::Map(mut map) = ciborium::from_reader::<Value, _>(&payload[..]).unwrap() else {
        panic!()
    };
    for (k, v) in map.iter_mut() {
        if k.as_text() == Some("cabundle") {
            *v = Value::Array(vec![Value::Bytes(root.to_vec())]);
        }
    }
    let mut p = Vec::new();
    ciborium::into_writer(&Value::Map(map), &mut p).unwrap();
    parts[2] = Value::Bytes(p);
    let mut out = Vec::new();
    ciborium::into_writer(&Value::Array(parts), &mut out).unwrap();
    out
}

const T1: u64 = 1_725_911_400; // inside nitro-1's leaf validity
const T2: u64 = 1_722_457_200;

#[test]
fn real_documents_verify_against_the_pinned_aws_root() {
    let roots = [aws_nitro_root()];
    let a = verify(&sample("nitro-1.b64"), &roots, T1).unwrap();
    assert_eq!(a.module_id, "i-0bbf1bfe232b8c2ce-enc0191ba35c9d1b77a");
    assert_eq!(a.timestamp_ms, 1_725_911_352_400);
    assert_eq!(a.pcrs.len(), 16);
    assert_eq!(a.pcrs[&0], vec![0; 48], "a debug-mode enclave");
    assert_eq!(a.root, aws_nitro_root());
    assert!(!a.is_dev());
    let b = verify(&sample("nitro-2.b64"), &roots, T2).unwrap();
    assert_eq!(hex::encode(&b.pcrs[&0][..10]), "a6cdfede5b1e7950de33");
    // the PCRs it was made with pass; another image's do not
    let expected: BTreeMap<u64, Vec<u8>> = (0..3).map(|i| (i, b.pcrs[&i].clone())).collect();
    b.check_pcrs(&expected).unwrap();
    assert_ne!(a.measurement().unwrap(), b.measurement().unwrap());
    let mut wrong = expected.clone();
    wrong.get_mut(&0).unwrap()[0] ^= 1;
    let e = b.check_pcrs(&wrong).unwrap_err();
    assert!(matches!(e, TeeError::Pcr { index: 0, .. }), "{e}");
    assert!(e.to_string().starts_with("PCR0 is a6cdfede"), "{e}");
}

#[test]
fn expired_early_untrusted_tampered_and_unbound_documents_are_refused() {
    let roots = [aws_nitro_root()];
    let doc = sample("nitro-1.b64");
    // the leaf certificate lives three hours
    let e = verify(&doc, &roots, 1_725_922_153).unwrap_err();
    assert!(
        matches!(
            &e,
            TeeError::Expired {
                until: 1_725_922_152,
                ..
            }
        ),
        "{e}"
    );
    let e = verify(&doc, &roots, 1_725_911_348).unwrap_err();
    assert!(matches!(&e, TeeError::NotYetValid { .. }), "{e}");
    // not pinned: AWS's root is not trusted by default anywhere it is not listed
    let dev = DevEnclave::from_seed(b"test").unwrap();
    assert_eq!(
        verify(&doc, &[dev.root_der().to_vec()], T1),
        Err(TeeError::UntrustedRoot)
    );
    // a changed byte in the signed payload (inside the PCR area)
    let mut t = doc.clone();
    let at = t.windows(4).position(|w| w == b"pcrs").unwrap() + 20;
    t[at] ^= 1;
    assert_eq!(verify(&t, &roots, T1), Err(TeeError::Signature));
    // a changed signature
    let mut t = doc.clone();
    let n = t.len();
    t[n - 5] ^= 1;
    assert_eq!(verify(&t, &roots, T1), Err(TeeError::Signature));
    assert!(matches!(
        verify(b"not cbor", &roots, T1),
        Err(TeeError::Malformed(_))
    ));
    // its user data binds someone else's key
    let a = verify(&doc, &roots, T1).unwrap();
    assert_eq!(
        a.check_binding(&[7; 32], b"tls cert"),
        Err(TeeError::NotBound)
    );
}

#[test]
fn dev_enclave_documents_verify_only_where_their_root_is_pinned() {
    let dev = DevEnclave::from_seed(b"devnet").unwrap();
    assert_eq!(
        dev.root_der(),
        DevEnclave::from_seed(b"devnet").unwrap().root_der(),
        "a seed always gives the same root"
    );
    let pcrs: BTreeMap<u64, Vec<u8>> = (0..3).map(|i| (i, vec![i as u8 + 1; 48])).collect();
    let key = [9u8; 32];
    let now = 1_800_000_000;
    let doc = dev
        .attest(&pcrs, &binding(&key, b"cert"), Some(b"n1"), now)
        .unwrap();
    let roots = [dev.root_der().to_vec()];
    let a = verify(&doc, &roots, now).unwrap();
    assert!(a.is_dev());
    assert_eq!(a.nonce.as_deref(), Some(&b"n1"[..]));
    a.check_pcrs(&pcrs).unwrap();
    a.check_binding(&key, b"cert").unwrap();
    assert_eq!(
        a.check_binding(&key, b"another cert"),
        Err(TeeError::NotBound)
    );
    assert_eq!(a.check_binding(&[8; 32], b"cert"), Err(TeeError::NotBound));
    // never by default: with only AWS's root, or another dev root
    assert_eq!(
        verify(&doc, &[aws_nitro_root()], now),
        Err(TeeError::UntrustedRoot)
    );
    let other = DevEnclave::from_seed(b"other").unwrap();
    assert_eq!(
        verify(&doc, &[other.root_der().to_vec()], now),
        Err(TeeError::UntrustedRoot)
    );
    // another root's document whose bundle claims the pinned root: its leaf
    // names the same issuer, but the pinned root did not sign it
    let forged = other
        .attest(&pcrs, &binding(&key, b"cert"), None, now)
        .unwrap();
    let forged = swap_root(&forged, dev.root_der());
    let e = verify(&forged, &roots, now).unwrap_err();
    assert!(
        matches!(&e, TeeError::Chain(why) if why.contains("is not signed by")),
        "{e}"
    );
    let e = verify(&doc, &roots, now + LEAF_SECS + 1).unwrap_err();
    assert!(matches!(e, TeeError::Expired { .. }), "{e}");
}
