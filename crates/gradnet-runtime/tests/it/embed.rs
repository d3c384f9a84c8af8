//! The packed all-MiniLM-L6-v2 (scripts/fetch-models) against vectors that
//! sentence-transformers computed on PyTorch for the same texts
//! (tests/fixtures/minilm-reference.json), and its determinism.

use gradnet_runtime::embed::Embedder;
use gradnet_types::test_utils::real_model;
use gradnet_types::ContentId;

fn minilm() -> Embedder {
    let bytes = std::fs::read(real_model("all-minilm-l6-v2.safetensors")).unwrap();
    Embedder::load(ContentId::of(&bytes), &bytes).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let n = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

#[test]
fn minilm_matches_sentence_transformers() {
    let m = minilm();
    assert_eq!(m.info.dimensions, 384);
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/minilm-reference.json")).unwrap();
    let texts: Vec<&str> = fixture["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| m.encode(t).unwrap()).collect();
    let got = m.embed(&ids, 2).unwrap();
    for (i, want) in fixture["vectors"].as_array().unwrap().iter().enumerate() {
        let want: Vec<f32> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let c = cosine(&got[i], &want);
        assert!(c >= 0.9999, "{:?}: cosine {c}", texts[i]);
    }
    // similar sentences are closer than unrelated ones
    assert!(cosine(&got[0], &got[1]) > cosine(&got[0], &got[2]) + 0.3);
}

#[test]
fn vectors_are_the_same_bits_alone_batched_and_threaded() {
    let m = minilm();
    let texts = [
        "first text here",
        "a second, longer text with more words in it",
        "3",
    ];
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| m.encode(t).unwrap()).collect();
    let bits = |v: Vec<Vec<f32>>| -> Vec<Vec<u32>> {
        v.into_iter()
            .map(|r| r.into_iter().map(f32::to_bits).collect())
            .collect()
    };
    let batched = bits(m.embed(&ids, 1).unwrap());
    assert_eq!(batched, bits(m.embed(&ids, 2).unwrap()));
    assert_eq!(batched, bits(m.embed(&ids, 3).unwrap()));
    for (i, one) in ids.iter().enumerate() {
        assert_eq!(
            batched[i],
            bits(m.embed(std::slice::from_ref(one), 2).unwrap())[0]
        );
    }
    // bad inputs are refused by index
    let too_long = vec![101u32; 300];
    let e = m
        .embed(&[ids[0].clone(), too_long], 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("input[1] has 300 tokens") && e.contains("at most 256"),
        "{e}"
    );
    let e = m
        .embed(&[vec![101, 99_999, 102]], 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("token 99999"), "{e}");
    assert!(m.embed(&[vec![]], 1).is_err());
}

#[test]
fn a_corrupt_or_unlabelled_file_is_refused() {
    let bytes = std::fs::read(real_model("all-minilm-l6-v2.safetensors")).unwrap();
    let e = Embedder::load(ContentId::of(b"x"), &bytes[..bytes.len() / 2])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("safetensors"), "{e}");
    assert!(Embedder::load(ContentId::of(b"x"), b"not a model").is_err());
}
