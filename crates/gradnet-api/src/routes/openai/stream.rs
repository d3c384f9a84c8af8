//! Server-sent events of a streamed answer.

use std::convert::Infallible;

use axum::response::sse::Event;
use futures::Stream;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::completion::Completion;
use super::{CancelOnDrop, Gen};
use crate::error::ApiError;
use gradnet_runtime::llm::Generated;

fn data(v: &Value) -> Result<Event, Infallible> {
    Ok(Event::default().data(v.to_string()))
}

/// The SSE events of a streamed answer: a role chunk per choice (chat),
/// text chunks as choices are generated (one after another), then each
/// choice's final chunk with `finish_reason` and its receipt (once the
/// charge is settled), a usage chunk when asked for, then `[DONE]`. An error
/// mid-stream ends it with an error event.
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
        /// Choices whose role chunk went out.
        opened: usize,
        first_text: bool,
        /// Characters of each choice's text sent (completion log-probability offsets).
        sent_chars: Vec<usize>,
        /// Log-probabilities of each choice sent.
        sent_lps: Vec<usize>,
        finished: Vec<Generated>,
        done: bool,
        include_usage: bool,
        _guard: CancelOnDrop,
    }
    let st = St {
        a,
        rx,
        pending: Default::default(),
        opened: 0,
        first_text: true,
        sent_chars: vec![],
        sent_lps: vec![],
        finished: vec![],
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
            let delta = |kind: &str, t: &str| {
                if kind == "chat" {
                    json!({"content": t})
                } else {
                    json!(t)
                }
            };
            let open = |st: &mut St, upto: usize| {
                while st.opened <= upto {
                    if st.a.kind == "chat" {
                        let v = st.a.chunk(
                            st.opened,
                            json!({"role": "assistant", "content": ""}),
                            Value::Null,
                            None,
                        );
                        st.pending.push_back(data(&v).unwrap());
                    }
                    st.sent_chars.push(0);
                    st.sent_lps.push(0);
                    st.opened += 1;
                }
            };
            if st.opened == 0 {
                open(&mut st, 0);
                continue;
            }
            match st.rx.recv().await {
                Some(Gen::Text(i, _, _)) if st.a.tools.is_some() => open(&mut st, i),
                Some(Gen::Text(i, t, lps)) => {
                    open(&mut st, i);
                    if st.first_text {
                        st.first_text = false;
                        let ttft = st.a.started.elapsed().as_secs_f64();
                        st.a.s.metrics.llm_ttft.observe(ttft);
                    }
                    let lp = st.a.logprobs_json(&lps, st.sent_chars[i]);
                    st.sent_chars[i] += t.chars().count();
                    st.sent_lps[i] += lps.len();
                    let v = st.a.chunk(i, delta(st.a.kind, &t), lp, None);
                    st.pending.push_back(data(&v).unwrap());
                }
                Some(Gen::Done(i, Ok(g))) => {
                    open(&mut st, i);
                    st.finished.push(g);
                }
                Some(Gen::End(charged)) => {
                    for (i, g) in st.finished.iter().enumerate() {
                        let settled = st.a.settle(g, i);
                        let receipt =
                            st.a.receipt(g, i, settled.finish, charged.as_ref().filter(|_| i == 0));
                        if st.a.tools.is_some() {
                            // held back to find tool calls: sent now in one piece
                            let held = match &settled.tool_message {
                                Some(m) if m.get("tool_calls").is_some() => {
                                    json!({"content": m["content"], "tool_calls": m["tool_calls"]})
                                }
                                Some(m) => json!({"content": m["content"]}),
                                None => json!({"content": g.text}),
                            };
                            let lp = st.a.logprobs_json(&g.logprobs, 0);
                            st.pending
                                .push_back(data(&st.a.chunk(i, held, lp, None)).unwrap());
                        } else {
                            // log-probabilities of tokens whose text was still held back
                            let sent = g.logprobs.len().min(st.sent_lps[i]);
                            let rest = &g.logprobs[sent..];
                            if !rest.is_empty() {
                                let lp = st.a.logprobs_json(rest, st.sent_chars[i]);
                                let v = st.a.chunk(i, delta(st.a.kind, ""), lp, None);
                                st.pending.push_back(data(&v).unwrap());
                            }
                        }
                        let mut last =
                            st.a.chunk(i, delta(st.a.kind, ""), Value::Null, Some(settled.finish));
                        last["gradnet_receipt"] =
                            serde_json::to_value(&receipt).unwrap_or_default();
                        if settled.tool_message.is_some() {
                            last["gradnet_output"] = json!(g.text);
                        }
                        if let Some(c) = charged.as_ref().filter(|_| i == 0) {
                            last["gradnet_charge"] = c.json(g.completion_tokens);
                        }
                        st.pending.push_back(data(&last).unwrap());
                    }
                    if st.include_usage {
                        let mut u = st.a.chunk(0, Value::Null, Value::Null, None);
                        u["choices"] = json!([]);
                        u["usage"] = Completion::usage(&st.finished);
                        st.pending.push_back(data(&u).unwrap());
                    }
                    st.pending.push_back(Event::default().data("[DONE]"));
                    st.done = true;
                }
                Some(Gen::Done(_, Err(e))) => {
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
