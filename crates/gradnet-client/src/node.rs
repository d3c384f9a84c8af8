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

/// A node's API at one base URL; with a key ([`NodeClient::with_key`]) it
/// signs its writes ([`crate::auth`]), with a session token
/// ([`NodeClient::with_session`], [`NodeClient::sign_in`]) it sends that
/// instead.
#[derive(Debug, Clone)]
pub struct NodeClient {
    base: String,
    http: reqwest::Client,
    key: Option<alloy_primitives::B256>,
    /// A session token the node issued, sent instead of signing.
    session: Option<String>,
    /// Pays a charging node's inference (`402 Payment Required`).
    payer: Option<std::sync::Arc<crate::pay::Payer>>,
    /// The node's chain id, asked once from `/health`.
    chain_id: std::sync::Arc<tokio::sync::OnceCell<u64>>,
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
            key: None,
            session: None,
            payer: None,
            chain_id: Default::default(),
        }
    }

    /// The same client, signing its writes with the account of `key`.
    pub fn with_key(mut self, key: alloy_primitives::B256) -> Self {
        self.key = Some(key);
        self
    }

    /// The same client, authorizing its writes with a session token the
    /// node issued (`gns1…`), not with a signature per request.
    pub fn with_session(mut self, token: impl Into<String>) -> Self {
        self.session = Some(token.into());
        self
    }

    /// The same client, paying a charging node's inference with `payer`'s
    /// vouchers.
    pub fn with_payer(mut self, payer: std::sync::Arc<crate::pay::Payer>) -> Self {
        self.payer = Some(payer);
        self
    }

    /// Sends what `build` makes, with the payer's voucher; a 402 is
    /// answered with a new voucher and the request sent once more.
    async fn paid(&self, build: impl Fn() -> reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let with = |v: Option<String>| match v {
            Some(v) => build().header(crate::x402::PAYMENT_SIGNATURE, v),
            None => build(),
        };
        let payer = self.payer.as_ref();
        let mut r = with(payer.and_then(|p| p.current()))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        // a first 402 does not know the payer; a second one (a voucher
        // below what the node holds) names what it has: twice at most
        for _ in 0..2 {
            let (Some(payer), reqwest::StatusCode::PAYMENT_REQUIRED) = (payer, r.status()) else {
                return Ok(r);
            };
            let Some(required) = r
                .headers()
                .get(crate::x402::PAYMENT_REQUIRED)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
            else {
                return Ok(r);
            };
            // a refusal that a new voucher cannot fix is the node's answer
            let body = r.text().await.unwrap_or_default();
            let code: Value = serde_json::from_str(&body).unwrap_or_default();
            let fixable = matches!(
                code["error"]["code"].as_str(),
                Some(
                    "payment_required"
                        | "insufficient_authorization"
                        | "stale_voucher"
                        | "voucher_expired"
                )
            );
            if !fixable {
                return Err(api_error(402, &body));
            }
            let header = payer.answer(&required)?;
            r = with(Some(header))
                .send()
                .await
                .map_err(|e| self.unreachable(e))?;
        }
        Ok(r)
    }

    /// Signs in with this client's key: the node answers with a session
    /// token (`token`, `account`, `expires_at`) valid for `ttl_secs` (the
    /// node's default when `None`).
    pub async fn sign_in(&self, ttl_secs: Option<u64>) -> Result<Value> {
        if self.key.is_none() {
            return Err(ClientError::Invalid("signing in needs a key".into()));
        }
        let signer = NodeClient {
            session: None,
            ..self.clone()
        };
        let body = match ttl_secs {
            Some(t) => serde_json::json!({ "ttl_secs": t }),
            None => serde_json::json!({}),
        };
        signer.post("/api/v0/sessions", &body).await
    }

    /// This client with a fresh session from [`NodeClient::sign_in`].
    pub async fn signed_in(self, ttl_secs: Option<u64>) -> Result<Self> {
        let r = self.sign_in(ttl_secs).await?;
        let token = r["token"]
            .as_str()
            .ok_or_else(|| ClientError::Invalid("the sign-in answer has no token".into()))?
            .to_string();
        Ok(self.with_session(token))
    }

    /// The account this client signs for, if it has a key.
    pub fn account(&self) -> Option<alloy_primitives::Address> {
        self.key.and_then(|k| crate::wallet::address(&k).ok())
    }

    /// The chain id the node checks signatures against (from `/health`).
    pub async fn chain_id(&self) -> Result<u64> {
        self.chain_id
            .get_or_try_init(|| async {
                let h: Value = self.get("/health").await?;
                h["chain_id"].as_u64().ok_or_else(|| {
                    ClientError::Invalid("the node's /health names no chain_id".into())
                })
            })
            .await
            .copied()
    }

    /// Adds the signature headers for `method path_q` with `body_hash`, when
    /// this client has a key.
    async fn signed(
        &self,
        mut req: reqwest::RequestBuilder,
        method: &str,
        path_q: &str,
        body_hash: alloy_primitives::B256,
    ) -> Result<reqwest::RequestBuilder> {
        // reads and inference need no signature; hub writes do
        if !path_q.starts_with("/api/v0/") {
            return Ok(req);
        }
        if let Some(token) = &self.session {
            return Ok(req.bearer_auth(token));
        }
        let Some(key) = self.key else {
            return Ok(req);
        };
        let chain_id = self.chain_id().await?;
        let h = crate::auth::sign(&key, chain_id, method, path_q, body_hash)?;
        for (name, value) in h.pairs() {
            req = req.header(name, value);
        }
        Ok(req)
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
        Err(api_error(status.as_u16(), &text))
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

    /// POST a JSON body to `path` (signed when this client has a key), its
    /// JSON answer deserialized; inference is paid when the node charges
    /// and this client has a payer.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T> {
        let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
        if path.starts_with("/v1/") {
            let r = self
                .paid(|| {
                    self.http
                        .post(self.url(path))
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(bytes.clone())
                })
                .await?;
            return self
                .check(r)
                .await?
                .json()
                .await
                .map_err(|e| self.unreachable(e));
        }
        let hash = crate::auth::body_hash(&bytes);
        let req = self
            .http
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
        self.send(self.signed(req, "POST", path, hash).await?).await
    }

    /// DELETE `path` (signed when this client has a key).
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let req = self.http.delete(self.url(path));
        let hash = crate::auth::body_hash(b"");
        self.send(self.signed(req, "DELETE", path, hash).await?)
            .await
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
            .paid(|| self.http.post(self.url(path)).json(body))
            .await?;
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

    /// Streams a file up as multipart, with a progress bar on stderr (signed
    /// over the file's keccak256 when this client has a key).
    pub async fn upload(
        &self,
        repo: &str,
        version: &str,
        file: &Path,
        name: &str,
        quiet: bool,
    ) -> Result<Value> {
        let path = format!("/api/v0/models/{repo}/versions/{version}/files?name={name}");
        self.upload_to(&path, file, name, quiet).await
    }

    /// Stores a file by its content id alone (`POST /api/v0/blobs`), for a
    /// version published on chain; its `cid` and `size`.
    pub async fn upload_blob(&self, file: &Path, name: &str, quiet: bool) -> Result<Value> {
        self.upload_to(&format!("/api/v0/blobs?name={name}"), file, name, quiet)
            .await
    }

    async fn upload_to(&self, path: &str, file: &Path, name: &str, quiet: bool) -> Result<Value> {
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
        let mut req = self.http.post(self.url(path)).multipart(form);
        if self.session.is_some() {
            req = self.signed(req, "POST", path, Default::default()).await?;
        } else if self.key.is_some() {
            let hash = file_hash(file).await?;
            req = self
                .signed(req, "POST", path, hash)
                .await?
                .header(crate::auth::BODY_HASH_HEADER, hash.to_string());
        }
        let out = self.send(req).await;
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

/// The keccak256 of a file's bytes, read in 1 MiB blocks.
async fn file_hash(file: &Path) -> Result<alloy_primitives::B256> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(file)
        .await
        .map_err(|e| ClientError::io(file.display(), e))?;
    let mut h = alloy_primitives::Keccak256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| ClientError::io(file.display(), e))?;
        if n == 0 {
            return Ok(h.finalize());
        }
        h.update(&buf[..n]);
    }
}

/// The error a node answered with (its code and message, or the text).
fn api_error(status: u16, text: &str) -> ClientError {
    match serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("error").cloned())
    {
        Some(e) => ClientError::Api {
            status,
            code: e["code"].as_str().unwrap_or("error").to_string(),
            message: e["message"].as_str().unwrap_or("").to_string(),
        },
        None => ClientError::Api {
            status,
            code: "http".into(),
            message: text.to_string(),
        },
    }
}
