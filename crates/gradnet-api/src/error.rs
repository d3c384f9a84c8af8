//! The one error shape every endpoint answers with:
//! `{"error": {"code": "...", "message": "..."}}` and a fitting status.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gradnet_hub::HubError;
use gradnet_runtime::RuntimeError;
use gradnet_types::TensorError;
use serde_json::json;

/// An error answer: its HTTP status, a stable machine-readable code and a
/// message that names the problem.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Stable code clients match on (`invalid_tensor`, `overloaded`, ...).
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, when there is one (OpenAI's `param`).
    pub param: Option<&'static str>,
    /// A header and body fields some errors carry (a 402's payment terms).
    pub extra: Option<Box<Extra>>,
}

/// What an error adds to the usual shape.
#[derive(Debug, Default)]
pub struct Extra {
    /// Headers to send with it.
    pub headers: Vec<(&'static str, String)>,
    /// Fields beside `error` in the body.
    pub body: serde_json::Map<String, serde_json::Value>,
}

/// Attached to error responses so the metrics layer can count them by code.
#[derive(Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            param: None,
            extra: None,
        }
    }
    /// Names the request field at fault.
    pub fn with_param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }
    /// OpenAI's error `type`.
    pub fn kind(&self) -> &'static str {
        if self.status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        }
    }
    /// 400 with `code`.
    pub fn bad_request(code: &'static str, m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, m)
    }
    /// 404 `not_found`.
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", m)
    }
    /// 429 `overloaded`: the node's queue is full (sent with `Retry-After`).
    pub fn overloaded() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "overloaded",
            "the node is at capacity and its queue is full; retry shortly",
        )
    }
    /// 500 `internal`: the node's fault, logged.
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        // `type` and `param` as OpenAI clients expect them
        let mut body = json!({"error": {"code": self.code, "message": self.message, "type": self.kind(), "param": self.param}});
        let extra = self.extra.map(|e| *e).unwrap_or_default();
        body.as_object_mut().expect("an object").extend(extra.body);
        let mut r = (self.status, axum::Json(body)).into_response();
        for (name, value) in extra.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers_mut().insert(name, v);
            }
        }
        if self.status == StatusCode::TOO_MANY_REQUESTS
            || self.status == StatusCode::SERVICE_UNAVAILABLE
        {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r.extensions_mut().insert(ErrorCode(self.code));
        r
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        let m = e.to_string();
        match e {
            HubError::NotFound(_) => Self::not_found(m),
            HubError::AlreadyExists(_) => Self::new(StatusCode::CONFLICT, "already_exists", m),
            HubError::Invalid(_) => Self::bad_request("invalid_request", m),
            HubError::Forbidden(_) => Self::new(StatusCode::FORBIDDEN, "forbidden", m),
            HubError::Quota { .. } => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded", m),
            HubError::OnChain(_) => Self::new(StatusCode::CONFLICT, "names_on_chain", m),
            HubError::Limit(_) => Self::new(StatusCode::CONFLICT, "limit_reached", m),
            HubError::Replayed { .. } => Self::new(StatusCode::UNAUTHORIZED, "replayed", m),
            HubError::TooLarge { .. } => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m),
            HubError::Corrupt { .. } => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "blob_corrupt", m)
            }
            HubError::Io(_) | HubError::Db(_) => Self::internal(m),
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        let m = e.to_string();
        match e {
            RuntimeError::BadInput(_) => Self::bad_request("invalid_tensor", m),
            RuntimeError::Unloadable(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "model_unloadable", m)
            }
            RuntimeError::Unsupported(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "model_unsupported", m)
            }
            RuntimeError::Execution(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "inference_failed", m)
            }
            RuntimeError::Budget(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "budget_exceeded", m)
            }
            RuntimeError::ContextLength(_) => {
                Self::bad_request("context_length_exceeded", m).with_param("messages")
            }
            RuntimeError::Unavailable(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "runtime_unavailable", m)
            }
        }
    }
}

impl From<TensorError> for ApiError {
    fn from(e: TensorError) -> Self {
        Self::bad_request("invalid_tensor", e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "request body is larger than the limit",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                r.body_text(),
            ),
            _ => Self::bad_request("invalid_json", r.body_text()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(format!("worker task failed: {e}"))
    }
}

/// `Json<T>` whose rejections use gradnet's error shape.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

/// Header giving the length of the JSON part of a binary body (KServe's
/// binary tensor extension); the tensors' raw bytes follow it.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// A JSON request body kept as bytes, so handlers can deserialize types that
/// borrow from it (no copy of large base64 tensors). Checks the content type
/// and the size limit as `axum::Json` does. A body with the
/// `Inference-Header-Content-Length` header is a JSON header followed by a
/// binary section.
pub struct JsonBody {
    bytes: bytes::Bytes,
    json_len: usize,
    binary: bool,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for JsonBody {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let header_len = match req.headers().get(HEADER_LENGTH) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_body",
                            "`Inference-Header-Content-Length` must be a byte count",
                        )
                    })?,
            ),
        };
        let mime = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok());
        let json = mime.as_ref().is_some_and(|m| {
            m.type_() == "application"
                && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
        });
        let octets = mime
            .as_ref()
            .is_some_and(|m| *m == mime::APPLICATION_OCTET_STREAM);
        if !(json || octets && header_len.is_some()) {
            return Err(Self::Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Expected request with `Content-Type: application/json`, or `application/octet-stream` with `Inference-Header-Content-Length`",
            ));
        }
        let bytes = bytes::Bytes::from_request(req, state)
            .await
            .map_err(|r| match r.status() {
                StatusCode::PAYLOAD_TOO_LARGE => Self::Rejection::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "request body is larger than the limit",
                ),
                _ => Self::Rejection::bad_request("invalid_body", r.body_text()),
            })?;
        let json_len = header_len.unwrap_or(bytes.len());
        if json_len > bytes.len() {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!(
                    "`Inference-Header-Content-Length` is {json_len} but the body has {} bytes",
                    bytes.len()
                ),
            ));
        }
        Ok(JsonBody {
            bytes,
            json_len,
            binary: header_len.is_some(),
        })
    }
}

impl JsonBody {
    /// A JSON body built in the node (one route served as another).
    pub(crate) fn json(bytes: bytes::Bytes) -> Self {
        JsonBody {
            json_len: bytes.len(),
            bytes,
            binary: false,
        }
    }

    /// Deserializes the JSON part.
    pub fn parse<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, ApiError> {
        let json = &self.bytes[..self.json_len];
        serde_json::from_slice(json).map_err(|e| {
            // parsed again, only to name the field at fault
            let path = serde_path_to_error::deserialize::<_, T>(
                &mut serde_json::Deserializer::from_slice(json),
            )
            .err()
            .map(|e| e.path().to_string())
            .filter(|p| p != ".");
            let at = path.map(|p| format!("{p}: ")).unwrap_or_default();
            ApiError::bad_request(
                "invalid_json",
                format!("Failed to deserialize the JSON body into the target type: {at}{e}"),
            )
        })
    }

    /// The binary section after the JSON header, if the body has one.
    pub fn binary(&self) -> Option<&[u8]> {
        self.binary.then(|| &self.bytes[self.json_len..])
    }
}
