//! A node's HTTP API: JSON requests, server-sent event streams, and file
//! transfers with progress bars (uploads streamed as multipart, downloads
//! checked against their content id).

use std::path::Path;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ClientError;

type Result<T> = std::result::Result<T, ClientError>;

/// A node's API at one base URL.
#[derive(Debug, Clone)]
pub struct NodeClient {
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

impl NodeClient {
    /// A client for the node at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        NodeClient {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// The full URL of `path` on this node.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn unreachable(&self, source: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base.clone(),
            source,
        }
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
            Some(e) => Err(ClientError::Api {
                status: status.as_u16(),
                code: e["code"].as_str().unwrap_or("error").to_string(),
                message: e["message"].as_str().unwrap_or("").to_string(),
            }),
            None => Err(ClientError::Api {
                status: status.as_u16(),
                code: "http".into(),
                message: text,
            }),
        }
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let r = req.send().await.map_err(|e| self.unreachable(e))?;
        self.check(r)
            .await?
            .json()
            .await
            .map_err(|e| self.unreachable(e))
    }

    /// GET `path`, its JSON body deserialized.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.get(self.url(path))).await
    }

    /// POST a JSON body to `path`, its JSON answer deserialized.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    /// POSTs a streaming request and hands each server-sent event's `data`
    /// to `on_data` as it arrives, up to `[DONE]`.
    pub async fn post_sse<E: From<ClientError>>(
        &self,
        path: &str,
        body: &Value,
        mut on_data: impl FnMut(Value) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        use futures::StreamExt;
        let r = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let mut bytes = self.check(r).await?.bytes_stream();
        let mut buf = Vec::new();
        while let Some(chunk) = bytes.next().await {
            buf.extend_from_slice(&chunk.map_err(|e| self.unreachable(e))?);
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
                    let v: Value = serde_json::from_str(data).map_err(|e| {
                        ClientError::Invalid(format!("a stream event is not JSON: {e}"))
                    })?;
                    if let Some(e) = v.get("error") {
                        return Err(ClientError::Api {
                            status: 200,
                            code: e["code"].as_str().unwrap_or("error").to_string(),
                            message: e["message"].as_str().unwrap_or("").to_string(),
                        }
                        .into());
                    }
                    on_data(v)?;
                }
            }
        }
        Err(ClientError::Invalid("the stream ended before [DONE]".into()).into())
    }

    /// Streams a file up as multipart, with a progress bar on stderr.
    pub async fn upload(
        &self,
        repo: &str,
        version: &str,
        file: &Path,
        name: &str,
        quiet: bool,
    ) -> Result<Value> {
        let f = tokio::fs::File::open(file)
            .await
            .map_err(|e| ClientError::io(file.display(), e))?;
        let len = f
            .metadata()
            .await
            .map_err(|e| ClientError::io(file.display(), e))?
            .len();
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
                .mime_str("application/octet-stream")
                .map_err(|e| self.unreachable(e))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let url = self.url(&format!("/api/v0/models/{repo}/versions/{version}/files"));
        let out = self.send(self.http.post(url).multipart(form)).await;
        pb.finish_and_clear();
        out
    }

    /// Downloads a blob to `out` (via a `.part` file), checking its content id.
    pub async fn download(
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
            .await
            .map_err(|e| self.unreachable(e))?;
        let r = self.check(r).await?;
        let len = r.content_length().unwrap_or(0);
        let pb = if quiet {
            ProgressBar::hidden()
        } else {
            bar(len, format!("download {}", out.display()))
        };
        let part = out.with_extension("part");
        let io = |e| ClientError::io(part.display(), e);
        let mut f = tokio::fs::File::create(&part).await.map_err(io)?;
        let mut hasher = blake3::Hasher::new();
        let mut n = 0u64;
        let mut body = r.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.unreachable(e))?;
            hasher.update(&chunk);
            f.write_all(&chunk).await.map_err(io)?;
            n += chunk.len() as u64;
            pb.inc(chunk.len() as u64);
        }
        f.sync_all().await.map_err(io)?;
        pb.finish_and_clear();
        let got = gradnet_types::ContentId::from_hash(hasher.finalize());
        if got != *cid {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(ClientError::Invalid(format!(
                "downloaded bytes hash to {got}, not {cid}; discarded"
            )));
        }
        tokio::fs::rename(&part, out).await.map_err(io)?;
        Ok(n)
    }
}
