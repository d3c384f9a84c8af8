//! HTTP client for a node's API, with progress bars for transfers.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub(crate) struct Client {
    base: String,
    http: reqwest::Client,
}

fn bar(len: u64, msg: String) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

impl Client {
    pub(crate) fn new(base: &str) -> Self {
        Client {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Turns a non-success response into an error carrying the node's code and message.
    async fn check(&self, r: reqwest::Response) -> Result<reqwest::Response> {
        if r.status().is_success() {
            return Ok(r);
        }
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        match serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").cloned())
        {
            Some(e) => bail!(
                "{} ({status}): {}",
                e["code"].as_str().unwrap_or("error"),
                e["message"].as_str().unwrap_or("")
            ),
            None => bail!("node answered {status}: {text}"),
        }
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let r = req
            .send()
            .await
            .with_context(|| format!("cannot reach the node at {}", self.base))?;
        Ok(self.check(r).await?.json().await?)
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.get(self.url(path))).await
    }

    pub(crate) async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    /// POSTs a streaming request and hands each server-sent event's `data`
    /// to `on_data` as it arrives, up to `[DONE]`.
    pub(crate) async fn post_sse(
        &self,
        path: &str,
        body: &Value,
        mut on_data: impl FnMut(Value) -> Result<()>,
    ) -> Result<()> {
        use futures::StreamExt;
        let r = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .with_context(|| format!("cannot reach the node at {}", self.base))?;
        let mut bytes = self.check(r).await?.bytes_stream();
        let mut buf = Vec::new();
        while let Some(chunk) = bytes.next().await {
            buf.extend_from_slice(&chunk?);
            while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = buf.drain(..end + 2).collect();
                for line in String::from_utf8_lossy(&event).lines() {
                    let Some(data) = line.strip_prefix("data:") else {
                        continue;
                    };
                    let data = data.trim();
                    if data == "[DONE]" {
                        return Ok(());
                    }
                    let v: Value =
                        serde_json::from_str(data).context("a stream event is not JSON")?;
                    if let Some(e) = v.get("error") {
                        bail!(
                            "{}: {}",
                            e["code"].as_str().unwrap_or("error"),
                            e["message"].as_str().unwrap_or("")
                        );
                    }
                    on_data(v)?;
                }
            }
        }
        bail!("the stream ended before [DONE]")
    }

    /// Streams a file up as multipart, with a progress bar on stderr.
    pub(crate) async fn upload(
        &self,
        repo: &str,
        version: &str,
        file: &Path,
        name: &str,
        quiet: bool,
    ) -> Result<Value> {
        let f = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("opening {}", file.display()))?;
        let len = f.metadata().await?.len();
        let pb = if quiet {
            ProgressBar::hidden()
        } else {
            bar(len, format!("upload {name}"))
        };
        let pb2 = pb.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(f, 1 << 20).inspect(move |c| {
            if let Ok(c) = c {
                pb2.inc(c.len() as u64)
            }
        });
        let part =
            reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
                .file_name(name.to_string())
                .mime_str("application/octet-stream")?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let url = self.url(&format!("/api/v0/models/{repo}/versions/{version}/files"));
        let out = self.send(self.http.post(url).multipart(form)).await;
        pb.finish_and_clear();
        out
    }

    /// Downloads a blob to `out` (via a `.part` file), checking its content id.
    pub(crate) async fn download(
        &self,
        cid: &gradnet_types::ContentId,
        out: &Path,
        quiet: bool,
    ) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let r = self
            .http
            .get(self.url(&format!("/api/v0/blobs/{cid}")))
            .send()
            .await?;
        let r = self.check(r).await?;
        let len = r.content_length().unwrap_or(0);
        let pb = if quiet {
            ProgressBar::hidden()
        } else {
            bar(len, format!("download {}", out.display()))
        };
        let part = out.with_extension("part");
        let mut f = tokio::fs::File::create(&part)
            .await
            .with_context(|| format!("creating {}", part.display()))?;
        let mut hasher = blake3::Hasher::new();
        let mut n = 0u64;
        let mut body = r.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.context("download was cut off")?;
            hasher.update(&chunk);
            f.write_all(&chunk).await?;
            n += chunk.len() as u64;
            pb.inc(chunk.len() as u64);
        }
        f.sync_all().await?;
        pb.finish_and_clear();
        let got = gradnet_types::ContentId::from_hash(hasher.finalize());
        if got != *cid {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(anyhow!(
                "downloaded bytes hash to {got}, not {cid}; discarded"
            ));
        }
        tokio::fs::rename(&part, out).await?;
        Ok(n)
    }
}
