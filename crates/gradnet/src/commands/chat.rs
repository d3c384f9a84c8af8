//! `gradnet chat` and `gradnet completion`: OpenAI-style requests to a node,
//! streamed or whole, with the answer's receipt checked on arrival.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use gradnet_client::NodeClient as Client;
use serde_json::{json, Value};

fn body(g: &GenArgs, extra: Value) -> Value {
    let mut b = json!({"model": g.model, "stream": g.stream});
    for (k, v) in [
        ("max_tokens", json!(g.max_tokens)),
        ("temperature", json!(g.temperature)),
        ("top_p", json!(g.top_p)),
        ("seed", json!(g.seed)),
    ] {
        if !v.is_null() {
            b[k] = v;
        }
    }
    if !g.stop.is_empty() {
        b["stop"] = json!(g.stop);
    }
    if g.stream {
        b["stream_options"] = json!({"include_usage": true});
    }
    for (k, v) in extra.as_object().into_iter().flatten() {
        b[k] = v.clone();
    }
    b
}

/// Sends one request; prints the text (as it streams, with `--stream`);
/// returns the whole answer in the non-streamed shape, receipt included.
async fn ask(c: &Client, path: &str, g: &GenArgs, body: Value) -> Result<Value> {
    let chat = path.ends_with("chat/completions");
    let answer = if g.stream {
        let mut text = String::new();
        let (mut last, mut usage) = (Value::Null, Value::Null);
        let mut out = std::io::stdout();
        c.post_sse(path, &body, |v| {
            if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                usage = u.clone();
            }
            let choice = &v["choices"][0];
            let piece = if chat {
                &choice["delta"]["content"]
            } else {
                &choice["text"]
            };
            if let Some(p) = piece.as_str() {
                text.push_str(p);
                print!("{p}");
                out.flush()?;
            }
            if !choice["finish_reason"].is_null() {
                last = v;
            }
            anyhow::Ok(())
        })
        .await?;
        println!();
        let reason = last["choices"][0]["finish_reason"].clone();
        let choice = if chat {
            json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason})
        } else {
            json!({"index": 0, "text": text, "finish_reason": reason})
        };
        json!({"id": last["id"], "model": last["model"], "choices": [choice], "usage": usage, "gradnet_receipt": last["gradnet_receipt"]})
    } else {
        let v: Value = c.post(path, &body).await?;
        let choice = &v["choices"][0];
        let text = if chat {
            &choice["message"]["content"]
        } else {
            &choice["text"]
        };
        println!("{}", text.as_str().unwrap_or_default());
        v
    };
    anyhow::ensure!(
        answer.get("gradnet_receipt").is_some(),
        "the answer carries no gradnet_receipt"
    );
    let (receipt, _) = gradnet_client::verify::verify_response(&answer, None)?;
    eprintln!(
        "[{} · {} prompt + {} completion tokens · receipt verified, node {}…]",
        answer["choices"][0]["finish_reason"]
            .as_str()
            .unwrap_or("?"),
        answer["usage"]["prompt_tokens"],
        answer["usage"]["completion_tokens"],
        &receipt.body.node[..12]
    );
    if let Some(path) = &g.save {
        std::fs::write(path, serde_json::to_vec_pretty(&answer)?)?;
        eprintln!("answer saved to {}", path.display());
    }
    Ok(answer)
}

pub(crate) async fn chat(c: &Client, a: ChatArgs) -> Result<()> {
    let mut messages = vec![];
    if let Some(s) = &a.system {
        messages.push(json!({"role": "system", "content": s}));
    }
    if let Some(m) = &a.message {
        messages.push(json!({"role": "user", "content": m}));
        ask(
            c,
            "/v1/chat/completions",
            &a.gen,
            body(&a.gen, json!({"messages": messages})),
        )
        .await?;
        return Ok(());
    }
    eprintln!("chatting with {} (Ctrl-D to end)", a.gen.model);
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        messages.push(json!({"role": "user", "content": line}));
        let answer = ask(
            c,
            "/v1/chat/completions",
            &a.gen,
            body(&a.gen, json!({"messages": messages})),
        )
        .await?;
        messages.push(answer["choices"][0]["message"].clone());
    }
}

pub(crate) async fn completion(c: &Client, a: CompletionArgs) -> Result<()> {
    ask(
        c,
        "/v1/completions",
        &a.gen,
        body(&a.gen, json!({"prompt": a.prompt})),
    )
    .await?;
    Ok(())
}

/// Sampling settings shared by `chat` and `completion`.
#[derive(Args, Clone, Debug)]
pub(crate) struct GenArgs {
    #[command(flatten)]
    pub pay: crate::commands::pay::PayArgs,
    /// Model: hub repository (`smollm2`), `repo@version`, or content id.
    #[arg(long, short)]
    pub model: String,
    /// Print tokens as they are generated.
    #[arg(long)]
    pub stream: bool,
    /// Tokens to generate at most.
    #[arg(long)]
    pub max_tokens: Option<u64>,
    /// 0 is greedy and reproducible.
    #[arg(long)]
    pub temperature: Option<f64>,
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Seed for sampling; the same seed gives the same text.
    #[arg(long)]
    pub seed: Option<i64>,
    /// Stop sequence (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Save the last full answer (with its receipt) for `gradnet receipt verify`.
    #[arg(long)]
    pub save: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    pub gen: GenArgs,
    /// One message to send; without it, chat line by line from stdin.
    #[arg(long)]
    pub message: Option<String>,
    /// System prompt.
    #[arg(long)]
    pub system: Option<String>,
}

#[derive(Args)]
pub(crate) struct CompletionArgs {
    #[command(flatten)]
    pub gen: GenArgs,
    #[arg(long, short)]
    pub prompt: String,
}
