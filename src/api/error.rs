//! The REST error format (from the InsightLoop seed), used by every non-MCP route:
//! `{"error": {"code", "message", "details", "timestamp", "request_id"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::downstream::DownstreamError;
use crate::router::RouterError;

use super::request_id::RequestId;

/// An error on its way to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `TOOL_NOT_FOUND`.
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    pub request_id: RequestId,
}

impl ApiError {
    pub fn new(
        request_id: &RequestId,
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: json!({}),
            request_id: request_id.clone(),
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Maps a router error to a status and code.
    pub fn from_router(request_id: &RequestId, error: RouterError) -> Self {
        let message = error.to_string();
        let (status, code, details) = match &error {
            RouterError::UnknownTool(tool) => (
                StatusCode::NOT_FOUND,
                "TOOL_NOT_FOUND",
                json!({ "tool": tool }),
            ),
            RouterError::UnknownPrompt(prompt) => (
                StatusCode::NOT_FOUND,
                "PROMPT_NOT_FOUND",
                json!({ "prompt": prompt }),
            ),
            RouterError::UnknownUri(uri) => (
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_FOUND",
                json!({ "uri": uri }),
            ),
            RouterError::AmbiguousUri { uri, servers } => (
                StatusCode::CONFLICT,
                "AMBIGUOUS_RESOURCE",
                json!({ "uri": uri, "servers": servers }),
            ),
            RouterError::UnknownServer(server) => (
                StatusCode::NOT_FOUND,
                "SERVER_NOT_FOUND",
                json!({ "server": server }),
            ),
            RouterError::Downstream(downstream) => match downstream {
                DownstreamError::Unavailable { server, .. } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVER_NOT_RUNNING",
                    json!({ "server": server }),
                ),
                DownstreamError::Unreachable { server, .. } => (
                    StatusCode::BAD_GATEWAY,
                    "SERVER_UNREACHABLE",
                    json!({ "server": server }),
                ),
                DownstreamError::Closed { server, .. } => (
                    StatusCode::BAD_GATEWAY,
                    "SERVER_CONNECTION_LOST",
                    json!({ "server": server }),
                ),
                DownstreamError::Timeout { server, timeout } => (
                    StatusCode::GATEWAY_TIMEOUT,
                    "TOOL_TIMEOUT",
                    json!({ "server": server, "timeout_ms": timeout.as_millis() as u64 }),
                ),
                DownstreamError::Cancelled { server } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "CANCELLED",
                    json!({ "server": server }),
                ),
                DownstreamError::Rpc { server, error } => (
                    StatusCode::BAD_GATEWAY,
                    "TOOL_ERROR",
                    json!({ "server": server, "jsonrpc_error": error }),
                ),
                DownstreamError::Protocol { server, what, .. } => (
                    StatusCode::BAD_GATEWAY,
                    "INVALID_SERVER_RESPONSE",
                    json!({ "server": server, "what": what }),
                ),
                DownstreamError::Start { server, .. } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVER_NOT_RUNNING",
                    json!({ "server": server }),
                ),
            },
        };
        ApiError::new(request_id, status, code, message).with_details(details)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let timestamp = humantime_rfc3339(std::time::SystemTime::now());
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "details": self.details,
                "timestamp": timestamp,
                "request_id": self.request_id.as_str(),
            }
        });
        (self.status, axum::Json(body)).into_response()
    }
}

/// RFC 3339 UTC timestamp with millisecond precision.
pub fn rfc3339_millis(time: std::time::SystemTime) -> String {
    let millis = time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0);
    let seconds = humantime_rfc3339(time);
    format!("{}.{millis:03}Z", seconds.trim_end_matches('Z'))
}

/// RFC 3339 UTC timestamp with second precision, without a date-time dependency.
pub fn humantime_rfc3339(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let day_of_year = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(humantime_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_705_316_400);
        assert_eq!(humantime_rfc3339(t), "2024-01-15T11:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(humantime_rfc3339(leap), "2000-02-29T00:00:00Z");
        let fraction = UNIX_EPOCH + Duration::from_millis(1_705_316_400_042);
        assert_eq!(rfc3339_millis(fraction), "2024-01-15T11:00:00.042Z");
    }
}
