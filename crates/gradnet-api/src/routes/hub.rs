//! Hub REST: repositories, versions, streamed uploads, ranged downloads.

use axum::body::Body;
use axum::extract::{Extension, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gradnet_hub::{FileEntry, Repo, RepoSpec, VersionInfo};
use gradnet_types::ContentId;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Signed;
use crate::error::{ApiError, ApiJson};
use crate::AppState;

pub(crate) async fn create_repo(
    State(s): State<AppState>,
    Extension(by): Extension<Signed>,
    ApiJson(spec): ApiJson<RepoSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let repo = s.hub.create_repo(spec, &by.writer)?;
    Ok((StatusCode::CREATED, Json(repo)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountBody {
    /// An account, `0x` and 40 hex digits.
    account: String,
}

/// The account named in a body or path, checksummed.
fn account(a: &str) -> Result<String, ApiError> {
    a.trim()
        .parse::<alloy_primitives::Address>()
        .map(|a| a.to_checksum(None))
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_account",
                format!("`{a}` is not an account (0x and 40 hex digits)"),
            )
        })
}

pub(crate) async fn add_collaborator(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Extension(by): Extension<Signed>,
    ApiJson(b): ApiJson<AccountBody>,
) -> Result<Json<Repo>, ApiError> {
    Ok(Json(s.hub.add_collaborator(
        &name,
        &account(&b.account)?,
        &by.writer,
    )?))
}

pub(crate) async fn remove_collaborator(
    State(s): State<AppState>,
    Path((name, who)): Path<(String, String)>,
    Extension(by): Extension<Signed>,
) -> Result<Json<Repo>, ApiError> {
    Ok(Json(s.hub.remove_collaborator(
        &name,
        &account(&who)?,
        &by.writer,
    )?))
}

pub(crate) async fn transfer(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Extension(by): Extension<Signed>,
    ApiJson(b): ApiJson<AccountBody>,
) -> Result<Json<Repo>, ApiError> {
    Ok(Json(s.hub.transfer(
        &name,
        &account(&b.account)?,
        &by.writer,
    )?))
}

/// An account's standing on this node: bytes stored and its quota.
pub(crate) async fn account_usage(
    State(s): State<AppState>,
    Path(who): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let writer = gradnet_hub::Writer::Account(account(&who)?);
    Ok(Json(json!({
        "account": writer.display(),
        "bytes_stored": s.hub.usage(&writer)?,
        "quota_bytes": s.hub.config().quota_bytes,
    })))
}

pub(crate) async fn list_repos(State(s): State<AppState>) -> Result<Json<Vec<Repo>>, ApiError> {
    Ok(Json(s.hub.list_repos()?))
}

pub(crate) async fn get_repo(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let repo = s.hub.repo(&name)?;
    let versions = s.hub.list_versions(&name)?;
    Ok(Json(json!({"repo": repo, "versions": versions})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewVersion {
    #[serde(default)]
    notes: String,
    #[serde(default)]
    is_major: bool,
}

pub(crate) async fn create_version(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Extension(by): Extension<Signed>,
    ApiJson(v): ApiJson<NewVersion>,
) -> Result<impl IntoResponse, ApiError> {
    let info = s
        .hub
        .create_version(&name, v.notes, v.is_major, &by.writer)?;
    Ok((StatusCode::CREATED, Json(info)))
}

pub(crate) async fn list_versions(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<VersionInfo>>, ApiError> {
    Ok(Json(s.hub.list_versions(&name)?))
}

pub(crate) async fn list_files(
    State(s): State<AppState>,
    Path((name, ver)): Path<(String, String)>,
) -> Result<Json<Vec<FileEntry>>, ApiError> {
    Ok(Json(s.hub.list_files(&name, &ver)?))
}

#[derive(Deserialize)]
pub(crate) struct UploadQuery {
    /// File name to store under; defaults to the multipart part's file name.
    name: Option<String>,
}

/// Streams the first file part of a multipart body into the hub. A `.onnx`
/// file must parse as ONNX, a `.gguf` file must load as an LLM (tokenizer,
/// template, weights), or it is refused (422) and not listed. The writer
/// must own the repository or collaborate on it, the file must fit its
/// quota, and a signed upload's bytes must hash to what was signed; when
/// any check fails, nothing is listed and no quota is used.
pub(crate) async fn upload(
    State(s): State<AppState>,
    Path((name, ver)): Path<(String, String)>,
    Query(q): Query<UploadQuery>,
    Extension(by): Extension<Signed>,
    headers: HeaderMap,
    mut mp: Multipart,
) -> Result<impl IntoResponse, ApiError> {
    if by.file_hash.is_some() && q.name.is_none() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "a signed upload names its file with ?name= (the multipart file name is not signed)",
        ));
    }
    // refused before a byte is read: not the writer's repository, no such
    // version, a full version, a file over the size limit or the quota
    if let Some(f) = &q.name {
        s.hub.check_upload(&name, &ver, f, &by.writer)?;
    } else {
        s.hub.authorize(&name, &by.writer)?;
        s.hub.list_files(&name, &ver)?;
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let max_blob = s.hub.config().max_blob_size;
    if declared.is_some_and(|n| n > max_blob + 64 * 1024) {
        return Err(gradnet_hub::HubError::TooLarge { limit: max_blob }.into());
    }
    let quota_left = s
        .hub
        .quota_left(&by.writer, declared.unwrap_or(0).saturating_sub(64 * 1024))?;
    let cut = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request(
            "upload_failed",
            format!("upload was cut off or malformed: {e}"),
        )
    };
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
    let file = q
        .name
        .clone()
        .or_else(|| field.file_name().map(str::to_owned))
        .ok_or_else(|| {
            ApiError::bad_request(
                "upload_failed",
                "no file name: set the part's filename or ?name=",
            )
        })?;
    gradnet_types::request::check_name(&file)
        .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
    if q.name.is_none() {
        s.hub.check_upload(&name, &ver, &file, &by.writer)?;
    }
    let mut w = s.hub.writer_with_limit(quota_left)?;
    let mut hasher = by.file_hash.map(|_| alloy_primitives::Keccak256::new());
    while let Some(chunk) = field.chunk().await.map_err(cut)? {
        if let Some(h) = hasher.as_mut() {
            h.update(&chunk);
        }
        w.write(&chunk).await.map_err(|e| match e {
            // the writer's limit was the quota, not the blob size limit
            gradnet_hub::HubError::TooLarge { limit } if limit < max_blob => {
                match s.hub.quota_left(&by.writer, limit + 1) {
                    Err(q) => ApiError::from(q),
                    Ok(_) => ApiError::from(gradnet_hub::HubError::TooLarge { limit }),
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
    }
    let entry = s.hub.add_file(&name, &ver, &file, blob, &by.writer)?;
    let mut body = serde_json::to_value(&entry).map_err(|e| ApiError::internal(e.to_string()))?;
    if let (Some(r), Some(obj)) = (report, body.as_object_mut()) {
        obj.insert(
            "runtime".into(),
            serde_json::to_value(r).map_err(|e| ApiError::internal(e.to_string()))?,
        );
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /api/v0/blobs/{cid}`, with single-range `Range: bytes=...` support.
pub(crate) async fn download(
    State(s): State<AppState>,
    Path(cid): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cid: ContentId = cid
        .parse()
        .map_err(|e| ApiError::bad_request("invalid_cid", format!("invalid content id: {e}")))?;
    let size = s.hub.manifest(&cid)?.size;
    let range = match headers.get(header::RANGE).map(|v| v.to_str().unwrap_or("")) {
        None => None,
        Some(r) => Some(parse_range(r, size).ok_or_else(|| {
            ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("cannot serve range `{r}` of a {size}-byte blob; use bytes=START-END, bytes=START- or bytes=-SUFFIX"),
            )
        })?),
    };
    let (start, end) = range.unwrap_or((0, size));
    let (_, stream) = s.hub.read_range(&cid, start, end).await?;
    let mut resp = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, end - start)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, format!("\"{cid}\""));
    resp = match range {
        Some(_) => resp.status(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", end.max(1) - 1),
        ),
        None => resp.status(StatusCode::OK),
    };
    resp.body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Parses one byte range into a half-open `start..end` within `size`.
fn parse_range(h: &str, size: u64) -> Option<(u64, u64)> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (size.saturating_sub(n), size)
        }
        (a, "") => (a.parse().ok()?, size),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.saturating_add(1).min(size),
        ),
    };
    (start < end && start < size).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 100)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-2", 100), None);
        assert_eq!(parse_range("bytes=0-1,4-5", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
