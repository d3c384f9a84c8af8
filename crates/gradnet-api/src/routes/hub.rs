//! Hub REST: repositories, versions, streamed uploads, ranged downloads.

use axum::body::Body;
use axum::extract::{Extension, Path, State};
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

/// Refuses a local name write on a node whose names are the chain's (only
/// a development node keeps local names beside them).
pub(crate) fn local_names(s: &AppState) -> Result<(), ApiError> {
    if s.hub.chain_names().is_some() && !s.config.dev_mode {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "names_on_chain",
            "this node serves the network's names from the model registry on chain (0x00000000000000000000000000000000000000F9): create repositories and publish versions with transactions (`gradnet model publish --rpc URL --key K NAME FILE...`); upload their files with POST /api/v0/blobs",
        ));
    }
    Ok(())
}

pub(crate) async fn create_repo(
    State(s): State<AppState>,
    Extension(by): Extension<Signed>,
    ApiJson(spec): ApiJson<RepoSpec>,
) -> Result<impl IntoResponse, ApiError> {
    local_names(&s)?;
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
    local_names(&s)?;
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
    local_names(&s)?;
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
    local_names(&s)?;
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
    let on_chain = s.hub.on_chain(&name)?.is_some();
    Ok(Json(
        json!({"repo": repo, "versions": versions, "on_chain": on_chain}),
    ))
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
    local_names(&s)?;
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
