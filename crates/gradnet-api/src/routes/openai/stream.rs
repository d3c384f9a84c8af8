//! Server-sent events of a streamed answer.

use std::convert::Infallible;

use axum::response::sse::Event;
use futures::Stream;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::completion::Completion;
use super::{CancelOnDrop, Gen};
use crate::error::ApiError;

fn data(v: &Value) -> Result<Event, Infallible> {
    Ok(Event::default().data(v.to_string()))
}

/// The SSE events of a streamed answer: a role chunk (chat), text chunks, a
/// final chunk with `finish_reason` and the receipt, a usage chunk when
/// asked for, then `[DONE]`. An error mid-stream ends it with an error event.
pub(super) fn stream_events(
    a: Completion,
    rx: mpsc::UnboundedReceiver<Gen>,
    include_usage: bool,
    guard: CancelOnDrop,
) -> impl Stream<Item = Result<Event, Infallible>> {
    struct St {
        a: Completion,
        rx: mpsc::UnboundedReceiver<Gen>,
        pending: std::collections::VecDeque<Event>,
        first: bool,
        done: bool,
        include_usage: bool,
        _guard: CancelOnDrop,
    }
    let st = St {
        a,
        rx,
        pending: Default::default(),
        first: true,
        done: false,
        include_usage,
        _guard: guard,
    };
    futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(e) = st.pending.pop_front() {
                return Some((Ok(e), st));
            }
            if st.done {
                return None;
            }
            let delta = |t: &str| {
                if st.a.kind == "chat" {
                    json!({"content": t})
                } else {
                    json!(t)
                }
            };
            if st.first && st.a.kind == "chat" {
                st.first = false;
                let v =
                    st.a.chunk(json!({"role": "assistant", "content": ""}), None);
                st.pending.push_back(data(&v).unwrap());
                continue;
            }
            match st.rx.recv().await {
                Some(Gen::Text(_)) if st.a.tools => {}
                Some(Gen::Text(t)) => {
                    if st.first {
                        st.first = false;
                        let ttft = st.a.started.elapsed().as_secs_f64();
                        st.a.s.metrics.llm_ttft.observe(ttft);
                    }
                    let v = st.a.chunk(delta(&t), None);
                    st.pending.push_back(data(&v).unwrap());
                }
                Some(Gen::Done(Ok(g), charged)) => {
                    let settled = st.a.settle(&g);
                    let receipt = st.a.receipt(&g, settled.finish, charged.as_ref());
                    if st.a.tools {
                        // held back to find tool calls: sent now in one piece
                        let held = match &settled.tool_message {
                            Some(m) => {
                                json!({"content": m["content"], "tool_calls": m["tool_calls"]})
                            }
                            None => json!({"content": g.text}),
                        };
                        st.pending.push_back(data(&st.a.chunk(held, None)).unwrap());
                    }
                    let mut last = st.a.chunk(delta(""), Some(settled.finish));
                    last["gradnet_receipt"] = serde_json::to_value(&receipt).unwrap_or_default();
                    if settled.tool_message.is_some() {
                        last["gradnet_output"] = json!(g.text);
                    }
                    if let Some(c) = &charged {
                        last["gradnet_charge"] = c.json(g.completion_tokens);
                    }
                    st.pending.push_back(data(&last).unwrap());
                    if st.include_usage {
                        let mut u = st.a.chunk(Value::Null, None);
                        u["choices"] = json!([]);
                        u["usage"] = Completion::usage(&g);
                        st.pending.push_back(data(&u).unwrap());
                    }
                    st.pending.push_back(Event::default().data("[DONE]"));
                    st.done = true;
                }
                Some(Gen::Done(Err(e), _)) => {
                    let e = ApiError::from(e);
                    let v =
                        json!({"error": {"code": e.code, "message": e.message, "type": e.kind()}});
                    st.pending.push_back(data(&v).unwrap());
                    st.done = true;
                }
                None => return None,
            }
        }
    })
}
