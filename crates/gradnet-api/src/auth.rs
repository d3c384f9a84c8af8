//! Signed writes: a state-changing request under `/api/v0/` must carry an
//! account's EIP-712 signature (see `gradnet_client::auth`) over its method,
//! path with query, body hash, the node's chain id, a fresh timestamp and a
//! nonce never used before (kept across restarts). Unsigned writes are
//! refused unless the node runs in development mode, where they are made
//! as `anonymous`. Reads stay public. Instead of a signature, a write may
//! carry a session token this node issued at sign-in (see [`crate::session`]).

use alloy_primitives::B256;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gradnet_client::auth::{self, AuthError};
use gradnet_hub::Writer;

use crate::error::ApiError;
use crate::session::{self, Session, SessionError};
use crate::AppState;

/// Who a write is from, put in the request's extensions for its handler.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The verified account, or anonymous in development mode.
    pub writer: Writer,
    /// For an upload: the signed keccak256 of the file, which the handler
    /// checks against the bytes it receives.
    pub file_hash: Option<B256>,
    /// The session token the write came with, when it was not signed itself.
    pub session: Option<Session>,
}

fn unauthorized(e: AuthError) -> ApiError {
    let code = match e {
        AuthError::Header { .. } => "bad_signature_header",
        AuthError::Mismatch { .. } => "bad_signature",
        AuthError::Stale { .. } => "stale_signature",
        AuthError::Replayed { .. } => "replayed",
        AuthError::BodyHash { .. } => "body_hash_mismatch",
    };
    ApiError::new(StatusCode::UNAUTHORIZED, code, e.to_string())
}

/// Whether `path` streams a file up (its body is hashed as it arrives).
fn is_upload(path: &str) -> bool {
    path == "/api/v0/blobs" || (path.starts_with("/api/v0/models/") && path.ends_with("/files"))
}

/// The middleware: verifies a write's signature and records who made it.
pub(crate) async fn signed_writes(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match check(&s, req).await {
        Ok(req) => next.run(req).await,
        Err(resp) => resp,
    }
}

async fn check(s: &AppState, mut req: Request) -> Result<Request, Response> {
    let path = req.uri().path().to_string();
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || !path.starts_with("/api/v0/")
    {
        return Ok(req);
    }
    let headers = req.headers().clone();
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(token) = session::bearer(header("authorization")) {
        let file_hash = match header(auth::BODY_HASH_HEADER) {
            None => None,
            Some(v) => Some(v.trim().parse::<B256>().map_err(|_| {
                unauthorized(AuthError::Header {
                    header: auth::BODY_HASH_HEADER,
                    problem: "not a keccak256 (0x and 64 hex digits)".into(),
                })
                .into_response()
            })?),
        };
        let session = in_session(s, token).map_err(|r| *r)?;
        req.extensions_mut().insert(Signed {
            writer: Writer::Account(session.account.to_checksum(None)),
            file_hash,
            session: Some(session),
        });
        return Ok(req);
    }
    let signed = auth::parse_headers(header).map_err(|e| unauthorized(e).into_response())?;
    let Some(h) = signed else {
        if !s.config.dev_mode {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "signature_required",
                format!(
                    "{} {path} changes the hub, so it must be signed by an account: send the x-gradnet-account, -signature, -timestamp and -nonce headers (EIP-712 `Request` on chain id {}; the gradnet CLI signs with --key or GRADNET_KEY)",
                    req.method(),
                    s.config.chain_id
                ),
            )
            .into_response());
        }
        req.extensions_mut().insert(Signed {
            writer: Writer::Anonymous,
            file_hash: None,
            session: None,
        });
        return Ok(req);
    };
    let method = req.method().to_string();
    let path_q = req
        .uri()
        .path_and_query()
        .map_or(path.clone(), |p| p.as_str().to_string());
    let (req, body_hash, file_hash) = if is_upload(&path) {
        let claimed = header(auth::BODY_HASH_HEADER)
            .and_then(|v| v.trim().parse::<B256>().ok())
            .ok_or_else(|| {
                unauthorized(AuthError::Header {
                    header: auth::BODY_HASH_HEADER,
                    problem:
                        "a signed upload carries the keccak256 of the file (0x and 64 hex digits)"
                            .into(),
                })
                .into_response()
            })?;
        (req, claimed, Some(claimed))
    } else {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, s.config.max_request_bytes)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!(
                        "request body unreadable or over {} bytes: {e}",
                        s.config.max_request_bytes
                    ),
                )
                .into_response()
            })?;
        let hash = auth::body_hash(&bytes);
        (Request::from_parts(parts, Body::from(bytes)), hash, None)
    };
    auth::verify(
        &h,
        s.config.chain_id,
        &method,
        &path_q,
        body_hash,
        auth::now(),
    )
    .map_err(|e| unauthorized(e).into_response())?;
    // counted once the signature holds: a forger claiming someone's address
    // cannot spend that account's rate (its own address's rate bounds it)
    if let Err(r) = s.account_rate.check(h.account) {
        return Err(crate::server::rate_limited(
            r,
            &format!("account {}", h.account),
        ));
    }
    let hub = s.hub.clone();
    let expired = auth::now().saturating_sub(2 * auth::MAX_SKEW_SECS);
    let account = h.account.to_checksum(None);
    let a = account.clone();
    tokio::task::spawn_blocking(move || {
        hub.use_nonce(&a, h.nonce.as_slice(), h.timestamp, expired)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()).into_response())?
    .map_err(|e| ApiError::from(e).into_response())?;
    let mut req = req;
    req.extensions_mut().insert(Signed {
        writer: Writer::Account(account),
        file_hash,
        session: None,
    });
    Ok(req)
}

/// The session a bearer token stands for: issued by this node, unexpired,
/// not signed out, its account within its rate.
pub(crate) fn in_session(s: &AppState, token: &str) -> Result<Session, Box<Response>> {
    let refuse = |code, m: String| {
        Err(Box::new(
            ApiError::new(StatusCode::UNAUTHORIZED, code, m).into_response(),
        ))
    };
    let session = match s.sessions.check(token, auth::now()) {
        Ok(session) => session,
        Err(e @ SessionError::Expired { .. }) => return refuse("session_expired", e.to_string()),
        Err(e) => return refuse("bad_session_token", e.to_string()),
    };
    let account = session.account.to_checksum(None);
    match s.hub.nonce_used(&account, &session.id, session.expires_at) {
        Ok(false) => {}
        Ok(true) => {
            return refuse(
                "session_revoked",
                format!("{account} signed this session out: sign in again"),
            )
        }
        Err(e) => return Err(Box::new(ApiError::from(e).into_response())),
    }
    if let Err(r) = s.account_rate.check(session.account) {
        return Err(Box::new(crate::server::rate_limited(
            r,
            &format!("account {account}"),
        )));
    }
    Ok(session)
}
