//! Streamed uploads: into a repository's version (`POST
//! /api/v0/models/{name}/versions/{ver}/files`), or as a bare blob for a
//! version published on chain (`POST /api/v0/blobs?name=`). The writer must
//! be allowed, the file must fit the size limit and the writer's quota, and
//! a signed upload's bytes must hash to what was signed. A `.onnx` file must
//! parse as ONNX, a `.gguf` file must load as an LLM (tokenizer, template,
//! weights within the budget), or it is refused. When any check fails,
//! nothing is listed and no quota is used.

use axum::extract::{Extension, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use gradnet_hub::{BlobInfo, HubError};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Signed;
use crate::error::ApiError;
use crate::AppState;

#[derive(Deserialize)]
pub(crate) struct UploadQuery {
    /// File name to store under; defaults to the multipart part's file name.
    name: Option<String>,
}

/// A file received whole and checked.
struct Received {
    file: String,
    blob: BlobInfo,
    report: Option<gradnet_runtime::ModelReport>,
}

fn cut(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::bad_request(
        "upload_failed",
        format!("upload was cut off or malformed: {e}"),
    )
}

/// Streams the first file part of `mp` into the hub; `allowed` checks the
/// file's name (and where it goes) before a byte of it is stored.
async fn receive(
    s: &AppState,
    by: &Signed,
    name: Option<String>,
    headers: &HeaderMap,
    mut mp: Multipart,
    allowed: impl Fn(&str) -> Result<(), ApiError>,
) -> Result<Received, ApiError> {
    if by.file_hash.is_some() && name.is_none() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "a signed upload names its file with ?name= (the multipart file name is not signed)",
        ));
    }
    if let Some(f) = &name {
        allowed(f)?;
    }
    let mut field = loop {
        match mp.next_field().await.map_err(cut)? {
            Some(f) if f.file_name().is_some() || f.name() == Some("file") => break f,
            Some(_) => continue,
            None => {
                return Err(ApiError::bad_request(
                    "upload_failed",
                    "multipart body has no file part",
                ))
            }
        }
    };
    let file = match name {
        Some(n) => n,
        None => {
            let n = field.file_name().map(str::to_owned).ok_or_else(|| {
                ApiError::bad_request(
                    "upload_failed",
                    "no file name: set the part's filename or ?name=",
                )
            })?;
            allowed(&n)?;
            n
        }
    };
    gradnet_types::request::check_name(&file)
        .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
    // the file is allowed where it goes; now its size (as declared) and the
    // writer's quota, still before a byte of it is stored
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let max_blob = s.hub.config().max_blob_size;
    if declared.is_some_and(|n| n > max_blob + 64 * 1024) {
        return Err(HubError::TooLarge { limit: max_blob }.into());
    }
    let quota_left = s
        .hub
        .quota_left(&by.writer, declared.unwrap_or(0).saturating_sub(64 * 1024))?;
    let mut w = s.hub.writer_with_limit(quota_left)?;
    let mut hasher = by.file_hash.map(|_| alloy_primitives::Keccak256::new());
    while let Some(chunk) = field.chunk().await.map_err(cut)? {
        if let Some(h) = hasher.as_mut() {
            h.update(&chunk);
        }
        w.write(&chunk).await.map_err(|e| match e {
            // the writer's limit was the quota, not the blob size limit
            HubError::TooLarge { limit } if limit < max_blob => {
                match s.hub.quota_left(&by.writer, limit + 1) {
                    Err(q) => ApiError::from(q),
                    Ok(_) => ApiError::from(HubError::TooLarge { limit }),
                }
            }
            e => e.into(),
        })?;
    }
    if let (Some(h), Some(signed)) = (hasher, by.file_hash) {
        let actual = h.finalize();
        if actual != signed {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "body_hash_mismatch",
                gradnet_client::auth::AuthError::BodyHash { signed, actual }.to_string(),
            ));
        }
    }
    let blob = w.finish().await?;
    // what this node can do with an ONNX model goes back with the entry; a
    // file that is not valid ONNX is refused
    let mut report = None;
    if file.ends_with(".onnx") {
        let bytes = s.hub.read_all(&blob.cid).await?;
        let rt = s.runtime.clone();
        let (_, r) = tokio::task::spawn_blocking(move || rt.inspect(blob.cid, &bytes)).await??;
        report = Some(r);
    } else if file.ends_with(".gguf") {
        let bytes = s.hub.read_all(&blob.cid).await?;
        let llm = s.llm.clone();
        // loaded now, it is also warm for the first request
        tokio::task::spawn_blocking(move || llm.load(blob.cid, &bytes)).await??;
    } else if file.ends_with(".safetensors") {
        // an embedding model must load; other safetensors files are data
        let bytes = s.hub.read_all(&blob.cid).await?;
        if gradnet_runtime::embed::is_embedding_file(&bytes) {
            let embed = s.embed.clone();
            tokio::task::spawn_blocking(move || embed.load(blob.cid, &bytes)).await??;
        }
    }
    Ok(Received { file, blob, report })
}

/// `body` with the runtime report added, as uploads answer.
fn with_report(
    body: impl serde::Serialize,
    report: Option<gradnet_runtime::ModelReport>,
) -> Result<Value, ApiError> {
    let mut body = serde_json::to_value(body).map_err(|e| ApiError::internal(e.to_string()))?;
    if let (Some(r), Some(obj)) = (report, body.as_object_mut()) {
        obj.insert(
            "runtime".into(),
            serde_json::to_value(r).map_err(|e| ApiError::internal(e.to_string()))?,
        );
    }
    Ok(body)
}

/// Uploads a file into `name@ver` (its owner or a collaborator).
pub(crate) async fn upload(
    State(s): State<AppState>,
    Path((name, ver)): Path<(String, String)>,
    Query(q): Query<UploadQuery>,
    Extension(by): Extension<Signed>,
    headers: HeaderMap,
    mp: Multipart,
) -> Result<impl IntoResponse, ApiError> {
    // names kept on chain are refused at once; the writer's repository, the
    // version and its room are checked (`allowed`) before the file's bytes
    super::hub::local_names(&s)?;
    let allowed = |f: &str| Ok(s.hub.check_upload(&name, &ver, f, &by.writer)?);
    let r = receive(&s, &by, q.name, &headers, mp, allowed).await?;
    let entry = s.hub.add_file(&name, &ver, &r.file, r.blob, &by.writer)?;
    Ok((StatusCode::CREATED, Json(with_report(entry, r.report)?)))
}

/// `POST /api/v0/blobs?name=`: stores a file by its content id alone (for a
/// version published on chain), counted against the writer's quota.
pub(crate) async fn upload_blob(
    State(s): State<AppState>,
    Query(q): Query<UploadQuery>,
    Extension(by): Extension<Signed>,
    headers: HeaderMap,
    mp: Multipart,
) -> Result<impl IntoResponse, ApiError> {
    let r = receive(&s, &by, q.name, &headers, mp, |_| Ok(())).await?;
    s.hub.charge_upload(&by.writer, r.blob.size)?;
    let body = serde_json::json!({"name": r.file, "cid": r.blob.cid, "size": r.blob.size});
    Ok((StatusCode::CREATED, Json(with_report(body, r.report)?)))
}
