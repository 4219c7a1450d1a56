//! Why the security layer refused a request, and how each refusal looks on the wire: the
//! project's REST error format (`{"error": {"code", "message", "details", "timestamp",
//! "request_id"}}`) with the right status and headers. No message ever contains a
//! credential.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http::Method;
use serde_json::json;

use crate::api::{ApiError, RequestId};
use crate::config::Permission;

use super::identity::AuthError;

/// A refusal by the security layer.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("the Host header '{0}' is not allowed (see security.allowed_hosts)")]
    HostNotAllowed(String),
    #[error("the Origin '{0}' is not allowed (see security.allowed_origins)")]
    OriginNotAllowed(String),
    #[error("no route {method} {path}")]
    NotFound { method: Method, path: String },
    #[error("{path} does not accept {method} (allowed: {allowed})")]
    MethodNotAllowed {
        method: Method,
        path: String,
        allowed: String,
    },
    #[error("authentication required: {0}")]
    Unauthenticated(#[from] AuthError),
    #[error(
        "forbidden: {what} needs the '{permission}' permission, which '{caller}' does not have"
    )]
    Forbidden {
        what: String,
        permission: Permission,
        caller: String,
    },
    #[error(
        "rate limit of {limit} requests per {period:?} for '{class}' requests exceeded; retry in {retry_after}s"
    )]
    RateLimited {
        class: &'static str,
        limit: u32,
        period: Duration,
        retry_after: u64,
    },
    #[error("the request body is larger than the limit of {limit} bytes (security.max_body_size)")]
    BodyTooLarge { limit: usize },
    #[error("the request body did not arrive within {0:?} (security.body_timeout)")]
    BodyTimeout(Duration),
    #[error("the request body could not be read: {0}")]
    BodyRead(String),
}

impl SecurityError {
    /// The HTTP answer, in the project's error format.
    pub fn into_response(self, request_id: &RequestId) -> Response {
        let (status, code, details) = match &self {
            SecurityError::HostNotAllowed(host) => (
                StatusCode::FORBIDDEN,
                "HOST_NOT_ALLOWED",
                json!({ "host": host }),
            ),
            SecurityError::OriginNotAllowed(origin) => (
                StatusCode::FORBIDDEN,
                "ORIGIN_NOT_ALLOWED",
                json!({ "origin": origin }),
            ),
            SecurityError::NotFound { method, path } => (
                StatusCode::NOT_FOUND,
                "ROUTE_NOT_FOUND",
                json!({ "method": method.as_str(), "path": path }),
            ),
            SecurityError::MethodNotAllowed {
                method, allowed, ..
            } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                json!({ "method": method.as_str(), "allowed": allowed }),
            ),
            SecurityError::Unauthenticated(_) => {
                (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", json!({}))
            }
            SecurityError::Forbidden {
                what,
                permission,
                caller,
            } => (
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                json!({ "route": what, "permission": permission.as_str(), "key": caller }),
            ),
            SecurityError::RateLimited {
                class, retry_after, ..
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMIT_EXCEEDED",
                json!({ "class": class, "retry_after_seconds": retry_after }),
            ),
            SecurityError::BodyTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                json!({ "limit_bytes": limit }),
            ),
            SecurityError::BodyTimeout(timeout) => (
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                json!({ "timeout_ms": timeout.as_millis() as u64 }),
            ),
            SecurityError::BodyRead(_) => (StatusCode::BAD_REQUEST, "INVALID_REQUEST", json!({})),
        };
        let mut response = ApiError::new(request_id, status, code, self.to_string())
            .with_details(details)
            .into_response();
        let headers = response.headers_mut();
        match &self {
            SecurityError::Unauthenticated(error) => {
                headers.insert(header::WWW_AUTHENTICATE, www_authenticate(error));
            }
            SecurityError::RateLimited { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            SecurityError::MethodNotAllowed { allowed, .. } => {
                if let Ok(value) = HeaderValue::from_str(allowed) {
                    headers.insert(header::ALLOW, value);
                }
            }
            SecurityError::BodyTooLarge { .. } | SecurityError::BodyTimeout(_) => {
                // The rest of the body is not read: the connection cannot be reused.
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

/// `WWW-Authenticate: Bearer realm="mcp-orch"[, error=..., error_description=...]`.
fn www_authenticate(error: &AuthError) -> HeaderValue {
    let value = match error.bearer_error() {
        None => r#"Bearer realm="mcp-orch""#.to_owned(),
        Some(code) => format!(
            r#"Bearer realm="mcp-orch", error="{code}", error_description="{}""#,
            error.to_string().replace(['"', '\\'], "'")
        ),
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}
