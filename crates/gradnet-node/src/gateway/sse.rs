//! A whole OpenAI answer as a stream, for QUORUM answers a client asked to
//! stream: nodes answer whole (their answers must be compared first), and
//! the agreed one is sent as the chunks a streamed answer would have had,
//! the receipt and certificate in the last.

use axum::response::sse::{Event, Sse};
use futures::stream;
use serde_json::{json, Value};

type Events = Sse<stream::Iter<std::vec::IntoIter<Result<Event, std::convert::Infallible>>>>;

/// The events of a whole answer.
pub fn from_whole(body: &[u8]) -> Events {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    let chat = v["object"] == "chat.completion";
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let choice = &v["choices"][0];
    let head = |choices: Value| {
        json!({"id": v["id"], "object": object, "created": v["created"], "model": v["model"],
               "system_fingerprint": v["system_fingerprint"], "choices": choices})
    };
    let first = if chat {
        let mut delta = choice["message"].clone();
        if delta.get("role").is_none() {
            delta["role"] = json!("assistant");
        }
        head(json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]))
    } else {
        head(json!([{"index": 0, "text": choice["text"], "logprobs": null, "finish_reason": null}]))
    };
    let mut last = if chat {
        head(
            json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": choice["finish_reason"]}]),
        )
    } else {
        head(
            json!([{"index": 0, "text": "", "logprobs": null, "finish_reason": choice["finish_reason"]}]),
        )
    };
    for k in [
        "usage",
        "gradnet_receipt",
        "gradnet_certificate",
        "gradnet_output",
        "gradnet_charge",
    ] {
        if let Some(x) = v.get(k) {
            last[k] = x.clone();
        }
    }
    let events = vec![
        Ok(Event::default().data(first.to_string())),
        Ok(Event::default().data(last.to_string())),
        Ok(Event::default().data("[DONE]")),
    ];
    Sse::new(stream::iter(events))
}
