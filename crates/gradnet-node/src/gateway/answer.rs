//! A node's whole answer, checked before the gateway uses it: its receipt
//! must be signed with the key the registry lists for the node, and the
//! outputs (or text) in it must hash to what the receipt signs. An answer
//! that fails is garbage, and another node is asked.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};
use gradnet_api::error::HEADER_LENGTH;
use gradnet_types::Receipt;
use serde_json::Value;

use super::directory::Node;
use super::upstream::{Answer, Failure};

/// An answer read whole and checked.
pub struct Checked {
    /// The node's HTTP status.
    pub status: u16,
    /// The node's headers.
    pub headers: HeaderMap,
    /// The body as the node sent it.
    pub body: Bytes,
    /// Its receipt, checked.
    pub receipt: Receipt,
}

/// How much of an answer to check on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The receipt's signature and the outputs it signs.
    Full,
    /// Only that the receipt names the node's key: a certificate checks
    /// every signature once, and the answer used is checked with [`outputs`].
    Signer,
}

/// Reads `answer` whole and checks it against `node`.
pub async fn read(node: &Node, answer: Answer, check: Check) -> Result<Checked, Failure> {
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let body = answer
        .bytes()
        .await
        .map_err(|e| Failure::Unreachable(format!("the answer broke off: {e}")))?;
    let key = hex::encode(node.record.signing_key);
    let garbage = |m: String| Failure::Garbage(m);
    let receipt = match json_len(&headers) {
        // binary outputs: the receipt in the JSON head, checked for its signature
        Some(n) => {
            let head: Value = serde_json::from_slice(body.get(..n).unwrap_or_default())
                .map_err(|e| garbage(format!("not JSON: {e}")))?;
            let r: Receipt = serde_json::from_value(head["receipt"].clone())
                .map_err(|e| garbage(format!("no receipt: {e}")))?;
            r.verify_from(&key).map_err(|e| garbage(e.to_string()))?;
            r
        }
        None if check == Check::Full => {
            let v: Value =
                serde_json::from_slice(&body).map_err(|e| garbage(format!("not JSON: {e}")))?;
            gradnet_client::verify::verify_response(&v, Some(&key))
                .map_err(|e| garbage(e.to_string()))?
                .0
        }
        None => {
            #[derive(serde::Deserialize)]
            struct Signed {
                #[serde(alias = "gradnet_receipt")]
                receipt: Receipt,
            }
            let r = serde_json::from_slice::<Signed>(&body)
                .map_err(|e| garbage(format!("no receipt: {e}")))?
                .receipt;
            if !r.body.node.eq_ignore_ascii_case(&key) {
                return Err(garbage(format!(
                    "its receipt is signed by {}, not by the node's registered key {key}",
                    r.body.node
                )));
            }
            r
        }
    };
    Ok(Checked {
        status,
        headers,
        body,
        receipt,
    })
}

/// Checks that an answer read with [`Check::Signer`] holds the outputs
/// (or text) its receipt signs.
pub fn outputs(c: &Checked) -> Result<(), Failure> {
    if json_len(&c.headers).is_some() {
        return Ok(());
    }
    let v: Value =
        serde_json::from_slice(&c.body).map_err(|e| Failure::Garbage(format!("not JSON: {e}")))?;
    let got = if v.get("choices").is_some() {
        gradnet_client::verify::answer_hash(&v)
    } else {
        gradnet_client::verify::output_hash_of(&v)
    }
    .map_err(|e| Failure::Garbage(e.to_string()))?;
    c.receipt
        .check_output(got)
        .map_err(|e| Failure::Garbage(e.to_string()))
}

fn json_len(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(HEADER_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The answer with one more top-level field (`name`: `value`), in its JSON
/// (or the JSON head of a binary answer, whose length header follows).
pub fn with_field(c: &mut Checked, name: &str, value: &Value) {
    let n = json_len(&c.headers).unwrap_or(c.body.len());
    let Some(close) = c.body[..n].iter().rposition(|&b| b == b'}') else {
        return;
    };
    let mut out = Vec::with_capacity(c.body.len() + 1024);
    out.extend_from_slice(&c.body[..close]);
    out.push(b',');
    out.extend(serde_json::to_vec(name).unwrap_or_default());
    out.push(b':');
    out.extend(serde_json::to_vec(value).unwrap_or_default());
    let head = out.len() + (n - close);
    out.extend_from_slice(&c.body[close..]);
    if c.headers.contains_key(HEADER_LENGTH) {
        c.headers.insert(HEADER_LENGTH, HeaderValue::from(head));
    }
    c.headers.remove("content-length");
    c.body = Bytes::from(out);
}
