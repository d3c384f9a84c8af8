//! Signing in and out: `POST /api/v0/sessions` (a signed request) gives a
//! session token, `DELETE` with the token ends it, `GET` with it says whose
//! it is and until when.

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Signed;
use crate::error::ApiError;
use crate::session::{self, Session, DEFAULT_TTL_SECS, MAX_TTL_SECS};
use crate::AppState;
use gradnet_client::auth::now;
use gradnet_hub::Writer;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SignIn {
    /// The session's lifetime in seconds (default 1 h, at most 24 h).
    ttl_secs: Option<u64>,
}

fn described(token: Option<&str>, s: &Session) -> serde_json::Value {
    let mut v = json!({
        "account": s.account.to_checksum(None),
        "expires_at": s.expires_at,
        "expires_in": s.expires_at.saturating_sub(now()),
    });
    if let Some(t) = token {
        v["token"] = json!(t);
        v["token_type"] = json!("Bearer");
    }
    v
}

pub(crate) async fn sign_in(
    State(s): State<AppState>,
    Extension(by): Extension<Signed>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let unauthorized = |code, m: &str| Err(ApiError::new(StatusCode::UNAUTHORIZED, code, m));
    let account = match (&by.writer, &by.session) {
        (_, Some(_)) => {
            return unauthorized(
                "signature_required",
                "a session is opened with a signed request, not with another session's token",
            )
        }
        (Writer::Anonymous, _) => {
            return unauthorized(
                "signature_required",
                "signing in takes a request signed by the account (x-gradnet-* headers)",
            )
        }
        (Writer::Account(a), None) => a.parse().map_err(|_| ApiError::internal("account"))?,
    };
    let req: SignIn = if body.iter().all(u8::is_ascii_whitespace) {
        SignIn::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("sign-in body: {e}")))?
    };
    let ttl = req.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if ttl == 0 || ttl > MAX_TTL_SECS {
        return Err(ApiError::bad_request(
            "invalid_ttl",
            format!("ttl_secs must be 1..={MAX_TTL_SECS} (got {ttl})"),
        )
        .with_param("ttl_secs"));
    }
    let (token, session) = s.sessions.issue(account, now() + ttl);
    Ok((StatusCode::CREATED, Json(described(Some(&token), &session))))
}

pub(crate) async fn sign_out(
    State(s): State<AppState>,
    Extension(by): Extension<Signed>,
) -> Result<impl IntoResponse, ApiError> {
    let Some(session) = by.session else {
        return Err(ApiError::bad_request(
            "session_required",
            "name the session to end: send its token as `Authorization: Bearer gns1...`",
        ));
    };
    let account = session.account.to_checksum(None);
    let hub = s.hub.clone();
    let (a, id, at) = (account.clone(), session.id, session.expires_at);
    tokio::task::spawn_blocking(move || hub.use_nonce(&a, &id, at, now().saturating_sub(600)))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(json!({"account": account, "signed_out": true})))
}

pub(crate) async fn whoami(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> axum::response::Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let Some(token) = session::bearer(auth) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_required",
            "send a session token as `Authorization: Bearer gns1...` (POST /api/v0/sessions gives one)",
        )
        .into_response();
    };
    match crate::auth::in_session(&s, token) {
        Ok(session) => Json(described(None, &session)).into_response(),
        Err(refused) => *refused,
    }
}
