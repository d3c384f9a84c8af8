//! Checking a node's answer offline: the receipt's signature, and that the
//! outputs (or the LLM's text) in the response are the ones the receipt
//! signs, recomputed here as the node computed them.

use gradnet_types::certificate::{Certificate, Verdict};
use gradnet_types::json::parse_inputs;
use gradnet_types::request::{llm_output_hash, output_hash};
use gradnet_types::{ContentId, DType, NamedTensors, Receipt, Tensor};
use serde_json::Value;

use crate::ClientError;

/// What a verified response proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// A bare receipt: its signature only.
    Receipt,
    /// An inference response: the signature and the outputs' hash.
    Outputs,
    /// A chat or completion answer: the signature and the text's hash.
    Answer,
}

fn bad(why: impl std::fmt::Display) -> ClientError {
    ClientError::Unverified(why.to_string())
}

/// The output hash of an inference response (`outputs` in any of its
/// encodings, typed by `output_types`), as the node computed it.
pub fn output_hash_of(resp: &Value) -> Result<ContentId, ClientError> {
    let outputs =
        parse_inputs(&resp["outputs"]).map_err(|e| bad(format!("response `outputs`: {e}")))?;
    let types = resp["output_types"]
        .as_object()
        .ok_or_else(|| bad("the response has no `output_types`"))?;
    let mut typed = NamedTensors::new();
    for (name, t) in outputs {
        let info = types
            .get(&name)
            .ok_or_else(|| bad(format!("no output_types entry for `{name}`")))?;
        let dtype: DType = serde_json::from_value(info["dtype"].clone())
            .map_err(|e| bad(format!("`{name}` dtype: {e}")))?;
        let tensor = t.to_tensor(&name, dtype).map_err(bad)?;
        let shape: Vec<usize> = serde_json::from_value(info["shape"].clone())
            .map_err(|e| bad(format!("`{name}` shape: {e}")))?;
        // an empty or scalar tensor's JSON form does not carry its full shape
        let tensor = if tensor.shape() == shape {
            tensor
        } else {
            Tensor::new(shape, tensor.into_data()).map_err(bad)?
        };
        typed.insert(name, tensor);
    }
    Ok(output_hash(&typed))
}

/// The output hash of a chat or completion answer: its text and finish
/// reason.
pub fn answer_hash(resp: &Value) -> Result<ContentId, ClientError> {
    let choice = &resp["choices"][0];
    // a tool-call answer signs the raw text it was parsed from
    let text = resp["gradnet_output"]
        .as_str()
        .or(choice["message"]["content"].as_str())
        .or(choice["text"].as_str())
        .ok_or_else(|| bad("the answer has no choices[0].message.content or choices[0].text"))?;
    let reason = choice["finish_reason"]
        .as_str()
        .ok_or_else(|| bad("the answer has no finish_reason"))?;
    Ok(llm_output_hash(text, reason))
}

/// A certificate checked offline (see `gradnet_types::certificate`), and
/// whether the response it came with holds the certified outputs.
#[derive(Debug, Clone)]
pub struct CheckedCertificate {
    /// The certificate.
    pub certificate: Certificate,
    /// What it shows.
    pub verdict: Verdict,
    /// The response's outputs (or text) hash to the agreed output hash;
    /// `false` for a bare certificate.
    pub answer_checked: bool,
}

/// The certificate in a gateway's response (`certificate` or
/// `gradnet_certificate`), or a bare certificate; `None` if there is none.
/// Checked offline: every signature, one request, the majority (QUORUM) or
/// the enclave (TEE), and that the response's answer is the certified one.
pub fn verify_certificate(v: &Value) -> Result<Option<CheckedCertificate>, ClientError> {
    let (cert, response) = match v.get("certificate").or(v.get("gradnet_certificate")) {
        Some(c) => (c, Some(v)),
        None if v.get("answers").is_some() && v.get("seed").is_some() => (v, None),
        None => return Ok(None),
    };
    let certificate: Certificate = serde_json::from_value(cert.clone())
        .map_err(|e| bad(format!("not a gradnet certificate: {e}")))?;
    let verdict = certificate
        .check()
        .map_err(|e| bad(format!("certificate: {e}")))?;
    let answer_checked = match response {
        None => false,
        // a ZKML answer's outputs are the circuit's: checked with its key
        // (`gradnet receipt verify`), not by a receipt's output hash
        Some(_) if certificate.mode == gradnet_types::InferenceMode::Zkml => false,
        Some(r) => {
            let got = if r.get("choices").is_some() {
                answer_hash(r)?
            } else {
                output_hash_of(r)?
            };
            if got != verdict.output_hash {
                return Err(bad(format!(
                    "the response's answer hashes to {got}, the certificate's majority signed {}",
                    verdict.output_hash
                )));
            }
            true
        }
    };
    Ok(Some(CheckedCertificate {
        certificate,
        verdict,
        answer_checked,
    }))
}

/// Verifies a response as a node sent it (an inference response with
/// `receipt`, an OpenAI-style answer with `gradnet_receipt`) or a bare
/// receipt; with `signer`, the receipt must be that node's.
pub fn verify_response(v: &Value, signer: Option<&str>) -> Result<(Receipt, Checked), ClientError> {
    let (receipt, response) = match v.get("receipt").or(v.get("gradnet_receipt")) {
        Some(r) => (r, Some(v)),
        None => (v, None),
    };
    let receipt: Receipt = serde_json::from_value(receipt.clone())
        .map_err(|e| bad(format!("not a gradnet receipt: {e}")))?;
    match signer {
        Some(s) => receipt.verify_from(s),
        None => receipt.verify(),
    }
    .map_err(bad)?;
    let Some(resp) = response else {
        return Ok((receipt, Checked::Receipt));
    };
    if resp.get("choices").is_some() {
        receipt.check_output(answer_hash(resp)?).map_err(bad)?;
        return Ok((receipt, Checked::Answer));
    }
    receipt.check_output(output_hash_of(resp)?).map_err(bad)?;
    if let Some(m) = resp.get("model").and_then(Value::as_str) {
        if m != receipt.body.model.to_string() {
            return Err(bad(format!(
                "the response names model {m} but the receipt signs {}",
                receipt.body.model
            )));
        }
    }
    Ok((receipt, Checked::Outputs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradnet_types::receipt::{ReceiptBody, RECEIPT_VERSION};
    use gradnet_types::{InferenceMode, NodeKey, RuntimeId};
    use serde_json::json;

    fn signed(key: &NodeKey, output: ContentId) -> Value {
        let body = ReceiptBody {
            version: RECEIPT_VERSION,
            kind: "llm".into(),
            request_hash: ContentId::of(b"request"),
            model: ContentId::of(b"model"),
            output_hash: output,
            mode: InferenceMode::Vanilla,
            runtime: RuntimeId {
                name: "gradnet-llm".into(),
                version: "0.1.0".into(),
                profile: "det-1".into(),
            },
            node: key.public_hex(),
            timestamp_ms: 1_700_000_000_000,
            charge: None,
        };
        serde_json::to_value(body.sign(key)).unwrap()
    }

    #[test]
    fn answers_receipts_and_tampering() {
        let key = NodeKey::generate();
        let hash = llm_output_hash("Paris.", "stop");
        let answer = json!({
            "choices": [{"message": {"content": "Paris."}, "finish_reason": "stop"}],
            "gradnet_receipt": signed(&key, hash),
        });
        let (r, checked) = verify_response(&answer, Some(&key.public_hex())).unwrap();
        assert_eq!((checked, r.body.output_hash), (Checked::Answer, hash));
        // the bare receipt verifies on its own
        let (_, checked) = verify_response(&answer["gradnet_receipt"], None).unwrap();
        assert_eq!(checked, Checked::Receipt);
        // another text than the signed one
        let mut other = answer.clone();
        other["choices"][0]["message"]["content"] = json!("Lyon.");
        let e = verify_response(&other, None).unwrap_err();
        assert!(matches!(e, ClientError::Unverified(_)), "{e}");
        // another node than the one expected
        let stranger = NodeKey::generate().public_hex();
        assert!(verify_response(&answer, Some(&stranger)).is_err());
        // a field of the receipt changed after signing
        let mut forged = answer.clone();
        forged["gradnet_receipt"]["timestamp_ms"] = json!(1);
        assert!(verify_response(&forged, None).is_err());
    }
}
