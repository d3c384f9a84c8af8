//! `/v1/embeddings` with the real all-MiniLM-L6-v2: OpenAI's shapes, the
//! receipt's output hash over the vectors, batch invariance, and refusals.

use serde_json::{json, Value};

use crate::common::*;

#[tokio::test]
async fn minilm_embeddings_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let base = node.url.clone();
    let bytes = std::fs::read(real_model("all-minilm-l6-v2.safetensors")).unwrap();
    publish(&base, "minilm", "all-minilm-l6-v2.safetensors", bytes).await;
    let embed = |body: Value| {
        let base = base.clone();
        async move { post(&format!("{base}/v1/embeddings"), body).await }
    };
    let texts = [
        "A cat sits on the mat.",
        "A kitten is sitting on a rug.",
        "Stock markets fell sharply today.",
    ];
    let (s, r) = embed(json!({"model": "minilm", "input": texts})).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["object"], "list");
    let vectors: Vec<Vec<f32>> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            assert_eq!(
                (d["object"].as_str(), d["index"].as_u64()),
                (Some("embedding"), Some(i as u64))
            );
            serde_json::from_value(d["embedding"].clone()).unwrap()
        })
        .collect();
    assert!(vectors.iter().all(|v| v.len() == 384));
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(
        (cos(&vectors[0], &vectors[0]) - 1.0).abs() < 1e-5,
        "normalized"
    );
    assert!(cos(&vectors[0], &vectors[1]) > cos(&vectors[0], &vectors[2]) + 0.3);
    assert!(r["usage"]["prompt_tokens"].as_u64().unwrap() > 10, "{r}");

    // the receipt signs the vectors as one [inputs, 384] f32 tensor
    let receipt: gradnet_types::Receipt =
        serde_json::from_value(r["gradnet_receipt"].clone()).unwrap();
    receipt.verify().unwrap();
    assert_eq!(receipt.body.kind, "embedding");
    let mut t = gradnet_types::NamedTensors::new();
    t.insert(
        "embeddings".into(),
        gradnet_types::Tensor::new(
            vec![3, 384],
            gradnet_types::TensorData::F32(vectors.concat()),
        )
        .unwrap(),
    );
    assert_eq!(
        receipt.body.output_hash,
        gradnet_types::request::output_hash(&t)
    );

    // one text alone: the same bits as in the batch; base64 is the same floats
    let (_, one) =
        embed(json!({"model": "minilm", "input": texts[1], "encoding_format": "base64"})).await;
    let raw = data_encoding::BASE64
        .decode(one["data"][0]["embedding"].as_str().unwrap().as_bytes())
        .unwrap();
    let alone: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(alone, vectors[1]);
    // token ids in, and `dimensions` equal to the model's
    let (s, ids) =
        embed(json!({"model": "minilm", "input": [[101, 7592, 102]], "dimensions": 384})).await;
    assert_eq!(s, 200, "{ids}");

    for (body, status, needle) in [
        (
            json!({"model": "minilm", "input": "x", "dimensions": 128}),
            400,
            "384-dimensional vectors only",
        ),
        (
            json!({"model": "minilm", "input": "x", "encoding_format": "hex"}),
            400,
            "encoding_format `hex`",
        ),
        (
            json!({"model": "minilm", "input": []}),
            400,
            "`input` is empty",
        ),
        (
            json!({"model": "minilm", "input": ["ok", ""]}),
            400,
            "input[1] is empty",
        ),
        (
            json!({"model": "minilm", "input": [[101, -3]]}),
            400,
            "input[0] must be token ids",
        ),
        (
            json!({"model": "minilm", "input": [[101, 999999, 102]]}),
            400,
            "token 999999",
        ),
        (
            json!({"model": "minilm", "input": "word ".repeat(400)}),
            400,
            "at most 256",
        ),
        (
            json!({"model": "minilm", "input": 5}),
            400,
            "`input` must be",
        ),
        (
            json!({"model": "minilm", "input": "x", "frobnicate": 1}),
            400,
            "frobnicate",
        ),
        (
            json!({"model": "nope", "input": "x"}),
            404,
            "`nope` does not exist",
        ),
    ] {
        let (s, v) = embed(body.clone()).await;
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(s, status, "{body} → {v}");
        assert!(
            msg.contains(needle),
            "{body}: `{msg}` should mention `{needle}`"
        );
    }
    // still serving
    let (s, _) = embed(json!({"model": "minilm", "input": "still here"})).await;
    assert_eq!(s, 200);
}
